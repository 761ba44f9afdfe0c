//! `postfix -c DIR check`, Postfix's own configuration and file-permission check, with
//! its result remembered.
//!
//! The check is a shell script that runs post-install, postconf, postsuper and a dozen
//! finds: about half a second per instance, far more than everything else status does.
//! So its result is kept in the state directory (`health/NAME.check.json`) and reused
//! while main.cf and master.cf are unchanged (size, mtime, inode), the Postfix version
//! is the same, and it is younger than the maximum age. `--recheck` always runs it.
//!
//! Note what Postfix's check does besides checking: it creates missing queue
//! directories (post-install create-missing) and lets postsuper repair the queue's
//! structure, exactly as `postfix start` does before it starts the master.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::instance::Instance;
use crate::postfix::Postfix;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// Exit 0 and nothing said.
    Ok,
    /// Exit 0 with warnings.
    Warnings,
    /// Non-zero exit: `postfix start` would refuse to start the instance.
    Failed,
    /// It did not finish in time and was killed.
    Timeout,
    /// It was not run, and no earlier result is known (`reason` says why).
    NotRun,
}

/// The result shown in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub status: CheckStatus,
    /// What Postfix said (warnings, fatal errors).
    pub output: String,
    /// When the check ran (RFC 3339, UTC).
    pub checked_at: Option<String>,
    /// The same in seconds since the epoch.
    #[serde(skip)]
    pub checked_at_unix: Option<u64>,
    pub duration_ms: Option<u64>,
    /// The result was remembered from an earlier run, not run now.
    pub cached: bool,
    /// Why it was not run, when it was not.
    pub reason: Option<String>,
}

impl CheckResult {
    pub fn not_run(reason: impl Into<String>) -> CheckResult {
        CheckResult {
            status: CheckStatus::NotRun,
            output: String::new(),
            checked_at: None,
            checked_at_unix: None,
            duration_ms: None,
            cached: false,
            reason: Some(reason.into()),
        }
    }
}

/// A failed check is remembered at most this long, even while main.cf and master.cf
/// are unchanged.
pub const FAILURE_MAX_AGE: Duration = Duration::from_secs(60);

/// When to run the check and where to remember it.
#[derive(Debug, Clone)]
pub struct CheckPolicy {
    /// Whether to report the check at all (`--no-check` turns it off).
    pub enabled: bool,
    /// Run it even when a remembered result is fresh.
    pub recheck: bool,
    /// A remembered result older than this is run again.
    pub max_age: Duration,
    /// A check still running after this is killed.
    pub timeout: Duration,
    /// Why the check may not be run now (not root, --dry-run); remembered results are
    /// still shown.
    pub cannot_run: Option<String>,
    /// Where results are remembered; `None` remembers nothing.
    pub cache_dir: Option<PathBuf>,
}

/// What a remembered result must match to be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CacheKey {
    mail_version: String,
    config_directory: PathBuf,
    /// (file, size, mtime in ns, inode) of main.cf and master.cf.
    files: Vec<(String, u64, i128, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    key: CacheKey,
    /// When the check ran, in seconds since the epoch.
    checked_at: u64,
    result: CheckResult,
}

fn cache_key(postfix: &Postfix, config_directory: &Path) -> CacheKey {
    let files = ["main.cf", "master.cf"]
        .iter()
        .map(
            |name| match std::fs::metadata(config_directory.join(name)) {
                Ok(m) => (
                    name.to_string(),
                    m.size(),
                    m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
                    m.ino(),
                ),
                Err(_) => (name.to_string(), 0, 0, 0),
            },
        )
        .collect();
    CacheKey {
        mail_version: postfix.version.to_string(),
        config_directory: config_directory.to_path_buf(),
        files,
    }
}

/// Where an instance's result is remembered; none for a name that is not a plain
/// file name (names come from main.cf's multi_instance_name).
fn cache_file(dir: &Path, instance: &Instance) -> Option<PathBuf> {
    // The primary's name is "-"; secondary names start with "postfix-".
    let name = if instance.is_primary() {
        "primary"
    } else {
        &instance.name
    };
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    plain.then(|| dir.join(format!("{name}.check.json")))
}

/// Between three quarters of `max_age` and all of it, fixed per instance: checks that
/// all ran in one cold status run come due in different runs later, instead of all
/// again at once.
fn spread(max_age: Duration, name: &str) -> Duration {
    let hash = name.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    max_age.mul_f64(0.75 + f64::from(hash % 1000) / 4000.0)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A limit on how many checks run at once.
pub struct Slots {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            free: std::sync::Mutex::new(n.max(1)),
            freed: std::sync::Condvar::new(),
        }
    }

    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            while *free == 0 {
                free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
            }
            *free -= 1;
        }
        let out = f();
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.freed.notify_one();
        out
    }
}

/// The check result for an instance: remembered when fresh, else run now (when one
/// of `slots` is free).
pub fn check(
    postfix: &Postfix,
    instance: &Instance,
    policy: &CheckPolicy,
    slots: &Slots,
) -> CheckResult {
    if !policy.enabled {
        return CheckResult::not_run("turned off with --no-check");
    }
    let key = cache_key(postfix, &instance.config_directory);
    let path = policy
        .cache_dir
        .as_ref()
        .and_then(|d| cache_file(d, instance));
    let remembered = path.as_ref().and_then(|p| {
        let entry: CacheEntry = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
        (entry.key == key).then_some(CheckResult {
            checked_at_unix: Some(entry.checked_at),
            ..entry.result
        })
    });
    let max_age = spread(policy.max_age, &instance.name);
    let fresh = remembered.as_ref().filter(|r| {
        let age = now_secs().saturating_sub(r.checked_at_unix.unwrap_or(0));
        // A failure is what an administrator is busy fixing (ownership, a missing
        // directory, a table): it is asked again soon.
        let limit = match r.status {
            CheckStatus::Failed | CheckStatus::Timeout => max_age.min(FAILURE_MAX_AGE),
            _ => max_age,
        };
        !policy.recheck && age <= limit.as_secs()
    });
    if let Some(result) = fresh {
        return CheckResult {
            cached: true,
            ..result.clone()
        };
    }
    if let Some(why) = &policy.cannot_run {
        // An old result is better than none, as long as it is said to be old.
        return match remembered {
            Some(result) => CheckResult {
                cached: true,
                ..result
            },
            None => CheckResult::not_run(why.clone()),
        };
    }
    let result = slots.run(|| run(postfix, &instance.config_directory, policy.timeout));
    if let Some(path) = path {
        remember(
            &path,
            &CacheEntry {
                key,
                checked_at: result.checked_at_unix.unwrap_or(0),
                result: result.clone(),
            },
        );
    }
    result
}

/// Runs `postfix -c DIR check` now.
pub fn run(postfix: &Postfix, config_directory: &Path, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let cmd = postfix
        .command("postfix")
        .arg("-c")
        .arg(config_directory.to_string_lossy())
        .arg("check");
    let outcome = postfix.runner.probe_within(&cmd, timeout);
    let duration_ms = Some(started.elapsed().as_millis() as u64);
    let checked_at_unix = Some(now_secs());
    let (status, output) = match outcome {
        Ok(None) => (
            CheckStatus::Timeout,
            format!(
                "`{}` did not finish within {} s and was killed",
                cmd.display(),
                timeout.as_secs_f64()
            ),
        ),
        Ok(Some(o)) if o.success() && o.message().is_empty() => (CheckStatus::Ok, String::new()),
        Ok(Some(o)) if o.success() => (CheckStatus::Warnings, o.message().to_string()),
        Ok(Some(o)) => {
            let text = match o.message() {
                "" => format!("`{}` failed and printed nothing", o.command),
                text => text.to_string(),
            };
            (CheckStatus::Failed, text)
        }
        Err(e) => (CheckStatus::Failed, e.to_string()),
    };
    CheckResult {
        status,
        output,
        checked_at: checked_at_unix.map(crate::health::rfc3339),
        checked_at_unix,
        duration_ms,
        cached: false,
        reason: None,
    }
}

/// Saves a result; a failure to save only costs the next run time, so it is logged.
/// This is a cache file, not a change to the host, so it bypasses the runner.
fn remember(path: &Path, entry: &CacheEntry) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?;
        crate::runner::atomic_write(path, &text, 0o644)
    };
    if let Err(e) = write() {
        tracing::debug!(path = %path.display(), error = %e, "cannot remember the check result");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_spread_per_instance() {
        let max = Duration::from_secs(600);
        let ages: Vec<u64> = ["-", "postfix-a", "postfix-b", "postfix-in", "postfix-out"]
            .iter()
            .map(|n| spread(max, n).as_secs())
            .collect();
        assert!(ages.iter().all(|a| (450..=600).contains(a)), "{ages:?}");
        let distinct: std::collections::BTreeSet<_> = ages.iter().collect();
        assert!(distinct.len() >= 4, "{ages:?}");
        assert_eq!(spread(max, "postfix-a"), spread(max, "postfix-a"));
    }
}

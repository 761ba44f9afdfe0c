//! `postfix -c DIR check`, Postfix's own configuration and file-permission check, with
//! its result remembered.
//!
//! The check is a shell script that runs post-install, postconf, postsuper and a dozen
//! finds: about half a second per instance, far more than everything else status does.
//! So its result is kept in the state directory (`health/NAME.check.json`) and reused
//! while main.cf and master.cf are unchanged (size, mtime, inode), the Postfix version
//! is the same, and it is younger than the maximum age. `--recheck` always runs it.
//!
//! When main.cf or master.cf changed since a full check that passed, and none of the
//! parameters that say where the check looks (the directories, owners, queue hashing,
//! compatibility level: [`LAYOUT`]) changed, the parts of the check that the edit can
//! change are run alone (a quick check, a few milliseconds): `postsuper -c DIR`,
//! which is the step of `postfix check` that reads main.cf the way every Postfix
//! program does (a bad line or value is fatal there, as it is for `postfix check`
//! and for the master) and checks the queue's structure; `postconf -M`, which reads
//! master.cf as the master does (a bad line is fatal there); and the master.cf tests of
//! postfix-script (the file exists; a `postlog` service when `maillog_file` is set).
//! The rest of the full check (missing directories, ownership and permissions) does
//! not depend on the edited files: it runs again when the full result is older than
//! the maximum age, as before. So the first status after an edit in every instance
//! costs milliseconds per instance instead of half a second.
//!
//! A status run runs at most one round of full checks that merely came due (see
//! [`Slots::one_round`]), so that the first status after a quiet hour on a host with
//! many instances does not pay for all of them at once; the rest show their last
//! result, marked due, and are taken by later runs.
//!
//! Note what Postfix's check does besides checking: it creates missing queue
//! directories (post-install create-missing) and lets postsuper repair the queue's
//! structure, exactly as `postfix start` does before it starts the master.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::instance::Instance;
use crate::postfix::Postfix;
use crate::postfix::main_cf::MainCf;
use crate::postfix::master_cf;
use crate::runner::Command;

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
    /// Why it was not run, when it was not; for a quick check, what it ran.
    pub reason: Option<String>,
    /// Only the parts a main.cf or master.cf edit can change were run (see the
    /// module's doc); status and output of the rest are the last full check's.
    #[serde(default)]
    pub quick: bool,
    /// The full check is older than its maximum age and waits for a later status run
    /// (see [`Slots::one_round`]); what is shown is the last result.
    #[serde(default)]
    pub full_check_due: bool,
}

impl CheckResult {
    fn not_run(reason: impl Into<String>) -> CheckResult {
        CheckResult {
            status: CheckStatus::NotRun,
            output: String::new(),
            checked_at: None,
            checked_at_unix: None,
            duration_ms: None,
            cached: false,
            reason: Some(reason.into()),
            quick: false,
            full_check_due: false,
        }
    }
}

/// A remembered result is reused for this long while main.cf and master.cf are
/// unchanged (status; a start runs at least the quick check, see
/// [`CheckPolicy::before_start`]).
pub const MAX_AGE: Duration = Duration::from_secs(600);
/// `postfix check` normally takes half a second; a fatal error adds one.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A failed check is remembered at most this long, even while main.cf and master.cf
/// are unchanged.
const FAILURE_MAX_AGE: Duration = Duration::from_secs(60);

/// When to run the check and where to remember it.
#[derive(Debug, Clone)]
pub struct CheckPolicy {
    /// Whether to report the check at all (`--no-check` turns it off).
    pub enabled: bool,
    /// Run it even when a remembered result is fresh.
    pub recheck: bool,
    /// Run at least the quick check even when a remembered result is fresh: before a
    /// start, postsuper's look at the queue is what `postfix start` never leaves out.
    pub at_least_quick: bool,
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

impl CheckPolicy {
    /// The check before a start that skips the manager's own (`postfix start`'s
    /// check-fatal and check-warn, launchd's `postfix check`). `postfix start` refuses
    /// to start only on check-fatal (post-install create-missing, master.cf, postconf,
    /// the postlog service, postsuper); check-warn's ownership and permission findings
    /// are warnings it prints and starts anyway. So: the quick check (postsuper, the
    /// master.cf tests) when a passing full check of the same layout is remembered, of
    /// any age, and the full check when none is or the quick check fails (the full
    /// one creates missing queue directories, as Postfix's start does). Its result is
    /// remembered for status, and status's for it.
    pub fn before_start(state_dir: &Path) -> CheckPolicy {
        CheckPolicy {
            enabled: true,
            recheck: false,
            at_least_quick: true,
            max_age: MAX_AGE,
            timeout: TIMEOUT,
            cannot_run: None,
            cache_dir: Some(remembered_in(state_dir)),
        }
    }
}

/// Whether `instance` may start, by the check before a start
/// ([`CheckPolicy::before_start`]: the quick check on top of a remembered full check
/// that passed, else the full `postfix check`, remembered for `status`; so a boot with
/// many instances costs a few milliseconds each, not half a second). Warnings do not
/// keep it down, as they do not keep down `postfix start`; a failure comes back in
/// Postfix's words.
pub fn before_start(
    postfix: &Postfix,
    state_dir: &Path,
    instance: &Instance,
    slots: &Slots,
) -> Result<(), String> {
    let result = check(
        postfix,
        instance,
        &CheckPolicy::before_start(state_dir),
        slots,
    );
    match result.status {
        CheckStatus::Ok | CheckStatus::Warnings => Ok(()),
        _ => Err(format!("postfix check failed: {}", result.output.trim())),
    }
}

/// Where results are remembered, in instancectl's state directory.
pub fn remembered_in(state_dir: &Path) -> PathBuf {
    state_dir.join("health")
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
    /// When the last full check ran (the same as `checked_at` after a full check).
    #[serde(default)]
    full_checked_at: Option<u64>,
    /// The [`LAYOUT`] parameters as they were at the last full check.
    #[serde(default)]
    layout: Option<Vec<(String, Option<String>)>>,
}

impl CacheEntry {
    fn full_checked_at(&self) -> u64 {
        self.full_checked_at.unwrap_or(self.checked_at)
    }
}

/// The parameters that say where `postfix check` looks and what it expects there:
/// while they keep their values, an edit of main.cf or master.cf cannot change what
/// post-install and the permission checks find. (postfix(1) exports most of them to
/// postfix-script; the compatibility level changes what postfix(1) says.)
const LAYOUT: &[&str] = &[
    "command_directory",
    "compatibility_level",
    "daemon_directory",
    "data_directory",
    "hash_queue_depth",
    "hash_queue_names",
    "html_directory",
    "import_environment",
    "mail_owner",
    "mailq_path",
    "manpage_directory",
    "meta_directory",
    "multi_instance_directories",
    "newaliases_path",
    "queue_directory",
    "readme_directory",
    "sample_directory",
    "sendmail_path",
    "setgid_group",
    "shlib_directory",
];

/// The [`LAYOUT`] parameters as main.cf sets them (references to other parameters of
/// the file expanded; unset ones are Postfix's defaults, which do not change while
/// the version does not).
fn layout(config_directory: &Path) -> Vec<(String, Option<String>)> {
    let main_cf = MainCf::read(config_directory).unwrap_or_default();
    LAYOUT
        .iter()
        .map(|name| (name.to_string(), main_cf.expanded(name, &|_| None)))
        .collect()
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

/// A limit on how many checks run at once, and for a status run, how many full
/// checks it may run in all.
pub struct Slots {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
    /// Full checks this run may still start, of how many; `None`: as many as needed.
    full_left: Option<(std::sync::atomic::AtomicUsize, usize)>,
}

impl Slots {
    /// `n` checks at once, as many full checks as are needed (a start, `--recheck`).
    pub fn new(n: usize) -> Slots {
        Slots {
            free: std::sync::Mutex::new(n.max(1)),
            freed: std::sync::Condvar::new(),
            full_left: None,
        }
    }

    /// `n` checks at once, and at most `n` full checks that merely came due (one
    /// round): a status run then costs at most one check's time more than a warm
    /// one, however many instances' full checks came due while nobody asked. The
    /// others keep their remembered result, marked due, until a later run.
    pub fn one_round(n: usize) -> Slots {
        Slots {
            full_left: Some((std::sync::atomic::AtomicUsize::new(n.max(1)), n.max(1))),
            ..Slots::new(n)
        }
    }

    /// Takes one full check from the budget; false when none is left.
    fn take_full(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.full_left.as_ref().is_none_or(|(left, _)| {
            left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        })
    }

    /// Why a full check that came due was not run in this run.
    fn waits(&self, full_checked_at: Option<u64>) -> String {
        let round = self.full_left.as_ref().map_or(0, |(_, round)| *round);
        let last = match full_checked_at {
            Some(at) => format!("the last one ran {}", crate::output::rfc3339(at)),
            None => "it never ran".to_string(),
        };
        format!(
            "the full check is due ({last}) and waits for a later status run, which \
             runs at most {round} full checks; `status --recheck` runs them all now"
        )
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

/// The check result for an instance: remembered when fresh, else a quick check when
/// only main.cf or master.cf changed since a full check that passed, else the full
/// check run now (when one of `slots` is free).
pub fn check(
    postfix: &Postfix,
    instance: &Instance,
    policy: &CheckPolicy,
    slots: &Slots,
) -> CheckResult {
    if !policy.enabled {
        return CheckResult::not_run("turned off with --no-check");
    }
    let dir = &instance.config_directory;
    let key = cache_key(postfix, dir);
    let path = policy
        .cache_dir
        .as_ref()
        .and_then(|d| cache_file(d, instance));
    let entry: Option<CacheEntry> = path
        .as_ref()
        .and_then(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok());
    let max_age = spread(policy.max_age, &instance.name);
    let now = crate::output::unix_now();
    let full_young = |e: &CacheEntry| now.saturating_sub(e.full_checked_at()) <= max_age.as_secs();
    let remembered = entry
        .as_ref()
        .filter(|e| e.key == key)
        .map(|e| CheckResult {
            checked_at_unix: Some(e.checked_at),
            ..e.result.clone()
        });
    let fresh = entry.as_ref().filter(|e| {
        let age = now.saturating_sub(e.checked_at);
        // A failure is what an administrator is busy fixing (ownership, a missing
        // directory, a table): it is asked again soon.
        let limit = match e.result.status {
            CheckStatus::Failed | CheckStatus::Timeout => max_age.min(FAILURE_MAX_AGE),
            _ => max_age,
        };
        !policy.recheck
            && !policy.at_least_quick
            && e.key == key
            && age <= limit.as_secs()
            && full_young(e)
    });
    if let Some(e) = fresh {
        return CheckResult {
            cached: true,
            checked_at_unix: Some(e.checked_at),
            ..e.result.clone()
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
    let now_layout = layout(dir);
    // The last full check passed and looked at the same layout: an edit of main.cf or
    // master.cf needs only the quick check.
    let quick_base = entry.as_ref().filter(|e| {
        !policy.recheck
            && e.key.mail_version == key.mail_version
            && e.key.config_directory == key.config_directory
            && e.full_checked_at.is_some()
            && e.layout.as_ref() == Some(&now_layout)
            && matches!(e.result.status, CheckStatus::Ok | CheckStatus::Warnings)
    });
    // Before a start only what `postfix start` refuses on matters, and the quick check
    // is that part (see [`CheckPolicy::before_start`]): the full check's age does not.
    let full_due = quick_base.is_none_or(|e| !policy.at_least_quick && !full_young(e));
    let run_full = || {
        let result = slots.run(|| run(postfix, dir, policy.timeout));
        let at = result.checked_at_unix.unwrap_or(0);
        (result, at)
    };
    let (result, full_checked_at) = match quick_base {
        _ if full_due && (policy.recheck || slots.take_full()) => run_full(),
        Some(base) => {
            let unchanged = base.key == key && !policy.at_least_quick;
            let mut result = if unchanged {
                // Only the full check's age is wrong, and it waits its turn.
                CheckResult {
                    cached: true,
                    checked_at_unix: Some(base.checked_at),
                    ..base.result.clone()
                }
            } else {
                quick(
                    postfix,
                    dir,
                    &base.result,
                    base.full_checked_at(),
                    policy.timeout,
                )
            };
            if full_due {
                result.full_check_due = true;
                result.reason = Some(slots.waits(base.full_checked_at));
            }
            if unchanged {
                return result;
            }
            if policy.at_least_quick && result.status == CheckStatus::Failed {
                // A missing queue directory fails postsuper; Postfix's own start
                // creates it first (post-install create-missing), and so does the full
                // check: its word is the one that counts.
                run_full()
            } else {
                (result, base.full_checked_at())
            }
        }
        None => {
            // Never checked, or the layout changed, or the last full check failed:
            // nothing cheaper stands in for the full check, which waits its turn.
            let mut result = match remembered {
                Some(result) => CheckResult {
                    cached: true,
                    ..result
                },
                None => CheckResult::not_run(String::new()),
            };
            result.full_check_due = true;
            result.reason = Some(slots.waits(entry.as_ref().and_then(|e| e.full_checked_at)));
            return result;
        }
    };
    if let Some(path) = path {
        remember(
            &path,
            &CacheEntry {
                key,
                checked_at: result.checked_at_unix.unwrap_or(0),
                result: result.clone(),
                full_checked_at: Some(full_checked_at),
                layout: Some(now_layout),
            },
        );
    }
    result
}

/// The parts of `postfix check` that an edit of main.cf or master.cf can change:
/// postsuper (main.cf read as every Postfix program reads it; the queue's structure)
/// and postfix-script's master.cf tests. On success the result is the last full
/// check's (its warnings still stand); on failure it is a failure in Postfix's words.
fn quick(
    postfix: &Postfix,
    config_directory: &Path,
    full: &CheckResult,
    full_checked_at: u64,
    timeout: Duration,
) -> CheckResult {
    let started = Instant::now();
    let dir = config_directory.to_string_lossy();
    // postsuper reads main.cf as every Postfix program does and checks the queue;
    // `postconf -M` reads master.cf as the master does (a bad line is fatal there).
    let steps = [
        postfix.command("postsuper").arg("-c").arg(dir.as_ref()),
        postfix
            .command("postconf")
            .arg("-c")
            .arg(dir.as_ref())
            .arg("-M"),
    ];
    let failure_of = |cmd: &Command| match judged(postfix, cmd, timeout) {
        (CheckStatus::Ok | CheckStatus::Warnings, _) => None,
        (_, text) => Some(text),
    };
    let failure = steps
        .iter()
        .find_map(failure_of)
        .or_else(|| master_cf_problem(config_directory));
    let ran = steps
        .iter()
        .map(|c| format!("`{}`", c.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let checked_at_unix = Some(crate::output::unix_now());
    let (status, output) = match failure {
        Some(text) => (CheckStatus::Failed, text),
        None => (full.status, full.output.clone()),
    };
    CheckResult {
        status,
        output,
        checked_at: checked_at_unix.map(crate::output::rfc3339),
        checked_at_unix,
        duration_ms: Some(started.elapsed().as_millis() as u64),
        cached: false,
        reason: Some(format!(
            "main.cf or master.cf changed since the full check of {}: ran {ran} and the \
             master.cf tests",
            crate::output::rfc3339(full_checked_at),
        )),
        quick: true,
        full_check_due: false,
    }
}

/// postfix-script's master.cf tests: the file exists, and a `postlog` unix-dgram
/// service is there when main.cf sets `maillog_file`.
fn master_cf_problem(config_directory: &Path) -> Option<String> {
    let entries = match master_cf::read(config_directory) {
        Ok(entries) => entries,
        Err(_) => {
            return Some(format!(
                "postfix-script: fatal: no {}/master.cf file found",
                config_directory.display()
            ));
        }
    };
    let main_cf = MainCf::read(config_directory).unwrap_or_default();
    let logs_to_file = main_cf
        .expanded("maillog_file", &|_| None)
        .is_some_and(|v| !v.trim().is_empty());
    let has_postlog = entries.iter().any(|e| e.id() == "postlog/unix-dgram");
    (logs_to_file && !has_postlog).then(|| {
        "postfix-script: fatal: missing 'postlog' service in master.cf - run 'postfix \
         upgrade-configuration'"
            .to_string()
    })
}

/// Runs one command of a check and says how it came out, in Postfix's words where
/// it said any (warnings on success, its fatal error otherwise).
fn judged(postfix: &Postfix, cmd: &Command, timeout: Duration) -> (CheckStatus, String) {
    match postfix.runner.probe_within(cmd, timeout) {
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
    }
}

/// Runs `postfix -c DIR check` now.
pub fn run(postfix: &Postfix, config_directory: &Path, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let cmd = postfix
        .command("postfix")
        .arg("-c")
        .arg(config_directory.to_string_lossy())
        .arg("check");
    let (status, output) = judged(postfix, &cmd, timeout);
    let duration_ms = Some(started.elapsed().as_millis() as u64);
    let checked_at_unix = Some(crate::output::unix_now());
    CheckResult {
        status,
        output,
        checked_at: checked_at_unix.map(crate::output::rfc3339),
        checked_at_unix,
        duration_ms,
        cached: false,
        reason: None,
        quick: false,
        full_check_due: false,
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

//! The Postfix layer: where Postfix lives on this host (always asked of postconf,
//! never assumed), and the commands that read and change its configuration.

pub mod maillog;
pub mod main_cf;
pub mod master_cf;
pub mod pid_file;
pub mod postmulti;
pub mod queue;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, PostfixError, Result};
use crate::runner::{Command, Outcome, Runner};

/// A Postfix version, compared to decide which features the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split(['.', '-']).map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().and_then(|p| p.ok()).unwrap_or(0);
        let patch = parts.next().and_then(|p| p.ok()).unwrap_or(0);
        Some(Version(major, minor, patch))
    }
}

/// `maillog_file` and the postlogd service that writes it exist since Postfix 3.4. macOS
/// ships 3.2 (no maillog_file: it logs to the unified log), so everything that reads or
/// sets an instance's own log file checks `mail_version` against this first.
pub const MAILLOG_FILE_SINCE: Version = Version(3, 4, 0);

/// `master -s` (keep stdout, so `maillog_file = /dev/stdout` lands in a service
/// manager's log) exists since Postfix 3.4; the master of 3.2 refuses the option.
pub const MASTER_KEEP_STDOUT_SINCE: Version = Version(3, 4, 0);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The host's Postfix installation, as postconf describes the primary instance.
#[derive(Debug, Clone)]
pub struct Postfix {
    pub runner: Runner,
    pub postconf: PathBuf,
    pub command_directory: PathBuf,
    pub daemon_directory: PathBuf,
    /// The primary instance's configuration directory, the one postmulti works on.
    pub config_directory: PathBuf,
    pub queue_directory: PathBuf,
    pub data_directory: PathBuf,
    pub mail_owner: String,
    pub version: Version,
}

const DISCOVERED: [&str; 7] = [
    "command_directory",
    "daemon_directory",
    "config_directory",
    "queue_directory",
    "data_directory",
    "mail_owner",
    "mail_version",
];

impl Postfix {
    /// Finds postconf on PATH (or in /usr/sbin) and asks it, in one call, where
    /// everything else is.
    pub fn discover(runner: Runner) -> Result<Postfix> {
        let postconf = find_postconf()?;
        let out = runner.query(&Command::new(postconf.to_string_lossy()).args(DISCOVERED))?;
        let values = parse_postconf(&out.stdout);
        let get = |name: &str| {
            values
                .get(name)
                .cloned()
                .ok_or_else(|| PostfixError::NotReported {
                    parameter: name.into(),
                })
        };
        let version_text = get("mail_version")?;
        Ok(Postfix {
            runner,
            command_directory: get("command_directory")?.into(),
            daemon_directory: get("daemon_directory")?.into(),
            config_directory: get("config_directory")?.into(),
            queue_directory: get("queue_directory")?.into(),
            data_directory: get("data_directory")?.into(),
            mail_owner: get("mail_owner")?,
            version: Version::parse(&version_text)
                .ok_or(PostfixError::Version { text: version_text })?,
            postconf,
        })
    }

    pub fn command(&self, name: &str) -> Command {
        Command::new(self.command_directory.join(name).to_string_lossy())
    }

    pub fn master_binary(&self) -> PathBuf {
        self.daemon_directory.join("master")
    }

    /// `postconf -c DIR`, to which the caller adds what to read or change.
    pub fn postconf_in(&self, config_dir: &Path) -> Command {
        Command::new(self.postconf.to_string_lossy())
            .arg("-c")
            .arg(config_dir.to_string_lossy())
    }

    /// Parameter values of an instance, with `$name` references expanded.
    pub fn expanded(&self, config_dir: &Path, names: &[&str]) -> Result<BTreeMap<String, String>> {
        let out = self
            .runner
            .query(&self.postconf_in(config_dir).arg("-x").args(names))?;
        Ok(parse_postconf(&out.stdout))
    }

    /// Every parameter name this Postfix knows, with its compiled-in default.
    pub fn defaults(&self) -> Result<BTreeMap<String, String>> {
        let out = self
            .runner
            .query(&Command::new(self.postconf.to_string_lossy()).arg("-d"))?;
        Ok(parse_postconf(&out.stdout))
    }

    /// Sets main.cf parameters of an instance with `postconf -e`.
    pub fn set(&self, config_dir: &Path, settings: &[(String, String)]) -> Result<()> {
        if settings.is_empty() {
            return Ok(());
        }
        let args = settings.iter().map(|(k, v)| format!("{k} = {v}"));
        self.runner
            .change(&self.postconf_in(config_dir).arg("-e").args(args))
            .map(drop)
    }

    /// Removes main.cf parameters of an instance with `postconf -X`, so that their
    /// defaults apply again.
    pub fn unset(&self, config_dir: &Path, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        self.runner
            .change(&self.postconf_in(config_dir).arg("-X").args(names))
            .map(drop)
    }

    /// Edits a master.cf entry field with `postconf -F`, e.g. `smtp/inet/service = 2525`.
    pub fn set_master_field(&self, config_dir: &Path, edit: &str) -> Result<()> {
        self.runner
            .change(&self.postconf_in(config_dir).arg("-F").arg(edit))
            .map(drop)
    }

    /// Adds or replaces a whole master.cf entry with `postconf -M`.
    pub fn set_master_entry(&self, config_dir: &Path, entry: &str) -> Result<()> {
        self.runner
            .change(&self.postconf_in(config_dir).arg("-M").arg(entry))
            .map(drop)
    }

    fn postfix_in(&self, config_dir: &Path) -> Command {
        self.command("postfix")
            .arg("-c")
            .arg(config_dir.to_string_lossy())
    }

    /// `postfix -c DIR check`, whatever its result.
    pub fn check(&self, config_dir: &Path) -> Result<Outcome> {
        self.runner.probe(&self.postfix_in(config_dir).arg("check"))
    }

    /// `postfix -c DIR check`, as a step that must pass before an instance starts:
    /// its failure is an error with Postfix's own words. A dry run only prints it.
    pub fn require_check(&self, config_dir: &Path) -> Result<()> {
        if self.runner.dry_run() {
            crate::output::line(format_args!(
                "would run: {}",
                self.postfix_in(config_dir).arg("check").display()
            ));
            return Ok(());
        }
        let outcome = self.check(config_dir)?;
        if outcome.success() {
            Ok(())
        } else {
            Err(Error::CommandFailed {
                context: format!(
                    "{} does not pass `postfix check`, so it is not started",
                    config_dir.display()
                ),
                outcome: Box::new(outcome),
            })
        }
    }

    /// `postfix -c DIR CMD` (start, stop, reload, ...).
    pub fn control(&self, config_dir: &Path, verb: &str) -> Result<Outcome> {
        self.runner.change(&self.postfix_in(config_dir).arg(verb))
    }

    /// The configuration, queue and data directories `postmulti -e create` gives a
    /// new instance: beside the primary's, named after the instance.
    pub fn new_instance_directories(&self, name: &str) -> [PathBuf; 3] {
        let beside = |dir: &Path| dir.parent().unwrap_or(Path::new("/")).join(name);
        [
            beside(&self.config_directory),
            beside(&self.queue_directory),
            beside(&self.data_directory),
        ]
    }

    pub fn postmulti(&self) -> postmulti::Postmulti<'_> {
        postmulti::Postmulti::new(self)
    }
}

fn find_postconf() -> Result<PathBuf, PostfixError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/sbin".into());
    dirs.iter()
        .map(|d| d.join("postconf"))
        .find(|p| p.is_file())
        .ok_or_else(|| PostfixError::Missing {
            searched: "PATH and /usr/sbin".into(),
        })
}

/// Parses postconf's `name = value` lines.
fn parse_postconf(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postconf_output() {
        let text = "mail_version = 3.7.11\nrelayhost =\nmydestination = $myhostname, localhost\n";
        let map = parse_postconf(text);
        assert_eq!(map["mail_version"], "3.7.11");
        assert_eq!(map["relayhost"], "");
        assert_eq!(map["mydestination"], "$myhostname, localhost");
    }

    #[test]
    fn a_new_instance_lives_beside_the_primary() {
        let postfix = Postfix {
            runner: Runner::new(true),
            postconf: "/usr/sbin/postconf".into(),
            command_directory: "/usr/sbin".into(),
            daemon_directory: "/usr/lib/postfix/sbin".into(),
            config_directory: "/etc/postfix".into(),
            queue_directory: "/var/spool/postfix".into(),
            data_directory: "/var/lib/postfix".into(),
            mail_owner: "postfix".into(),
            version: Version(3, 7, 11),
        };
        assert_eq!(
            postfix.new_instance_directories("postfix-in"),
            [
                PathBuf::from("/etc/postfix-in"),
                PathBuf::from("/var/spool/postfix-in"),
                PathBuf::from("/var/lib/postfix-in"),
            ]
        );
    }

    #[test]
    fn versions_compare() {
        assert!(Version::parse("3.7.11").unwrap() >= Version(3, 4, 0));
        assert!(Version::parse("3.2.2").unwrap() < Version(3, 3, 0));
        assert_eq!(
            Version::parse("3.10-20240101").unwrap(),
            Version(3, 10, 20240101)
        );
        assert_eq!(Version::parse("x"), None);
    }
}

//! LaunchDaemon property lists: the one instancectl writes for a secondary instance, and
//! `instancectl plist --check`, the lint for any LaunchDaemon plist.
//!
//! The job runs `<daemon_directory>/master -c <config_directory>`: the master itself, in
//! the foreground, as launchd's own child. Everything else that starts Postfix
//! (`postfix start`, `postmulti -p start`) runs `master -w`, which daemonizes: launchd
//! sees its job exit at once and, with KeepAlive, starts it again and again into
//! "already running" errors. `postfix start-fg` is refused whenever
//! multi_instance_directories is set, so it cannot run a secondary instance either.

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use crate::error::InputError;
use crate::error::Result;
use crate::postfix::{MASTER_KEEP_STDOUT_SINCE, Version};

/// launchd's own default made explicit: a master that dies young is started again at
/// most every 10 seconds, so a broken configuration costs one attempt per interval
/// instead of a busy loop, and status can tell a crash loop (`runs` rising) from a
/// healthy job.
pub const THROTTLE_INTERVAL: i64 = 10;

/// How long launchd waits after SIGTERM before it sends SIGKILL. The master passes
/// SIGTERM to its process group and exits; its children (smtpd, qmgr, delivery agents)
/// finish and exit on their own. `postfix stop` gives them 5 seconds before `kill -9`;
/// launchd's default is 5 too. 30 seconds leaves room for a loaded host.
pub const EXIT_TIMEOUT: i64 = 30;

/// The label prefix of the jobs instancectl writes.
pub const DEFAULT_LABEL_PREFIX: &str = "org.postfix.";

/// The label suffix of the job that runs `instancectl supervise` under launchd.
pub const SUPERVISOR_NAME: &str = "instancectl";

/// Where `instancectl plist --supervisor` expects instancectl to be installed.
pub const DEFAULT_PROGRAM: &str = "/usr/local/sbin/instancectl";

/// Where the job's files go and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNaming {
    pub label_prefix: String,
    /// StandardOutPath and StandardErrorPath are `<log_dir>/<label>.log`.
    pub log_dir: PathBuf,
}

impl Default for JobNaming {
    fn default() -> Self {
        JobNaming {
            label_prefix: DEFAULT_LABEL_PREFIX.into(),
            log_dir: "/var/log".into(),
        }
    }
}

impl JobNaming {
    pub fn label(&self, instance: &str) -> String {
        format!("{}{instance}", self.label_prefix)
    }

    /// Checks the prefix: a label becomes a file name and a launchctl target.
    pub fn validate(&self) -> Result<()> {
        let p = &self.label_prefix;
        let ok = !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !ok {
            return Err(InputError::LabelPrefix { prefix: p.clone() }.into());
        }
        if !self.log_dir.is_absolute() {
            return Err(InputError::LogDirRelative {
                dir: self.log_dir.clone(),
            }
            .into());
        }
        Ok(())
    }
}

/// The LaunchDaemon of one secondary instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonJob {
    pub label: String,
    pub program_arguments: Vec<String>,
    pub throttle_interval: i64,
    pub exit_timeout: i64,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl DaemonJob {
    /// The job for instance `name` with configuration in `config_directory`, run by the
    /// master in `daemon_directory` of a Postfix `version`.
    pub fn for_instance(
        name: &str,
        config_directory: &Path,
        daemon_directory: &Path,
        version: Version,
        naming: &JobNaming,
    ) -> DaemonJob {
        let label = naming.label(name);
        let mut program_arguments = vec![
            daemon_directory
                .join("master")
                .to_string_lossy()
                .into_owned(),
            "-c".into(),
            config_directory.to_string_lossy().into_owned(),
        ];
        if version >= MASTER_KEEP_STDOUT_SINCE {
            program_arguments.push("-s".into());
        }
        DaemonJob::keep_alive(label, program_arguments, naming)
    }

    /// A job launchd starts at boot and keeps running, logging to
    /// `<log_dir>/<label>.log`.
    fn keep_alive(label: String, program_arguments: Vec<String>, naming: &JobNaming) -> DaemonJob {
        let log = naming.log_dir.join(format!("{label}.log"));
        DaemonJob {
            label,
            program_arguments,
            throttle_interval: THROTTLE_INTERVAL,
            exit_timeout: EXIT_TIMEOUT,
            stdout_path: log.clone(),
            stderr_path: log,
        }
    }

    /// The job that runs `instancectl supervise` under launchd: a reconcile pass every
    /// `interval`, so drift (a plist changed by hand, an override, a job booted out
    /// behind instancectl's back) is repaired. `program` is where instancectl is
    /// installed; `daemons_dir` and `naming` are the launchd manager's own settings.
    pub fn supervisor(
        program: &Path,
        interval: &str,
        daemons_dir: &Path,
        naming: &JobNaming,
    ) -> DaemonJob {
        let label = naming.label(SUPERVISOR_NAME);
        let program_arguments = [
            program.to_string_lossy().as_ref(),
            "--manager",
            "launchd",
            "--launchd-dir",
            daemons_dir.to_string_lossy().as_ref(),
            "--label-prefix",
            &naming.label_prefix,
            "--log-dir",
            naming.log_dir.to_string_lossy().as_ref(),
            "supervise",
            "--interval",
            interval,
        ]
        .map(str::to_string)
        .to_vec();
        DaemonJob::keep_alive(label, program_arguments, naming)
    }

    /// The file name in the daemons directory: the label, as launchd's convention wants.
    pub fn file_name(&self) -> String {
        format!("{}.plist", self.label)
    }

    pub fn to_value(&self) -> Value {
        let mut d = Dictionary::new();
        d.insert("Label".into(), Value::String(self.label.clone()));
        d.insert(
            "ProgramArguments".into(),
            Value::Array(
                self.program_arguments
                    .iter()
                    .map(|a| Value::String(a.clone()))
                    .collect(),
            ),
        );
        d.insert("RunAtLoad".into(), Value::Boolean(true));
        d.insert("KeepAlive".into(), Value::Boolean(true));
        d.insert(
            "ThrottleInterval".into(),
            Value::Integer(self.throttle_interval.into()),
        );
        d.insert(
            "ExitTimeOut".into(),
            Value::Integer(self.exit_timeout.into()),
        );
        let path = |p: &Path| Value::String(p.to_string_lossy().into_owned());
        d.insert("StandardOutPath".into(), path(&self.stdout_path));
        d.insert("StandardErrorPath".into(), path(&self.stderr_path));
        Value::Dictionary(d)
    }

    /// The XML document, tab-indented as Apple's tools write it, ending in a newline.
    pub fn to_xml(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.to_value()
            .to_writer_xml(&mut out)
            .expect("writing a plist to memory cannot fail");
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(version: Version) -> DaemonJob {
        DaemonJob::for_instance(
            "postfix-in",
            Path::new("/etc/postfix-in"),
            Path::new("/usr/libexec/postfix"),
            version,
            &JobNaming::default(),
        )
    }

    #[test]
    fn master_runs_in_the_foreground_with_its_config() {
        let j = job(Version(3, 2, 2));
        assert_eq!(j.label, "org.postfix.postfix-in");
        assert_eq!(
            j.program_arguments,
            ["/usr/libexec/postfix/master", "-c", "/etc/postfix-in"]
        );
        assert_eq!(j.file_name(), "org.postfix.postfix-in.plist");
        assert_eq!(
            j.stdout_path,
            PathBuf::from("/var/log/org.postfix.postfix-in.log")
        );
    }

    #[test]
    fn keep_stdout_only_where_postfix_has_it() {
        assert!(
            !job(Version(3, 3, 9))
                .program_arguments
                .contains(&"-s".into())
        );
        assert_eq!(
            job(Version(3, 4, 0)).program_arguments.last().unwrap(),
            "-s"
        );
        assert_eq!(
            job(Version(3, 7, 11)).program_arguments.last().unwrap(),
            "-s"
        );
    }

    #[test]
    fn generated_xml_is_a_strictly_valid_plist_with_every_key() {
        let xml = job(Version(3, 7, 11)).to_xml();
        let parsed = super::super::strict::parse(&xml);
        assert!(parsed.is_valid(), "{:?}", parsed.errors);
        let d = parsed.dict().unwrap();
        assert!(d.get("Program").is_none());
        assert_eq!(d.get("RunAtLoad"), Some(&Value::Boolean(true)));
        assert_eq!(d.get("KeepAlive"), Some(&Value::Boolean(true)));
        assert_eq!(
            d.get("ThrottleInterval").and_then(Value::as_signed_integer),
            Some(THROTTLE_INTERVAL)
        );
        assert_eq!(
            d.get("ExitTimeOut").and_then(Value::as_signed_integer),
            Some(EXIT_TIMEOUT)
        );
        assert!(d.get("StandardErrorPath").is_some());
        let keys: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(keys[0], "Label");
    }

    /// The walk-through's instances on a stock macOS: Postfix 3.2, daemon_directory
    /// /usr/libexec/postfix, configuration next to /etc/postfix.
    fn reference_job(name: &str) -> DaemonJob {
        DaemonJob::for_instance(
            name,
            &Path::new("/etc").join(name),
            Path::new("/usr/libexec/postfix"),
            Version(3, 2, 2),
            &JobNaming::default(),
        )
    }

    fn reference_supervisor() -> DaemonJob {
        DaemonJob::supervisor(
            Path::new(DEFAULT_PROGRAM),
            "10s",
            Path::new("/Library/LaunchDaemons"),
            &JobNaming::default(),
        )
    }

    const SUPERVISOR_REFERENCE: &[u8] =
        include_bytes!("../../../plists/org.postfix.instancectl.plist");

    const REFERENCES: [(&str, &[u8]); 2] = [
        (
            "postfix-out",
            include_bytes!("../../../plists/org.postfix.postfix-out.plist"),
        ),
        (
            "postfix-in",
            include_bytes!("../../../plists/org.postfix.postfix-in.plist"),
        ),
    ];

    #[test]
    fn reference_plists_match_the_generator_byte_for_byte() {
        // INSTANCECTL_WRITE_REFERENCE_PLISTS=1 rewrites them after a deliberate change.
        if std::env::var_os("INSTANCECTL_WRITE_REFERENCE_PLISTS").is_some() {
            for (name, _) in REFERENCES {
                let job = reference_job(name);
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("plists")
                    .join(job.file_name());
                std::fs::write(path, job.to_xml()).unwrap();
            }
            let job = reference_supervisor();
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("plists")
                .join(job.file_name());
            std::fs::write(path, job.to_xml()).unwrap();
            return;
        }
        let supervisor = reference_supervisor().to_xml();
        assert!(
            supervisor == SUPERVISOR_REFERENCE,
            "plists/org.postfix.instancectl.plist differs from the generator's output:\n{}",
            String::from_utf8_lossy(&supervisor)
        );
        for (name, reference) in REFERENCES {
            let generated = reference_job(name).to_xml();
            assert!(
                generated == reference,
                "plists/{} differs from the generator's output:\n{}",
                reference_job(name).file_name(),
                String::from_utf8_lossy(&generated)
            );
        }
    }

    #[test]
    fn prefixes_are_checked() {
        let bad = |p: &str| {
            JobNaming {
                label_prefix: p.into(),
                ..JobNaming::default()
            }
            .validate()
            .is_err()
        };
        assert!(!bad("org.postfix."));
        assert!(!bad("com.example.mail."));
        assert!(bad(""));
        assert!(bad("org/postfix."));
        assert!(bad("org postfix."));
        assert!(bad(".org."));
        let relative = JobNaming {
            log_dir: "logs".into(),
            ..JobNaming::default()
        };
        assert!(relative.validate().is_err());
    }
}

//! The unit file instancectl writes for a secondary instance:
//! `/etc/systemd/system/instancectl-NAME.service`. Its main process is the instance's
//! master in the foreground, so systemd knows the master's pid, brings it back when it
//! dies (`Restart=always`), stops it and every process it left (the unit's cgroup),
//! and starts it at boot when enabled.
//!
//! `postfix start` and `postmulti -p start` run `master -w`, which daemonizes: Debian's
//! `postfix@.service` has to be `Type=forking` with `GuessMainPID=no`, so systemd
//! never knows which process is the master and cannot restart it.

use std::path::{Path, PathBuf};

use crate::postfix::MASTER_KEEP_STDOUT_SINCE;
use crate::postfix::Version;

/// Where unit files written by the administrator (and instancectl) live; they beat
/// the package's units in /lib and the generators' in /run.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The unit name prefix that marks instancectl's units.
const UNIT_PREFIX: &str = "instancectl-";

/// The first line of every unit instancectl writes.
const MARK: &str = "# Written by instancectl";

/// Debian's helper that copies resolv.conf, the CA files and libraries into an
/// instance's chroot (postfix@.service's ExecStartPre).
pub const CONFIGURE_INSTANCE: &str = "/usr/lib/postfix/configure-instance.sh";

/// How long systemd waits after SIGTERM before SIGKILL; the launchd job's ExitTimeOut.
const STOP_TIMEOUT_SECS: u32 = 30;

/// The unit's name for an instance.
pub fn unit_name(instance: &str) -> String {
    format!("{UNIT_PREFIX}{instance}.service")
}

pub fn unit_path(instance: &str) -> PathBuf {
    Path::new(UNIT_DIR).join(unit_name(instance))
}

/// Everything the unit of one instance depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceUnit {
    pub instance: String,
    pub config_directory: PathBuf,
    pub daemon_directory: PathBuf,
    pub command_directory: PathBuf,
    pub version: Version,
    /// Debian's chroot helper, where the host has it.
    pub configure_instance: Option<PathBuf>,
    /// The instances of the same group that postmulti starts before this one (output
    /// before input): this unit starts after theirs and stops before them.
    pub after: Vec<String>,
}

impl InstanceUnit {
    pub fn name(&self) -> String {
        unit_name(&self.instance)
    }

    /// The unit file's text.
    pub fn to_text(&self) -> String {
        let name = &self.instance;
        let dir = self.config_directory.display();
        let postfix = self.command_directory.join("postfix");
        let postfix = postfix.display();
        let mut master = format!(
            "{} -c {dir}",
            self.daemon_directory.join("master").display()
        );
        if self.version >= MASTER_KEEP_STDOUT_SINCE {
            master.push_str(" -s");
        }
        let order = if self.after.is_empty() {
            String::new()
        } else {
            let after: Vec<String> = self.after.iter().map(|a| unit_name(a)).collect();
            format!(
                "# postmulti's start order within the group.\nAfter={}\n",
                after.join(" ")
            )
        };
        let helper = match &self.configure_instance {
            Some(helper) => format!("ExecStartPre={} {name}\n", helper.display()),
            None => String::new(),
        };
        format!(
            "{MARK} for the Postfix instance {name}: `instancectl unit {name}`
# prints it, `instancectl reconcile` puts it back when it was changed. Debian's
# postfix@{name}.service is masked so that only this unit runs the master.
[Unit]
Description=Postfix instance {name} (instancectl)
Documentation=man:master(8) man:postmulti(1)
After=network-online.target nss-lookup.target
Wants=network-online.target
{order}# Ten starts within a minute (a master that keeps dying, a configuration that
# fails `postfix check`) leave the unit failed instead of looping.
StartLimitIntervalSec=60s
StartLimitBurst=10

[Service]
# The master in the foreground is the main process.
Type=exec
{helper}ExecStartPre={postfix} -c {dir} check
ExecStart={master}
ExecReload={postfix} -c {dir} check
ExecReload=/bin/kill -HUP $MAINPID
# Started again whenever the master ends, unless systemctl stopped it: on
# SIGTERM the master dies by that signal, which systemd counts as clean.
Restart=always
RestartSec=100ms
# Stop: SIGTERM to the master and its children, SIGKILL to what is left.
KillMode=control-group
TimeoutStopSec={STOP_TIMEOUT_SECS}s

[Install]
WantedBy=multi-user.target
"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk-through's group on a stock Debian 12: Postfix 3.7.11, paths as the
    /// package installs them, postfix-out before postfix-in in group mta.
    fn reference(name: &str, after: &[&str]) -> InstanceUnit {
        InstanceUnit {
            instance: name.into(),
            config_directory: Path::new("/etc").join(name),
            daemon_directory: "/usr/lib/postfix/sbin".into(),
            command_directory: "/usr/sbin".into(),
            version: Version(3, 7, 11),
            configure_instance: Some(CONFIGURE_INSTANCE.into()),
            after: after.iter().map(|a| a.to_string()).collect(),
        }
    }

    const REFERENCES: [(&str, &[&str], &str); 2] = [
        (
            "postfix-out",
            &[],
            include_str!("../../../units/instancectl-postfix-out.service"),
        ),
        (
            "postfix-in",
            &["postfix-out"],
            include_str!("../../../units/instancectl-postfix-in.service"),
        ),
    ];

    #[test]
    fn reference_units_match_the_generator_byte_for_byte() {
        // INSTANCECTL_WRITE_REFERENCE_UNITS=1 rewrites them after a deliberate change.
        if std::env::var_os("INSTANCECTL_WRITE_REFERENCE_UNITS").is_some() {
            for (name, after, _) in REFERENCES {
                let unit = reference(name, after);
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("units")
                    .join(unit.name());
                std::fs::write(path, unit.to_text()).unwrap();
            }
            return;
        }
        for (name, after, golden) in REFERENCES {
            let unit = reference(name, after);
            let generated = unit.to_text();
            assert!(
                generated.as_bytes() == golden.as_bytes(),
                "units/{} differs from the generator's output:\n{generated}",
                unit.name()
            );
        }
    }

    #[test]
    fn the_master_runs_in_the_foreground_after_postfix_check() {
        let text = reference("postfix-in", &["postfix-out"]).to_text();
        let line = |key: &str| -> Vec<&str> {
            text.lines()
                .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .collect()
        };
        assert_eq!(
            line("ExecStart"),
            ["/usr/lib/postfix/sbin/master -c /etc/postfix-in -s"]
        );
        assert_eq!(
            line("ExecStartPre"),
            [
                "/usr/lib/postfix/configure-instance.sh postfix-in",
                "/usr/sbin/postfix -c /etc/postfix-in check"
            ]
        );
        assert_eq!(line("Restart"), ["always"]);
        assert_eq!(line("Type"), ["exec"]);
        assert!(line("After").contains(&"instancectl-postfix-out.service"));
        assert!(text.starts_with(MARK));
        assert!(!text.contains("master -w") && !text.contains("postmulti -i"));
    }

    #[test]
    fn no_keep_stdout_flag_before_postfix_3_4_and_no_helper_off_debian() {
        let unit = InstanceUnit {
            version: Version(3, 3, 9),
            configure_instance: None,
            ..reference("postfix-a", &[])
        };
        let text = unit.to_text();
        assert!(text.contains("ExecStart=/usr/lib/postfix/sbin/master -c /etc/postfix-a\n"));
        assert!(!text.contains("configure-instance"));
        assert!(!text.contains("\nAfter=instancectl-"));
    }
}

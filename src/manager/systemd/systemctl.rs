//! The systemctl and journalctl driver of the systemd manager. Every call goes through
//! the runner (recorded, `--dry-run`). State is read with `systemctl show`, whose
//! `Key=value` lines are meant for programs; `systemctl status` is for people and its
//! layout changes between releases.

use std::time::SystemTime;

use crate::error::Result;
use crate::manager::ManagerError;
use crate::runner::{Command, Runner};

/// The properties the manager reads, in one `systemctl show` call for many units.
const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,Result,MainPID,ExecMainPID,\
                              ExecMainCode,ExecMainStatus,NRestarts,UnitFileState";

/// How a process ended, as systemd records it in ExecMainCode (the CLD_* codes of
/// waitid(2)).
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;

/// One unit as `systemctl show` describes it. Strings are kept as systemd wrote them,
/// so states this version does not know survive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    pub id: String,
    /// `loaded`, `not-found`, `masked`, `bad-setting`, `error`.
    pub load_state: String,
    /// `active`, `inactive`, `failed`, `activating`, `deactivating`, `reloading`.
    pub active_state: String,
    /// The type's own state: `running`, `dead`, `auto-restart`, `start-pre`, `exited`...
    pub sub_state: String,
    /// `success`, `exit-code`, `signal`, `core-dump`, `start-limit-hit`, `timeout`...
    pub result: String,
    /// The main process now; `None` for 0 (none, or not known: `GuessMainPID=no`).
    pub main_pid: Option<i32>,
    /// The last main process started, running or not.
    pub exec_main_pid: Option<i32>,
    pub exec_main_code: i32,
    pub exec_main_status: i32,
    /// Automatic restarts (Restart=) since the unit was last started by hand.
    pub n_restarts: u64,
    /// `enabled`, `disabled`, `masked`, `static`, `enabled-runtime`, `generated`...;
    /// empty when there is no unit file.
    pub unit_file_state: String,
}

impl UnitState {
    pub fn exists(&self) -> bool {
        self.load_state != "not-found" && !self.load_state.is_empty()
    }

    pub fn is_masked(&self) -> bool {
        self.load_state == "masked" || self.unit_file_state.starts_with("masked")
    }

    /// Running, or on its way there (a start job, or waiting to be restarted).
    pub fn is_active(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "activating" | "reloading"
        )
    }

    pub fn is_running(&self) -> bool {
        self.active_state == "active" && self.sub_state == "running"
    }

    /// The unit's file is linked to start at boot.
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.unit_file_state.as_str(),
            "enabled" | "enabled-runtime" | "linked" | "linked-runtime" | "alias"
        )
    }

    /// How the last main process ended, in words; `None` when none has ended.
    pub fn last_exit(&self) -> Option<String> {
        match self.exec_main_code {
            CLD_EXITED => Some(format!("exited with status {}", self.exec_main_status)),
            CLD_KILLED => Some(format!(
                "killed by signal {}",
                signal_name(self.exec_main_status)
            )),
            CLD_DUMPED => Some(format!(
                "dumped core on signal {}",
                signal_name(self.exec_main_status)
            )),
            _ => None,
        }
    }

    /// One phrase for people: "active (running), 2 restarts, last killed by signal
    /// 9 (SIGKILL), enabled".
    pub fn summary(&self) -> String {
        if !self.exists() {
            return "no such unit".into();
        }
        if self.is_masked() {
            return "masked".into();
        }
        let mut s = format!("{} ({})", self.active_state, self.sub_state);
        if self.n_restarts > 0 {
            s.push_str(&format!(", {} automatic restart(s)", self.n_restarts));
        }
        if let Some(exit) = self.last_exit() {
            s.push_str(&format!(", last {exit}"));
        }
        if !matches!(self.result.as_str(), "success" | "") {
            s.push_str(&format!(", result {}", self.result));
        }
        if !self.unit_file_state.is_empty() {
            s.push_str(&format!(", {}", self.unit_file_state));
        }
        s
    }
}

fn signal_name(number: i32) -> String {
    match nix::sys::signal::Signal::try_from(number) {
        Ok(signal) => format!("{number} ({})", signal.as_str()),
        Err(_) => number.to_string(),
    }
}

/// Parses `systemctl show UNIT... -p PROPERTIES`: one block of `Key=value` lines per
/// unit, blocks separated by an empty line, properties in systemd's own order.
fn parse_show(text: &str) -> Vec<UnitState> {
    let pid = |v: &str| v.parse::<i32>().ok().filter(|p| *p > 0);
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut unit = UnitState::default();
            for line in block.lines() {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let value = value.trim_end();
                match key {
                    "Id" => unit.id = value.into(),
                    "LoadState" => unit.load_state = value.into(),
                    "ActiveState" => unit.active_state = value.into(),
                    "SubState" => unit.sub_state = value.into(),
                    "Result" => unit.result = value.into(),
                    "MainPID" => unit.main_pid = pid(value),
                    "ExecMainPID" => unit.exec_main_pid = pid(value),
                    "ExecMainCode" => unit.exec_main_code = value.parse().unwrap_or(0),
                    "ExecMainStatus" => unit.exec_main_status = value.parse().unwrap_or(0),
                    "NRestarts" => unit.n_restarts = value.parse().unwrap_or(0),
                    "UnitFileState" => unit.unit_file_state = value.into(),
                    _ => {}
                }
            }
            unit
        })
        .collect()
}

/// systemctl and journalctl, through the runner.
pub struct Systemctl {
    runner: Runner,
}

impl Systemctl {
    pub fn new(runner: Runner) -> Systemctl {
        Systemctl { runner }
    }

    /// The state of each unit, in the order asked. Reads, so it runs in a dry run too.
    pub fn show(&self, units: &[&str]) -> Result<Vec<UnitState>> {
        let cmd = Command::new("systemctl")
            .arg("show")
            .args(units)
            .args(["-p", PROPERTIES]);
        let shown = parse_show(&self.runner.query(&cmd)?.stdout);
        units
            .iter()
            .map(|unit| {
                shown
                    .iter()
                    .find(|s| s.id == *unit)
                    .cloned()
                    .ok_or_else(|| {
                        ManagerError::UnitUnknown {
                            command: cmd.display(),
                            unit: unit.to_string(),
                        }
                        .into()
                    })
            })
            .collect()
    }

    pub fn show_one(&self, unit: &str) -> Result<UnitState> {
        Ok(self.show(&[unit])?.remove(0))
    }

    /// `systemctl VERB [ARGS] UNIT`: start, stop, restart, reload, enable, disable,
    /// mask, unmask, reset-failed.
    pub fn run(&self, verb: &str, unit: &str, args: &[&str]) -> Result<()> {
        let cmd = Command::new("systemctl").arg(verb).args(args).arg(unit);
        self.runner
            .change(&cmd)
            .map(drop)
            .map_err(|e| e.context(format!("systemctl {verb} {unit}")))
    }

    /// Makes systemd read unit files again (and run the generators).
    pub fn daemon_reload(&self) -> Result<()> {
        self.runner
            .change(&Command::new("systemctl").arg("daemon-reload"))
            .map(drop)
    }

    /// How the unit's main process last ended, from systemd's own journal line ("Main
    /// process exited, code=killed, status=9/KILL"): `systemctl show` forgets it as
    /// soon as `Restart=` has started the next one.
    pub fn last_main_exit(&self, unit: &str) -> Option<String> {
        let cmd =
            Command::new("journalctl").args(["-u", unit, "-o", "cat", "--no-pager", "--lines=200"]);
        let outcome = self.runner.probe(&cmd).ok()?;
        outcome.stdout.lines().rev().find_map(|l| {
            l.split_once("Main process exited, ")
                .map(|(_, how)| how.trim().to_string())
        })
    }

    /// The unit's last `lines` journal messages since `since`, as the programs wrote
    /// them: systemd's own lines about the unit, and what its processes logged (the
    /// master's and `postfix check`'s syslog lines land there too: journald files them
    /// by cgroup).
    pub fn journal(&self, unit: &str, since: SystemTime, lines: usize) -> Vec<String> {
        let epoch = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_sub(1));
        let cmd = Command::new("journalctl")
            .args(["-u", unit, "-o", "cat", "--no-pager"])
            .arg(format!("--since=@{epoch}"))
            .arg(format!("--lines={lines}"));
        match self.runner.probe(&cmd) {
            Ok(outcome) => outcome
                .stdout
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("-- "))
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> Vec<UnitState> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/systemd")
            .join(name);
        parse_show(&std::fs::read_to_string(path).unwrap())
    }

    #[test]
    fn several_units_at_once_in_systemds_own_order() {
        let units = recorded("show-restarted-masked-debian-notfound.txt");
        let ids: Vec<&str> = units.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "instancectl-postfix-k.service",
                "postfix@postfix-k.service",
                "postfix@-.service",
                "postfix.service",
                "instancectl-nonesuch.service"
            ]
        );
        let ours = &units[0];
        assert!(ours.is_running() && ours.is_enabled() && !ours.is_masked());
        assert_eq!(ours.main_pid, Some(1480));
        assert_eq!(ours.n_restarts, 1);
        // Restarted: the running master has not ended, the killed one is forgotten.
        assert_eq!(ours.last_exit(), None);
        assert_eq!(
            ours.summary(),
            "active (running), 1 automatic restart(s), enabled"
        );
        let masked = &units[1];
        assert!(masked.is_masked() && !masked.is_active() && masked.exists());
        assert_eq!(masked.summary(), "masked");
        let primary = &units[2];
        // Debian's unit has GuessMainPID=no: running, with no main pid known.
        assert!(primary.is_running());
        assert_eq!(primary.main_pid, None);
        assert!(
            primary.is_enabled(),
            "enabled-runtime: the generator's link"
        );
        let oneshot = &units[3];
        assert_eq!(oneshot.sub_state, "exited");
        assert_eq!(oneshot.last_exit().as_deref(), Some("exited with status 0"));
        let missing = &units[4];
        assert!(!missing.exists());
        assert_eq!(missing.unit_file_state, "");
        assert_eq!(missing.summary(), "no such unit");
    }

    #[test]
    fn a_stopped_master_died_by_sigterm() {
        let [stopped] = recorded("show-stopped.txt").try_into().unwrap();
        assert!(!stopped.is_active());
        assert_eq!(stopped.result, "success");
        assert_eq!(
            stopped.last_exit().as_deref(),
            Some("killed by signal 15 (SIGTERM)")
        );
        assert_eq!(stopped.exec_main_pid, Some(1480));
        assert_eq!(stopped.main_pid, None);
    }

    #[test]
    fn restarting_and_failing_states() {
        let [pre] = recorded("show-restarting-after-exit.txt")
            .try_into()
            .unwrap();
        assert_eq!(
            (pre.active_state.as_str(), pre.sub_state.as_str()),
            ("activating", "start-pre")
        );
        assert!(pre.is_active() && !pre.is_running());
        assert_eq!(pre.n_restarts, 6);

        let [bind] = recorded("show-auto-restart-after-bind-failure.txt")
            .try_into()
            .unwrap();
        assert_eq!(bind.sub_state, "auto-restart");
        assert_eq!(bind.result, "exit-code");
        assert_eq!(bind.last_exit().as_deref(), Some("exited with status 1"));
        assert_eq!(
            bind.summary(),
            "activating (auto-restart), 4 automatic restart(s), last exited with status 1, \
             result exit-code, enabled"
        );

        let [failed] = recorded("show-failed-stopped-in-start-pre.txt")
            .try_into()
            .unwrap();
        assert_eq!(failed.active_state, "failed");
        assert_eq!(failed.result, "signal");
        assert!(!failed.is_active());
    }

    #[test]
    fn a_full_show_from_a_public_report() {
        // systemd/systemd#11869: `systemctl show ssh.service`, every property, no Id
        // in the part kept.
        let [ssh] = recorded("show-ssh-systemd-issue-11869.txt")
            .try_into()
            .unwrap();
        assert_eq!(ssh.result, "exit-code");
        assert_eq!(ssh.n_restarts, 5);
        assert_eq!(ssh.main_pid, None);
        assert_eq!(ssh.exec_main_pid, None);
        assert_eq!(ssh.last_exit(), None);
    }
}

//! The systemctl and journalctl driver of the systemd manager. Every call goes through
//! the runner (recorded, `--dry-run`). State is read with `systemctl show`, whose
//! `Key=value` lines are meant for programs; `systemctl status` is for people and its
//! layout changes between releases.

use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::runner::{Command, Runner};

/// The properties the manager reads, in one `systemctl show` call for many units.
pub const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,Result,MainPID,ExecMainPID,\
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
pub fn parse_show(text: &str) -> Vec<UnitState> {
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
                        Error::failed(format!("`{}` said nothing about {unit}", cmd.display()))
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

//! What can go wrong with a service manager: launchd, systemd or instancectl's own
//! supervisor missing, refusing, or not bringing a master up. Each message gives the
//! manager's own account and the command that shows more or fixes it. Refusals found
//! before anything changed exit with status 2, like bad input; the rest with 1.

use std::path::PathBuf;

use super::launchd::launchctl::BootstrapCause;
use crate::outcome::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    // Refused before anything changed.
    #[error(
        "the launchd manager needs launchctl (macOS), and there is none in PATH; \
         use --manager postfix on other systems"
    )]
    NoLaunchctl,

    #[error(
        "the systemd manager needs systemd as the init system, and this host does \
         not run it ({mark} is missing); use --manager native"
    )]
    SystemdNotBooted { mark: &'static str },

    #[error(
        "no instancectl supervisor is running, so nothing would start {name} or keep it \
         running; nothing was changed. Start the supervisor first:\n    {start_command}\n\
         then create it again (or choose Postfix's own scripts with --manager postfix)"
    )]
    NoSupervisorForCreate { name: String, start_command: String },

    #[error(
        "the LaunchDaemon {} (label {label}) {what}, so two jobs would fight over one \
         master.{}\nRemove it first: `launchctl bootout system/{label}; rm {}` \
         (`instancectl plist --check {}` explains each problem)",
        .path.display(),
        problem_list(.problems),
        .path.display(),
        .path.display()
    )]
    ForeignJob {
        path: PathBuf,
        label: String,
        what: String,
        problems: Vec<String>,
    },

    #[error(
        "{} already exists but postmulti knows no instance {name}; it is left from \
         an earlier instance: `launchctl bootout system/{label}` and remove it first",
        .path.display()
    )]
    LeftoverPlist {
        path: PathBuf,
        name: String,
        label: String,
    },

    // Failures while changing things.
    #[error("{instance} is not running{under}, so there is nothing to reload; start it instead")]
    NothingToReload { instance: String, under: String },

    #[error(
        "loading {label} from {} failed: {reason}{}",
        .file.display(),
        .outcome.as_ref().map(|o| format!(": {o}")).unwrap_or_default()
    )]
    BootstrapRefused {
        label: String,
        file: PathBuf,
        /// launchctl's exit status, when it was asked and refused.
        code: Option<i32>,
        cause: BootstrapCause,
        reason: String,
        outcome: Option<Box<Outcome>>,
    },

    #[error(
        "launchd has no job {label} loaded, so there is nothing to signal; start the \
         instance first"
    )]
    NotLoaded { label: String },

    #[error(
        "launchd is still stopping {label} after {seconds} s (state {state}, pid {pid}); \
         the master did not exit after SIGTERM and SIGKILL"
    )]
    StillStopping {
        label: String,
        seconds: u64,
        state: String,
        pid: String,
    },

    #[error(
        "launchd unloaded {label} while it was starting; `launchctl print system/{label}` \
         and the system log say why"
    )]
    UnloadedWhileStarting { label: String },

    #[error("{instance} did not come up under {manager} within {seconds} s: {}", .reasons.join("; "))]
    NotUp {
        instance: String,
        manager: &'static str,
        seconds: u64,
        reasons: Vec<String>,
    },

    #[error(
        "{instance}'s master {how} right after launchd started it (runs: {}){why}{next}",
        .runs.map_or("?".into(), |r| r.to_string())
    )]
    ExitedUnderLaunchd {
        instance: String,
        how: String,
        runs: Option<u64>,
        why: String,
        next: String,
    },

    #[error(
        "{instance}'s master runs under systemd (pid {pid}), but within {seconds} s not every \
         listener answered: {}", .missing.join("; ")
    )]
    ListenersSilent {
        instance: String,
        pid: i32,
        seconds: u64,
        missing: Vec<String>,
    },

    #[error("{}", unit_failed(.instance, .unit, .state, .journal, *.stopped))]
    UnitFailed {
        instance: String,
        unit: String,
        state: String,
        journal: Vec<String>,
        stopped: bool,
    },

    #[error(
        "{instance}'s master (pid {pid}) already runs outside systemd{}; \
         `instancectl reconcile` stops it and starts it under {unit}",
        .in_unit.as_ref().map_or(String::new(), |u| format!(" (in {u})"))
    )]
    OutsideSystemd {
        instance: String,
        pid: i32,
        in_unit: Option<String>,
        unit: String,
    },

    #[error(
        "`{command}` said nothing about {unit}; `systemctl status {unit}` shows what \
         systemd knows of it"
    )]
    UnitUnknown { command: String, unit: String },

    #[error(
        "no instancectl supervisor is running ({}: {error}). The native manager needs one: \
         run `instancectl supervise` (under systemd, or as a container's PID 1), or \
         choose another manager with --manager", .socket.display()
    )]
    NoSupervisor {
        socket: PathBuf,
        error: std::io::Error,
    },

    #[error(
        "the instancectl supervisor did not answer within {seconds} s: it is busy or \
         hung (`systemctl restart instancectl` keeps the masters running)"
    )]
    SupervisorSilent { seconds: u64 },

    #[error(
        "the supervisor's answer is unreadable: {error}; is it an older instancectl? \
         (`systemctl restart instancectl` runs this one and keeps the masters running)"
    )]
    SupervisorAnswer { error: String },

    #[error("the supervisor refused: {message}")]
    SupervisorRefused { message: String },

    #[error("{instance} did not start{account}")]
    NotStarted { instance: String, account: String },

    /// Only a manager's `drift` asks for its repairs, so this is a bug.
    #[error(
        "{instance}: the {manager} manager has no repair {action}, though it reported the \
         drift (a bug in instancectl; please report it); `instancectl status {instance}` \
         shows what to fix by hand"
    )]
    NoRepair {
        instance: String,
        manager: String,
        action: String,
    },

    #[error("some problems remain; see above for what to fix by hand")]
    ProblemsRemain,
}

impl ManagerError {
    /// 2 for a refusal found before anything changed (like bad input), else 1.
    fn refused_before_any_change(&self) -> bool {
        matches!(
            self,
            ManagerError::NoLaunchctl
                | ManagerError::SystemdNotBooted { .. }
                | ManagerError::NoSupervisorForCreate { .. }
                | ManagerError::ForeignJob { .. }
                | ManagerError::LeftoverPlist { .. }
        )
    }
}

impl crate::error::ManagerFailure for ManagerError {
    fn exit_code(&self) -> i32 {
        if self.refused_before_any_change() {
            2
        } else {
            1
        }
    }

    #[cfg(test)]
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl From<ManagerError> for crate::error::Error {
    fn from(e: ManagerError) -> Self {
        crate::error::Error::Manager(Box::new(e))
    }
}

/// For tests that match on variants: the manager error behind this one, through any
/// context; panics (failing the test) when it is of another domain.
#[cfg(test)]
impl crate::error::Error {
    pub fn into_manager(self) -> ManagerError {
        match self {
            crate::error::Error::Manager(e) => *e
                .into_any()
                .downcast::<ManagerError>()
                .expect("a manager error"),
            crate::error::Error::Context { source, .. } => source.into_manager(),
            other => panic!("not a manager error: {other:?}"),
        }
    }
}

fn problem_list(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        format!("\nIts problems:\n{}", lines.join("\n"))
    }
}

/// systemd's account of a master that did not come up, with the journal's lines.
fn unit_failed(
    instance: &str,
    unit: &str,
    state: &str,
    journal: &[String],
    stopped: bool,
) -> String {
    let mut text = format!("{instance}'s master did not come up under systemd: {unit} is {state}");
    if journal.is_empty() {
        text.push_str(&format!(
            "\n(the journal has nothing from {unit}: `journalctl -u {unit}`)"
        ));
    } else {
        text.push_str(&format!(
            "\nthe journal of {unit} (`journalctl -u {unit} -o cat`):\n    {}",
            journal.join("\n    ")
        ));
    }
    if stopped {
        text.push_str(&format!(
            "\ninstancectl stopped {unit} so that systemd does not keep restarting it; \
             fix the cause, then `instancectl start {instance}`"
        ));
    }
    text
}

//! What a service manager knows about an instance's job, for `instancectl status`.
//!
//! Every field is optional: a manager fills what it knows and leaves the rest `None`.
//! launchd fills all of them from `launchctl print system/LABEL` and `launchctl
//! print-disabled system`; Postfix's own scripts know only what the master's pid file
//! and its lock say; the native supervisor knows its child and how often it restarted.

use serde::Serialize;

use super::ManagerKind;

/// A persistent override of whether a job may load at boot: launchd's `launchctl
/// print-disabled` (parsed by the launchd driver into this type) and systemd's
/// enablement. A job with no override at all is `None` where an `Option<Override>` is
/// kept (not listed: the job's own default holds), which is not the same as a listed
/// override in a word instancectl does not know ([`Override::Unknown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// The job is disabled: it does not load at boot and cannot be bootstrapped.
    Disabled,
    /// Explicitly enabled.
    Enabled,
    /// Listed, in a word neither launchctl dialect uses (`disabled`/`enabled`,
    /// `true`/`false`): kept as printed, and never taken as enabled.
    Unknown(String),
}

impl Override {
    /// The word in JSON: `disabled`, `enabled` or `unknown` (the field stays a string).
    pub fn as_str(&self) -> &str {
        match self {
            Override::Disabled => "disabled",
            Override::Enabled => "enabled",
            Override::Unknown(_) => "unknown",
        }
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Override::Unknown(word) => write!(f, "unknown ({word})"),
            known => f.write_str(known.as_str()),
        }
    }
}

impl Serialize for Override {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The service manager's view of one instance's job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagerView {
    /// The manager that answered.
    pub kind: ManagerKind,
    /// The job's name in the manager (launchd: the label, e.g. `org.postfix.postfix-in`).
    pub label: Option<String>,
    /// Whether the manager has the job loaded (launchd: `print` finds it).
    pub loaded: Option<bool>,
    /// The persistent enable/disable override; `None` when the manager has no such
    /// thing or lists none for the job.
    pub disabled_override: Option<Override>,
    /// The job's state in the manager's own words (launchd: `running`, `not running`,
    /// `spawn scheduled`, `waiting`, ...), kept as text so unknown states survive.
    pub state: Option<String>,
    /// The pid the manager runs for the job, when it runs one.
    pub pid: Option<i32>,
    /// How often the manager has spawned the job (launchd: `runs`); the first start
    /// counts, so restarts are `runs - 1`.
    pub runs: Option<u64>,
    /// How the job last ended, in the manager's words (launchd: `last exit code`,
    /// e.g. `78: EX_CONFIG`, `(never exited)`, or the signal that killed it).
    pub last_exit_code: Option<String>,
    /// The job is started on demand and normally not running, such as the macOS
    /// primary instance, which Apple's job (`com.apple.postfix.master`) starts when mail
    /// is submitted and which exits when idle. Not running is then healthy.
    pub on_demand: bool,
    /// The manager restarts the master when it exits (launchd KeepAlive, the native
    /// supervisor); Postfix's own scripts do not.
    pub restarts_on_exit: bool,
    /// The service manager's unit whose processes include the running master (systemd:
    /// from the master's cgroup, e.g. `instancectl-postfix-in.service` or Debian's
    /// `postfix@postfix-in.service`), which says who really runs it.
    pub master_unit: Option<String>,
    /// The job in one phrase for people (`list` shows it), e.g. "running, runs 2,
    /// last killed by signal 9 (Killed)"; none where the manager has no jobs to tell of.
    pub summary: Option<String>,
    /// Anything else worth telling, one sentence each.
    pub notes: Vec<String>,
    /// Something wrong with the manager itself for this instance (the native
    /// supervisor is not running, or keeps failing to start the master): the
    /// instance is not healthy, whatever its master does.
    pub problem: Option<String>,
    /// When the manager itself is not running (no native supervisor answers): the
    /// command that starts it, which is what a down instance needs first.
    pub start_command: Option<String>,
}

impl ManagerView {
    /// A view that knows nothing yet.
    pub fn empty(kind: ManagerKind) -> ManagerView {
        ManagerView {
            kind,
            label: None,
            loaded: None,
            disabled_override: None,
            state: None,
            pid: None,
            runs: None,
            last_exit_code: None,
            on_demand: false,
            restarts_on_exit: false,
            master_unit: None,
            summary: None,
            notes: Vec::new(),
            problem: None,
            start_command: None,
        }
    }

    /// Restarts since the manager first started the job, when it counts runs.
    pub fn restarts(&self) -> Option<u64> {
        self.runs.map(|r| r.saturating_sub(1))
    }
}

/// The labels of Apple's own on-demand Postfix job on macOS, newest first:
/// `com.apple.postfix.master` since macOS 10.12, `org.postfix.master` on older
/// releases. It runs the primary instance's master (`master -e 60`) when mail is
/// submitted, and the master exits after a minute of idleness. Which one a host has is
/// found by what is loaded (or installed), never assumed.
pub const APPLE_POSTFIX_JOBS: [&str; 2] = ["com.apple.postfix.master", "org.postfix.master"];

/// Where macOS installs Apple's job of that label.
fn apple_plist(label: &str) -> std::path::PathBuf {
    std::path::Path::new("/System/Library/LaunchDaemons").join(format!("{label}.plist"))
}

/// The label of Apple's on-demand job when it starts the primary instance on this host
/// (macOS): the first of [`APPLE_POSTFIX_JOBS`] whose plist is installed. Only the
/// primary ever is.
pub fn apple_on_demand_primary(is_primary: bool) -> Option<&'static str> {
    APPLE_POSTFIX_JOBS
        .into_iter()
        .find(|label| is_primary && apple_plist(label).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON field stays one string whatever launchctl printed; the word of an
    /// unknown override is kept for people.
    #[test]
    fn an_override_is_one_word_in_json_and_keeps_an_unknown_word_for_people() {
        let json = |o: Override| serde_json::to_value(o).unwrap();
        assert_eq!(json(Override::Disabled), "disabled");
        assert_eq!(json(Override::Enabled), "enabled");
        assert_eq!(json(Override::Unknown("maybe".into())), "unknown");
        assert_eq!(
            Override::Unknown("maybe".into()).to_string(),
            "unknown (maybe)"
        );
        assert_eq!(Override::Disabled.to_string(), "disabled");
    }
}

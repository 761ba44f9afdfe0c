//! Service managers: what actually starts and stops an instance's master. Commands and
//! reconcile talk to this one trait, so they do not care which manager is in use.

pub mod launchd;
mod native;
mod postfix_scripts;
mod view;

pub use launchd::{Launchd, LaunchdConfig};
pub use native::Native;
pub use postfix_scripts::PostfixScripts;
pub use view::{APPLE_POSTFIX_JOBS, ManagerView, Override, apple_on_demand_primary};

use std::path::Path;

use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;
use crate::reconcile::Drift;

/// Which service manager drives the instances.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ManagerKind {
    /// instancectl's own supervisor (`instancectl supervise`) runs each master as
    /// its child; the default on Linux.
    Native,
    /// Postfix's own `postfix start/stop/reload`, per instance; nothing restarts a
    /// master that dies.
    Postfix,
    /// launchd (macOS): one LaunchDaemon per secondary instance, running its master in
    /// the foreground; the primary stays with Apple's on-demand Postfix job.
    Launchd,
}

impl ManagerKind {
    /// The manager to use when none is named.
    pub fn host_default() -> ManagerKind {
        if cfg!(target_os = "macos") {
            ManagerKind::Launchd
        } else {
            ManagerKind::Native
        }
    }

    pub fn build(self) -> Box<dyn ServiceManager> {
        self.build_with(&LaunchdConfig::default())
    }

    /// The manager, with the launchd manager's directories and naming.
    pub fn build_with(self, launchd: &LaunchdConfig) -> Box<dyn ServiceManager> {
        match self {
            ManagerKind::Native => Box::new(Native),
            ManagerKind::Postfix => Box::new(PostfixScripts),
            ManagerKind::Launchd => Box::new(Launchd::new(launchd.clone())),
        }
    }
}

/// What a service manager says about an instance's job, for list and status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobView {
    pub label: String,
    /// launchd has the job loaded.
    pub loaded: bool,
    /// The job starts on demand and exits when idle (Apple's job for the primary), so
    /// "not running" is healthy.
    pub on_demand: bool,
    pub state: Option<String>,
    pub pid: Option<i32>,
    /// How many times the job was spawned since it was loaded; a rising count is a
    /// master that keeps dying.
    pub runs: Option<u64>,
    pub last_exit: Option<String>,
    /// The persistent override: true disabled, false enabled, none when there is none.
    pub disabled: Option<bool>,
    /// One phrase for people, e.g. "running, runs 2, last killed by signal 9 (Killed)".
    pub summary: String,
}

pub trait ServiceManager {
    fn kind(&self) -> ManagerKind;

    /// Makes the manager aware of a newly created instance (launchd: writes its job).
    fn install(&self, host: &Host, instance: &Instance) -> Result<()>;

    /// Forgets an instance that is about to be destroyed.
    fn uninstall(&self, host: &Host, instance: &Instance) -> Result<()>;

    /// Records whether the instance should run at boot (launchd: the disabled override).
    fn set_enabled(&self, host: &Host, instance: &Instance, enabled: bool) -> Result<()>;

    /// Starts the instance; starting a running instance changes nothing.
    fn start(&self, host: &Host, instance: &Instance) -> Result<()>;

    /// Stops the instance; stopping a stopped instance changes nothing.
    fn stop(&self, host: &Host, instance: &Instance) -> Result<()>;

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()>;

    /// Makes a running master re-read its configuration.
    fn reload(&self, host: &Host, instance: &Instance) -> Result<()>;

    /// Differences between what this manager keeps (jobs, files, overrides) and
    /// what it should keep for the instance; reconcile repairs them.
    fn drift(&self, host: &Host, instance: &Instance) -> Result<Vec<Drift>>;

    /// Whether this manager starts and stops the instance at all (launchd leaves the
    /// primary to Apple's on-demand job).
    fn manages(&self, _instance: &Instance) -> bool {
        true
    }

    /// Whether `restart` restarts each instance in place (launchd's `kickstart -k`
    /// keeps the job loaded and counts the run) rather than stopping a whole selection
    /// in reverse order and starting it again.
    fn restarts_in_place(&self) -> bool {
        false
    }

    /// Checks, before `create` changes anything, that the manager can take a new
    /// instance; a refusal is bad input (exit 2, nothing changed).
    fn preflight_create(&self, _host: &Host, _name: &str, _config_directory: &Path) -> Result<()> {
        Ok(())
    }

    /// The manager's own view of the instance's job, when it has one.
    fn job(&self, _host: &Host, _instance: &Instance) -> Result<Option<JobView>> {
        Ok(None)
    }

    /// What the manager knows about the instance's job, for `instancectl status`.
    /// It only reads; it never fails (what could not be read goes in the notes).
    fn view(&self, _host: &Host, _instance: &Instance) -> ManagerView {
        let mut view = ManagerView::empty(self.kind());
        view.notes
            .push("this service manager reports nothing about its jobs".into());
        view
    }

    /// The views of several instances, in the same order. A manager that can ask
    /// about all its jobs at once (launchd: one `print-disabled`) overrides this.
    fn views(&self, host: &Host, instances: &[Instance]) -> Vec<ManagerView> {
        instances.iter().map(|i| self.view(host, i)).collect()
    }
}

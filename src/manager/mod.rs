//! Service managers: what actually starts and stops an instance's master. Commands and
//! reconcile talk to this one trait, so they do not care which manager is in use.

mod native;
mod postfix_scripts;

pub use native::Native;
pub use postfix_scripts::PostfixScripts;

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
}

impl ManagerKind {
    /// The manager to use when none is named.
    pub fn host_default() -> ManagerKind {
        ManagerKind::Native
    }

    pub fn build(self) -> Box<dyn ServiceManager> {
        match self {
            ManagerKind::Native => Box::new(Native),
            ManagerKind::Postfix => Box::new(PostfixScripts),
        }
    }
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

    /// Whether the host starts the primary instance on demand by itself (macOS's
    /// org.postfix.master job), so that a stopped primary is not a problem.
    fn starts_primary_on_demand(&self) -> bool;
}

//! Service managers: what actually starts and stops an instance's master. Commands and
//! reconcile talk to this one trait, so they do not care which manager is in use.

mod postfix_scripts;
mod view;

pub use postfix_scripts::PostfixScripts;
pub use view::{APPLE_ON_DEMAND_PLIST, ManagerView, Override, apple_on_demand_primary};

use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;

/// Which service manager drives the instances.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ManagerKind {
    /// Postfix's own `postfix start/stop/reload`, per instance.
    Postfix,
}

impl ManagerKind {
    /// The manager to use when none is named.
    pub fn host_default() -> ManagerKind {
        ManagerKind::Postfix
    }

    pub fn build(self) -> Box<dyn ServiceManager> {
        match self {
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

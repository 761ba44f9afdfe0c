//! The simplest manager: Postfix's own `postfix -c DIR start|stop|reload`, which
//! daemonizes the master. Nothing restarts a master that dies; the launchd and native
//! managers do.

use super::{ManagerKind, ServiceManager};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::Instance;

pub struct PostfixScripts;

impl ServiceManager for PostfixScripts {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Postfix
    }

    fn install(&self, _host: &Host, _instance: &Instance) -> Result<()> {
        Ok(())
    }

    fn uninstall(&self, _host: &Host, _instance: &Instance) -> Result<()> {
        Ok(())
    }

    fn set_enabled(&self, _host: &Host, _instance: &Instance, _enabled: bool) -> Result<()> {
        // postmulti's multi_instance_enable is all `postfix start` at boot looks at.
        Ok(())
    }

    fn start(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.running_master().is_some() {
            return Ok(());
        }
        host.postfix
            .control(&instance.config_directory, "start")
            .map(drop)
            .map_err(|e| e.context(format!("starting {}", instance.display_name())))
    }

    fn stop(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.running_master().is_none() {
            return Ok(());
        }
        host.postfix
            .control(&instance.config_directory, "stop")
            .map(drop)
            .map_err(|e| e.context(format!("stopping {}", instance.display_name())))
    }

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()> {
        self.stop(host, instance)?;
        self.start(host, instance)
    }

    fn reload(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.running_master().is_none() {
            return Err(Error::failed(format!(
                "{} is not running, so there is nothing to reload; start it instead",
                instance.display_name()
            )));
        }
        host.postfix
            .control(&instance.config_directory, "reload")
            .map(drop)
            .map_err(|e| e.context(format!("reloading {}", instance.display_name())))
    }
}

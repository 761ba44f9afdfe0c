//! The simplest manager: Postfix's own `postfix -c DIR start|stop|reload`, which
//! daemonizes the master. Nothing restarts a master that dies; the launchd and native
//! managers do.

use super::{ManagerKind, ManagerView, ServiceManager, apple_on_demand_primary};
use crate::error::{Error, Result};
use crate::health::master;
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

    /// Postfix's scripts keep no record of their own: `postfix status` asks whether a
    /// live master holds the pid file's lock, and so does this.
    fn view(&self, _host: &Host, instance: &Instance) -> ManagerView {
        let state = master::probe(&instance.pid_file(), master::LockTable::read().as_ref());
        let mut view = ManagerView::empty(self.kind());
        view.state = Some(
            if state.running {
                "running"
            } else {
                "not running"
            }
            .into(),
        );
        view.pid = state.pid.filter(|_| state.running);
        view.on_demand = apple_on_demand_primary(instance.is_primary());
        if view.on_demand {
            view.label = Some("org.postfix.master".into());
            view.notes.push(
                "Apple's launchd job org.postfix.master starts this instance on demand".into(),
            );
        } else {
            view.notes.push(
                "postfix start daemonizes the master; nothing restarts it when it exits".into(),
            );
        }
        view
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

//! The simplest manager: Postfix's own `postfix -c DIR start|stop|reload`, which
//! daemonizes the master. Nothing restarts a master that dies; the launchd and native
//! managers do.

use std::time::{Duration, Instant};

use super::Drift;
use super::{ManagerKind, ManagerView, ServiceManager, apple_on_demand_primary};
use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ManagerError;
use crate::postfix::pid_file;

pub struct PostfixScripts;

/// How long a master may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

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

    fn checks_before_start(&self) -> bool {
        true
    }

    /// Postfix's own way to skip the checks of a start: postfix-script's `start` sees
    /// `$queue_directory/quick-start`, removes it and leaves out check-fatal and
    /// check-warn (its `quick-stop` writes the file). A file the start did not get to
    /// remove (it failed before) goes again, so a later `postfix start` checks.
    fn start_checked(&self, host: &Host, instance: &Instance) -> Result<()> {
        let Some(queue) = instance.queue_directory.as_deref() else {
            return self.start(host, instance);
        };
        if instance.running_master().is_some() {
            return Ok(());
        }
        let marker = queue.join("quick-start");
        host.runner.write_file(&marker, b"", 0o644)?;
        let started = self.start(host, instance);
        if marker.exists() {
            host.runner.remove_file(&marker)?;
        }
        started
    }

    fn stop(&self, host: &Host, instance: &Instance) -> Result<()> {
        let Some(pid) = instance.running_master() else {
            return Ok(());
        };
        let stopped = host
            .postfix
            .control(&instance.config_directory, "stop")
            .map_err(|e| e.context(format!("stopping {}", instance.display_name())));
        if host.runner.dry_run() {
            return stopped.map(drop);
        }
        // `postfix stop` only signals, and postfix-script's forced stop kills the
        // master alone: a stopped master or stopped children keep the pid file's lock.
        let gone = |timeout: Duration| {
            let deadline = Instant::now() + timeout;
            while instance.running_master().is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            instance.running_master().is_none()
        };
        if stopped.is_err() || !gone(STOP_TIMEOUT) {
            tracing::warn!(
                instance = instance.display_name(),
                pid,
                "did not stop; killing its process group"
            );
            crate::process::kill_master(pid);
        }
        // postfix-script exits 1 when it had to force the stop; what counts is that
        // the master and its children are gone.
        match stopped {
            Err(e) if !gone(Duration::from_secs(5)) => Err(e),
            _ => Ok(()),
        }
    }

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()> {
        self.stop(host, instance)?;
        self.start(host, instance)
    }

    /// Postfix's scripts keep no record of their own: `postfix status` asks whether a
    /// live master holds the pid file's lock, and so does this.
    fn view(&self, host: &Host, instance: &Instance) -> ManagerView {
        self.views(host, std::slice::from_ref(instance))
            .pop()
            .unwrap_or_else(|| ManagerView::empty(self.kind()))
    }

    /// One read of the lock table for all of them.
    fn views(&self, _host: &Host, instances: &[Instance]) -> Vec<ManagerView> {
        let locks = pid_file::LockTable::read();
        instances
            .iter()
            .map(|i| self.view_with(i, locks.as_ref()))
            .collect()
    }

    fn reload(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.running_master().is_none() {
            return Err(ManagerError::NothingToReload {
                instance: instance.display_name().to_string(),
                under: String::new(),
            }
            .into());
        }
        host.postfix
            .control(&instance.config_directory, "reload")
            .map(drop)
            .map_err(|e| e.context(format!("reloading {}", instance.display_name())))
    }

    fn drift(&self, _host: &Host, _instance: &Instance) -> Result<Vec<Drift>> {
        // Postfix's scripts keep no state beyond the pid file, which reconcile
        // already compares.
        Ok(Vec::new())
    }
}

impl PostfixScripts {
    fn view_with(&self, instance: &Instance, locks: Option<&pid_file::LockTable>) -> ManagerView {
        let state = match instance.pid_file() {
            Some(file) => pid_file::probe(&file, locks),
            None => pid_file::MasterState::not_known("no pid file"),
        };
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
        let apple = apple_on_demand_primary(instance.is_primary());
        view.on_demand = apple.is_some();
        if let Some(label) = apple {
            view.label = Some(label.into());
            view.notes.push(format!(
                "Apple's launchd job {label} starts this instance on demand"
            ));
        } else {
            view.notes.push(
                "postfix start daemonizes the master; nothing restarts it when it exits".into(),
            );
        }
        view
    }
}

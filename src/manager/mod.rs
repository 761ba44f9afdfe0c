//! Service managers: what actually starts and stops an instance's master. Commands and
//! reconcile talk to this one trait, so they do not care which manager is in use.

mod drift;
mod error;
pub mod launchd;
pub mod native;
mod postfix_scripts;
pub mod systemd;
mod view;

pub use error::ManagerError;

pub use drift::{Drift, ManagerRepair, Repair};
pub use launchd::{Launchd, LaunchdConfig};
pub use native::Native;
pub use postfix_scripts::PostfixScripts;
pub use systemd::Systemd;
pub use view::{APPLE_POSTFIX_JOBS, ManagerView, Override, apple_on_demand_primary};

use std::path::Path;

use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;

/// Which service manager drives the instances.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ManagerKind {
    /// instancectl's own supervisor (`instancectl supervise`) runs each master as
    /// its child; the default on Linux without systemd, or where instancectl's unit
    /// runs the supervisor.
    Native,
    /// Postfix's own `postfix start/stop/reload`, per instance; nothing restarts a
    /// master that dies.
    Postfix,
    /// launchd (macOS): one LaunchDaemon per secondary instance, running its master in
    /// the foreground; the primary stays with Apple's on-demand Postfix job.
    Launchd,
    /// systemd: one unit per secondary instance running its master in the foreground
    /// with Restart=always; the default where systemd is the init system.
    Systemd,
}

/// The name `--manager` takes.
impl std::fmt::Display for ManagerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

impl ManagerKind {
    /// The manager to use when none is named: launchd on macOS; where systemd is the
    /// init system, systemd, unless instancectl's own supervisor is in use there (its
    /// control socket is in `state_dir`: contrib/instancectl.service runs it); else
    /// the native supervisor.
    pub fn host_default(state_dir: &Path) -> ManagerKind {
        if cfg!(target_os = "macos") {
            ManagerKind::Launchd
        } else if systemd::booted() && !native::supervise::control::socket_path(state_dir).exists()
        {
            ManagerKind::Systemd
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
            ManagerKind::Systemd => Box::new(Systemd::new()),
        }
    }
}

/// After the manager stopped its job: a master it did not run (started by `postfix
/// start`) is stopped the Postfix way, or it would keep running after "stop".
pub(crate) fn stop_stray_master(host: &Host, instance: &Instance) -> Result<()> {
    if !host.runner.dry_run() && instance.running_master().is_some() {
        host.postfix
            .control(&instance.config_directory, "stop")
            .map_err(|e| e.context(format!("stopping {}", instance.name)))?;
    }
    Ok(())
}

/// What a command asks of whichever manager runs: the manager's own start or stop,
/// with the stop mark kept beside it (an instance stopped on purpose stays down: the
/// mark keeps reconcile and the supervisor from restarting it).
impl dyn ServiceManager + '_ {
    /// Starts an instance, lifting an earlier explicit stop. A broken instance is
    /// never started, stopped or restarted: its configuration would make Postfix act
    /// on the primary's directories, or a change to it is half done.
    pub fn release_and_start(&self, host: &Host, instance: &Instance) -> Result<()> {
        instance.require_sound()?;
        host.state.hold_down(&host.runner, &instance.name, false)?;
        self.start(host, instance)
    }

    /// `release_and_start` of an instance whose configuration instancectl has just
    /// checked itself (see [`ServiceManager::start_checked`]).
    pub fn release_and_start_checked(&self, host: &Host, instance: &Instance) -> Result<()> {
        instance.require_sound()?;
        host.state.hold_down(&host.runner, &instance.name, false)?;
        self.start_checked(host, instance)
    }

    /// Stops an instance; it stays down until started again. When the stop fails,
    /// the mark goes again: a failed command leaves no mark (a stale one would keep a
    /// supervisor started later from adopting a master that still runs).
    pub fn hold_down_and_stop(&self, host: &Host, instance: &Instance) -> Result<()> {
        instance.require_sound()?;
        let was_down = host.state.is_held_down(&instance.name);
        host.state.hold_down(&host.runner, &instance.name, true)?;
        let stopped = self.stop(host, instance);
        if stopped.is_err()
            && !was_down
            && let Err(e) = host.state.hold_down(&host.runner, &instance.name, false)
        {
            tracing::warn!(instance = instance.display_name(), error = %e, "cannot remove the stop mark");
        }
        stopped
    }

    /// Restarts an instance, lifting an earlier explicit stop.
    pub fn release_and_restart(&self, host: &Host, instance: &Instance) -> Result<()> {
        instance.require_sound()?;
        host.state.hold_down(&host.runner, &instance.name, false)?;
        self.restart(host, instance)
    }

    /// Starts a set of instances with one request to a manager that keeps the start
    /// order itself (see [`ServiceManager::starts_sets`]), lifting earlier stops.
    pub fn release_and_start_set(&self, host: &Host, instances: &[Instance]) -> Result<()> {
        for instance in instances {
            instance.require_sound()?;
        }
        for instance in instances {
            host.state.hold_down(&host.runner, &instance.name, false)?;
        }
        self.start_set(host, instances)
    }

    /// Stops a set of instances with one request (see `release_and_start_set`); as
    /// `hold_down_and_stop`, a failed stop takes back the marks it made.
    pub fn hold_down_and_stop_set(&self, host: &Host, instances: &[Instance]) -> Result<()> {
        for instance in instances {
            instance.require_sound()?;
        }
        let mut marked = Vec::new();
        for instance in instances {
            if !host.state.is_held_down(&instance.name) {
                host.state.hold_down(&host.runner, &instance.name, true)?;
                marked.push(instance);
            }
        }
        let stopped = self.stop_set(host, instances);
        if stopped.is_err() {
            for instance in marked {
                if let Err(e) = host.state.hold_down(&host.runner, &instance.name, false) {
                    tracing::warn!(instance = instance.display_name(), error = %e, "cannot remove the stop mark");
                }
            }
        }
        stopped
    }

    /// Unregisters an instance that is going away, and drops its stop mark.
    pub fn forget(&self, host: &Host, instance: &Instance) -> Result<()> {
        self.uninstall(host, instance)?;
        host.state.hold_down(&host.runner, &instance.name, false)
    }
}

/// How often a supervisor looks at the masters, and when a silent one counts as hung.
#[derive(Debug, Clone, Copy)]
pub struct SupervisorPace {
    pub interval: std::time::Duration,
    /// Failed looks in a row after which a master counts as hung.
    pub hung_after: u32,
    /// The native supervisor: the least time between two SMTP probes of an instance
    /// whose probes pass.
    pub smtp_probe_every: std::time::Duration,
}

pub trait ServiceManager: Send + Sync {
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

    /// Whether `start` checks the configuration first (`postfix start` runs Postfix's
    /// check-fatal and check-warn; the launchd manager runs `postfix check`, which
    /// launchd does not), a check `start_checked` leaves out.
    fn checks_before_start(&self) -> bool {
        false
    }

    /// Starts an instance whose configuration instancectl has just checked itself and
    /// found sound (`health::check` before a start): `start` without the manager's own
    /// check.
    fn start_checked(&self, host: &Host, instance: &Instance) -> Result<()> {
        self.start(host, instance)
    }

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()>;

    /// Whether the manager starts and stops a whole set of instances itself, keeping
    /// the start order (the native supervisor does, on one request): then commands
    /// use `start_set` and `stop_set` instead of one `start` or `stop` per instance.
    fn starts_sets(&self) -> bool {
        false
    }

    /// Starts every instance of the set, in start order.
    fn start_set(&self, host: &Host, instances: &[Instance]) -> Result<()> {
        instances.iter().try_for_each(|i| self.start(host, i))
    }

    /// Stops every instance of the set, in reverse start order.
    fn stop_set(&self, host: &Host, instances: &[Instance]) -> Result<()> {
        instances.iter().rev().try_for_each(|i| self.stop(host, i))
    }

    /// Makes a running master re-read its configuration.
    fn reload(&self, host: &Host, instance: &Instance) -> Result<()>;

    /// Differences between what this manager keeps (jobs, files, overrides) and
    /// what it should keep for the instance; reconcile repairs them.
    fn drift(&self, host: &Host, instance: &Instance) -> Result<Vec<Drift>>;

    /// Makes a repair of what this manager keeps, one that its `drift` reported.
    fn repair(&self, _host: &Host, instance: &Instance, action: ManagerRepair) -> Result<()> {
        Err(ManagerError::NoRepair {
            instance: instance.display_name().to_string(),
            manager: self.kind().to_string(),
            action: format!("{action:?}"),
        }
        .into())
    }

    /// Runs this manager's own supervisor in the foreground until it is told to stop,
    /// where instancectl itself keeps the masters alive (the native manager). None
    /// where the manager does that by itself (launchd, systemd, Postfix's scripts
    /// leave it to nobody), and `instancectl supervise` watches for drift instead.
    fn run_supervisor(&self, _host: &Host, _pace: SupervisorPace) -> Option<Result<()>> {
        None
    }

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

//! The systemd manager: each secondary instance is a unit of its own,
//! `instancectl-NAME.service` (see [`unit`]), whose main process is the instance's
//! master in the foreground, so systemd restarts it when it dies and starts it at boot
//! when enabled. The primary stays with the distribution's unit (Debian's
//! `postfix@-.service`).
//!
//! - start: `postfix check` (unless instancectl has just checked the configuration
//!   itself, see `checks_before_start`), mask Debian's `postfix@NAME.service` (stopping it first
//!   when it runs the master, see [`debian`]), write the unit if it is missing or
//!   stale, `systemctl start`, then wait until `systemctl show` has the unit running
//!   with the master's pid and every listener answers SMTP. A master that does not
//!   come up is explained from systemd's state and the unit's journal (Postfix's own
//!   words), and the unit is stopped so that systemd does not keep restarting it.
//! - stop, restart, reload: `systemctl stop|restart|reload`.
//! - enable, disable: `systemctl enable|disable` (plus postmulti's own flag, which the
//!   commands set).
//! - uninstall: stop, disable, remove the unit, unmask Debian's unit.

pub mod debian;
pub mod systemctl;
pub mod unit;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::{Drift, ManagerRepair, Repair};
use super::{ManagerKind, ManagerView, Override, ServiceManager};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ManagerError;
use debian::DebianUnits;
use systemctl::{Systemctl, UnitState};
use unit::InstanceUnit;

/// How long a unit may take from `systemctl start` to a master that serves.
const RUNNING_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory that exists when systemd is the init system (sd_booted(3)).
pub const BOOTED_MARK: &str = "/run/systemd/system";

/// Whether systemd runs this host.
pub fn booted() -> bool {
    Path::new(BOOTED_MARK).is_dir()
}

#[derive(Debug, Clone)]
pub struct Systemd {
    pub debian: DebianUnits,
}

impl Default for Systemd {
    fn default() -> Self {
        Systemd::new()
    }
}

impl Systemd {
    pub fn new() -> Systemd {
        Systemd {
            debian: DebianUnits::detect(),
        }
    }

    fn ctl(host: &Host) -> Systemctl {
        Systemctl::new(host.runner)
    }

    /// The unit that runs an instance's master.
    pub fn unit_name(&self, instance: &Instance) -> String {
        if instance.is_primary() {
            self.debian.primary_unit()
        } else {
            unit::unit_name(&instance.name)
        }
    }

    /// The unit instancectl writes for instance `name`, in its group's start order
    /// among `all` (postmulti's list; `leaving` is an instance about to go).
    pub fn unit_for(
        &self,
        host: &Host,
        name: &str,
        config_directory: &Path,
        group: Option<&str>,
        all: &[Instance],
        leaving: Option<&str>,
    ) -> InstanceUnit {
        let after = group.map_or_else(Vec::new, |group| {
            all.iter()
                .take_while(|i| i.name != name)
                .filter(|i| {
                    !i.is_primary()
                        && i.group.as_deref() == Some(group)
                        && Some(i.name.as_str()) != leaving
                })
                .map(|i| i.name.clone())
                .collect()
        });
        let helper = Path::new(unit::CONFIGURE_INSTANCE);
        InstanceUnit {
            instance: name.into(),
            config_directory: config_directory.into(),
            daemon_directory: host.postfix.daemon_directory.clone(),
            command_directory: host.postfix.command_directory.clone(),
            version: host.postfix.version,
            configure_instance: (self.debian.template && helper.is_file()).then(|| helper.into()),
            after,
        }
    }

    fn unit_of(&self, host: &Host, instance: &Instance, all: &[Instance]) -> InstanceUnit {
        self.unit_for(
            host,
            &instance.name,
            &instance.config_directory,
            instance.group.as_deref(),
            all,
            None,
        )
    }

    /// What must hold before the manager changes anything: systemd runs this host.
    fn usable(&self) -> Result<()> {
        if booted() {
            Ok(())
        } else {
            Err(ManagerError::SystemdNotBooted { mark: BOOTED_MARK }.into())
        }
    }

    /// Writes the units of the instance's group whose text is not what it should be
    /// (an instance joining or leaving a group changes its neighbours' `After=`), and
    /// has systemd read them. `leaving` is left out of the order.
    fn write_units(&self, host: &Host, instance: &Instance, leaving: Option<&str>) -> Result<()> {
        let all = host.instances()?;
        let mut members: Vec<&Instance> = all
            .iter()
            .filter(|i| {
                !i.is_primary()
                    && i.name != instance.name
                    && Some(i.name.as_str()) != leaving
                    && instance.group.is_some()
                    && i.group == instance.group
                    && unit::unit_path(&i.name).exists()
            })
            .collect();
        if leaving != Some(instance.name.as_str()) {
            members.push(instance);
        }
        let mut changed = false;
        for member in members {
            let text = self
                .unit_for(
                    host,
                    &member.name,
                    &member.config_directory,
                    member.group.as_deref(),
                    &all,
                    leaving,
                )
                .to_text();
            let path = unit::unit_path(&member.name);
            if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
                host.runner
                    .write_file_owned(&path, text.as_bytes(), 0o644, (0, 0))?;
                changed = true;
            }
        }
        if changed {
            Self::ctl(host).daemon_reload()?;
        }
        Ok(())
    }

    /// Makes instancectl's unit the only one that runs the instance: Debian's
    /// `postfix@NAME.service` is stopped when it runs and masked.
    fn take_over(&self, host: &Host, instance: &Instance) -> Result<()> {
        if !self.debian.template {
            return Ok(());
        }
        let theirs = debian::instance_unit(&instance.name);
        let ctl = Self::ctl(host);
        let state = ctl.show_one(&theirs)?;
        if state.is_active() {
            ctl.run("stop", &theirs, &[])?;
        }
        if !state.is_masked() || !debian::is_masked_on_disk(&instance.name) {
            ctl.run("mask", &theirs, &[])?;
        }
        Ok(())
    }

    /// Waits until systemd runs the unit with the master as its main process and every
    /// listener answers. A unit that fails or restarts meanwhile is explained.
    fn wait_running(
        &self,
        host: &Host,
        instance: &Instance,
        unit: &str,
        not_pid: Option<i32>,
        since: SystemTime,
    ) -> Result<i32> {
        if host.runner.dry_run() {
            return Ok(0);
        }
        let ctl = Self::ctl(host);
        let deadline = Instant::now() + RUNNING_TIMEOUT;
        let mut first_restarts = None;
        loop {
            let state = ctl.show_one(unit)?;
            let first = *first_restarts.get_or_insert(state.n_restarts);
            if state.active_state == "failed"
                || state.sub_state == "auto-restart"
                || state.n_restarts > first
            {
                return Err(self.failed_start(host, instance, unit, since));
            }
            let master = instance.running_master();
            if state.is_running() && state.main_pid != not_pid && state.main_pid == master {
                let missing = crate::probe::not_serving(instance);
                if missing.is_empty() {
                    return Ok(master.unwrap_or_default());
                }
                if Instant::now() >= deadline {
                    return Err(ManagerError::ListenersSilent {
                        instance: instance.name.clone(),
                        pid: master.unwrap_or_default(),
                        seconds: RUNNING_TIMEOUT.as_secs(),
                        missing,
                    }
                    .into());
                }
            } else if Instant::now() >= deadline {
                return Err(ManagerError::NotUp {
                    instance: instance.name.clone(),
                    manager: "systemd",
                    seconds: RUNNING_TIMEOUT.as_secs(),
                    reasons: vec![
                        format!("{unit} is {}", state.summary()),
                        match master {
                            Some(pid) => format!("the master holding the pid file is pid {pid}"),
                            None => format!(
                                "{} names no live master",
                                instance.pid_file().unwrap_or_default().display()
                            ),
                        },
                    ],
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A master that did not come up: stop the unit (a configuration error does not
    /// heal by restarting), and report systemd's account with the journal's lines.
    fn failed_start(
        &self,
        host: &Host,
        instance: &Instance,
        unit: &str,
        since: SystemTime,
    ) -> Error {
        let ctl = Self::ctl(host);
        let state = ctl.show_one(unit).unwrap_or_default();
        let journal = ctl.journal(unit, since, 25);
        // Stopped, and not left "failed": the next start begins afresh.
        let stopped =
            ctl.run("stop", unit, &[]).is_ok() && ctl.run("reset-failed", unit, &[]).is_ok();
        ManagerError::UnitFailed {
            instance: instance.name.clone(),
            unit: unit.to_string(),
            state: state.summary(),
            journal,
            stopped,
        }
        .into()
    }

    /// The state of the instance's own unit and of Debian's unit for it.
    fn states(
        &self,
        host: &Host,
        instances: &[Instance],
    ) -> Result<Vec<(UnitState, Option<UnitState>)>> {
        let mut units: Vec<String> = Vec::new();
        for i in instances {
            units.push(self.unit_name(i));
            if self.debian.template && !i.is_primary() {
                units.push(debian::instance_unit(&i.name));
            }
        }
        let names: Vec<&str> = units.iter().map(String::as_str).collect();
        let mut shown = Self::ctl(host).show(&names)?.into_iter();
        Ok(instances
            .iter()
            .map(|i| {
                let own = shown.next().unwrap_or_default();
                let theirs = (self.debian.template && !i.is_primary())
                    .then(|| shown.next().unwrap_or_default());
                (own, theirs)
            })
            .collect())
    }

    fn view_of(
        &self,
        host: &Host,
        instance: &Instance,
        own: &UnitState,
        theirs: Option<&UnitState>,
    ) -> ManagerView {
        let mut view = ManagerView::empty(ManagerKind::Systemd);
        let unit = self.unit_name(instance);
        view.label = Some(unit.clone());
        view.loaded = Some(own.load_state == "loaded");
        view.state = Some(if own.exists() {
            format!("{} ({})", own.active_state, own.sub_state)
        } else {
            own.load_state.clone()
        });
        view.pid = own.main_pid;
        view.runs = Some(own.n_restarts + u64::from(own.exec_main_pid.is_some()));
        view.last_exit_code = own.last_exit().or_else(|| {
            (own.n_restarts > 0)
                .then(|| Self::ctl(host).last_main_exit(&own.id))
                .flatten()
        });
        view.disabled_override = match own.unit_file_state.as_str() {
            _ if own.is_enabled() => Some(Override::Enabled),
            "disabled" => Some(Override::Disabled),
            _ => None,
        };
        view.restarts_on_exit = !instance.is_primary();
        view.summary = Some(own.summary());
        view.notes.push(format!("{unit}: {}", own.summary()));
        if instance.is_primary() {
            view.notes.push(format!(
                "the distribution's {unit} runs the primary (this host has {}); it does not \
                 restart a master that dies",
                self.debian.describe()
            ));
        }
        if let Some(pid) = instance.running_master() {
            view.master_unit = unit_of_pid(pid);
            if let Some(runs_it) = view.master_unit.as_ref().filter(|u| **u != unit) {
                view.notes.push(format!(
                    "the master (pid {pid}) runs in {runs_it}, not in {unit}"
                ));
            }
        }
        if let Some(theirs) = theirs.filter(|t| !t.is_masked()) {
            view.notes.push(format!(
                "Debian's {} is not masked: {} would start this instance's master too \
                 (`instancectl reconcile` masks it)",
                theirs.id,
                debian::GENERATOR
            ));
        }
        view
    }
}

/// The systemd unit whose cgroup holds a process (from /proc/PID/cgroup), such as
/// `instancectl-postfix-in.service` or Debian's `postfix@postfix-in.service`.
pub fn unit_of_pid(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    unit_in_cgroup(&text)
}

/// The unit named in /proc/PID/cgroup: the systemd hierarchy's path (cgroup v1
/// `name=systemd`, else the unified `0::` line), last component that is a unit.
fn unit_in_cgroup(text: &str) -> Option<String> {
    let path = |prefix: &str| {
        text.lines().find_map(|l| {
            l.split_once(':')
                .and_then(|(_, rest)| rest.strip_prefix(prefix))
        })
    };
    let path = path("name=systemd:").or_else(|| path(":"))?;
    path.rsplit('/')
        .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
        .map(str::to_string)
}

impl ServiceManager for Systemd {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Systemd
    }

    fn restarts_in_place(&self) -> bool {
        true
    }

    fn preflight_create(&self, _host: &Host, _name: &str, _config_directory: &Path) -> Result<()> {
        self.usable()
    }

    fn install(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        self.usable()?;
        self.take_over(host, instance)?;
        self.write_units(host, instance, None)?;
        if instance.enabled {
            Self::ctl(host).run("enable", &unit::unit_name(&instance.name), &[])?;
        }
        Ok(())
    }

    fn uninstall(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let ctl = Self::ctl(host);
        let unit = unit::unit_name(&instance.name);
        let path = unit::unit_path(&instance.name);
        if path.exists() {
            ctl.run("stop", &unit, &[])?;
            ctl.run("disable", &unit, &[])?;
            host.runner.remove_file(&path)?;
        }
        // The rest of the group no longer starts after this one.
        self.write_units(host, instance, Some(&instance.name))?;
        if debian::is_masked_on_disk(&instance.name) {
            // No reload: systemd keeps the mask in force until the next one, which
            // comes after postmulti has removed the instance (and the generator's link).
            ctl.run(
                "unmask",
                &debian::instance_unit(&instance.name),
                &["--no-reload"],
            )?;
        }
        Ok(())
    }

    fn set_enabled(&self, host: &Host, instance: &Instance, enabled: bool) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let unit = unit::unit_name(&instance.name);
        if enabled {
            self.usable()?;
            self.take_over(host, instance)?;
            self.write_units(host, instance, None)?;
            Self::ctl(host).run("enable", &unit, &[])
        } else if unit::unit_path(&instance.name).exists() {
            Self::ctl(host).run("disable", &unit, &[])
        } else {
            Ok(())
        }
    }

    fn start(&self, host: &Host, instance: &Instance) -> Result<()> {
        if !instance.is_primary() {
            self.usable()?;
            host.postfix.require_check(&instance.config_directory)?;
        }
        self.start_checked(host, instance)
    }

    /// `start` runs `postfix check` before `systemctl start`, so that a refusal comes
    /// back in Postfix's words rather than as a failed unit; where instancectl has
    /// just checked the configuration itself, that check is left out (the unit's
    /// ExecStartPre still runs its own).
    fn checks_before_start(&self) -> bool {
        true
    }

    fn start_checked(&self, host: &Host, instance: &Instance) -> Result<()> {
        let ctl = Self::ctl(host);
        if instance.is_primary() {
            return ctl.run("start", &self.debian.primary_unit(), &[]);
        }
        self.usable()?;
        self.take_over(host, instance)?;
        self.write_units(host, instance, None)?;
        let unit = unit::unit_name(&instance.name);
        let state = ctl.show_one(&unit)?;
        let master = instance.running_master();
        if state.is_running() && state.main_pid.is_some() && state.main_pid == master {
            return Ok(());
        }
        if let (Some(pid), false) = (master, host.runner.dry_run()) {
            return Err(ManagerError::OutsideSystemd {
                instance: instance.name.clone(),
                pid,
                in_unit: unit_of_pid(pid),
                unit,
            }
            .into());
        }
        if state.active_state == "failed" {
            // A unit left failed (start limit hit) refuses to start until reset.
            ctl.run("reset-failed", &unit, &[])?;
        }
        let since = SystemTime::now();
        if ctl.run("start", &unit, &[]).is_err() {
            return Err(self.failed_start(host, instance, &unit, since));
        }
        self.wait_running(host, instance, &unit, None, since)
            .map(drop)
    }

    fn stop(&self, host: &Host, instance: &Instance) -> Result<()> {
        let ctl = Self::ctl(host);
        if instance.is_primary() {
            return ctl.run("stop", &self.debian.primary_unit(), &[]);
        }
        let states = self.states(host, std::slice::from_ref(instance))?;
        let (own, theirs) = &states[0];
        if own.exists() {
            ctl.run("stop", &own.id, &[])?;
        }
        if let Some(theirs) = theirs.as_ref().filter(|t| t.is_active()) {
            ctl.run("stop", &theirs.id, &[])?;
        }
        super::stop_stray_master(host, instance)
    }

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()> {
        let ctl = Self::ctl(host);
        if instance.is_primary() {
            return ctl.run("restart", &self.debian.primary_unit(), &[]);
        }
        let unit = unit::unit_name(&instance.name);
        let state = ctl.show_one(&unit)?;
        if !state.is_running() {
            return self.start(host, instance);
        }
        host.postfix.require_check(&instance.config_directory)?;
        self.write_units(host, instance, None)?;
        let since = SystemTime::now();
        if ctl.run("restart", &unit, &[]).is_err() {
            return Err(self.failed_start(host, instance, &unit, since));
        }
        self.wait_running(host, instance, &unit, state.main_pid, since)
            .map(drop)
    }

    fn reload(&self, host: &Host, instance: &Instance) -> Result<()> {
        let ctl = Self::ctl(host);
        let unit = self.unit_name(instance);
        let state = ctl.show_one(&unit)?;
        if !state.is_active() {
            return Err(ManagerError::NothingToReload {
                instance: instance.display_name().to_string(),
                under: format!(" under systemd ({unit} is {})", state.summary()),
            }
            .into());
        }
        if !instance.is_primary() {
            host.postfix.require_check(&instance.config_directory)?;
        }
        ctl.run("reload", &unit, &[])
    }

    fn view(&self, host: &Host, instance: &Instance) -> ManagerView {
        self.views(host, std::slice::from_ref(instance))
            .pop()
            .unwrap_or_else(|| ManagerView::empty(ManagerKind::Systemd))
    }

    /// One `systemctl show` for every instance's units.
    fn views(&self, host: &Host, instances: &[Instance]) -> Vec<ManagerView> {
        match self.states(host, instances) {
            Ok(states) => instances
                .iter()
                .zip(&states)
                .map(|(i, (own, theirs))| self.view_of(host, i, own, theirs.as_ref()))
                .collect(),
            Err(e) => instances
                .iter()
                .map(|_| {
                    let mut view = ManagerView::empty(ManagerKind::Systemd);
                    view.notes.push(format!("systemctl could not tell: {e}"));
                    view
                })
                .collect(),
        }
    }

    /// Repairs what `drift` found: the unit and the mask of Debian's unit are what
    /// instancectl keeps for an instance (RewriteJob writes both); Adopt moves a master
    /// that runs elsewhere (Debian's unit, `postfix start`) under the unit.
    fn repair(&self, host: &Host, instance: &Instance, action: ManagerRepair) -> Result<()> {
        match action {
            ManagerRepair::RewriteJob => {
                self.take_over(host, instance)?;
                self.write_units(host, instance, None)
            }
            ManagerRepair::SetEnabled(enabled) => self.set_enabled(host, instance, enabled),
            ManagerRepair::Adopt => {
                self.take_over(host, instance)?;
                super::stop_stray_master(host, instance)?;
                self.start(host, instance)
            }
        }
    }

    /// The unit (missing or not what instancectl writes), Debian's unit for the same
    /// instance (not masked, or running the master), the unit's enable state against
    /// postmulti's flag, and a master that runs outside the unit.
    fn drift(&self, host: &Host, instance: &Instance) -> Result<Vec<Drift>> {
        if instance.is_primary() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let all = host.instances()?;
        let unit = unit::unit_name(&instance.name);
        let path = unit::unit_path(&instance.name);
        let wanted_text = self.unit_of(host, instance, &all).to_text();
        let rewrite = |problem: String| {
            Drift::new(
                problem,
                Repair::Manager {
                    what: "write the unit again, mask Debian's unit for the instance, \
                           `systemctl daemon-reload`"
                        .into(),
                    action: ManagerRepair::RewriteJob,
                },
            )
        };
        match std::fs::read(&path) {
            Err(_) => found.push(rewrite(format!("{}: missing", path.display()))),
            Ok(bytes) if bytes != wanted_text.as_bytes() => found.push(rewrite(format!(
                "{}: differs from the unit instancectl would write",
                path.display()
            ))),
            Ok(_) => {}
        }
        let states = self.states(host, std::slice::from_ref(instance))?;
        let (own, theirs) = &states[0];
        // Only for an instance that should run: a master of a stopped or disabled one
        // is stopped by reconcile's generic repair, and must not be started here.
        let wanted = instance.enabled && !host.state.is_held_down(&instance.name);
        let debian_runs_it = theirs.as_ref().is_some_and(UnitState::is_active);
        if let Some(theirs) = theirs.as_ref() {
            if debian_runs_it && wanted {
                found.push(Drift::new(
                    format!(
                        "Debian's {} runs this instance's master, which {unit} should run",
                        theirs.id
                    ),
                    Repair::Manager {
                        what: format!("stop and mask {}, start {unit}", theirs.id),
                        action: ManagerRepair::Adopt,
                    },
                ));
            // (A rewrite found above masks it too.)
            } else if !theirs.is_masked() && found.is_empty() {
                found.push(rewrite(format!(
                    "Debian's {} is not masked: {} links it into postfix.service.wants, so \
                     at boot or `systemctl start postfix` it would start a second master",
                    theirs.id,
                    debian::GENERATOR
                )));
            }
        }
        let enabled_at_boot = own.is_enabled();
        if instance.enabled != enabled_at_boot {
            let (problem, verb) = if instance.enabled {
                (
                    format!(
                        "enabled, but {unit} is not enabled in systemd (it would not start at boot)"
                    ),
                    "enable",
                )
            } else {
                (
                    format!("disabled, but systemd would start {unit} at boot"),
                    "disable",
                )
            };
            found.push(Drift::new(
                problem,
                Repair::Manager {
                    what: format!("systemctl {verb} {unit}"),
                    action: ManagerRepair::SetEnabled(instance.enabled),
                },
            ));
        }
        if let Some(pid) = instance.running_master().filter(|_| wanted)
            && own.main_pid != Some(pid)
            && !debian_runs_it
        {
            found.push(Drift::new(
                format!(
                    "its master (pid {pid}) runs outside {unit}{}",
                    unit_of_pid(pid).map_or(String::new(), |u| format!(" (in {u})"))
                ),
                Repair::Manager {
                    what: format!("stop it the Postfix way and start it under {unit}"),
                    action: ManagerRepair::Adopt,
                },
            ));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/systemd")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_unit_of_a_process_comes_from_its_cgroup() {
        // /proc/PID/cgroup of masters under the test machine's systemd 252 (cgroup v1
        // with the unified hierarchy).
        assert_eq!(
            unit_in_cgroup(&recorded("proc-cgroup-instancectl-unit.txt")).as_deref(),
            Some("instancectl-postfix-in.service")
        );
        assert_eq!(
            unit_in_cgroup(&recorded("proc-cgroup-debian-primary.txt")).as_deref(),
            Some("postfix@-.service")
        );
        // A pure cgroup v2 host has only the `0::` line.
        assert_eq!(
            unit_in_cgroup("0::/system.slice/system-postfix.slice/postfix@postfix-in.service\n")
                .as_deref(),
            Some("postfix@postfix-in.service")
        );
        assert_eq!(unit_in_cgroup("0::/\n"), None);
        // The supervisor's own, under contrib/instancectl.service on a hybrid host.
        assert_eq!(
            unit_in_cgroup(
                "12:pids:/system.slice/instancectl.service\n1:name=systemd:/system.slice/instancectl.service\n0::/system.slice/instancectl.service\n"
            )
            .as_deref(),
            Some("instancectl.service")
        );
    }
}

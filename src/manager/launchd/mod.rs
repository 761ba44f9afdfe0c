//! The launchd manager: each secondary instance is a LaunchDaemon
//! (`/Library/LaunchDaemons/org.postfix.NAME.plist`) whose job is the instance's master
//! in the foreground, so launchd is its parent, restarts it when it dies (KeepAlive) and
//! starts it at boot (RunAtLoad) unless it is disabled.
//!
//! - start: `postfix -c DIR check` (launchd will not run it), write the plist if it is
//!   missing, then `launchctl enable` + `bootstrap` (or `kickstart` when the job is
//!   loaded but not running), and wait until launchd reports the job running with the
//!   master's pid.
//! - stop: `launchctl bootout`. `postfix stop` alone would be undone at once: the
//!   master exits, and KeepAlive makes launchd start it again.
//! - restart: `launchctl kickstart -k`; reload: `launchctl kill SIGHUP`.
//! - enable/disable: the persistent `launchctl enable/disable` override (plus
//!   postmulti's own flag, which the commands set), so a disabled instance stays down
//!   across reboots.
//! - uninstall: bootout and remove the plist.
//!
//! The primary instance stays with Apple's on-demand Postfix job
//! (`com.apple.postfix.master` since macOS 10.12, `org.postfix.master` before; found by
//! what launchd has loaded): instancectl never writes a plist for it and never starts or
//! stops it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use super::view::APPLE_POSTFIX_JOBS;
use super::{Drift, ManagerRepair, Repair};
use super::{ManagerKind, ManagerView, Override, ServiceManager};
use crate::error::InputError;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ManagerError;
pub mod job;
pub mod launchctl;
pub mod lint;
pub mod strict;

use job::{DaemonJob, JobNaming};
use launchctl::{JobInfo, Kickstart, LastExit, Launchctl};
use lint::Runs;

/// How long a job may take from bootstrap to "running".
const RUNNING_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the launchd manager puts its jobs and what it calls them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchdConfig {
    /// The daemons directory (`/Library/LaunchDaemons`).
    pub daemons_dir: PathBuf,
    pub naming: JobNaming,
}

impl Default for LaunchdConfig {
    fn default() -> Self {
        LaunchdConfig {
            daemons_dir: "/Library/LaunchDaemons".into(),
            naming: JobNaming::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Launchd {
    pub config: LaunchdConfig,
}

/// A plist in the daemons directory that is not instancectl's, but runs an instance.
#[derive(Debug, Clone)]
pub struct ForeignJob {
    pub path: PathBuf,
    pub label: Option<String>,
    /// It starts every instance (`postmulti -p start` without `-i`).
    pub runs_every: bool,
    pub report: lint::Report,
}

impl Launchd {
    pub fn new(config: LaunchdConfig) -> Launchd {
        Launchd { config }
    }

    fn launchctl(&self, host: &Host) -> Launchctl {
        Launchctl::new(host.runner)
    }

    pub fn label(&self, name: &str) -> String {
        self.config.naming.label(name)
    }

    pub fn plist_path(&self, name: &str) -> PathBuf {
        self.config
            .daemons_dir
            .join(format!("{}.plist", self.label(name)))
    }

    /// The job instancectl writes for `instance`.
    pub fn job(&self, host: &Host, name: &str, config_directory: &Path) -> DaemonJob {
        DaemonJob::for_instance(
            name,
            config_directory,
            &host.postfix.daemon_directory,
            host.postfix.version,
            &self.config.naming,
        )
    }

    /// What must hold before the manager changes anything: a launchctl to run, the
    /// daemons directory, a usable label prefix.
    fn usable(&self) -> Result<()> {
        self.config.naming.validate()?;
        if !Launchctl::new(crate::runner::Runner::new(true)).available() {
            return Err(ManagerError::NoLaunchctl.into());
        }
        if !self.config.daemons_dir.is_dir() {
            return Err(InputError::NoLaunchDaemonsDir {
                dir: self.config.daemons_dir.clone(),
            }
            .into());
        }
        Ok(())
    }

    fn refuse_primary(instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Err(primary_refusal());
        }
        Ok(())
    }

    /// Plists in the daemons directory, other than instancectl's own for this instance,
    /// whose job would run this instance (also under a name postmulti refuses, such as
    /// `postfix.in`, or every instance via `postmulti -p start`).
    pub fn foreign_jobs(&self, name: &str, config_directory: &Path) -> Vec<ForeignJob> {
        let own = self.plist_path(name);
        let Ok(dir) = std::fs::read_dir(&self.config.daemons_dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "plist") && *p != own)
            .collect();
        paths.sort();
        let ctx = lint::Context {
            daemons_dir: self.config.daemons_dir.clone(),
            wheel_gid: launchctl::wheel_gid(),
            ..lint::Context::default()
        };
        paths
            .into_iter()
            .filter_map(|path| {
                let bytes = std::fs::read(&path).ok()?;
                let parsed = strict::parse(&bytes);
                let dict = parsed.dict()?;
                let label = dict
                    .get("Label")
                    .and_then(::plist::Value::as_string)
                    .map(str::to_string);
                let runs = lint::instances_run_by(&lint::job_argv(dict));
                let same_label = label.as_deref() == Some(self.label(name).as_str());
                if !same_label && !runs.iter().any(|r| r.matches(name, config_directory)) {
                    return None;
                }
                let report = lint::check_file(&path, &ctx).ok()?;
                Some(ForeignJob {
                    path,
                    label,
                    runs_every: runs.contains(&Runs::Every),
                    report,
                })
            })
            .collect()
    }

    fn refuse_foreign(&self, name: &str, config_directory: &Path) -> Result<()> {
        let foreign = self.foreign_jobs(name, config_directory);
        let Some(job) = foreign.first() else {
            return Ok(());
        };
        let label = job.label.as_deref().unwrap_or("LABEL");
        let what = if job.runs_every {
            "starts every instance".to_string()
        } else {
            format!("already runs {name}")
        };
        Err(ManagerError::ForeignJob {
            path: job.path.clone(),
            label: label.into(),
            what,
            problems: job
                .report
                .problems
                .iter()
                .map(|p| p.message.clone())
                .collect(),
        }
        .into())
    }

    /// `postfix -c DIR check`, which `postfix start` runs and launchd does not.
    fn check(&self, host: &Host, instance: &Instance) -> Result<()> {
        host.postfix.require_check(&instance.config_directory)
    }

    /// Writes the plist: owner root, group wheel (root where there is none), mode 0644.
    fn write_plist(&self, host: &Host, instance: &Instance) -> Result<PathBuf> {
        let job = self.job(host, &instance.name, &instance.config_directory);
        let path = self.config.daemons_dir.join(job.file_name());
        let gid = launchctl::wheel_gid().unwrap_or(0);
        host.runner
            .write_file_owned(&path, &job.to_xml(), 0o644, (0, gid))?;
        Ok(path)
    }

    /// Waits until launchd runs the job, the master's pid file names the job's process,
    /// and every listener answers SMTP. A job that exits (or dies and is spawned again)
    /// meanwhile is reported with launchd's account of it. `before` is the job as it
    /// was before this start (a kickstart of a loaded job, `kickstart -k` of a running
    /// one): its process and its runs are not this start's, so neither the old process
    /// still being there nor the end launchd recorded for it (the SIGTERM of `-k`)
    /// counts as this start failing.
    fn wait_running(
        &self,
        host: &Host,
        instance: &Instance,
        label: &str,
        before: Option<&JobInfo>,
    ) -> Result<i32> {
        if host.runner.dry_run() {
            return Ok(0);
        }
        let ctl = self.launchctl(host);
        let deadline = Instant::now() + RUNNING_TIMEOUT;
        let old_pid = before.and_then(|b| b.pid);
        let old_runs = before.and_then(|b| b.runs).unwrap_or(0);
        let mut first_runs = None;
        loop {
            let Some(job) = ctl.print(label)? else {
                return Err(ManagerError::UnloadedWhileStarting {
                    label: label.into(),
                }
                .into());
            };
            let runs = job.runs.unwrap_or(0);
            // A run of this start: launchd counted it (a release that did not print
            // `runs` is taken at its pid), and the old process is gone.
            let this_run = job.runs.is_none_or(|r| r > old_runs)
                && !job.is_stopping()
                && (old_pid.is_none() || job.pid != old_pid);
            if this_run {
                let first = *first_runs.get_or_insert(runs);
                // launchd's own account of the last run (exit code, signal, `last exit
                // reason`, `spawn failed`) says at once that the master died; so does a
                // run counted after the first one this start saw.
                let respawned =
                    runs > first && job.last_exit.as_ref().is_some_and(LastExit::is_end);
                if job.has_ended() || respawned {
                    return Err(self.failed_start(host, instance, label, &job));
                }
            }
            let master = instance.running_master();
            let not_serving = crate::probe::not_serving(instance);
            if this_run && job.is_running() && job.pid == master && not_serving.is_empty() {
                return Ok(master.unwrap_or_default());
            }
            if Instant::now() >= deadline {
                let state = job.state.map_or("unknown".to_string(), |s| s.to_string());
                let mut reasons = vec![format!("job state {state}")];
                if master.is_none() {
                    reasons.push(format!(
                        "{} names no live master",
                        instance.pid_file().unwrap_or_default().display()
                    ));
                }
                reasons.extend(not_serving);
                return Err(ManagerError::NotUp {
                    instance: instance.name.clone(),
                    manager: "launchd",
                    seconds: RUNNING_TIMEOUT.as_secs(),
                    reasons,
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A master that exits right after launchd started it: stop launchd's restart loop
    /// (a configuration error does not heal by retrying), find what is in the master's
    /// way, and report both.
    fn failed_start(&self, host: &Host, instance: &Instance, label: &str, job: &JobInfo) -> Error {
        let how = match &job.last_exit {
            Some(end) => end.how_it_ended(),
            None if job.job_state.as_deref() == Some("spawn failed") => {
                "could not be spawned (launchd: spawn failed)".to_string()
            }
            None => "exited".to_string(),
        };
        let stopped = self.launchctl(host).bootout(label).is_ok();
        let found = if stopped {
            listener_conflicts(instance)
        } else {
            Vec::new()
        };
        // The master writes its fatal errors only to the mail log (it closes stderr
        // even on a terminal), so what instancectl can check itself comes first.
        let why = if found.is_empty() {
            "; Postfix logged the reason to the mail log (macOS: `log show --last 5m \
             --predicate 'process == \"master\"'`; elsewhere /var/log/mail.log)"
                .to_string()
        } else {
            format!(": {}", found.join("; "))
        };
        let next = if stopped {
            format!(
                "\ninstancectl booted the job out, so that launchd does not restart it every \
                 {} s; fix the cause, then `instancectl start {}`",
                job::THROTTLE_INTERVAL,
                instance.name
            )
        } else {
            format!(
                "\nlaunchd restarts it every {} s; `instancectl stop {}` stops that",
                job::THROTTLE_INTERVAL,
                instance.name
            )
        };
        ManagerError::ExitedUnderLaunchd {
            instance: instance.name.clone(),
            how,
            runs: job.runs,
            why,
            next,
        }
        .into()
    }
}

/// What keeps the master from binding its listeners, tried with no master running:
/// an address another program already serves, or one this host does not have.
fn listener_conflicts(instance: &Instance) -> Vec<String> {
    if instance.running_master().is_some() {
        return Vec::new();
    }
    instance
        .listeners
        .iter()
        .filter_map(|l| {
            let addr = match l.addr {
                crate::postfix::master_cf::BindAddr::Any => {
                    std::net::SocketAddr::new(std::net::IpAddr::from([0, 0, 0, 0]), l.port)
                }
                crate::postfix::master_cf::BindAddr::Ip(ip) => {
                    std::net::SocketAddr::new(ip, l.port)
                }
            };
            match std::net::TcpListener::bind(addr) {
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Some(format!(
                    "{l} is already in use by another program, so the master cannot bind it \
                     (`lsof -nP -iTCP:{} -sTCP:LISTEN` shows which)",
                    l.port
                )),
                Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                    Some(format!("{l}: {} is not an address of this host", l.addr))
                }
                Err(_) => None,
            }
        })
        .collect()
}

impl ServiceManager for Launchd {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Launchd
    }

    fn manages(&self, instance: &Instance) -> bool {
        !instance.is_primary()
    }

    fn restarts_in_place(&self) -> bool {
        true
    }

    fn preflight_create(&self, _host: &Host, name: &str, config_directory: &Path) -> Result<()> {
        self.usable()?;
        let path = self.plist_path(name);
        if path.exists() {
            return Err(ManagerError::LeftoverPlist {
                path,
                name: name.into(),
                label: self.label(name),
            }
            .into());
        }
        self.refuse_foreign(name, config_directory)
    }

    /// Writes the plist and clears a "disabled" override an earlier instance of the
    /// same name may have left (destroy disables), so the job loads at boot even when
    /// it is not started now.
    fn install(&self, host: &Host, instance: &Instance) -> Result<()> {
        Self::refuse_primary(instance)?;
        self.usable()?;
        self.refuse_foreign(&instance.name, &instance.config_directory)?;
        let path = self.write_plist(host, instance)?;
        let label = self.label(&instance.name);
        let ctl = self.launchctl(host);
        let enabled = ctl.override_of(&label).and_then(|o| {
            if launchctl::may_block_loading(o.as_ref()) {
                ctl.enable(&label)
            } else {
                Ok(())
            }
        });
        // The plist was this step's own write: a failure takes it back, so the undo
        // of `create` (which starts after this step) leaves nothing behind.
        enabled.or_else(|e| {
            host.runner.remove_file(&path)?;
            Err(e.context(format!(
                "{label} could not be enabled in launchd (an earlier instance of that \
                 name left it disabled); {} was removed again",
                path.display()
            )))
        })
    }

    fn uninstall(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let label = self.label(&instance.name);
        self.launchctl(host).bootout(&label)?;
        host.runner.remove_file(&self.plist_path(&instance.name))
    }

    fn set_enabled(&self, host: &Host, instance: &Instance, enabled: bool) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let label = self.label(&instance.name);
        let ctl = self.launchctl(host);
        if enabled {
            ctl.enable(&label)
        } else {
            ctl.disable(&label)
        }
    }

    fn start(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        self.check(host, instance)?;
        self.start_checked(host, instance)
    }

    fn checks_before_start(&self) -> bool {
        true
    }

    fn start_checked(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        self.usable()?;
        self.refuse_foreign(&instance.name, &instance.config_directory)?;
        let label = self.label(&instance.name);
        let path = self.plist_path(&instance.name);
        if !path.exists() {
            self.write_plist(host, instance)?;
        }
        let ctl = self.launchctl(host);
        // The job as launchd had it before this start, when it stays loaded: its runs
        // so far are not this start's.
        let mut loaded = ctl.print(&label)?;
        // A bootout or `kickstart -k` under way: what is left once it is over.
        if loaded.as_ref().is_some_and(JobInfo::is_stopping) {
            loaded = ctl.wait_stopped(&label)?;
        }
        let before = match loaded {
            Some(job) if job.is_running() => return Ok(()),
            // Being spawned (KeepAlive's respawn, or a kickstart a moment ago): launchd
            // has counted that run already, and it is the one this start waits for.
            Some(job) if job.is_spawning() => None,
            Some(job) => {
                if ctl.kickstart(&label, false)? == Kickstart::NotLoaded {
                    ctl.bootstrap(&label, &path)?;
                    None
                } else {
                    Some(job)
                }
            }
            None => {
                ctl.bootstrap(&label, &path)?;
                None
            }
        };
        self.wait_running(host, instance, &label, before.as_ref())
            .map(drop)
    }

    fn stop(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let label = self.label(&instance.name);
        self.launchctl(host).bootout(&label)?;
        super::stop_stray_master(host, instance)
    }

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return restart_on_demand_primary(host, instance);
        }
        match self.checked_running_job(host, instance)? {
            Some((label, job)) => {
                if self.launchctl(host).kickstart(&label, true)? == Kickstart::NotLoaded {
                    return self.start(host, instance);
                }
                self.wait_running(host, instance, &label, Some(&job))
                    .map(drop)
            }
            None => self.start(host, instance),
        }
    }

    fn reload(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let label = self.label(&instance.name);
        match self.checked_running_job(host, instance)? {
            Some((label, _)) => self.launchctl(host).kill("SIGHUP", &label),
            // launchd is spawning it (KeepAlive's respawn, a kickstart): the master it
            // is about to exec reads the configuration as it is now, so that run is
            // the reload; wait until it serves.
            None if self
                .launchctl(host)
                .print(&label)?
                .is_some_and(|job| job.is_spawning()) =>
            {
                self.check(host, instance)?;
                self.wait_running(host, instance, &label, None).map(drop)
            }
            None => Err(ManagerError::NothingToReload {
                instance: instance.name.clone(),
                under: " under launchd".into(),
            }
            .into()),
        }
    }

    fn view(&self, host: &Host, instance: &Instance) -> ManagerView {
        self.views(host, std::slice::from_ref(instance))
            .pop()
            .unwrap_or_else(|| ManagerView::empty(ManagerKind::Launchd))
    }

    /// One `print-disabled` for all instances, one `print` per job.
    fn views(&self, host: &Host, instances: &[Instance]) -> Vec<ManagerView> {
        let ctl = self.launchctl(host);
        let overrides = instances
            .iter()
            .any(|i| !i.is_primary())
            .then(|| ctl.print_disabled().map_err(|e| e.to_string()));
        instances
            .iter()
            .map(|instance| {
                let job = if instance.is_primary() {
                    apple_job_view(&ctl).map_err(|e| e.to_string())
                } else {
                    match &overrides {
                        Some(Ok(map)) => self
                            .job_view(&ctl, instance, map)
                            .map_err(|e| e.to_string()),
                        Some(Err(e)) => Err(e.clone()),
                        None => Err("no overrides read".into()),
                    }
                };
                manager_view(job)
            })
            .collect()
    }

    fn repair(&self, host: &Host, instance: &Instance, action: ManagerRepair) -> Result<()> {
        let label = self.label(&instance.name);
        match action {
            ManagerRepair::RewriteJob => self.rewrite(host, instance),
            ManagerRepair::SetEnabled(true) => self.launchctl(host).enable(&label),
            ManagerRepair::SetEnabled(false) => self.launchctl(host).disable(&label),
            ManagerRepair::Adopt => {
                host.postfix
                    .control(&instance.config_directory, "stop")
                    .map(drop)?;
                // Starting clears a disabled override (enable before bootstrap),
                // which is not this repair's to decide: leave such a job down.
                if self.launchctl(host).override_of(&label)? == Some(Override::Disabled) {
                    return Ok(());
                }
                self.start(host, instance)
            }
        }
    }

    /// The plist (missing, different from what would be written, wrong owner or
    /// mode), the disabled override against postmulti's enable flag, and a master
    /// running outside launchd.
    fn drift(&self, host: &Host, instance: &Instance) -> Result<Vec<Drift>> {
        if instance.is_primary() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let path = self.plist_path(&instance.name);
        let wanted = self
            .job(host, &instance.name, &instance.config_directory)
            .to_xml();
        let rewrite = |what: &str| {
            Drift::new(
                format!("{}: {what}", path.display()),
                Repair::Manager {
                    what: "write the plist again (root:wheel, 0644) and reload the job".into(),
                    action: ManagerRepair::RewriteJob,
                },
            )
        };
        match std::fs::read(&path) {
            Err(_) => found.push(rewrite("missing")),
            Ok(bytes) if bytes != wanted => {
                found.push(rewrite("differs from the plist instancectl would write"))
            }
            Ok(_) => {
                let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
                // What launchd refuses, as the lint says it: the owner and the group
                // and other write bits; any group is fine (root:admin 0644 loads).
                let refused = lint::ownership(&path, meta.uid(), meta.mode());
                if !refused.is_empty() {
                    let what: Vec<&str> = refused.iter().map(|p| p.message.as_str()).collect();
                    found.push(rewrite(&what.join("; ")));
                }
            }
        }
        let label = self.label(&instance.name);
        let ctl = self.launchctl(host);
        let disabled = ctl.override_of(&label)? == Some(Override::Disabled);
        if instance.enabled && disabled {
            found.push(Drift::new(
                format!("enabled, but launchd has {label} disabled (it would not load at boot)"),
                Repair::Manager {
                    what: format!("launchctl enable system/{label}"),
                    action: ManagerRepair::SetEnabled(true),
                },
            ));
        } else if !instance.enabled && !disabled {
            found.push(Drift::new(
                format!("disabled, but launchd would load {label} at boot"),
                Repair::Manager {
                    what: format!("launchctl disable system/{label}"),
                    action: ManagerRepair::SetEnabled(false),
                },
            ));
        }
        let label = self.label(&instance.name);
        let job_pid = ctl.print(&label)?.and_then(|j| j.pid);
        // Only for an instance that should run: a master of a stopped or disabled one is
        // stopped by reconcile's generic repair, and must not be started under launchd.
        let wanted = instance.enabled && !host.state.is_held_down(&instance.name);
        if let Some(pid) = instance.running_master().filter(|_| wanted)
            && job_pid != Some(pid)
        {
            found.push(Drift::new(
                format!(
                    "its master (pid {pid}) runs outside launchd{}",
                    job_pid.map_or(String::new(), |p| format!(" (launchd's job is pid {p})"))
                ),
                Repair::Manager {
                    what: "stop it the Postfix way and start it under launchd".into(),
                    action: ManagerRepair::Adopt,
                },
            ));
        }
        Ok(found)
    }
}

impl Launchd {
    /// The instance's label and job while launchd runs it, once `postfix check` has
    /// passed: restart and reload must not take a serving instance down, or hand it
    /// a configuration Postfix refuses.
    fn checked_running_job(
        &self,
        host: &Host,
        instance: &Instance,
    ) -> Result<Option<(String, JobInfo)>> {
        let label = self.label(&instance.name);
        match self.launchctl(host).print(&label)? {
            Some(job) if job.is_running() => {
                self.check(host, instance)?;
                Ok(Some((label, job)))
            }
            _ => Ok(None),
        }
    }

    /// Rewrites the plist, and reloads a loaded job so launchd uses the new one.
    fn rewrite(&self, host: &Host, instance: &Instance) -> Result<()> {
        self.write_plist(host, instance)?;
        let label = self.label(&instance.name);
        if self.launchctl(host).print(&label)?.is_some() {
            self.stop(host, instance)?;
            self.start(host, instance)?;
        }
        Ok(())
    }
}

/// A restart of the primary (init's, after a change only a new master takes up, such as
/// dropping its listeners): Apple's job starts the master on demand, when mail is
/// submitted, and has no KeepAlive, so a running master is stopped the Postfix way and
/// the next one, which reads the new configuration, is left to that job.
fn restart_on_demand_primary(host: &Host, instance: &Instance) -> Result<()> {
    if instance.running_master().is_some() {
        host.postfix
            .control(&instance.config_directory, "stop")
            .map(drop)?;
    }
    Ok(())
}

/// Why there is no LaunchDaemon of instancectl's for the primary instance.
pub fn primary_refusal() -> Error {
    InputError::PrimaryHasNoPlist {
        jobs: APPLE_POSTFIX_JOBS.to_vec(),
    }
    .into()
}

/// Apple's on-demand Postfix job as launchd has it loaded: the first of its names
/// (newest first) that `print` finds, with what launchd says about it.
fn apple_job(ctl: &Launchctl) -> Result<Option<(&'static str, JobInfo)>> {
    for label in APPLE_POSTFIX_JOBS {
        if let Some(job) = ctl.print(label)? {
            return Ok(Some((label, job)));
        }
    }
    Ok(None)
}

/// The primary instance's job: Apple's, on demand, healthy while it is not running.
fn apple_job_view(ctl: &Launchctl) -> Result<ManagerView> {
    let mut view = ManagerView::empty(ManagerKind::Launchd);
    let Some((label, job)) = apple_job(ctl)? else {
        view.label = Some(APPLE_POSTFIX_JOBS[0].into());
        view.loaded = Some(false);
        view.summary = Some(format!(
            "Apple's on-demand Postfix job is not loaded (neither {})",
            APPLE_POSTFIX_JOBS.join(" nor ")
        ));
        return Ok(view);
    };
    let idle = if job.is_running() { "running" } else { "idle" };
    view.label = Some(label.into());
    view.loaded = Some(true);
    view.on_demand = true;
    view.summary = Some(format!("on demand ({label}), {idle}"));
    if let Some(how) = failed_on_demand_run(&job) {
        view.summary = Some(format!("on demand ({label}), idle, its last run {how}"));
        view.problem = Some(format!(
            "Apple's on-demand job {label}: the master's last run {how}, so mail \
             submitted now may wait in the maildrop queue; Postfix logged why (`log show \
             --last 1h --predicate 'process == \"master\"'`)"
        ));
        view.start_command = Some(format!("launchctl kickstart system/{label}"));
    }
    view.state = job.state.as_ref().map(ToString::to_string);
    view.pid = job.pid;
    view.runs = job.runs;
    view.last_exit_code = job.last_exit.as_ref().map(ToString::to_string);
    Ok(view)
}

/// How the last run of an on-demand job failed, when it did and nothing runs now.
/// `master -e` exits 0 when its idle time is up, and a stop (`postfix stop`, a
/// bootout) ends it with SIGTERM: neither is a failure. Any other exit status, signal
/// or `last exit reason`, or a spawn that failed, is.
fn failed_on_demand_run(job: &JobInfo) -> Option<String> {
    if job.is_running() || job.is_spawning() || job.is_stopping() {
        return None;
    }
    if job.job_state.as_deref() == Some("spawn failed") {
        return Some("could not be spawned (launchd: spawn failed)".into());
    }
    let end = job.last_exit.as_ref()?;
    let failed = match end {
        LastExit::Never => false,
        LastExit::Code { code, .. } => *code != 0,
        LastExit::Signal { number, .. } => {
            *number != Some(nix::sys::signal::Signal::SIGTERM as i32)
        }
        LastExit::Reason { .. } | LastExit::Other { .. } => true,
    };
    failed.then(|| end.how_it_ended())
}

impl Launchd {
    /// An instance's job as launchd has it, with its override from `overrides`.
    fn job_view(
        &self,
        ctl: &Launchctl,
        instance: &Instance,
        overrides: &BTreeMap<String, Override>,
    ) -> Result<ManagerView> {
        let label = self.label(&instance.name);
        let job = ctl.print(&label)?;
        let listed = overrides.get(&label).cloned();
        let disabled = listed == Some(Override::Disabled);
        let installed = self.plist_path(&instance.name).exists();
        let summary = match (&job, disabled) {
            (_, true) if job.is_none() => "disabled".to_string(),
            (None, _) if !installed => "no plist".to_string(),
            (None, _) => "not loaded".to_string(),
            (Some(j), _) => {
                let mut s = j.state.as_ref().map_or("loaded".into(), |s| s.to_string());
                if let Some(runs) = j.runs {
                    s.push_str(&format!(", runs {runs}"));
                }
                if let Some(e) = j.last_exit.as_ref().filter(|e| e.is_end()) {
                    s.push_str(&format!(", last {e}"));
                }
                if j.job_state.as_deref() == Some("spawn failed") {
                    s.push_str(", spawn failed");
                }
                if disabled {
                    s.push_str(", disabled at boot");
                }
                s
            }
        };
        let mut view = ManagerView::empty(ManagerKind::Launchd);
        view.restarts_on_exit = true;
        view.label = Some(label);
        view.loaded = Some(job.is_some());
        view.disabled_override = listed;
        view.summary = Some(summary);
        if let Some(job) = job {
            view.state = job.state.as_ref().map(|s| s.to_string());
            view.pid = job.pid;
            view.runs = job.runs;
            view.last_exit_code = job.last_exit.as_ref().map(|e| e.to_string());
        }
        Ok(view)
    }
}

/// The view of one instance's job, or why launchctl could not tell.
fn manager_view(job: std::result::Result<ManagerView, String>) -> ManagerView {
    job.unwrap_or_else(|e| {
        let mut view = ManagerView::empty(ManagerKind::Launchd);
        view.notes.push(format!("launchctl could not tell: {e}"));
        view
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use launchctl::parse_print;

    fn recorded(name: &str) -> JobInfo {
        let sample = launchd_emulator::corpus::load()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no sample {name}"));
        parse_print(&sample.output)
    }

    /// Apple's job is healthy idle after `master -e`'s exit 0, after a stop's SIGTERM,
    /// and before it ever ran; any other end of its last run is a failure to report.
    #[test]
    fn an_on_demand_jobs_failed_last_run_is_told_from_an_idle_one() {
        for idle in [
            "print-exited-interval-macos27.sample",
            "print-loaded-never-run-macos27.sample",
            "print-fragment-xpcproxy.sample",
            "print-running-akd.sample",
        ] {
            assert_eq!(failed_on_demand_run(&recorded(idle)), None, "{idle}");
        }
        let stopped = parse_print(
            "system/com.apple.postfix.master = {\n\tstate = not running\n\truns = 3\n\
             \tlast terminating signal = Terminated: 15\n}\n",
        );
        assert_eq!(failed_on_demand_run(&stopped), None);
        for (failed, how) in [
            (
                "print-not-running-exit-127-disaster-backup.sample",
                "ended with exit status 127",
            ),
            (
                "print-spawn-failed-codesigning.sample",
                "could not be spawned (launchd: spawn failed)",
            ),
        ] {
            assert_eq!(
                failed_on_demand_run(&recorded(failed)).as_deref(),
                Some(how),
                "{failed}"
            );
        }
        let killed = parse_print(
            "system/com.apple.postfix.master = {\n\tstate = not running\n\truns = 1\n\
             \tlast terminating signal = Killed: 9\n}\n",
        );
        assert_eq!(
            failed_on_demand_run(&killed).as_deref(),
            Some("was killed by signal 9 (Killed)")
        );
    }
}

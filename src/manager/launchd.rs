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
//! - restart: `launchctl kickstart -k`; reload: `launchctl kill HUP`.
//! - enable/disable: the persistent `launchctl enable/disable` override (plus
//!   postmulti's own flag, which the commands set), so a disabled instance stays down
//!   across reboots.
//! - uninstall: bootout and remove the plist.
//!
//! The primary instance stays with Apple's on-demand `org.postfix.master` job:
//! instancectl never writes a plist for it and never starts or stops it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{JobView, ManagerKind, ServiceManager};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::Instance;
use crate::launchctl::{self, JobInfo, Kickstart, LastExit, Launchctl, Override};
use crate::plist::lint::{self, Runs};
use crate::plist::{APPLE_PRIMARY_LABEL, DaemonJob, JobNaming, strict};

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
            return Err(Error::bad_input(
                "the launchd manager needs launchctl (macOS), and there is none in PATH; \
                 use --manager postfix on other systems",
            ));
        }
        if !self.config.daemons_dir.is_dir() {
            return Err(Error::bad_input(format!(
                "the LaunchDaemons directory {} does not exist (--launchd-dir)",
                self.config.daemons_dir.display()
            )));
        }
        Ok(())
    }

    fn refuse_primary(instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Err(Error::bad_input(format!(
                "the primary instance runs on demand under Apple's {APPLE_PRIMARY_LABEL} job; \
                 instancectl never writes a LaunchDaemon for it"
            )));
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
        let problems: Vec<String> = job
            .report
            .problems
            .iter()
            .map(|p| format!("  - {}", p.message))
            .collect();
        let problems = if problems.is_empty() {
            String::new()
        } else {
            format!("\nIts problems:\n{}", problems.join("\n"))
        };
        Err(Error::bad_input(format!(
            "the LaunchDaemon {} (label {label}) {what}, so two jobs would fight over one \
             master.{problems}\nRemove it first: `launchctl bootout system/{label}; rm {}` \
             (`instancectl plist --check {}` explains each problem)",
            job.path.display(),
            job.path.display(),
            job.path.display()
        )))
    }

    /// `postfix -c DIR check`, which `postfix start` runs and launchd does not.
    fn check(&self, host: &Host, instance: &Instance) -> Result<()> {
        if host.runner.dry_run() {
            println!(
                "would run: {} -c {} check",
                host.postfix.command_directory.join("postfix").display(),
                instance.config_directory.display()
            );
            return Ok(());
        }
        let outcome = host.postfix.check(&instance.config_directory)?;
        if outcome.success() {
            Ok(())
        } else {
            Err(Error::CommandFailed {
                context: format!(
                    "{} does not pass `postfix check`, so it is not started",
                    instance.name
                ),
                outcome: Box::new(outcome),
            })
        }
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

    /// Waits until launchd runs the job and the master's pid file names the job's
    /// process. A job that exits instead is reported with launchd's account of it.
    fn wait_running(
        &self,
        host: &Host,
        instance: &Instance,
        label: &str,
        not_pid: Option<i32>,
    ) -> Result<i32> {
        if host.runner.dry_run() {
            return Ok(0);
        }
        let ctl = self.launchctl(host);
        let deadline = Instant::now() + RUNNING_TIMEOUT;
        loop {
            let job = ctl.print(label)?;
            let master = instance.running_master();
            match &job {
                Some(j) if j.is_running() && j.pid != not_pid && j.pid == master => {
                    return Ok(master.unwrap_or_default());
                }
                Some(j) if !j.is_running() && exited(j) => {
                    return Err(self.exited_error(instance, label, j));
                }
                None => {
                    return Err(Error::failed(format!(
                        "launchd unloaded {label} while it was starting"
                    )));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                let state = job
                    .and_then(|j| j.state)
                    .map_or("unknown".to_string(), |s| s.to_string());
                return Err(Error::failed(format!(
                    "{} did not come up under launchd within {} s: job state {state}, \
                     master pid file {}",
                    instance.name,
                    RUNNING_TIMEOUT.as_secs(),
                    master.map_or("names no live process".into(), |p| format!("names {p}")),
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn exited_error(&self, instance: &Instance, label: &str, job: &JobInfo) -> Error {
        let how = job
            .last_exit
            .as_ref()
            .map_or("exited".to_string(), |e| format!("ended with {e}"));
        let log = job
            .properties
            .get("stderr path")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.config.naming.log_dir.join(format!("{label}.log")));
        let tail = tail_of(&log, 5);
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!("\n{} says:\n{tail}", log.display())
        };
        Error::failed(format!(
            "{}'s master {how} right after launchd started it (runs: {}). launchd tries \
             again every {} s; `instancectl stop {}` stops that. Postfix logs the reason to \
             the mail log (macOS: `log show --last 5m --predicate 'process == \"master\"'`).{tail}",
            instance.name,
            job.runs.map_or("?".into(), |r| r.to_string()),
            crate::plist::THROTTLE_INTERVAL,
            instance.name,
        ))
    }
}

/// Whether the job has run and ended (not merely not started yet).
fn exited(job: &JobInfo) -> bool {
    job.runs.unwrap_or(0) > 0 && !matches!(job.last_exit, None | Some(LastExit::Never))
}

fn tail_of(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ServiceManager for Launchd {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Launchd
    }

    fn manages(&self, instance: &Instance) -> bool {
        !instance.is_primary()
    }

    fn preflight_create(&self, _host: &Host, name: &str, config_directory: &Path) -> Result<()> {
        self.usable()?;
        let path = self.plist_path(name);
        if path.exists() {
            return Err(Error::bad_input(format!(
                "{} already exists but postmulti knows no instance {name}; it is left from \
                 an earlier instance: `launchctl bootout system/{}` and remove it first",
                path.display(),
                self.label(name)
            )));
        }
        self.refuse_foreign(name, config_directory)
    }

    fn install(&self, host: &Host, instance: &Instance) -> Result<()> {
        Self::refuse_primary(instance)?;
        self.usable()?;
        self.refuse_foreign(&instance.name, &instance.config_directory)?;
        self.write_plist(host, instance).map(drop)
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
        self.usable()?;
        self.refuse_foreign(&instance.name, &instance.config_directory)?;
        self.check(host, instance)?;
        let label = self.label(&instance.name);
        let path = self.plist_path(&instance.name);
        if !path.exists() {
            self.write_plist(host, instance)?;
        }
        let ctl = self.launchctl(host);
        match ctl.print(&label)? {
            Some(job) if job.is_running() => return Ok(()),
            Some(job) if job.is_stopping() => {
                ctl.wait_unloaded(&label)?;
                ctl.bootstrap(&label, &path)?;
            }
            Some(_) => {
                if ctl.kickstart(&label, false)? == Kickstart::NotLoaded {
                    ctl.bootstrap(&label, &path)?;
                }
            }
            None => {
                ctl.bootstrap(&label, &path)?;
            }
        }
        self.wait_running(host, instance, &label, None).map(drop)
    }

    fn stop(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let label = self.label(&instance.name);
        self.launchctl(host).bootout(&label)?;
        // A master launchd does not own (started by `postfix start`) is stopped the
        // Postfix way, or it would keep running after "stop".
        if !host.runner.dry_run() && instance.running_master().is_some() {
            host.postfix
                .control(&instance.config_directory, "stop")
                .map_err(|e| e.context(format!("stopping {}", instance.name)))?;
        }
        Ok(())
    }

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let label = self.label(&instance.name);
        let ctl = self.launchctl(host);
        match ctl.print(&label)? {
            Some(job) if job.is_running() => {
                self.check(host, instance)?;
                let old = job.pid;
                if ctl.kickstart(&label, true)? == Kickstart::NotLoaded {
                    return self.start(host, instance);
                }
                self.wait_running(host, instance, &label, old).map(drop)
            }
            _ => self.start(host, instance),
        }
    }

    fn reload(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.is_primary() {
            return Ok(());
        }
        let label = self.label(&instance.name);
        let ctl = self.launchctl(host);
        match ctl.print(&label)? {
            Some(job) if job.is_running() => {
                self.check(host, instance)?;
                ctl.kill("HUP", &label)
            }
            _ => Err(Error::failed(format!(
                "{} is not running under launchd, so there is nothing to reload; start it \
                 instead",
                instance.name
            ))),
        }
    }

    fn job(&self, host: &Host, instance: &Instance) -> Result<Option<JobView>> {
        let ctl = self.launchctl(host);
        if instance.is_primary() {
            let job = ctl.print(APPLE_PRIMARY_LABEL).ok().flatten();
            let state = job
                .as_ref()
                .and_then(|j| j.state.as_ref())
                .map(|s| s.to_string());
            return Ok(Some(JobView {
                label: APPLE_PRIMARY_LABEL.into(),
                loaded: job.is_some(),
                on_demand: true,
                state,
                pid: job.as_ref().and_then(|j| j.pid),
                runs: job.as_ref().and_then(|j| j.runs),
                last_exit: job
                    .as_ref()
                    .and_then(|j| j.last_exit.as_ref().map(|e| e.to_string())),
                disabled: None,
                summary: format!("on demand ({APPLE_PRIMARY_LABEL})"),
            }));
        }
        let label = self.label(&instance.name);
        let job = ctl.print(&label)?;
        let disabled = match ctl.override_of(&label)? {
            Some(Override::Disabled) => Some(true),
            Some(Override::Enabled) => Some(false),
            _ => None,
        };
        let installed = self.plist_path(&instance.name).exists();
        let summary = match (&job, disabled) {
            (_, Some(true)) if job.is_none() => "disabled".to_string(),
            (None, _) if !installed => "no plist".to_string(),
            (None, _) => "not loaded".to_string(),
            (Some(j), _) => {
                let mut s = j.state.as_ref().map_or("loaded".into(), |s| s.to_string());
                if let Some(runs) = j.runs {
                    s.push_str(&format!(", runs {runs}"));
                }
                if let Some(e) = j.last_exit.as_ref().filter(|e| **e != LastExit::Never) {
                    s.push_str(&format!(", last {e}"));
                }
                if disabled == Some(true) {
                    s.push_str(", disabled at boot");
                }
                s
            }
        };
        Ok(Some(JobView {
            label,
            loaded: job.is_some(),
            on_demand: false,
            state: job
                .as_ref()
                .and_then(|j| j.state.as_ref())
                .map(|s| s.to_string()),
            pid: job.as_ref().and_then(|j| j.pid),
            runs: job.as_ref().and_then(|j| j.runs),
            last_exit: job
                .as_ref()
                .and_then(|j| j.last_exit.as_ref().map(|e| e.to_string())),
            disabled,
            summary,
        }))
    }
}

//! The emulated system domain: the job table and launchd's policy for it.
//!
//! Everything here runs under one lock, and spawning and reaping both happen under it, so an
//! exit can never be seen before the pid it belongs to is recorded. Changes wake every
//! waiter on one condition variable: blocking commands (bootout, kickstart -k, reboot) wait
//! on it, and so does the timer loop that fires throttled respawns and SIGKILL deadlines.

use crate::errors::{EINPROGRESS, EIO, ENOENT, ENOSERVICE, ESRCH};
use crate::macos::Macos;
use crate::overrides::Overrides;
use crate::plist_load::{self, JobSpec, KeepAlive};
use crate::print;
use crate::procs::{self, LastExit};
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Exit status launchd records when it could not start the program at all.
const EX_CONFIG: i32 = 78;
/// How often a stop whose leader is gone checks whether its process group has emptied.
const GROUP_POLL: Duration = Duration::from_millis(50);
/// How long a job shows `state = xpcproxy` after each spawn unless told otherwise: real
/// launchd spawns through its xpcproxy trampoline, and `print` in that window shows the
/// new pid with the previous run's end (recorded:
/// tests/data/launchctl/print-fragment-xpcproxy-*). By default the program itself is
/// already running then; see [`Xpcproxy`] for a longer, held window.
pub const XPCPROXY_WINDOW: Duration = Duration::from_millis(100);

/// The xpcproxy phase of every spawn.
///
/// On a fast Mac xpcproxy execs the program within milliseconds; on a slow or loaded one
/// (a cold boot, a spinning disk, many jobs spawned at once) the job stays `xpcproxy`
/// long enough for a second command to meet it. `hold` reproduces that: the spawned
/// process waits that long before it execs the program (so no master, no pid file yet,
/// and a SIGTERM kills it as it would kill xpcproxy), and `print` shows `xpcproxy` for
/// as long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xpcproxy {
    /// How long the program waits before it is exec'd; zero: it is exec'd at once.
    pub hold: Duration,
}

impl Xpcproxy {
    /// The environment variable (of the daemon) that sets `hold` in milliseconds, as
    /// `--xpcproxy-hold MS` does.
    pub const ENV: &'static str = "LAUNCHD_EMULATOR_XPCPROXY_HOLD_MS";

    /// How long `print` shows `xpcproxy` after a spawn: the hold, or a brief moment.
    pub fn window(self) -> Duration {
        self.hold.max(XPCPROXY_WINDOW)
    }
}

/// How long, from macOS 26 on, launchd goes on refusing a bootstrap of a label after its
/// bootout has finished, unless `--bootout-settle MS` says otherwise: about 5 s was
/// recorded on 26.5.1 (tests/data/launchctl/error-bootstrap-5-settle-window-headroom-1289:
/// ten bootstraps refused with 5 while `print` found nothing, the eleventh loaded).
pub const BOOTOUT_SETTLE: Duration = Duration::from_secs(5);
/// Upper bound on the emulator's own shutdown, even for jobs with ExitTimeOut 0 (for ever).
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(30);

/// Where the daemon keeps state and finds the plists it loads at boot.
#[derive(Debug, Clone)]
pub struct Config {
    pub state_dir: PathBuf,
    pub daemons_dir: PathBuf,
    /// The release whose answers the emulator gives (see [`crate::macos`]).
    pub macos: Macos,
    /// Load Apple's own on-demand Postfix job at boot, under the release's label.
    pub apple_postfix: bool,
    /// How long each spawn stays in the xpcproxy phase.
    pub xpcproxy: Xpcproxy,
    /// How long a label stays refused after its bootout, on releases that do that
    /// ([`Macos::settles_after_bootout`]).
    pub bootout_settle: Duration,
}

/// What happens once a stopping job's processes are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// bootout: forget the job.
    Unload,
    /// kickstart -k: spawn it again at once.
    Restart,
}

#[derive(Debug, Clone)]
pub struct Stop {
    pub then: AfterStop,
    /// When SIGKILL follows the SIGTERM; `None` for ExitTimeOut 0, which means never.
    pub kill_at: Option<Instant>,
    pub sigkilled: bool,
}

/// One loaded job.
#[derive(Debug)]
pub struct Job {
    pub spec: JobSpec,
    pub path: PathBuf,
    /// Distinguishes this load from a later load of the same label.
    pub instance: u64,
    pub pid: Option<Pid>,
    /// Process group of the latest spawn; outlives the leader so leftovers can be killed.
    pub pgid: Option<Pid>,
    pub runs: u64,
    pub last_exit: Option<LastExit>,
    pub last_spawn: Option<Instant>,
    /// Until when the latest spawn shows `state = xpcproxy`.
    pub xpcproxy_until: Option<Instant>,
    pub respawn_at: Option<Instant>,
    pub stop: Option<Stop>,
}

impl Job {
    /// The `state` line of `launchctl print`.
    pub fn state_name(&self) -> &'static str {
        match (&self.stop, self.pid) {
            (Some(stop), _) if stop.sigkilled => "SIGKILLed",
            (Some(_), _) => "SIGTERMed",
            (None, Some(_)) if self.xpcproxy_until.is_some_and(|t| Instant::now() < t) => {
                "xpcproxy"
            }
            (None, Some(_)) => "running",
            (None, None) if self.respawn_at.is_some() => "spawn scheduled",
            (None, None) => "not running",
        }
    }

    fn pid_only(&self) -> bool {
        self.spec.abandon_process_group
    }
}

struct State {
    jobs: BTreeMap<String, Job>,
    overrides: Overrides,
    next_instance: u64,
    shutting_down: bool,
    /// Labels whose bootout finished lately, and until when a bootstrap of them is
    /// refused ([`Config::bootout_settle`]).
    settling: BTreeMap<String, Instant>,
}

/// The emulated launchd.
pub struct Daemon {
    cfg: Config,
    state: Mutex<State>,
    changed: Condvar,
}

fn log(msg: impl AsRef<str>) {
    eprintln!("launchd-emulator[{}]: {}", std::process::id(), msg.as_ref());
}

/// Whether KeepAlive asks for a restart after this end of the job.
fn keepalive_wanted(spec: &JobSpec, exit: LastExit) -> bool {
    match spec.keep_alive {
        KeepAlive::Never => false,
        KeepAlive::Always => true,
        KeepAlive::Conditions {
            successful_exit,
            crashed,
            ..
        } => {
            successful_exit.is_some_and(|want| (exit == LastExit::Exited(0)) == want)
                || crashed.is_some_and(|want| exit.crashed() == want)
        }
    }
}

/// Starts the job's program now, through the xpcproxy phase. A program that cannot be
/// started counts as a run that exited with EX_CONFIG, as launchd reports it.
fn spawn(job: &mut Job, now: Instant, cfg: &Config) {
    let xpcproxy = cfg.xpcproxy;
    job.runs += 1;
    job.last_spawn = Some(now);
    job.xpcproxy_until = Some(now + xpcproxy.window());
    job.respawn_at = None;
    match procs::spawn_job(&job.spec, xpcproxy.hold, &cfg.state_dir) {
        Ok(pid) => {
            log(format!("{}: spawned pid {pid}", job.spec.label));
            job.pid = Some(pid);
            job.pgid = Some(pid);
        }
        Err(e) => {
            log(format!(
                "{}: could not spawn {}: {e}",
                job.spec.label, job.spec.program
            ));
            job.pid = None;
            job.last_exit = Some(LastExit::Exited(EX_CONFIG));
            if keepalive_wanted(&job.spec, LastExit::Exited(EX_CONFIG)) {
                // At least a second, so a zero ThrottleInterval cannot spin on a missing program.
                let wait = Duration::from_secs(job.spec.throttle_interval.max(1));
                job.respawn_at = Some(now + wait);
            }
        }
    }
}

/// KeepAlive after an exit the daemon did not ask for: respawn, but never sooner than
/// ThrottleInterval after the previous spawn.
fn after_exit(job: &mut Job, exit: LastExit, now: Instant, cfg: &Config) {
    if !keepalive_wanted(&job.spec, exit) {
        return;
    }
    let throttle = Duration::from_secs(job.spec.throttle_interval);
    let earliest = job.last_spawn.map_or(now, |t| t + throttle);
    if earliest <= now {
        spawn(job, now, cfg);
    } else {
        let ran = job
            .last_spawn
            .map_or(0, |t| now.duration_since(t).as_secs());
        log(format!(
            "{}: service only ran for {ran} seconds. Pushing respawn out by {} seconds.",
            job.spec.label,
            (earliest - now).as_secs_f64().ceil()
        ));
        job.respawn_at = Some(earliest);
    }
}

/// SIGTERM now (to the process group too unless AbandonProcessGroup), SIGKILL after
/// ExitTimeOut.
fn begin_stop(job: &mut Job, then: AfterStop, now: Instant) {
    job.respawn_at = None;
    procs::signal_job(job.pid, job.pgid, Signal::SIGTERM, job.pid_only());
    let timeout = job.spec.exit_timeout;
    job.stop = Some(Stop {
        then,
        kill_at: (timeout > 0).then(|| now + Duration::from_secs(timeout)),
        sigkilled: false,
    });
}

impl Daemon {
    pub fn new(cfg: Config) -> io::Result<Self> {
        let overrides = Overrides::load(&cfg.state_dir)?;
        Ok(Self {
            cfg,
            state: Mutex::new(State {
                jobs: BTreeMap::new(),
                overrides,
                next_instance: 1,
                shutting_down: false,
                settling: BTreeMap::new(),
            }),
            changed: Condvar::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    fn wait_for<'a>(&self, guard: MutexGuard<'a, State>, d: Duration) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(guard, d)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    /// What launchd does at boot: load every plist in the daemons directory that is not
    /// disabled (an override wins over the plist's own `Disabled` key).
    pub fn boot(&self) {
        let mut st = self.lock();
        self.load_daemons_dir(&mut st);
    }

    fn load_daemons_dir(&self, st: &mut State) {
        if self.cfg.apple_postfix {
            let (spec, path) = plist_load::apple_postfix_job(self.cfg.macos);
            self.insert(st, spec, &path);
        }
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.cfg.daemons_dir) {
            Ok(dir) => dir
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "plist"))
                .collect(),
            Err(e) => {
                log(format!(
                    "cannot read {}: {e}",
                    self.cfg.daemons_dir.display()
                ));
                return;
            }
        };
        paths.sort();
        for path in paths {
            match plist_load::load_daemon_plist(&path) {
                Err(e) => log(format!("{}: not loaded at boot: {e}", path.display())),
                Ok(spec) if st.jobs.contains_key(&spec.label) => log(format!(
                    "{}: not loaded at boot: label {} already loaded",
                    path.display(),
                    spec.label
                )),
                Ok(spec) if st.overrides.get(&spec.label).unwrap_or(spec.disabled) => log(format!(
                    "{}: not loaded at boot: {} is disabled",
                    path.display(),
                    spec.label
                )),
                Ok(spec) => self.insert(st, spec, &path),
            }
        }
    }

    fn insert(&self, st: &mut State, spec: JobSpec, path: &Path) {
        let instance = st.next_instance;
        st.next_instance += 1;
        let mut job = Job {
            spec,
            path: path.to_path_buf(),
            instance,
            pid: None,
            pgid: None,
            runs: 0,
            last_exit: None,
            last_spawn: None,
            xpcproxy_until: None,
            respawn_at: None,
            stop: None,
        };
        log(format!(
            "{}: loaded from {}",
            job.spec.label,
            path.display()
        ));
        if job.spec.starts_at_load() {
            spawn(&mut job, Instant::now(), &self.cfg);
        }
        st.jobs.insert(job.spec.label.clone(), job);
        self.changed.notify_all();
    }

    /// `launchctl enable` / `disable`: only the persistent override changes; a loaded job
    /// keeps running and nothing is loaded.
    pub fn set_disabled(&self, label: &str, disabled: bool) -> i32 {
        let mut st = self.lock();
        match st.overrides.set(label, disabled) {
            Ok(()) => 0,
            Err(e) => {
                log(format!("cannot write overrides: {e}"));
                EIO
            }
        }
    }

    /// `launchctl bootstrap system PATH`. Every refusal is EIO, as launchctl reports it.
    pub fn bootstrap(&self, path: &Path) -> i32 {
        let spec = match plist_load::load_daemon_plist(path) {
            Ok(spec) => spec,
            Err(e) => {
                log(format!("bootstrap {}: {e}", path.display()));
                return EIO;
            }
        };
        let mut st = self.lock();
        if st.shutting_down {
            return EIO;
        }
        if let Some(job) = st.jobs.get(&spec.label) {
            let unloading = job
                .stop
                .as_ref()
                .is_some_and(|s| s.then == AfterStop::Unload);
            let why = if unloading {
                "its bootout has not finished"
            } else {
                "service already loaded"
            };
            log(format!(
                "bootstrap {}: {}: {why}",
                path.display(),
                spec.label
            ));
            return if unloading {
                self.cfg.macos.bootstrap_during_bootout()
            } else {
                EIO
            };
        }
        let now = Instant::now();
        st.settling.retain(|_, until| *until > now);
        if let Some(until) = st.settling.get(&spec.label) {
            log(format!(
                "bootstrap {}: {}: launchd is still releasing the label after its bootout \
                 (for {} ms more)",
                path.display(),
                spec.label,
                until.duration_since(now).as_millis()
            ));
            return EIO;
        }
        if st.overrides.get(&spec.label).unwrap_or(spec.disabled) {
            log(format!(
                "bootstrap {}: {}: service is disabled",
                path.display(),
                spec.label
            ));
            return EIO;
        }
        self.insert(&mut st, spec, path);
        0
    }

    /// `launchctl bootout system/LABEL`: up to macOS 12 it returns once the job is stopped
    /// and unloaded; from macOS 13 it returns at once, and the job shows `SIGTERMed`
    /// until its processes are gone (a bootstrap meanwhile: see
    /// [`Macos::bootstrap_during_bootout`]; after it, [`Self::unload`]).
    pub fn bootout(&self, label: &str) -> i32 {
        let mut st = self.lock();
        let now = Instant::now();
        let Some(job) = st.jobs.get_mut(label) else {
            return ESRCH;
        };
        let instance = job.instance;
        match job.stop.as_mut() {
            Some(stop) if stop.then == AfterStop::Unload => return EINPROGRESS,
            // A kickstart -k is stopping it: keep stopping, but unload instead of restarting.
            Some(stop) => stop.then = AfterStop::Unload,
            None if job.pid.is_none() => {
                self.unload(&mut st, label, now);
                return 0;
            }
            None => begin_stop(job, AfterStop::Unload, now),
        }
        self.changed.notify_all();
        if self.cfg.macos.is_13_or_later() {
            return 0;
        }
        while st.jobs.get(label).is_some_and(|j| j.instance == instance) {
            st = self.wait(st);
        }
        0
    }

    /// The end of a bootout: the job is forgotten, and from macOS 26 on its label stays
    /// refused for [`Config::bootout_settle`].
    fn unload(&self, st: &mut State, label: &str, now: Instant) {
        st.jobs.remove(label);
        log(format!("{label}: unloaded"));
        if self.cfg.macos.settles_after_bootout() && !self.cfg.bootout_settle.is_zero() {
            st.settling
                .insert(label.to_string(), now + self.cfg.bootout_settle);
        }
        self.changed.notify_all();
    }

    /// `launchctl bootout system PATH`: the label is read from the plist. As recorded, a
    /// missing file is 2 (ENOENT) and a job that is not loaded 5, not 3.
    pub fn bootout_path(&self, path: &Path) -> i32 {
        match plist_load::read_label(path) {
            Ok(label) => match self.bootout(&label) {
                ESRCH => EIO,
                e => e,
            },
            Err(plist_load::LoadError::Unreadable(e)) if e.kind() == io::ErrorKind::NotFound => {
                ENOENT
            }
            Err(e) => {
                log(format!("bootout {}: {e}", path.display()));
                EIO
            }
        }
    }

    /// `launchctl kickstart [-k] system/LABEL`: the pid of the (new or running) process.
    /// Starting ignores the throttle, as launchd's kickstart does.
    pub fn kickstart(&self, label: &str, kill: bool) -> Result<i32, i32> {
        let mut st = self.lock();
        let now = Instant::now();
        if st.shutting_down {
            return Err(EIO);
        }
        let Some(job) = st.jobs.get_mut(label) else {
            return Err(ENOSERVICE);
        };
        let instance = job.instance;
        let runs = job.runs;
        match (&job.stop, job.pid) {
            (Some(stop), _) if stop.then == AfterStop::Unload => return Err(EINPROGRESS),
            (Some(_), _) => {} // another kickstart -k is restarting it; wait for the same spawn
            (None, Some(pid)) if !kill => return Ok(pid.as_raw()),
            (None, Some(_)) => begin_stop(job, AfterStop::Restart, now),
            (None, None) => {
                spawn(job, now, &self.cfg);
                let pid = job.pid;
                self.changed.notify_all();
                return pid.map(Pid::as_raw).ok_or(EIO);
            }
        }
        self.changed.notify_all();
        loop {
            st = self.wait(st);
            match st.jobs.get(label) {
                Some(j) if j.instance == instance => {
                    if j.stop.is_none() && j.runs > runs {
                        return j.pid.map(Pid::as_raw).ok_or(EIO);
                    }
                }
                _ => return Err(ESRCH),
            }
        }
    }

    /// `launchctl kill SIG system/LABEL`: signals the job's process only.
    pub fn kill(&self, label: &str, sig: i32) -> i32 {
        let st = self.lock();
        let Some(job) = st.jobs.get(label) else {
            return ENOSERVICE;
        };
        let Some(pid) = job.pid else {
            return ESRCH;
        };
        match Signal::try_from(sig) {
            Ok(sig) => match signal::kill(pid, sig) {
                Ok(()) => 0,
                Err(e) => e as i32,
            },
            Err(_) => 22,
        }
    }

    /// `launchctl print system/LABEL`.
    pub fn print(&self, label: &str) -> Result<String, i32> {
        let st = self.lock();
        st.jobs
            .get(label)
            .map(|job| print::service(job, self.cfg.macos))
            .ok_or(ENOSERVICE)
    }

    /// `launchctl print-disabled system`.
    pub fn print_disabled(&self) -> String {
        let st = self.lock();
        print::disabled(st.overrides.iter(), self.cfg.macos)
    }

    /// A simulated reboot: every job and everything below the daemon is SIGKILLed, all
    /// loaded state is forgotten, then the boot-time load runs again.
    pub fn reboot(&self) {
        let pids: Vec<Pid> = {
            let mut st = self.lock();
            log("reboot: killing every job");
            let pids = st.jobs.values().filter_map(|j| j.pid).collect();
            for job in st.jobs.values() {
                procs::signal_job(job.pid, job.pgid, Signal::SIGKILL, false);
            }
            st.jobs.clear();
            st.settling.clear();
            self.changed.notify_all();
            pids
        };
        procs::kill_all_descendants();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut st = self.lock();
        // Let the reaper collect the old jobs so none is a zombie after the "reboot".
        while pids.iter().any(|p| procs::pid_exists(*p)) && Instant::now() < deadline {
            st = self.wait_for(st, Duration::from_millis(20));
        }
        log("reboot: loading the daemons directory");
        self.load_daemons_dir(&mut st);
    }

    /// Collects every exited child (jobs and orphans alike) and applies launchd's policy.
    pub fn reap(&self) {
        let mut st = self.lock();
        let now = Instant::now();
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) => {
                    if let Some((pid, exit)) = LastExit::from_wait(status) {
                        self.job_exited(&mut st, pid, exit, now);
                    }
                }
            }
        }
        self.changed.notify_all();
    }

    fn job_exited(&self, st: &mut State, pid: Pid, exit: LastExit, now: Instant) {
        let Some(label) = st
            .jobs
            .iter()
            .find(|(_, j)| j.pid == Some(pid))
            .map(|(l, _)| l.clone())
        else {
            return; // an orphan reparented to us, or a job already forgotten by a reboot
        };
        let shutting_down = st.shutting_down;
        let job = st.jobs.get_mut(&label).expect("found above");
        job.pid = None;
        job.last_exit = Some(exit);
        log(format!("{label}: pid {pid} ended: {exit:?}"));
        if job.stop.is_some() {
            self.finish_stop(st, &label, now);
            return;
        }
        if !job.pid_only() {
            // launchd kills what the job left in its process group.
            procs::signal_job(None, job.pgid, Signal::SIGTERM, false);
        }
        if !shutting_down {
            after_exit(job, exit, now, &self.cfg);
        }
    }

    /// Completes a stop once the leader is gone and (unless AbandonProcessGroup) its group
    /// is empty.
    fn finish_stop(&self, st: &mut State, label: &str, now: Instant) {
        let Some(job) = st.jobs.get_mut(label) else {
            return;
        };
        let Some(stop) = &job.stop else {
            return;
        };
        if job.pid.is_some() || (!job.pid_only() && job.pgid.is_some_and(procs::group_alive)) {
            return;
        }
        match stop.then {
            AfterStop::Unload => self.unload(st, label, now),
            AfterStop::Restart => {
                job.stop = None;
                spawn(job, now, &self.cfg);
            }
        }
        self.changed.notify_all();
    }

    /// The timer loop: throttled respawns, SIGKILL after ExitTimeOut, and stops waiting for
    /// a process group to empty. Never returns.
    pub fn run_timers(&self) {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            let next = self.fire_due(&mut st, now);
            let wait = next
                .map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), Duration::from_secs(1));
            st = self.wait_for(st, wait);
        }
    }

    fn fire_due(&self, st: &mut State, now: Instant) -> Option<Instant> {
        let labels: Vec<String> = st.jobs.keys().cloned().collect();
        let shutting_down = st.shutting_down;
        for label in &labels {
            let Some(job) = st.jobs.get_mut(label) else {
                continue;
            };
            if job.respawn_at.is_some_and(|t| t <= now) && job.stop.is_none() {
                job.respawn_at = None;
                if !shutting_down {
                    spawn(job, now, &self.cfg);
                    self.changed.notify_all();
                }
            }
            let pid_only = job.pid_only();
            if let Some(stop) = job.stop.as_mut()
                && !stop.sigkilled
                && stop.kill_at.is_some_and(|t| t <= now)
            {
                log(format!("{label}: exit timeout elapsed, sending SIGKILL"));
                stop.sigkilled = true;
                procs::signal_job(job.pid, job.pgid, Signal::SIGKILL, pid_only);
            }
            if job.stop.is_some() && job.pid.is_none() {
                self.finish_stop(st, label, now);
            }
        }
        let mut next: Option<Instant> = None;
        let mut earliest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for job in st.jobs.values() {
            if let Some(t) = job.respawn_at {
                earliest(t);
            }
            if let Some(stop) = &job.stop {
                if let Some(t) = stop.kill_at.filter(|_| !stop.sigkilled) {
                    earliest(t);
                }
                if job.pid.is_none() {
                    earliest(now + GROUP_POLL);
                }
            }
        }
        next
    }

    /// The emulator's own shutdown (SIGTERM): stop every job as bootout would, then make
    /// sure nothing is left below the daemon.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.shutting_down = true;
        let now = Instant::now();
        let labels: Vec<String> = st.jobs.keys().cloned().collect();
        for label in labels {
            let job = st.jobs.get_mut(&label).expect("listed above");
            match job.stop.as_mut() {
                Some(stop) => stop.then = AfterStop::Unload,
                None if job.pid.is_none() => {
                    st.jobs.remove(&label);
                }
                None => begin_stop(job, AfterStop::Unload, now),
            }
        }
        self.changed.notify_all();
        let deadline = now + SHUTDOWN_LIMIT;
        while !st.jobs.is_empty() && Instant::now() < deadline {
            st = self.wait_for(st, Duration::from_millis(100));
        }
        drop(st);
        procs::kill_all_descendants();
    }
}

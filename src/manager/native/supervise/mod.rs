//! The native supervisor: runs each wanted instance's master in the foreground as its
//! own child (`master -c DIR`, since `postfix start` daemonizes and `postfix start-fg`
//! refuses multi-instance setups), independent instances at once and a group's in
//! start order, each listening before the next;
//! restarts a master the moment it exits, with backoff; kills and restarts one that
//! stops answering; never restarts in a loop on a configuration error; stops
//! everything in reverse order on SIGTERM. It works as a container's PID 1.
//!
//! Signals, the reaper, the control socket, the prober (and the socket table it
//! reads), the backoff policy and systemd's protocol each live in their own module;
//! this one holds the state and the event loop.
//!
//! The steady state is cheap: exits and stops of the masters arrive as SIGCHLD, and
//! the prober glances at /proc once per interval, speaking SMTP only when something
//! looks wrong (see `prober`).

mod backoff;
pub mod control;
mod output;
mod prober;
mod reaper;
mod signals;
mod sockets;
mod systemd;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

pub use backoff::Backoff;
use backoff::Run;
use control::{ChildReport, Request, Response};
use output::MasterOutput;
use prober::{Pace, Probe, Target};
use reaper::{Change, Exit};

use crate::check;
use crate::error::InputError;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::{self, Instance};
use crate::lock::HostLock;
use crate::postfix::postmulti::Listed;
use crate::process;
use crate::runner::Command;

/// How long a master may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a start waits for a wave of masters to listen before starting the next
/// wave. It is short because the loop handles no other event meanwhile.
const SERVE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Options {
    /// How often masters are probed.
    pub interval: Duration,
    /// Failed probes in a row after which a master counts as hung.
    pub hung_after: u32,
    /// Least time between two SMTP probes of an instance whose probes pass; probes
    /// happen only when the silent look at its sockets goes wrong.
    pub smtp_probe_every: Duration,
    pub backoff: Backoff,
}

pub enum Event {
    ChildExited,
    Reload,
    Shutdown,
    Control(Request, Sender<Response>),
    Probed(Vec<Probe>),
}

/// The mtimes of main.cf and master.cf, to tell whether a configuration changed.
type ConfigStamp = (Option<SystemTime>, Option<SystemTime>);

fn config_stamp(instance: &Instance) -> ConfigStamp {
    let mtime = |f: &str| {
        std::fs::metadata(instance.config_directory.join(f))
            .and_then(|m| m.modified())
            .ok()
    };
    (mtime("main.cf"), mtime("master.cf"))
}

/// One instance under supervision.
struct Supervised {
    instance: Instance,
    wanted: bool,
    pid: Option<i32>,
    /// Found running, not started by this supervisor: watched, not waited for.
    adopted: bool,
    started_at: Option<Instant>,
    runs: u32,
    /// Failed runs in a row (see `Backoff`).
    failed_runs: u32,
    /// Why it keeps failing, while it does: the last failed run, for `status`.
    failing: Option<String>,
    next_start: Option<Instant>,
    last_exit: Option<String>,
    failed_probes: u32,
    /// When SIGCHLD said the master was stopped, while it is.
    stopped_since: Option<Instant>,
    /// The configuration that passed `postfix check` last.
    checked: Option<ConfigStamp>,
    /// `postfix check` failed for this configuration: no start until it changes.
    config_error: Option<(String, ConfigStamp)>,
    /// What the running (or last) master wrote to its terminal.
    output: Option<Arc<MasterOutput>>,
}

impl Supervised {
    fn new(instance: Instance, wanted: bool) -> Self {
        Supervised {
            instance,
            wanted,
            pid: None,
            adopted: false,
            started_at: None,
            runs: 0,
            failed_runs: 0,
            failing: None,
            next_start: None,
            last_exit: None,
            failed_probes: 0,
            stopped_since: None,
            checked: None,
            config_error: None,
            output: None,
        }
    }

    /// Takes the outcome of the check before a start of the configuration `stamp`:
    /// passed, or a configuration error that keeps the master down until the
    /// configuration changes. Returns whether it passed.
    fn checked_as(&mut self, stamp: ConfigStamp, outcome: std::result::Result<(), String>) -> bool {
        match outcome {
            Ok(()) => {
                self.checked = Some(stamp);
                true
            }
            Err(message) => {
                tracing::error!(
                    instance = self.name(),
                    problem = %message,
                    "configuration error; not starting until the configuration changes"
                );
                self.config_error = Some((message, stamp));
                false
            }
        }
    }

    fn name(&self) -> &str {
        self.instance.display_name()
    }

    /// What the supervisor says of this instance. A failure streak is told while no
    /// master runs, and for `recent` into a run that follows it.
    fn report(&self, recent: Duration) -> ChildReport {
        let state = match (self.pid, &self.config_error, self.next_start) {
            (Some(_), _, _) => "running",
            (None, Some(_), _) => "config-error",
            (None, None, Some(_)) => "backoff",
            (None, None, None) => "stopped",
        };
        let next_start_in = self
            .next_start
            .map(|t| t.saturating_duration_since(Instant::now()));
        let failing = self.failing.as_ref().map(|why| match next_start_in {
            Some(delay) if self.pid.is_none() => {
                format!("{why}; next start in {:.1} s", delay.as_secs_f64())
            }
            _ => why.clone(),
        });
        ChildReport {
            name: self.instance.name.clone(),
            state: state.into(),
            pid: self.pid,
            adopted: self.adopted,
            runs: self.runs,
            last_exit: self.last_exit.clone(),
            uptime_secs: self.pid.and(self.started_at).map(|t| t.elapsed().as_secs()),
            failed_probes: self.failed_probes,
            failed_runs: self.failed_runs,
            problem: self
                .config_error
                .as_ref()
                .map(|(m, _)| m.clone())
                .or(failing.filter(|_| {
                    self.pid.is_none() || self.started_at.is_none_or(|t| t.elapsed() < recent)
                })),
            last_output: self.output.as_ref().map(|o| o.lines()).unwrap_or_default(),
        }
    }
}

struct Supervisor<'h> {
    host: &'h Host,
    options: Options,
    /// In start order.
    children: Vec<Supervised>,
    targets: prober::Targets,
}

/// Runs the supervisor until SIGTERM or SIGINT.
pub fn run(host: &Host, options: Options) -> Result<()> {
    if host.runner.dry_run() {
        return Err(InputError::SuperviseDryRun.into());
    }
    host.require_root()?;
    // Said loudly, once, in the journal and in the unit's status line; the masters
    // Debian's units started are adopted, so there are never two per instance.
    let debian = systemd::debian_postfix_conflict(host);
    if let Some(conflict) = &debian {
        tracing::error!(problem = %conflict, "two managers for the same masters");
    }
    let _single = HostLock::supervisor(host.state.dir())?;
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a subreaper; orphans go to PID 1");
    }
    let (events, inbox) = mpsc::channel();
    signals::forward(events.clone()).map_err(|e| Error::system("cannot handle signals", e))?;
    let socket = control::socket_path(host.state.dir());
    control::serve(&socket, events.clone()).map_err(|e| Error::io(&socket, e))?;
    let targets: prober::Targets = Arc::default();
    let pace = Pace {
        interval: options.interval,
        smtp_probe_every: options.smtp_probe_every,
    };
    prober::spawn(targets.clone(), pace, events)
        .map_err(|e| Error::system("cannot start the prober", e))?;
    tracing::info!(socket = %socket.display(), interval = ?options.interval, "supervisor started");

    let mut supervisor = Supervisor {
        host,
        options,
        children: Vec::new(),
        targets,
    };
    supervisor.sync();
    let warning = if debian.is_some() {
        "; WARNING: Debian's postfix.service also starts these masters \
         (`systemctl disable --now postfix.service`)"
    } else {
        ""
    };
    systemd::notify(&format!(
        "READY=1\nSTATUS={}{warning}",
        supervisor.summary()
    ));
    let outcome = supervisor.event_loop(&inbox);
    let _ = std::fs::remove_file(&socket);
    outcome
}

impl Supervisor<'_> {
    fn event_loop(&mut self, inbox: &Receiver<Event>) -> Result<()> {
        loop {
            // Idle, nothing is due: the loop sleeps until an event (a signal, a
            // request, the prober's report) wakes it.
            let event = match self.until_due() {
                Some(wait) => inbox.recv_timeout(wait),
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match event {
                Ok(Event::ChildExited) => self.collect_exits(),
                Ok(Event::Reload) => {
                    tracing::info!("SIGHUP: re-reading the desired state");
                    self.sync();
                }
                Ok(Event::Shutdown) => {
                    systemd::notify("STOPPING=1");
                    if systemd::restarting(self.host) {
                        tracing::info!(
                            "systemd restarts the supervisor: the masters keep running, \
                             and the next supervisor adopts them"
                        );
                    } else {
                        self.shutdown();
                    }
                    return Ok(());
                }
                Ok(Event::Control(request, reply)) => {
                    let response = self.handle(request);
                    let _ = reply.send(response);
                }
                Ok(Event::Probed(probes)) => self.judge(probes),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            self.kill_stopped();
            self.start_due();
        }
    }

    /// One line for systemd's STATUS=: how many wanted instances serve.
    fn summary(&self) -> String {
        let wanted = self.children.iter().filter(|c| c.wanted).count();
        let running = self
            .children
            .iter()
            .filter(|c| c.wanted && c.pid.is_some())
            .count();
        let troubled: Vec<&str> = self
            .children
            .iter()
            .filter(|c| c.wanted && c.pid.is_none())
            .map(|c| c.name())
            .collect();
        if troubled.is_empty() {
            format!("{running} of {wanted} instance(s) running")
        } else {
            format!(
                "{running} of {wanted} instance(s) running; not running: {}",
                troubled.join(", ")
            )
        }
    }

    /// Kills a master that has been stopped (SIGSTOP) for `hung_after` intervals: it
    /// serves nobody, and it handles no signal but SIGKILL.
    fn kill_stopped(&mut self) {
        let limit = self.options.interval * self.options.hung_after;
        for child in &mut self.children {
            if let (Some(pid), Some(since)) = (child.pid, child.stopped_since)
                && since.elapsed() >= limit
            {
                tracing::error!(
                    instance = child.name(),
                    pid,
                    problem = "the master process is stopped (SIGSTOP)",
                    "hung; killing the master"
                );
                process::kill_master(pid);
                child.stopped_since = None;
            }
        }
    }

    /// How long until the loop has something to do of its own: a start that comes
    /// due, a stopped master to kill, or an instance with a configuration error whose
    /// configuration is looked at once per interval (see [`Self::start_due`]).
    /// None: nothing until an event.
    fn until_due(&self) -> Option<Duration> {
        let hung_limit = self.options.interval * self.options.hung_after;
        let now = Instant::now();
        self.children
            .iter()
            .filter_map(|c| {
                let kill_at = c.pid.and(c.stopped_since).map(|since| since + hung_limit);
                let recheck_at = (c.wanted && c.pid.is_none() && c.config_error.is_some())
                    .then(|| now + self.options.interval);
                [c.next_start, kill_at, recheck_at]
                    .into_iter()
                    .flatten()
                    .min()
            })
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Re-reads postmulti's list, enable flags and stop marks, then starts what is
    /// wanted and not running (see [`Self::start_in_chains`]) and stops
    /// what runs and is not wanted.
    fn sync(&mut self) {
        let instances = match self.host.instances() {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the instance list; keeping the old one");
                return;
            }
        };
        let mut old: BTreeMap<String, Supervised> = self
            .children
            .drain(..)
            .map(|c| (c.instance.name.clone(), c))
            .collect();
        for instance in instances {
            // A broken instance (no directories of its own, a change interrupted
            // halfway) does not run: its master could only run on directories that are
            // not its own, or stand in the way of finishing the change.
            let wanted = instance.enabled
                && instance.broken.is_none()
                && !self.host.state.is_held_down(&instance.name);
            let child = match old.remove(&instance.name) {
                Some(mut child) => {
                    child.instance = instance;
                    child.wanted = wanted;
                    child
                }
                None => Supervised::new(instance, wanted),
            };
            self.children.push(child);
        }
        for (_, mut gone) in old {
            stop(&mut gone);
            tracing::info!(instance = gone.name(), "no longer listed; forgotten");
        }
        let mut to_start = Vec::new();
        for i in 0..self.children.len() {
            let child = &mut self.children[i];
            if !child.wanted && child.pid.is_some() {
                stop(child);
            } else if child.wanted && child.pid.is_none() {
                // An explicit request clears a backoff and re-checks the configuration.
                child.next_start = None;
                child.config_error = None;
                to_start.push(i);
            }
        }
        self.check_before_starting();
        self.start_in_chains(&to_start);
        self.publish_targets();
    }

    /// Starts children `indices` (in start order), independent ones at the same time:
    /// a group is a chain in start order whose next master starts once the one before
    /// listens, and every instance outside a group is a chain of its own. Wave by
    /// wave (the first of every chain, then the second, ...), the masters start one
    /// right after another and are waited for together: one after another, each
    /// waited for, two hundred took twenty seconds.
    fn start_in_chains(&mut self, indices: &[usize]) {
        let chains: Vec<Vec<usize>> =
            instance::start_chains(indices, |&i| self.children[i].instance.group.as_deref())
                .into_iter()
                .map(|chain| chain.into_iter().copied().collect())
                .collect();
        let longest = chains.iter().map(Vec::len).max().unwrap_or(0);
        for wave in 0..longest {
            let started: Vec<usize> = chains
                .iter()
                .filter_map(|chain| chain.get(wave).copied())
                .filter(|&i| self.start(i, Listing::Fresh))
                .collect();
            self.wait_listening(&started);
        }
    }

    /// Runs the check before a start for every instance about to start whose
    /// configuration changed, on one worker per core: at boot that is every instance.
    /// The quick check stands in for `postfix check` where a passing full check is
    /// remembered (see [`check::before_start`]); the full one, half a second of CPU
    /// each, made a boot with two hundred instances take over a minute one after
    /// another. A check that fails is reported here, and [`Self::start`] does not run
    /// it again while the configuration stays as it is.
    fn check_before_starting(&mut self) {
        let due: Vec<(usize, ConfigStamp)> = self
            .children
            .iter()
            .enumerate()
            .filter(|(_, c)| c.wanted && c.pid.is_none())
            .map(|(i, c)| (i, config_stamp(&c.instance)))
            .filter(|(i, stamp)| self.children[*i].checked != Some(*stamp))
            .collect();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let slots = check::Slots::new(workers);
        let (host, children) = (self.host, &self.children);
        let outcomes = crate::parallel::map(&due, workers, |(i, _)| {
            check::before_start(
                &host.postfix,
                host.state.dir(),
                &children[*i].instance,
                &slots,
            )
        });
        for ((i, stamp), outcome) in due.into_iter().zip(outcomes) {
            self.children[i].checked_as(stamp, outcome);
        }
    }

    fn handle(&mut self, request: Request) -> Response {
        let mut message = String::new();
        let mut ok = true;
        match request {
            Request::Sync => self.sync(),
            Request::Restart { name } => match self.index(&name) {
                Some(i) => {
                    stop(&mut self.children[i]);
                    self.children[i].config_error = None;
                    if self.start(i, Listing::Reread) {
                        self.wait_listening(&[i]);
                    }
                    self.publish_targets();
                }
                None => {
                    ok = false;
                    message = format!("the supervisor does not know {name}");
                }
            },
            Request::Status => {}
        }
        Response {
            ok,
            message,
            instances: self
                .children
                .iter()
                .map(|c| c.report(self.options.backoff.reset_after))
                .collect(),
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.children.iter().position(|c| c.instance.name == name)
    }

    /// Starts child `i`: adopts a master that already runs, checks the configuration
    /// when it changed, then runs `master -c DIR` as a child. Returns whether it
    /// started a master (which [`Self::wait_listening`] may then wait for).
    fn start(&mut self, i: usize, listing: Listing) -> bool {
        let host = self.host;
        let child = &mut self.children[i];
        child.next_start = None;

        if let Some(pid) = child.instance.running_master() {
            if child.pid != Some(pid) {
                tracing::info!(instance = child.name(), pid, "adopted a running master");
                child.pid = Some(pid);
                child.adopted = true;
                child.started_at = Some(Instant::now());
            }
            return false;
        }
        let stamp = config_stamp(&child.instance);
        if child
            .config_error
            .as_ref()
            .is_some_and(|(_, s)| *s == stamp)
        {
            return false;
        }
        if child.checked != Some(stamp) {
            let outcome = check::before_start(
                &host.postfix,
                host.state.dir(),
                &child.instance,
                &check::Slots::new(1),
            );
            if !child.checked_as(stamp, outcome) {
                return false;
            }
        }
        // The configuration may have changed since the list was read (listeners
        // added or disabled), and the probes must follow what this master will serve.
        // Only this instance's files: postmulti's list reads every instance's main.cf.
        if listing == Listing::Reread {
            let listed = Listed {
                name: child.instance.name.clone(),
                group: child.instance.group.clone(),
                enabled: child.instance.enabled,
                config_directory: child.instance.config_directory.clone(),
            };
            child.instance = instance::load(&host.postfix, &host.state, &listed);
        }
        let master = Command::new(host.postfix.master_binary().to_string_lossy())
            .arg("-c")
            .arg(child.instance.config_directory.to_string_lossy());
        match host.runner.spawn_child(&master) {
            Ok((pid, terminal)) => {
                child.output = Some(MasterOutput::follow(child.instance.name.clone(), terminal));
                child.pid = Some(pid as i32);
                child.adopted = false;
                child.started_at = Some(Instant::now());
                child.runs += 1;
                child.failed_probes = 0;
                child.stopped_since = None;
                tracing::info!(instance = child.name(), pid, runs = child.runs, "started");
            }
            Err(e) => {
                tracing::error!(instance = child.name(), error = %e, "cannot start the master");
                self.schedule_restart(i, Duration::ZERO);
                return false;
            }
        }
        true
    }

    /// Waits until the masters of children `started` listen on every listener of
    /// theirs, or exit, or time runs out. Listening is what the next in a chain
    /// needs (a connection to it waits in the queue until the master hands it to a
    /// daemon); the socket table says so for all of them at once, without a word
    /// on the wire, where an SMTP probe of each would start an smtpd per instance.
    fn wait_listening(&mut self, started: &[usize]) {
        let deadline = Instant::now() + SERVE_TIMEOUT;
        let mut pending = started.to_vec();
        let mut reader = sockets::Reader::default();
        let mut table = sockets::Table::default();
        loop {
            let listed = reader.read(&mut table).is_ok();
            let mut waiting = Vec::new();
            for i in pending {
                let Some(pid) = self.children[i].pid else {
                    continue;
                };
                match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, code)) => {
                        self.exited(i, Ended::Child(Exit::Code(code)));
                        continue;
                    }
                    Ok(WaitStatus::Signaled(_, sig, _)) => {
                        self.exited(i, Ended::Child(Exit::Signal(sig as i32)));
                        continue;
                    }
                    _ => {}
                }
                let instance = &self.children[i].instance;
                let listening = if listed {
                    instance
                        .listeners
                        .iter()
                        .all(|l| table.accept_queue(l).is_some())
                } else {
                    crate::probe::not_serving(instance).is_empty()
                };
                if !listening {
                    waiting.push(i);
                }
            }
            pending = waiting;
            if pending.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                for &i in &pending {
                    tracing::warn!(instance = self.children[i].name(), "not listening yet");
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        let mut started = false;
        for i in 0..self.children.len() {
            let child = &mut self.children[i];
            if let Some((_, stamp)) = &child.config_error
                && child.wanted
                && child.pid.is_none()
                && config_stamp(&child.instance) != *stamp
            {
                tracing::info!(
                    instance = child.name(),
                    "configuration changed; trying again"
                );
                child.config_error = None;
                child.next_start = Some(now);
            }
            if child.next_start.is_some_and(|t| t <= now) && child.wanted {
                if child.runs > 0 {
                    tracing::info!(instance = child.name(), "restarting after backoff");
                }
                self.start(i, Listing::Reread);
                started = true;
            }
        }
        if started {
            self.publish_targets();
        }
    }

    fn collect_exits(&mut self) {
        for (pid, change) in reaper::reap_all() {
            let Some(i) = self
                .children
                .iter()
                .position(|c| c.pid == Some(pid) && !c.adopted)
            else {
                continue;
            };
            match change {
                Change::Exited(exit) => self.exited(i, Ended::Child(exit)),
                Change::Stopped => {
                    let child = &mut self.children[i];
                    tracing::warn!(instance = child.name(), pid, "the master was stopped");
                    child.stopped_since = Some(Instant::now());
                }
                Change::Continued => {
                    let child = &mut self.children[i];
                    tracing::info!(instance = child.name(), pid, "the master continues");
                    child.stopped_since = None;
                }
            }
        }
        self.publish_targets();
    }

    /// A master ended: clear away what is left of its process group, then schedule
    /// the restart.
    fn exited(&mut self, i: usize, how: Ended) {
        let child = &mut self.children[i];
        let Some(pid) = child.pid.take() else { return };
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        child.stopped_since = None;
        let run = Run {
            lasted: child.started_at.map(|t| t.elapsed()).unwrap_or_default(),
            gave_up: matches!(how, Ended::Child(Exit::Code(_))),
        };
        let backoff = self.options.backoff;
        if backoff.failed(run)
            && let Some(output) = &child.output
        {
            // A master that gives up usually says why on its way out.
            output.wait_closed(Duration::from_millis(300));
        }
        tracing::warn!(instance = child.name(), pid, exit = %how, ran_for = ?run.lasted, "exited");
        child.last_exit = Some(how.to_string());
        child.adopted = false;
        if !child.wanted {
            child.failing = None;
            return;
        }
        let (delay, failed_runs) = backoff.next(run, child.failed_runs);
        child.failed_runs = failed_runs;
        child.failing = (failed_runs > 0).then(|| {
            let mut why = format!(
                "its master keeps failing: {how} after {:.1} s ({failed_runs} failed run(s) \
                 in a row)",
                run.lasted.as_secs_f64()
            );
            // The master logs its fatal error to the mail log only; a taken port,
            // the usual cause, shows from here.
            let taken = taken_listeners(&child.instance);
            if !taken.is_empty() {
                why.push_str(&format!(
                    "; {} already bound by another program",
                    taken.join(", ")
                ));
            }
            if let Some(last) = child.output.as_ref().and_then(|o| o.lines().pop()) {
                why.push_str(&format!("; its last words: {last}"));
            }
            why
        });
        self.schedule_restart(i, delay);
    }

    fn schedule_restart(&mut self, i: usize, delay: Duration) {
        let child = &mut self.children[i];
        if delay > Duration::ZERO {
            tracing::info!(instance = child.name(), delay = ?delay, "restart scheduled");
        }
        child.next_start = Some(Instant::now() + delay);
    }

    /// Counts failed probes; a master that fails `hung_after` in a row is killed and
    /// restarted. An adopted master that vanished is replaced.
    fn judge(&mut self, probes: Vec<Probe>) {
        for probe in probes {
            let Some(i) = self
                .children
                .iter()
                .position(|c| c.pid == Some(probe.pid) && c.instance.name == probe.name)
            else {
                continue;
            };
            let adopted = self.children[i].adopted;
            if probe.gone && adopted {
                self.exited(i, Ended::Adopted);
                continue;
            }
            let child = &mut self.children[i];
            match probe.failure {
                None => child.failed_probes = 0,
                Some(why) => {
                    child.failed_probes += 1;
                    tracing::warn!(instance = child.name(), failed = child.failed_probes, problem = %why, "probe failed");
                    if child.failed_probes >= self.options.hung_after {
                        tracing::error!(
                            instance = child.name(),
                            pid = probe.pid,
                            "hung; killing the master"
                        );
                        process::kill_master(probe.pid);
                        child.failed_probes = 0;
                        if adopted {
                            self.exited(i, Ended::KilledAsHung);
                        }
                    }
                }
            }
        }
        self.publish_targets();
    }

    fn shutdown(&mut self) {
        tracing::info!("stopping every instance in reverse start order");
        for child in self.children.iter_mut().rev() {
            child.wanted = false;
            stop(child);
        }
    }

    fn publish_targets(&self) {
        let targets = self
            .children
            .iter()
            .filter_map(|c| {
                Some(Target {
                    instance: c.instance.clone(),
                    pid: c.pid?,
                    adopted: c.adopted,
                    since: c.started_at?,
                })
            })
            .collect();
        if let Ok(mut shared) = self.targets.lock() {
            *shared = Arc::new(targets);
        }
    }
}

/// The instance's listeners that something else listens on although its master is
/// gone. The master's own daemons die with their process group a moment after it, so
/// a listener counts as taken only if it stays bound for a little while.
fn taken_listeners(instance: &Instance) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        let Ok(table) = sockets::Table::read() else {
            return Vec::new();
        };
        let taken: Vec<String> = instance
            .listeners
            .iter()
            .filter(|l| table.accept_queue(l).is_some())
            .map(|l| l.to_string())
            .collect();
        if taken.is_empty() || Instant::now() >= deadline {
            return taken;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether [`Supervisor::start`] reads the instance's files again first: a start
/// right after the list was read (a sync) need not; a restart after a backoff or on
/// request must, so that the probes follow what the new master will serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Fresh,
    Reread,
}

/// How a master's run ended.
enum Ended {
    /// A child of this supervisor, as waitpid told.
    Child(Exit),
    /// An adopted master, which is not our child: it is gone, how is unknown.
    Adopted,
    /// An adopted master this supervisor killed because it hung.
    KilledAsHung,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Child(exit) => exit.fmt(f),
            Ended::Adopted => f.write_str("ended (not a child of this supervisor: status unknown)"),
            Ended::KilledAsHung => f.write_str("killed as hung"),
        }
    }
}

/// Stops a master: SIGTERM, then SIGKILL to its process group after the timeout.
fn stop(child: &mut Supervised) {
    let Some(pid) = child.pid.take() else {
        child.next_start = None;
        return;
    };
    child.next_start = None;
    let target = Pid::from_raw(pid);
    let _ = kill(target, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    let exited = loop {
        let gone = if child.adopted {
            !process::is_alive(pid)
        } else {
            !matches!(
                waitpid(target, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        };
        if gone || Instant::now() >= deadline {
            break gone;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = killpg(target, Signal::SIGKILL);
    if !exited {
        let _ = kill(target, Signal::SIGKILL);
        tracing::warn!(instance = child.name(), pid, "did not stop in time; killed");
    }
    child.adopted = false;
    child.last_exit = Some(Exit::Signal(Signal::SIGTERM as i32).to_string());
    tracing::info!(instance = child.name(), pid, "stopped");
}

//! The health prober: one thread that looks at every running master each interval
//! without saying a word on the wire, and speaks to a listener only when that look
//! is wrong. So a healthy instance costs a glance at /proc and leaves no line in the
//! mail log.
//!
//! Each interval it lists the namespace's listening sockets once (`sockets`), and for
//! each master checks that every listener is bound and that its accept queue drains.
//! A master this supervisor did not start (adopted) is not its child, so SIGCHLD says
//! nothing about it: whether it exists is asked each interval (kill with signal 0),
//! its state (stopped?) when its sockets look wrong. A child's exit, stop and
//! continue arrive as SIGCHLD (see `reaper`).
//!
//! An instance looks wrong when a listener is not bound, or when connections wait in
//! an accept queue on two looks in a row (a master that no longer hands them to a
//! daemon). Then every listener is probed the way `instancectl status` probes it
//! (SMTP greeting from smtpd and postscreen, a TLS handshake from a TLS-wrapped
//! smtpd, a connection for other services); while that passes, at most once per
//! `smtp_probe_every`. A probe that fails is repeated every interval until it passes,
//! and the supervisor kills a master that fails `hung_after` looks in a row.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::Event;
use super::sockets::Table;
use crate::instance::Instance;
use crate::probe;
use crate::process::{self, Liveness};

/// How long a probe waits for a greeting: long enough for a busy instance.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One master to look at.
#[derive(Debug, Clone)]
pub struct Target {
    pub instance: Instance,
    pub pid: i32,
    /// Not this supervisor's child: no SIGCHLD for it.
    pub adopted: bool,
    /// When this supervisor started or adopted it.
    pub since: Instant,
}

/// A look that went wrong, or the first good one after a wrong one.
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub pid: i32,
    /// The process no longer exists.
    pub gone: bool,
    /// Why the instance is not serving, if it is not.
    pub failure: Option<String>,
}

pub type Targets = Arc<Mutex<Vec<Target>>>;

#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub interval: Duration,
    /// Least time between two SMTP probes of an instance whose probes pass.
    pub smtp_probe_every: Duration,
}

/// What the prober remembers of one master between looks.
#[derive(Debug, Default)]
struct Memory {
    /// The last look found connections waiting to be accepted.
    queued: bool,
    /// The last look failed.
    failing: bool,
    last_smtp_probe: Option<Instant>,
}

pub fn spawn(targets: Targets, pace: Pace, events: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("prober".into())
        .spawn(move || {
            let mut memory: HashMap<(String, i32), Memory> = HashMap::new();
            loop {
                std::thread::sleep(pace.interval);
                let snapshot = targets.lock().map(|t| t.clone()).unwrap_or_default();
                memory.retain(|(name, pid), _| {
                    snapshot
                        .iter()
                        .any(|t| t.pid == *pid && &t.instance.name == name)
                });
                if snapshot.is_empty() {
                    continue;
                }
                let probes = look_at_all(&snapshot, &mut memory, pace);
                if !probes.is_empty() && events.send(Event::Probed(probes)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// One look at every target; returns what the supervisor must hear about.
fn look_at_all(
    targets: &[Target],
    memory: &mut HashMap<(String, i32), Memory>,
    pace: Pace,
) -> Vec<Probe> {
    let table = Table::read();
    let mut reports = Vec::new();
    let mut to_probe = Vec::new();
    for target in targets {
        let mem = memory
            .entry((target.instance.name.clone(), target.pid))
            .or_default();
        let report = |failure: Option<String>, gone: bool| Probe {
            name: target.instance.name.clone(),
            pid: target.pid,
            gone,
            failure,
        };
        // An adopted master is not our child: no SIGCHLD tells of its end. Whether
        // it exists costs one system call; its state, only when the sockets look
        // wrong (a stopped master is what leaves connections waiting).
        // A master binds its listeners a moment after it starts: a look before then
        // would find them missing.
        if target.since.elapsed() < pace.interval * 2 {
            continue;
        }
        if target.adopted && kill(Pid::from_raw(target.pid), None).is_err() {
            reports.push(report(Some("the master process is gone".into()), true));
            continue;
        }
        let suspicion = match &table {
            Ok(table) => suspicion(&target.instance, table, mem),
            // Without the socket table, fall back to asking the listeners.
            Err(e) => Some(format!("cannot list the listening sockets ({e})")),
        };
        if target.adopted && (suspicion.is_some() || mem.failing) {
            match process::liveness(target.pid) {
                Liveness::Gone => {
                    reports.push(report(Some("the master process is gone".into()), true));
                    continue;
                }
                Liveness::Stopped => {
                    mem.failing = true;
                    reports.push(report(
                        Some("the master process is stopped (SIGSTOP or traced)".into()),
                        false,
                    ));
                    continue;
                }
                Liveness::Running => {}
            }
        }
        // A failing instance is probed again every look until it passes.
        let suspect = suspicion.is_some() || mem.failing;
        let due = mem.failing
            || mem
                .last_smtp_probe
                .is_none_or(|t| t.elapsed() >= pace.smtp_probe_every);
        // Suspect, but probed recently and it answered: it waits for its turn.
        if suspect && due {
            to_probe.push(target);
        }
    }
    let probed = probe_all(&to_probe);
    for (target, failure) in to_probe.into_iter().zip(probed) {
        let mem = memory
            .entry((target.instance.name.clone(), target.pid))
            .or_default();
        mem.last_smtp_probe = Some(Instant::now());
        if failure.is_some() || mem.failing {
            reports.push(Probe {
                name: target.instance.name.clone(),
                pid: target.pid,
                gone: false,
                failure: failure.clone(),
            });
        }
        mem.failing = failure.is_some();
    }
    reports
}

/// Why the instance looks wrong from its sockets, if it does.
fn suspicion(instance: &Instance, table: &Table, mem: &mut Memory) -> Option<String> {
    let mut queued = false;
    let mut why = None;
    for listener in &instance.listeners {
        match table.accept_queue(listener) {
            None => why = Some(format!("{listener}: not listening")),
            Some(0) => {}
            Some(n) => {
                queued = true;
                if mem.queued {
                    why = Some(format!("{listener}: {n} connection(s) wait to be accepted"));
                }
            }
        }
    }
    mem.queued = queued;
    why
}

/// Probes the instances' listeners as `status` does, all at once; for each, why it
/// does not serve, if it does not.
fn probe_all(targets: &[&Target]) -> Vec<Option<String>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| scope.spawn(move || failure_of(&t.instance)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Some("the probe panicked".into()))
            })
            .collect()
    })
}

fn failure_of(instance: &Instance) -> Option<String> {
    let failing: Vec<String> = probe::probe_listeners(instance, PROBE_TIMEOUT)
        .into_iter()
        .filter(|l| !l.ok)
        .map(|l| format!("{}: {}", l.address, l.error.unwrap_or_default()))
        .collect();
    (!failing.is_empty()).then(|| failing.join("; "))
}

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
use super::sockets::{Read, Reader, Table};
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

/// What the supervisor publishes for the prober: replaced as a whole when a master
/// starts, ends or is judged, so that the prober takes it each interval by cloning one
/// `Arc`, not two hundred instances.
pub type Targets = Arc<Mutex<Arc<Vec<Target>>>>;

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
            let mut looked_at: Arc<Vec<Target>> = Arc::default();
            // One entry per target of `looked_at`, in its order.
            let mut memory: Vec<Memory> = Vec::new();
            // The targets of `looked_at` that were adopted (usually none).
            let mut adopted: Vec<usize> = Vec::new();
            let mut reader = Reader::default();
            let mut table = Table::default();
            // The last look at every target found nothing to follow up.
            let mut quiet = false;
            loop {
                std::thread::sleep(pace.interval);
                let snapshot = targets.lock().map(|t| t.clone()).unwrap_or_default();
                if !Arc::ptr_eq(&snapshot, &looked_at) {
                    memory = carried_over(&looked_at, memory, &snapshot);
                    looked_at = snapshot;
                    adopted = (0..looked_at.len())
                        .filter(|&k| looked_at[k].adopted)
                        .collect();
                    reader =
                        Reader::for_listeners(looked_at.iter().flat_map(|t| &t.instance.listeners));
                    quiet = false;
                }
                if looked_at.is_empty() {
                    continue;
                }
                let read = reader.read(&mut table);
                let reports = if quiet && matches!(read, Ok(Read::Unchanged)) {
                    // The same masters, sockets and queues as a look that found all
                    // well would find all well again; only an adopted master's end
                    // does not show in them.
                    adopted_gone(&looked_at, &adopted)
                } else {
                    let look = look_at_all(&looked_at, &mut memory, read.map(|_| &table), pace);
                    quiet = look.quiet;
                    look.reports
                };
                if reports.is_empty() {
                    continue;
                }
                quiet = false;
                if events.send(Event::Probed(reports)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// The memory of the masters that are still targets, in the order of `new`; a master
/// that is new to the prober (same instance, another pid included) starts afresh.
fn carried_over(old: &[Target], memory: Vec<Memory>, new: &[Target]) -> Vec<Memory> {
    let mut by_master: HashMap<(&str, i32), Memory> = old
        .iter()
        .zip(memory)
        .map(|(t, m)| ((t.instance.name.as_str(), t.pid), m))
        .collect();
    new.iter()
        .map(|t| {
            by_master
                .remove(&(t.instance.name.as_str(), t.pid))
                .unwrap_or_default()
        })
        .collect()
}

/// The adopted masters (`targets[k]` for each `k` of `adopted`) that no longer exist.
fn adopted_gone(targets: &[Target], adopted: &[usize]) -> Vec<Probe> {
    adopted
        .iter()
        .map(|&k| &targets[k])
        .filter(|t| kill(Pid::from_raw(t.pid), None).is_err())
        .map(|t| Probe {
            name: t.instance.name.clone(),
            pid: t.pid,
            gone: true,
            failure: Some("the master process is gone".into()),
        })
        .collect()
}

/// What one look at every target found.
struct Look {
    /// What the supervisor must hear about.
    reports: Vec<Probe>,
    /// Nothing to follow up: every target was looked at (none too young), and none
    /// is suspect, failing or has connections waiting.
    quiet: bool,
}

/// One look at every target (`memory` holds one entry per target, in order), with the
/// socket table of this interval.
fn look_at_all(
    targets: &[Target],
    memory: &mut [Memory],
    table: std::io::Result<&Table>,
    pace: Pace,
) -> Look {
    let mut reports = Vec::new();
    let mut to_probe = Vec::new();
    let mut quiet = true;
    let now = Instant::now();
    for (k, (target, mem)) in targets.iter().zip(memory.iter_mut()).enumerate() {
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
        if now.saturating_duration_since(target.since) < pace.interval * 2 {
            quiet = false;
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
        quiet &= !suspect && !mem.queued;
        let due = mem.failing
            || mem
                .last_smtp_probe
                .is_none_or(|t| t.elapsed() >= pace.smtp_probe_every);
        // Suspect, but probed recently and it answered: it waits for its turn.
        if suspect && due {
            to_probe.push(k);
        }
    }
    let probed = probe_all(targets, &to_probe);
    for (k, failure) in to_probe.into_iter().zip(probed) {
        let (target, mem) = (&targets[k], &mut memory[k]);
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
    Look {
        quiet: quiet && reports.is_empty(),
        reports,
    }
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

/// Probes the listeners of `targets[k]` for each `k` as `status` does, all at once;
/// for each, why it does not serve, if it does not.
fn probe_all(targets: &[Target], which: &[usize]) -> Vec<Option<String>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = which
            .iter()
            .map(|&k| scope.spawn(move || failure_of(&targets[k].instance)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postfix::master_cf::{BindAddr, Listener};

    fn target(name: &str, pid: i32, listen: &str) -> Target {
        let addr: std::net::SocketAddr = listen.parse().unwrap();
        Target {
            instance: Instance {
                name: name.into(),
                group: None,
                enabled: true,
                config_directory: format!("/etc/{name}").into(),
                queue_directory: None,
                data_directory: None,
                myhostname: None,
                listeners: vec![Listener {
                    addr: if addr.ip().is_unspecified() {
                        BindAddr::Any
                    } else {
                        BindAddr::Ip(addr.ip())
                    },
                    port: addr.port(),
                    service: "smtp/inet".into(),
                    command: "smtpd".into(),
                }],
                record: None,
                broken: None,
            },
            pid,
            adopted: false,
            since: Instant::now(),
        }
    }

    /// The sockets recorded in tests/data/proc_net: 127.0.0.1:2525 with two
    /// connections waiting, 0.0.0.0:25 with none.
    fn recorded() -> Table {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/proc_net/");
        Table::parse(
            &std::fs::read_to_string(format!("{dir}tcp")).unwrap(),
            &std::fs::read_to_string(format!("{dir}tcp6")).unwrap(),
        )
    }

    #[test]
    fn memory_follows_the_master_not_the_position() {
        let old = vec![
            target("postfix-b1", 10, "0.0.0.0:25"),
            target("postfix-b2", 20, "127.0.0.1:2525"),
        ];
        let memory = vec![
            Memory {
                queued: true,
                ..Memory::default()
            },
            Memory {
                failing: true,
                ..Memory::default()
            },
        ];
        // b2 was restarted (a new pid), b3 is new, and the order changed.
        let new = vec![
            target("postfix-b3", 30, "0.0.0.0:25"),
            target("postfix-b2", 21, "127.0.0.1:2525"),
            target("postfix-b1", 10, "0.0.0.0:25"),
        ];
        let carried = carried_over(&old, memory, &new);
        assert_eq!(carried.len(), 3);
        assert!(!carried[0].queued && !carried[0].failing);
        assert!(
            !carried[1].queued && !carried[1].failing,
            "a new master starts afresh"
        );
        assert!(carried[2].queued);
    }

    #[test]
    fn connections_waiting_on_two_looks_or_a_listener_not_bound_are_suspect() {
        let table = recorded();
        let mut mem = Memory::default();
        let waiting = target("postfix-b1", 10, "127.0.0.1:2525").instance;
        assert_eq!(suspicion(&waiting, &table, &mut mem), None, "first look");
        assert!(mem.queued);
        let why = suspicion(&waiting, &table, &mut mem).unwrap();
        assert!(why.contains("2 connection(s) wait"), "{why}");
        let fine = target("postfix-b2", 20, "0.0.0.0:25").instance;
        let mut mem = Memory::default();
        assert_eq!(suspicion(&fine, &table, &mut mem), None);
        assert_eq!(suspicion(&fine, &table, &mut mem), None);
        let unbound = target("postfix-b3", 30, "127.0.0.1:2600").instance;
        let why = suspicion(&unbound, &table, &mut Memory::default()).unwrap();
        assert!(why.contains("not listening"), "{why}");
    }

    /// A look that finds every listener bound and nothing waiting is quiet: the next
    /// interval may skip the look when the socket table has not changed. One with
    /// connections waiting is not, even before it is suspect.
    #[test]
    fn a_quiet_look_only_when_nothing_is_waiting() {
        let pace = Pace {
            interval: Duration::from_secs(1),
            smtp_probe_every: Duration::from_secs(60),
        };
        let table = recorded();
        let old = |mut t: Target| {
            t.since = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
            t
        };
        let fine = vec![old(target("postfix-b1", 10, "0.0.0.0:25"))];
        let look = look_at_all(&fine, &mut [Memory::default()], Ok(&table), pace);
        assert!(look.reports.is_empty() && look.quiet);
        let waiting = vec![old(target("postfix-b2", 20, "127.0.0.1:2525"))];
        let look = look_at_all(&waiting, &mut [Memory::default()], Ok(&table), pace);
        assert!(look.reports.is_empty() && !look.quiet);
        let unreadable = Err(std::io::Error::other("no netlink, no /proc"));
        let mut memory = [Memory {
            last_smtp_probe: Some(Instant::now()),
            ..Memory::default()
        }];
        // Suspect, but probed a moment ago: no probe now, and not quiet.
        let look = look_at_all(&fine, &mut memory, unreadable, pace);
        assert!(look.reports.is_empty() && !look.quiet);
    }

    /// Masters that started less than two intervals ago are left alone: nothing is
    /// reported and nothing probed, whatever the table says.
    #[test]
    fn a_young_master_is_not_looked_at() {
        let targets = vec![target("postfix-b1", 10, "127.0.0.1:2600")];
        let mut memory = vec![Memory::default()];
        let pace = Pace {
            interval: Duration::from_secs(1),
            smtp_probe_every: Duration::from_secs(60),
        };
        let table = recorded();
        let look = look_at_all(&targets, &mut memory, Ok(&table), pace);
        assert!(look.reports.is_empty());
        assert!(!look.quiet, "it must be looked at again");
        assert!(memory[0].last_smtp_probe.is_none());
    }
}

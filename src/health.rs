//! Health of instances: whether the master runs (its pid file and the file's lock),
//! its processes, whether every listener answers, queue sizes, `postfix check`, the
//! service manager's view, and one verdict per instance with the reasons behind it.
//! `instancectl status` reports it; the supervisor uses the same probes to decide that
//! an instance is hung.

pub mod conflicts;
pub mod listening;
pub mod procs;
pub mod verdict;

pub use verdict::Verdict;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ManagerView;
use crate::manager::ServiceManager;
use crate::postfix::Postfix;

use crate::postfix::queue::QueueCounts;
use crate::probe::sockets;
use crate::probe::{ListenerStatus, millis, probe_kinds, probe_listener};

use crate::check::{self, CheckPolicy, CheckResult};
use crate::output::rfc3339;
use crate::postfix::pid_file::{self, LockTable, MasterState};
use conflicts::{Conflict, Conflicts};
use procs::{ProcInfo, ProcessTable};
use verdict::Facts;

/// The master's state with its process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MasterReport {
    #[serde(flatten)]
    pub state: MasterState,
    /// When the running master started (RFC 3339, UTC).
    pub started_at: Option<String>,
    #[serde(skip)]
    pub start_time: Option<u64>,
    pub uptime_seconds: Option<u64>,
}

/// The master and every process below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Processes {
    pub count: usize,
    /// The sum of the processes' resident set sizes (shared pages count in each).
    pub rss_bytes: u64,
    pub list: Vec<ProcInfo>,
}

/// Queue sizes: messages per queue and in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queues {
    #[serde(flatten)]
    pub counts: QueueCounts,
    pub total: u64,
}

/// Everything status knows about one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStatus {
    /// `-` for the primary instance, as postmulti says.
    pub name: String,
    pub group: Option<String>,
    /// The role instancectl gave it; `primary` for the primary; null when unknown.
    pub role: Option<String>,
    /// postmulti's multi_instance_enable.
    pub enabled: bool,
    pub config_directory: PathBuf,
    /// `null` for a broken instance.
    pub queue_directory: Option<PathBuf>,
    /// In effect: main.cf's, else Postfix's default (the host name).
    pub myhostname: String,
    pub verdict: Verdict,
    /// The problems behind the verdict; empty when there are none.
    pub reasons: Vec<String>,
    /// What brings it back (null for healthy, on-demand and disabled instances).
    pub fix: Option<verdict::Fix>,
    pub warnings: Vec<String>,
    pub manager: ManagerView,
    pub master: MasterReport,
    /// Null when the master does not run.
    pub processes: Option<Processes>,
    pub listeners: Vec<ListenerStatus>,
    /// Null when the queue directory cannot be read (see `queues_error`).
    pub queues: Option<Queues>,
    pub queues_error: Option<String>,
    pub check: CheckResult,
    /// The smart host the instance relays through, and whether credentials are
    /// present (never the secret); null when it relays through none.
    pub relay: Option<crate::relay::RelaySummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostInfo {
    pub hostname: String,
    pub postfix_version: String,
    pub manager: crate::manager::ManagerKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The worst verdict that fails the status: broken, down, degraded, or (with
    /// `--strict`) stopped; healthy when none does.
    pub verdict: Verdict,
    /// The exit status of `instancectl status`: 0 healthy, 1 otherwise.
    pub exit_status: i32,
    /// Whether an instance stopped on purpose fails the status (`--strict`).
    pub strict: bool,
    pub instances: usize,
    pub healthy: usize,
    pub on_demand: usize,
    pub disabled: usize,
    pub stopped: usize,
    pub degraded: usize,
    pub down: usize,
    pub broken: usize,
}

/// The whole status report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// RFC 3339, UTC.
    pub generated_at: String,
    #[serde(skip)]
    pub generated_at_unix: u64,
    pub host: HostInfo,
    /// How long gathering took.
    pub duration_ms: f64,
    pub summary: Summary,
    pub instances: Vec<InstanceStatus>,
    pub conflicts: Vec<Conflict>,
}

/// How to gather.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each listener probe gives up after this.
    pub probe_timeout: Duration,
    pub check: CheckPolicy,
    /// An instance stopped on purpose fails the status.
    pub strict: bool,
}

/// What one instance's worker finds out.
struct Observed {
    master: MasterState,
    listeners: Vec<ListenerStatus>,
    queues: std::result::Result<QueueCounts, String>,
    check: CheckResult,
    /// Other programs listening on the running master's addresses and ports.
    foreign: Vec<sockets::Foreign>,
    /// Its smart host, when it relays through one.
    relay: Option<crate::relay::RelaySummary>,
}

/// Looks at one instance: pid file and lock, listeners (in parallel), queues, and
/// postfix check (in parallel with the rest).
fn observe(
    postfix: &Postfix,
    instance: &Instance,
    locks: Option<&LockTable>,
    listening: &[sockets::ListeningSocket],
    opts: &Options,
    checks: &check::Slots,
) -> Observed {
    // The check first: remembered it costs a file read; when it runs, the probes
    // below would only compete with it for the CPU.
    let check = check::check(postfix, instance, &opts.check, checks);
    let relay = Some(crate::relay::summary(instance)).filter(|r| r.relay_host.is_some());
    std::thread::scope(|s| {
        let master = match instance.pid_file() {
            Some(file) => pid_file::probe(&file, locks),
            None => MasterState::not_known("the instance's queue directory is not known"),
        };
        // A master that does not run has no sockets: whatever answers in its place is
        // reported from the probes.
        let foreign = match master.pid.filter(|_| master.running) {
            Some(pid) => sockets::foreign(&instance.listeners, Some(pid), listening),
            None => Vec::new(),
        };
        // What the same master answered before, while it still holds its listeners:
        // no connection, so smtpd writes nothing to the mail log.
        let greetings = opts
            .check
            .cache_dir
            .as_ref()
            .map(|dir| listening::greetings_file(dir, instance));
        let running_pid = master.pid.filter(|_| master.running);
        if let (Some(path), Some(pid), false) = (&greetings, running_pid, opts.check.recheck)
            && let Some(listeners) = listening::recall(path, instance, pid, listening)
        {
            return Observed {
                master,
                listeners,
                queues: queue_counts(instance),
                check,
                foreign,
                relay,
            };
        }
        let probe_all = instance.enabled || master.running;
        let probes: Vec<_> = instance
            .listeners
            .iter()
            .zip(probe_kinds(instance))
            .map(|(l, kind)| {
                s.spawn(move || {
                    if probe_all {
                        probe_listener(l, kind, opts.probe_timeout)
                    } else {
                        ListenerStatus {
                            address: l.to_string(),
                            probed: l.probe_addr().to_string(),
                            service: l.service.clone(),
                            command: l.command.clone(),
                            probe: kind,
                            ok: false,
                            banner: None,
                            latency_ms: None,
                            error: Some("not probed: the instance is disabled".into()),
                            remembered: false,
                        }
                    }
                })
            })
            .collect();
        let queues = queue_counts(instance);
        let listeners: Vec<ListenerStatus> = probes
            .into_iter()
            .map(|p| p.join().expect("listener probe panicked"))
            .collect();
        if let (Some(path), Some(pid), None) = (&greetings, running_pid, &opts.check.cannot_run) {
            listening::remember(path, pid, &listeners);
        }
        Observed {
            master,
            listeners,
            queues,
            check,
            foreign,
            relay,
        }
    })
}

/// The instance's queue counts, read in one pass.
fn queue_counts(instance: &Instance) -> Result<QueueCounts, String> {
    match &instance.queue_directory {
        Some(dir) => QueueCounts::read_checked(dir),
        None => Err("the instance's queue directory is not known".into()),
    }
}

/// How many instances are looked at at once: a look mostly waits for the kernel
/// (files, /proc) or for a greeting, so a few per core.
fn observers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 8)
        .unwrap_or(16)
}

/// Gathers the status of `selected` (a subset of `all`, which conflicts are computed
/// against). Instances are looked at in parallel, each probe with its own timeout,
/// while the service manager is asked for its view; the process table is read once.
pub fn gather(
    host: &Host,
    manager: &dyn ServiceManager,
    all: &[Instance],
    selected: &[Instance],
    opts: &Options,
) -> Report {
    let started = Instant::now();
    let postfix = &host.postfix;
    // postfix check is a shell script with a dozen children: run a few at a time, not
    // fifty at once on a mail server.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4);
    let checks = check::Slots::one_round(workers);
    let checks = &checks;
    let (table, views, observed) = std::thread::scope(|s| {
        let table = s.spawn(ProcessTable::snapshot);
        let views = s.spawn(|| manager.views(host, selected));
        let locks = s.spawn(LockTable::read);
        let listening = sockets::listening();
        let locks = locks.join().expect("reading /proc/locks panicked");
        let observed = crate::parallel::map(selected, observers(), |instance| {
            observe(postfix, instance, locks.as_ref(), &listening, opts, checks)
        });
        let views = views.join().expect("manager views panicked");
        (table.join().unwrap_or_default(), views, observed)
    });

    let hostname = conflicts::host_name();
    let conflicts = Conflicts::find(all, &hostname);
    let now = crate::output::unix_now();

    let instances: Vec<InstanceStatus> = selected
        .iter()
        .zip(views)
        .zip(observed)
        .map(|((instance, view), seen)| {
            let name = instance.name.as_str();
            let myhostname = conflicts.myhostname(instance, &hostname);
            let (clashes, same) = conflicts.of(name);
            let master_proc = seen.master.pid.and_then(|p| table.get(p));
            let uptime = master_proc.map(|p| now.saturating_sub(p.start_time));
            let stale_name = seen
                .master
                .pid_file_pid
                .filter(|_| seen.master.stale)
                .and_then(|p| table.get(p))
                .map(|p| p.name.as_str());
            let queues_ok = seen.queues.as_ref().ok();
            let judgement = verdict::judge(&Facts {
                name,
                config_directory: &instance.config_directory,
                enabled: instance.enabled,
                held_down: host.state.is_held_down(name),
                broken: instance.broken.as_deref(),
                foreign: &seen.foreign,
                master: &seen.master,
                stale_pid_process: stale_name,
                manager: &view,
                listeners: &seen.listeners,
                check: &seen.check,
                queues: queues_ok,
                clashes: &clashes,
                myhostname: &myhostname,
                same_myhostname: &same,
            });
            let mut warnings = judgement.warnings;
            warnings.extend(conflicts.answered_by_another(name, &myhostname, &seen.listeners));
            if !seen.master.running {
                for l in seen.listeners.iter().filter(|l| l.ok) {
                    warnings.push(format!(
                        "{} answers although this instance's master does not run: another \
                         process has the port{}",
                        l.address,
                        l.banner
                            .as_deref()
                            .map(|b| format!(" ({b})"))
                            .unwrap_or_default()
                    ));
                }
            }
            let processes = seen.master.pid.filter(|_| seen.master.running).map(|pid| {
                let list = table.tree(pid);
                Processes {
                    count: list.len(),
                    rss_bytes: list.iter().map(|p| p.rss_bytes).sum(),
                    list,
                }
            });
            InstanceStatus {
                name: instance.name.clone(),
                group: instance.group.clone(),
                role: instance.role_name(),
                enabled: instance.enabled,
                config_directory: instance.config_directory.clone(),
                queue_directory: instance.queue_directory.clone(),
                myhostname,
                verdict: judgement.verdict,
                reasons: judgement.reasons,
                fix: judgement.fix,
                warnings,
                manager: view,
                master: MasterReport {
                    started_at: master_proc.map(|p| rfc3339(p.start_time)),
                    start_time: master_proc.map(|p| p.start_time),
                    uptime_seconds: uptime,
                    state: seen.master,
                },
                processes,
                listeners: seen.listeners,
                queues: seen.queues.as_ref().ok().map(|c| Queues {
                    total: c.total(),
                    counts: c.clone(),
                }),
                queues_error: seen.queues.err(),
                check: seen.check,
                relay: seen.relay,
            }
        })
        .collect();

    let names: Vec<&str> = selected.iter().map(|i| i.name.as_str()).collect();
    let conflicts = conflicts.involving(&names);
    let count = |v: Verdict| instances.iter().filter(|i| i.verdict == v).count();
    let verdict = instances
        .iter()
        .map(|i| i.verdict)
        .filter(|v| !v.is_ok(opts.strict))
        .max()
        .unwrap_or(Verdict::Healthy);
    let summary = Summary {
        verdict,
        exit_status: if verdict == Verdict::Healthy { 0 } else { 1 },
        strict: opts.strict,
        instances: instances.len(),
        healthy: count(Verdict::Healthy),
        on_demand: count(Verdict::OnDemand),
        disabled: count(Verdict::Disabled),
        stopped: count(Verdict::Stopped),
        degraded: count(Verdict::Degraded),
        down: count(Verdict::Down),
        broken: count(Verdict::Broken),
    };
    Report {
        generated_at: rfc3339(now),
        generated_at_unix: now,
        host: HostInfo {
            hostname,
            postfix_version: host.postfix.version.to_string(),
            manager: manager.kind(),
        },
        duration_ms: millis(started.elapsed()),
        summary,
        instances,
        conflicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_732_290_895), "2024-11-22T15:54:55Z");
    }
}

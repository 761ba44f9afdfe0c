//! Reconcile: compare the desired state (postmulti's list and enable flags, stop
//! marks, what instancectl recorded) with the actual state (processes, pid files,
//! SMTP answers, `postfix check`, and whatever the service manager keeps), print the
//! plan, and apply it. A failing configuration is reported, never restarted.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ManagerError;
use crate::manager::{Drift, Repair, ServiceManager};
use crate::output::{self, Schema};

/// What one reconcile pass found and did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub found: usize,
    pub repaired: usize,
    pub reported: usize,
    pub failed: usize,
}

/// How long an instance may fail its SMTP probes before it is restarted.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub grace: Duration,
}

/// The drift of one instance: the manager's own first (a job that cannot load must be
/// mended before it is started), then the generic checks.
pub fn drift(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    options: Options,
) -> Result<Vec<Drift>> {
    // launchd leaves the primary to Apple's on-demand job: nothing to reconcile.
    if !manager.manages(instance) {
        return Ok(Vec::new());
    }
    // A broken instance's files would make every repair act on the primary.
    if let Some(why) = &instance.broken {
        return Ok(vec![Drift::new(format!("broken: {why}"), Repair::Report)]);
    }
    let mut found = manager.drift(host, instance)?;
    let wanted = instance.enabled && !host.state.is_held_down(&instance.name);
    let running = instance.running_master();
    // Postfix leaves master.pid behind on a clean stop too, so a pid file naming a
    // dead process only matters for an instance that should be running.
    if let (Some(pid), None, true) = (instance.pid_file_pid(), running, wanted) {
        found.push(Drift::new(
            format!(
                "stale pid file {} (pid {pid} is not running)",
                instance.pid_file().unwrap_or_default().display()
            ),
            Repair::Start,
        ));
    }
    match (wanted, running) {
        (true, None) => {
            let check = host.postfix.check(&instance.config_directory)?;
            if check.success() {
                if !found.iter().any(|d| matches!(d.repair, Repair::Start)) {
                    found.push(Drift::new(
                        "enabled but its master is not running",
                        Repair::Start,
                    ));
                }
            } else {
                found.retain(|d| !matches!(d.repair, Repair::Start));
                found.push(Drift::new(
                    format!(
                        "enabled but not running, and `postfix check` fails: {}",
                        check.message()
                    ),
                    Repair::Report,
                ));
            }
        }
        (false, Some(pid)) => found.push(Drift::new(
            format!("disabled or stopped, but its master runs (pid {pid})"),
            Repair::Stop,
        )),
        (true, Some(_)) => {
            if let Some(why) = silent_for(instance, options.grace) {
                found.push(Drift::new(
                    format!(
                        "master runs but SMTP has not answered for {} s: {why}",
                        options.grace.as_secs()
                    ),
                    Repair::Restart,
                ));
            }
        }
        _ => {}
    }
    Ok(found)
}

/// Probes the listeners until they answer or `grace` has passed; returns the last
/// failure if they never answered.
fn silent_for(instance: &Instance, grace: Duration) -> Option<String> {
    let deadline = Instant::now() + grace;
    loop {
        let failures = crate::probe::not_serving(instance);
        if failures.is_empty() {
            return None;
        }
        if Instant::now() >= deadline {
            return Some(failures.join("; "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One pass: find the drift of every instance, print the plan, apply it (in dry-run
/// mode the runner prints the commands instead).
pub fn pass(host: &Host, manager: &dyn ServiceManager, options: Options) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for instance in host.instances()? {
        for drift in drift(host, manager, &instance, options)? {
            outcome.found += 1;
            output::line(format_args!(
                "{}: {} -> {}",
                instance.display_name(),
                drift.problem,
                drift.repair.describe()
            ));
            let result = match &drift.repair {
                Repair::Start => manager.release_and_start(host, &instance),
                Repair::Stop => manager.hold_down_and_stop(host, &instance),
                Repair::Restart => manager.release_and_restart(host, &instance),
                Repair::Manager { action, .. } => manager.repair(host, &instance, *action),
                Repair::Report => {
                    outcome.reported += 1;
                    record(&instance, &drift, "to fix by hand", None);
                    continue;
                }
            };
            match result {
                Ok(()) if host.runner.dry_run() => {
                    outcome.repaired += 1;
                    record(&instance, &drift, "would repair", None);
                }
                Ok(()) => {
                    outcome.repaired += 1;
                    record(&instance, &drift, "repaired", None);
                    tracing::info!(instance = instance.display_name(), problem = %drift.problem, "drift repaired");
                }
                Err(e) => {
                    outcome.failed += 1;
                    record(&instance, &drift, "failed", Some(e.to_string()));
                    eprintln!("{}: repair failed: {e}", instance.display_name());
                }
            }
        }
    }
    Ok(outcome)
}

/// One drift in the `instancectl.reconcile/v1` document: what was wrong, the repair,
/// and what became of it.
fn record(instance: &Instance, drift: &Drift, result: &str, error: Option<String>) {
    #[derive(serde::Serialize)]
    struct Found<'a> {
        name: &'a str,
        problem: &'a str,
        repair: &'a str,
        /// "repaired", "would repair" (--dry-run), "to fix by hand" or "failed".
        result: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    }
    output::record(
        Schema::RECONCILE,
        "drifts",
        Found {
            name: &instance.name,
            problem: &drift.problem,
            repair: drift.repair.describe(),
            result,
            error,
        },
    );
}

/// `instancectl reconcile`: one pass; exit 1 when something could not be repaired.
pub fn run(host: &Host, manager: &dyn ServiceManager, options: Options) -> Result<()> {
    // A document with no drift still has the list, empty.
    output::field(Schema::RECONCILE, "drifts", Vec::<()>::new());
    let outcome = pass(host, manager, options)?;
    output::fields(Schema::RECONCILE, &outcome);
    let verb = if host.runner.dry_run() {
        "would repair"
    } else {
        "repaired"
    };
    match outcome.found {
        0 => output::line("no drift: every instance is as it should be"),
        n => output::line(format_args!(
            "{n} problem(s) found: {} {verb}, {} to fix by hand, {} failed",
            outcome.repaired, outcome.reported, outcome.failed
        )),
    }
    if outcome.reported + outcome.failed > 0 {
        return Err(ManagerError::ProblemsRemain.into());
    }
    Ok(())
}

/// `instancectl supervise` with a manager that keeps masters running by itself
/// (launchd, or Postfix's scripts): a reconcile pass every interval until SIGTERM or
/// SIGINT, so drift is found and repaired. `before_pass` runs first in each pass,
/// with the host lock held (the commands finish interrupted changes there).
pub fn watch(
    host: &Host,
    manager: &dyn ServiceManager,
    options: Options,
    interval: Duration,
    before_pass: &dyn Fn(&Host),
) -> Result<()> {
    host.require_root()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Error::system("cannot handle signals", e))?;
    }
    tracing::info!(manager = ?manager.kind(), interval = ?interval, "watching for drift");
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        {
            let _lock = host.lock()?;
            before_pass(host);
            if let Err(e) = pass(host, manager, options) {
                tracing::error!(error = %e, "reconcile pass failed");
            }
        }
        let until = Instant::now() + interval;
        while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    tracing::info!("stopped watching");
    Ok(())
}

//! start, stop, restart, reload, enable and disable: the service manager does the
//! work, in postmulti's start order within a group (stop in reverse); groups and
//! instances outside groups do not depend on each other and start and stop in
//! parallel. One progress step per instance, each ending in a line that says what
//! became of it.

use std::time::Duration;

use crate::check;
use crate::error::InputError;
use crate::error::Result;
use crate::host::{Host, Selection};
use crate::instance::{self, Instance};
use crate::manager::ServiceManager;
use crate::output::{self, Schema};
use crate::progress;

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What became of one instance, an entry of the `instancectl.lifecycle/v1` document.
#[derive(serde::Serialize)]
struct Done<'a> {
    name: &'a str,
    /// What was done to it: start, stop, restart, reload, enable or disable (a restart
    /// is a stop and a start, an enable ends with a start).
    action: &'a str,
    /// "started", "already running", "stopped", "already stopped", "restarted",
    /// "reloaded", "enabled", "disabled", "skipped", "left alone" or "failed".
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    master_pid: Option<i32>,
    /// Why it was skipped or left alone, or the error it failed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl<'a> Done<'a> {
    fn new(instance: &'a Instance, action: &'a str, result: &'a str) -> Self {
        Done {
            name: &instance.name,
            action,
            result,
            master_pid: None,
            reason: None,
        }
    }

    fn pid(self, pid: i32) -> Self {
        Done {
            master_pid: Some(pid),
            ..self
        }
    }

    fn because(self, reason: impl ToString) -> Self {
        Done {
            reason: Some(reason.to_string()),
            ..self
        }
    }

    /// The line for people and the document's entry.
    fn report(self, line: impl std::fmt::Display) {
        output::entry(Schema::LIFECYCLE, "instances", line, self);
    }
}

/// Records that `action` failed on the instance (the error itself is said at the end
/// of the run), and passes the result on.
fn failed<T>(instance: &Instance, action: &str, result: Result<T>) -> Result<T> {
    if let Err(e) = &result {
        output::record(
            Schema::LIFECYCLE,
            "instances",
            Done::new(instance, action, "failed").because(e),
        );
    }
    result
}

/// The selected instances that may run. Naming a disabled instance is an error;
/// a group or `--all` skips disabled ones, as postmulti does.
fn runnable(host: &Host, selection: &Selection, action: &str) -> Result<Vec<Instance>> {
    let selected = sound(host, selection, action)?;
    if let (Selection::One(name), [only]) = (selection, selected.as_slice())
        && !only.enabled
    {
        return Err(InputError::Disabled { name: name.clone() }.into());
    }
    Ok(selected
        .into_iter()
        .filter(|i| {
            if !i.enabled {
                Done::new(i, action, "skipped")
                    .because("disabled")
                    .report(format_args!("{}: disabled, skipped", i.display_name()));
            }
            i.enabled
        })
        .collect())
}

/// The selected instances that are not broken. Naming a broken instance is an
/// error that says how to mend it; a group or `--all` skips broken ones, and says so.
fn sound(host: &Host, selection: &Selection, action: &str) -> Result<Vec<Instance>> {
    let selected = host.select(selection)?;
    if let (Selection::One(_), [only]) = (selection, selected.as_slice()) {
        only.require_sound()?;
    }
    Ok(selected
        .into_iter()
        .filter(|i| match i.require_sound() {
            Ok(()) => true,
            Err(e) => {
                let line = format!("{}: skipped: {e}", i.display_name());
                Done::new(i, action, "skipped").because(e).report(line);
                false
            }
        })
        .collect())
}

/// Starts the selection. Instances that do not depend on each other start at the same
/// time: each group is one chain in start order (in a group, output before input),
/// and every instance outside a group is a chain of its own.
pub fn start(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    let instances: Vec<Instance> = runnable(host, selection, "start")?
        .into_iter()
        .filter(|i| !unmanaged(manager, i, "start"))
        .collect();
    if manager.starts_sets() {
        return start_set(host, manager, &instances);
    }
    let checks = check::Slots::new(parallel_chains());
    in_chains(&instances, |chain| {
        chain
            .iter()
            .try_for_each(|i| start_one(host, manager, i, &checks))
    })
}

/// A manager that keeps the start order itself (the native supervisor) gets the
/// whole set in one request; then every instance is waited for at once.
fn start_set(host: &Host, manager: &dyn ServiceManager, instances: &[Instance]) -> Result<()> {
    let was_running: Vec<bool> = instances
        .iter()
        .map(|i| i.running_master().is_some())
        .collect();
    if let Err(e) = manager.release_and_start_set(host, instances) {
        // The supervisor starts what it can: say which ones run and which do not.
        for (instance, was) in instances.iter().zip(&was_running) {
            match instance.running_master() {
                Some(pid) if !host.runner.dry_run() => report_started(instance, pid, *was),
                _ => output::record(
                    Schema::LIFECYCLE,
                    "instances",
                    Done::new(instance, "start", "failed").because(&e),
                ),
            }
        }
        return Err(e);
    }
    if host.runner.dry_run() {
        return Ok(());
    }
    let pids: Vec<Result<i32>> = std::thread::scope(|s| {
        let waits: Vec<_> = instances
            .iter()
            .map(|i| s.spawn(move || crate::probe::wait_until_serving(i, START_TIMEOUT)))
            .collect();
        waits
            .into_iter()
            .map(|w| w.join().expect("start wait panicked"))
            .collect()
    });
    let mut first_error = None;
    for ((instance, pid), was) in instances.iter().zip(pids).zip(was_running) {
        match failed(instance, "start", pid) {
            Ok(pid) => report_started(instance, pid, was),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// How many chains run at once: a start runs `postfix check` (a shell script with a
/// dozen children), so not all fifty at once on a mail server.
fn parallel_chains() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 4)
        .unwrap_or(8)
}

/// Runs `each` on every chain, several chains at once; every chain runs to its end or
/// its first error, and the first error (in start order) is returned.
fn in_chains<'i>(
    instances: &'i [Instance],
    each: impl Fn(&[&'i Instance]) -> Result<()> + Sync,
) -> Result<()> {
    let chains = instance::start_chains(instances, |i| i.group.as_deref());
    crate::parallel::map(&chains, parallel_chains(), |chain| each(chain))
        .into_iter()
        .collect()
}

/// Says so, and returns true, when the service manager leaves the instance alone (under
/// launchd, the primary runs on demand under Apple's own job).
fn unmanaged(manager: &dyn ServiceManager, instance: &Instance, action: &str) -> bool {
    if manager.manages(instance) {
        return false;
    }
    Done::new(instance, action, "left alone")
        .because("runs on demand under the system's own job")
        .report(format_args!(
            "{}: runs on demand under the system's own job; left alone",
            instance.display_name()
        ));
    true
}

/// Whether instancectl has just checked the configuration itself and found it sound,
/// for a manager that would check it again before the start: the result remembered
/// by status or the last start, the quick check, or the full `postfix check` (see
/// [`CheckPolicy::before_start`]). A check that does not pass leaves the start to the
/// manager's own, which refuses it in Postfix's words.
fn checked_before_start(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    slots: &check::Slots,
) -> bool {
    if !manager.checks_before_start()
        || host.runner.dry_run()
        || instance.running_master().is_some()
    {
        return false;
    }
    check::before_start(&host.postfix, host.state.dir(), instance, slots).is_ok()
}

fn start_one(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    checks: &check::Slots,
) -> Result<()> {
    if unmanaged(manager, instance, "start") {
        return Ok(());
    }
    let was_running = instance.running_master();
    let step = progress::step(format!("{}: starting", instance.display_name()));
    let started = if checked_before_start(host, manager, instance, checks) {
        manager.release_and_start_checked(host, instance)
    } else {
        manager.release_and_start(host, instance)
    };
    failed(instance, "start", started)?;
    if let Some(pid) = serving_after(host, instance, "start", step)? {
        // The master that serves now is the one that ran before: a master that was
        // there but gave way (a stop under way that the start waited out) was replaced.
        report_started(instance, pid, was_running == Some(pid));
    }
    Ok(())
}

/// After the manager did `action`: the master's pid once the instance serves, or
/// None on a dry run, where nothing was started to wait for.
fn serving_after(
    host: &Host,
    instance: &Instance,
    action: &str,
    step: progress::Step,
) -> Result<Option<i32>> {
    if host.runner.dry_run() {
        step.done();
        return Ok(None);
    }
    let pid = failed(
        instance,
        action,
        crate::probe::wait_until_serving(instance, START_TIMEOUT),
    )?;
    step.clear();
    Ok(Some(pid))
}

fn report_started(instance: &Instance, pid: i32, was_running: bool) {
    let name = instance.display_name();
    if was_running {
        Done::new(instance, "start", "already running")
            .pid(pid)
            .report(format_args!("{name}: already running (master pid {pid})"));
    } else {
        Done::new(instance, "start", "started")
            .pid(pid)
            .report(format_args!("{name}: started (master pid {pid})"));
    }
}

/// Stops the selection: independent chains at the same time (see [`start`]), each
/// in reverse start order.
pub fn stop(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    let instances: Vec<Instance> = sound(host, selection, "stop")?
        .into_iter()
        .filter(|i| !unmanaged(manager, i, "stop"))
        .collect();
    if manager.starts_sets() {
        let was_running: Vec<bool> = instances
            .iter()
            .map(|i| i.running_master().is_some())
            .collect();
        manager
            .hold_down_and_stop_set(host, &instances)
            .inspect_err(|e| {
                for instance in &instances {
                    output::record(
                        Schema::LIFECYCLE,
                        "instances",
                        Done::new(instance, "stop", "failed").because(e),
                    );
                }
            })?;
        if !host.runner.dry_run() {
            for (instance, was) in instances.iter().zip(was_running).rev() {
                report_stopped(instance, was);
            }
        }
        return Ok(());
    }
    in_chains(&instances, |chain| {
        chain
            .iter()
            .rev()
            .try_for_each(|i| stop_one(host, manager, i))
    })
}

fn stop_one(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    if unmanaged(manager, instance, "stop") {
        return Ok(());
    }
    // A master, or a process the manager runs for it without one yet (launchd
    // spawning the job, `state = xpcproxy`): either way this stop stops something.
    let was_running =
        instance.running_master().is_some() || manager.view(host, instance).pid.is_some();
    let step = progress::step(format!("{}: stopping", instance.display_name()));
    failed(instance, "stop", manager.hold_down_and_stop(host, instance))?;
    step.clear();
    if !host.runner.dry_run() {
        report_stopped(instance, was_running);
    }
    Ok(())
}

fn report_stopped(instance: &Instance, was_running: bool) {
    let word = if was_running {
        "stopped"
    } else {
        "already stopped"
    };
    Done::new(instance, "stop", word).report(format_args!("{}: {word}", instance.display_name()));
}

pub fn restart(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    let instances = runnable(host, selection, "restart")?;
    if manager.restarts_in_place() {
        for instance in &instances {
            restart_one(host, manager, instance)?;
        }
        return Ok(());
    }
    // Check every configuration before stopping anything: a configuration error
    // found after the stop would leave an instance down that was serving.
    for instance in instances.iter().filter(|i| manager.manages(i)) {
        let check = host.postfix.require_check(&instance.config_directory);
        failed(instance, "restart", check).map_err(|e| {
            e.context(format!(
                "{} fails `postfix check`, so nothing was restarted (what runs keeps \
                     running with the configuration it loaded); fix the configuration first",
                instance.display_name()
            ))
        })?;
    }
    for instance in instances.iter().rev() {
        stop_one(host, manager, instance)?;
    }
    let checks = check::Slots::new(1);
    for instance in &instances {
        start_one(host, manager, instance, &checks)?;
    }
    Ok(())
}

/// A restart the service manager does itself (launchd: `kickstart -k`), in start order.
fn restart_one(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    if unmanaged(manager, instance, "restart") {
        return Ok(());
    }
    let step = progress::step(format!("{}: restarting", instance.display_name()));
    failed(
        instance,
        "restart",
        manager.release_and_restart(host, instance),
    )?;
    let Some(pid) = serving_after(host, instance, "restart", step)? else {
        return Ok(());
    };
    Done::new(instance, "restart", "restarted")
        .pid(pid)
        .report(format_args!(
            "{}: restarted (master pid {pid})",
            instance.display_name()
        ));
    Ok(())
}

pub fn reload(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    for instance in runnable(host, selection, "reload")? {
        if unmanaged(manager, &instance, "reload") {
            continue;
        }
        failed(&instance, "reload", manager.reload(host, &instance))?;
        if !host.runner.dry_run() {
            Done::new(&instance, "reload", "reloaded")
                .report(format_args!("{}: reloaded", instance.display_name()));
        }
    }
    Ok(())
}

/// The selected secondary instances: the primary cannot be enabled, disabled or
/// destroyed, so naming it is an error and a group or `-a` leaves it out.
pub fn secondaries(host: &Host, selection: &Selection, done: &str) -> Result<Vec<Instance>> {
    let selected = host.select(selection)?;
    if let [only] = selected.as_slice()
        && matches!(selection, Selection::One(_))
        && only.is_primary()
    {
        return Err(InputError::PrimaryRefused { done: done.into() }.into());
    }
    Ok(selected.into_iter().filter(|i| !i.is_primary()).collect())
}

/// `selected`, when none of them is broken, nor any other instance's configuration.
/// Enable and disable act on all or none: postmulti refuses `-e enable` and `-e
/// disable` of any instance while one's main.cf cannot be read, selected or not, so
/// skipping the broken one would only fail on the next, and a disable would fail after
/// stopping the master. (Another instance left halfway by an interrupted run keeps its
/// directories, and postmulti does not mind it.)
fn all_sound(host: &Host, selected: Vec<Instance>) -> Result<Vec<Instance>> {
    selected.iter().try_for_each(Instance::require_sound)?;
    for other in host.instances()?.iter().filter(|i| {
        !i.is_primary() && i.queue_directory.is_none() && !selected.iter().any(|s| s.name == i.name)
    }) {
        other.require_sound().map_err(|e| {
            e.context("postmulti enables or disables no instance while one is broken")
        })?;
    }
    Ok(selected)
}

pub fn enable(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    for instance in all_sound(host, secondaries(host, selection, "enabled")?)? {
        failed(&instance, "enable", enable_one(host, manager, &instance))?;
        if !host.runner.dry_run() {
            // People read the start's line that follows.
            output::record(
                Schema::LIFECYCLE,
                "instances",
                Done::new(&instance, "enable", "enabled"),
            );
        }
        let instance = Instance {
            enabled: true,
            ..instance
        };
        start_one(host, manager, &instance, &check::Slots::new(1))?;
    }
    Ok(())
}

pub fn disable(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    let instances = all_sound(host, secondaries(host, selection, "disabled")?)?;
    for instance in instances.iter().rev() {
        let name = &instance.name;
        stop_one(host, manager, instance)?;
        failed(instance, "disable", disable_one(host, manager, instance))?;
        if !host.runner.dry_run() {
            Done::new(instance, "disable", "disabled").report(format_args!(
                "{name}: disabled; it stays down until `instancectl enable {name}`"
            ));
        }
    }
    Ok(())
}

fn enable_one(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    if !instance.enabled {
        host.postfix.postmulti().enable(&instance.name)?;
    }
    manager.set_enabled(host, instance, true)
}

fn disable_one(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    manager.set_enabled(host, instance, false)?;
    if instance.enabled {
        host.postfix.postmulti().disable(&instance.name)?;
    }
    Ok(())
}

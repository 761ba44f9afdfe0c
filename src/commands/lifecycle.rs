//! start, stop, restart, reload, enable and disable: the service manager does the
//! work, in postmulti's start order (stop in reverse), one progress step per
//! instance, each ending in a line that says what became of it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::{Host, Selection};
use crate::instance::Instance;
use crate::manager::ServiceManager;
use crate::progress;

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The selected instances that may run. Naming a disabled instance is an error;
/// a group or `--all` skips disabled ones, as postmulti does.
fn runnable(host: &Host, selection: &Selection) -> Result<Vec<Instance>> {
    let selected = sound(host, selection)?;
    if let (Selection::One(name), [only]) = (selection, selected.as_slice())
        && !only.enabled
    {
        return Err(Error::bad_input(format!(
            "{name} is disabled; `instancectl enable {name}` enables and starts it"
        )));
    }
    Ok(selected
        .into_iter()
        .filter(|i| {
            if !i.enabled {
                println!("{}: disabled, skipped", i.display_name());
            }
            i.enabled
        })
        .collect())
}

/// The selected instances that are not broken. Naming a broken instance is an
/// error that says how to mend it; a group or `--all` skips broken ones, and says so.
fn sound(host: &Host, selection: &Selection) -> Result<Vec<Instance>> {
    let selected = host.select(selection)?;
    if let (Selection::One(_), [only]) = (selection, selected.as_slice()) {
        only.require_sound()?;
    }
    Ok(selected
        .into_iter()
        .filter(|i| match i.require_sound() {
            Ok(()) => true,
            Err(e) => {
                println!("{}: skipped: {e}", i.display_name());
                false
            }
        })
        .collect())
}

pub fn start(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    host.require_root()?;
    for instance in runnable(host, selection)? {
        start_one(host, manager, &instance)?;
    }
    Ok(())
}

/// Says so, and returns true, when the service manager leaves the instance alone (under
/// launchd, the primary runs on demand under Apple's own job).
fn unmanaged(manager: &dyn ServiceManager, instance: &Instance) -> bool {
    if manager.manages(instance) {
        return false;
    }
    println!(
        "{}: runs on demand under the system's own job; left alone",
        instance.display_name()
    );
    true
}

fn start_one(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    if unmanaged(manager, instance) {
        return Ok(());
    }
    let was_running = instance.running_master();
    let step = progress::step(format!("{}: starting", instance.display_name()));
    manager.release_and_start(host, instance)?;
    if host.runner.dry_run() {
        step.done();
        return Ok(());
    }
    let pid = crate::probe::wait_until_serving(instance, START_TIMEOUT)?;
    step.clear();
    match was_running {
        Some(_) => println!(
            "{}: already running (master pid {pid})",
            instance.display_name()
        ),
        None => println!("{}: started (master pid {pid})", instance.display_name()),
    }
    Ok(())
}

pub fn stop(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    host.require_root()?;
    for instance in sound(host, selection)?.iter().rev() {
        stop_one(host, manager, instance)?;
    }
    Ok(())
}

fn stop_one(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    if unmanaged(manager, instance) {
        return Ok(());
    }
    let was_running = instance.running_master().is_some();
    let step = progress::step(format!("{}: stopping", instance.display_name()));
    manager.hold_down_and_stop(host, instance)?;
    step.clear();
    if !host.runner.dry_run() {
        let word = if was_running {
            "stopped"
        } else {
            "already stopped"
        };
        println!("{}: {word}", instance.display_name());
    }
    Ok(())
}

pub fn restart(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    host.require_root()?;
    let instances = runnable(host, selection)?;
    if manager.restarts_in_place() {
        for instance in &instances {
            restart_one(host, manager, instance)?;
        }
        return Ok(());
    }
    // Check every configuration before stopping anything: a configuration error
    // found after the stop would leave an instance down that was serving.
    for instance in instances.iter().filter(|i| manager.manages(i)) {
        host.postfix
            .require_check(&instance.config_directory)
            .map_err(|e| {
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
    for instance in &instances {
        start_one(host, manager, instance)?;
    }
    Ok(())
}

/// A restart the service manager does itself (launchd: `kickstart -k`), in start order.
fn restart_one(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    if unmanaged(manager, instance) {
        return Ok(());
    }
    let step = progress::step(format!("{}: restarting", instance.display_name()));
    manager.release_and_restart(host, instance)?;
    if host.runner.dry_run() {
        step.done();
        return Ok(());
    }
    let pid = crate::probe::wait_until_serving(instance, START_TIMEOUT)?;
    step.clear();
    println!("{}: restarted (master pid {pid})", instance.display_name());
    Ok(())
}

pub fn reload(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    host.require_root()?;
    for instance in runnable(host, selection)? {
        if unmanaged(manager, &instance) {
            continue;
        }
        manager.reload(host, &instance)?;
        if !host.runner.dry_run() {
            println!("{}: reloaded", instance.display_name());
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
        return Err(Error::bad_input(format!(
            "the primary instance cannot be {done}: postmulti needs it to manage the others"
        )));
    }
    Ok(selected.into_iter().filter(|i| !i.is_primary()).collect())
}

pub fn enable(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    host.require_root()?;
    for instance in secondaries(host, selection, "enabled")? {
        instance.require_sound()?;
        if !instance.enabled {
            host.postfix.postmulti().enable(&instance.name)?;
        }
        manager.set_enabled(host, &instance, true)?;
        let instance = Instance {
            enabled: true,
            ..instance
        };
        start_one(host, manager, &instance)?;
    }
    Ok(())
}

pub fn disable(host: &Host, manager: &dyn ServiceManager, selection: &Selection) -> Result<()> {
    host.require_root()?;
    for instance in secondaries(host, selection, "disabled")?.iter().rev() {
        let name = &instance.name;
        instance.require_sound()?;
        stop_one(host, manager, instance)?;
        manager.set_enabled(host, instance, false)?;
        if instance.enabled {
            host.postfix.postmulti().disable(name)?;
        }
        if !host.runner.dry_run() {
            println!("{name}: disabled; it stays down until `instancectl enable {name}`");
        }
    }
    Ok(())
}

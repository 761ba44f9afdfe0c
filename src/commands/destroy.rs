//! `instancectl destroy`: stop, disable, unregister and postmulti destroy. Queued mail
//! is never thrown away unless asked, and a group or every instance only goes with
//! `--yes` or a person's answer at the terminal.

use super::confirm::confirm;
use super::lifecycle::secondaries;
use crate::cli::DestroyArgs;
use crate::error::{Error, Result};
use crate::host::{Host, Selection};
use crate::instance::Instance;
use crate::manager::ServiceManager;
use crate::postfix::queue::QueueCounts;

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &DestroyArgs) -> Result<()> {
    let selection = args.instances.selection()?;
    host.require_root()?;
    let instances = secondaries(host, &selection, "destroyed")?;
    // Every instance's queue is looked at before the first one goes, and before
    // anyone is asked.
    for instance in &instances {
        refuse_queued(instance, args.force_discard_queue)?;
    }
    if !matches!(selection, Selection::One(_)) {
        let names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
        if names.is_empty() {
            return Err(Error::bad_input("no secondary instance is selected"));
        }
        confirm(
            &format!("destroy {} ({})", names.join(", "), names.len()),
            args.yes,
            host.runner.dry_run(),
        )?;
    }
    for instance in instances.iter().rev() {
        one(host, manager, instance, args.force_discard_queue)?;
    }
    Ok(())
}

/// Destroys one secondary instance (`apply` uses it for instances a manifest drops).
pub fn one(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    force_discard_queue: bool,
) -> Result<()> {
    let name = instance.name.as_str();
    refuse_queued(instance, force_discard_queue)?;
    let queued = QueueCounts::read(&instance.queue_directory);
    manager.hold_down_and_stop(host, instance)?;
    manager.set_enabled(host, instance, false)?;
    let postmulti = host.postfix.postmulti();
    if instance.enabled {
        postmulti.disable(name)?;
    }
    if queued.total() > 0 {
        discard_queue(host, &instance.config_directory)?;
    }
    manager.forget(host, instance)?;
    postmulti.destroy(name)?;
    remove_leftovers(host, instance)?;
    host.state.remove(&host.runner, name)?;
    if !host.runner.dry_run() {
        println!("{name}: destroyed");
    }
    Ok(())
}

fn refuse_queued(instance: &Instance, force_discard_queue: bool) -> Result<()> {
    let name = instance.name.as_str();
    let queued = QueueCounts::read(&instance.queue_directory);
    if queued.total() > 0 && !force_discard_queue {
        let detail: Vec<String> = queued
            .by_name()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(q, n)| format!("{n} in {q}"))
            .collect();
        return Err(Error::bad_input(format!(
            "{name} has {} queued message(s) ({}); let them be delivered (`postqueue -c {} -f`), \
             or pass --force-discard-queue to delete them with the instance",
            queued.total(),
            detail.join(", "),
            instance.config_directory.display()
        )));
    }
    Ok(())
}

fn discard_queue(host: &Host, config_dir: &std::path::Path) -> Result<()> {
    let dir = config_dir.to_string_lossy();
    // postsuper -d ALL covers hold, incoming, active and deferred; maildrop is named.
    for queues in [&[][..], &["maildrop"][..]] {
        let cmd = host
            .postfix
            .command("postsuper")
            .args(["-c", &dir, "-d", "ALL"])
            .args(queues.iter());
        host.runner.change(&cmd)?;
    }
    Ok(())
}

/// postmulti destroy removes the files Postfix installed, not those a running
/// instance made (pid files, caches); the instance's own directories go too. The
/// primary's directories are never touched, whatever an instance's main.cf says.
fn remove_leftovers(host: &Host, instance: &Instance) -> Result<()> {
    let primary = [
        &host.postfix.config_directory,
        &host.postfix.queue_directory,
        &host.postfix.data_directory,
    ];
    for dir in [
        &instance.config_directory,
        &instance.queue_directory,
        &instance.data_directory,
    ] {
        if primary.contains(&dir) || !dir.exists() || dir.parent().is_none() {
            continue;
        }
        host.runner.remove_tree(dir)?;
    }
    Ok(())
}

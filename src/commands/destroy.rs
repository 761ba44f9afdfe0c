//! `instancectl destroy`: stop, disable, unregister and postmulti destroy. Queued mail
//! is never thrown away unless asked, and a group or every instance only goes with
//! `--yes` or a person's answer at the terminal. Each instance's run is recorded (an
//! intent record) before its first change, so that a destroy killed halfway is
//! finished by the next changing command or reconcile.

use super::confirm::confirm;
use super::lifecycle::secondaries;
use crate::cli::DestroyArgs;
use crate::error::InputError;
use crate::error::Result;
use crate::host::{Host, Selection};
use crate::instance::Instance;
use crate::manager::ServiceManager;
use crate::output::{self, Schema};
use crate::postfix::queue::QueueCounts;
use crate::state::{Intent, IntentAction};

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &DestroyArgs) -> Result<()> {
    let selection = args.instances.selection()?;
    let instances = secondaries(host, &selection, "destroyed")?;
    // Every instance's queue is looked at before the first one goes, and before
    // anyone is asked.
    for instance in &instances {
        refuse_queued(instance, args.force_discard_queue)?;
    }
    if !matches!(selection, Selection::One(_)) {
        let names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
        if names.is_empty() {
            return Err(InputError::NoSecondarySelected.into());
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

/// One instance's entry in the `instancectl.destroy/v2` document.
#[derive(serde::Serialize)]
struct Destroyed<'a> {
    name: &'a str,
    /// "destroyed" or "failed".
    result: &'a str,
    /// Queued messages deleted with the instance (--force-discard-queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    discarded_messages: Option<u64>,
    /// The error it failed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Destroys one secondary instance (`apply` uses it for instances a manifest drops).
pub fn one(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    force_discard_queue: bool,
) -> Result<()> {
    let name = instance.name.as_str();
    let discarded = one_steps(host, manager, instance, force_discard_queue).inspect_err(|e| {
        output::record(
            Schema::DESTROY,
            "instances",
            Destroyed {
                name,
                result: "failed",
                discarded_messages: None,
                reason: Some(e.to_string()),
            },
        )
    })?;
    if let Some(discarded) = discarded {
        output::entry(
            Schema::DESTROY,
            "instances",
            format_args!("{name}: destroyed"),
            Destroyed {
                name,
                result: "destroyed",
                discarded_messages: Some(discarded),
                reason: None,
            },
        );
    }
    Ok(())
}

/// The destroy of one instance, with its intent record; how many queued messages went
/// with it (none in dry-run mode).
fn one_steps(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    force_discard_queue: bool,
) -> Result<Option<u64>> {
    let name = instance.name.as_str();
    refuse_queued(instance, force_discard_queue)?;
    let (queue_directory, data_directory) = instance.directories()?;
    let queued = QueueCounts::read(queue_directory);
    let mut intent = Intent::new(
        IntentAction::Destroy,
        name,
        vec![
            instance.config_directory.clone(),
            queue_directory.to_path_buf(),
            data_directory.to_path_buf(),
        ],
    );
    intent.discard_queue = force_discard_queue;
    host.state.begin(&host.runner, &intent)?;
    destroy(host, manager, instance, true, intent.discard_queue)?;
    host.state.end(&host.runner, name)?;
    Ok((!host.runner.dry_run()).then(|| queued.total()))
}

fn refuse_queued(instance: &Instance, force_discard_queue: bool) -> Result<()> {
    let name = instance.name.as_str();
    let (queue_directory, _) = instance.directories()?;
    let queued = QueueCounts::read(queue_directory);
    if queued.total() > 0 && !force_discard_queue {
        let detail: Vec<String> = queued
            .by_name()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(q, n)| format!("{n} in {q}"))
            .collect();
        return Err(InputError::QueueNotEmpty {
            name: name.to_string(),
            total: queued.total(),
            by_queue: detail,
            config_directory: instance.config_directory.clone(),
        }
        .into());
    }
    Ok(())
}

/// The steps of a destroy. `listed`: postmulti still lists the instance. A destroy
/// killed halfway is finished with them from where it stopped: postmulti no longer
/// lists the instance once its own destroy ran, and then only the directories and
/// records are left.
pub(crate) fn destroy(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    listed: bool,
    discard_queue: bool,
) -> Result<()> {
    let name = instance.name.as_str();
    let (queue_directory, _) = instance.directories()?;
    let postmulti = host.postfix.postmulti();
    if listed {
        manager.hold_down_and_stop(host, instance)?;
        manager.set_enabled(host, instance, false)?;
        if instance.enabled {
            postmulti.disable(name)?;
        }
        if discard_queue && QueueCounts::read(queue_directory).total() > 0 {
            discard_queue_of(host, &instance.config_directory, queue_directory)?;
        }
    }
    manager.forget(host, instance)?;
    if listed {
        postmulti.destroy(name)?;
    }
    remove_leftovers(host, instance)?;
    host.state.remove(&host.runner, name)
}

fn discard_queue_of(
    host: &Host,
    config_dir: &std::path::Path,
    queue_directory: &std::path::Path,
) -> Result<()> {
    let dir = config_dir.to_string_lossy();
    // postsuper -d ALL covers hold, incoming, active and deferred; maildrop is named.
    let all: fn(&QueueCounts) -> u64 = |q| q.hold + q.incoming + q.active + q.deferred;
    let maildrop: fn(&QueueCounts) -> u64 = |q| q.maildrop;
    for (queues, left) in [(&[][..], all), (&["maildrop"][..], maildrop)] {
        let cmd = host
            .postfix
            .command("postsuper")
            .args(["-c", &dir, "-d", "ALL"])
            .args(queues.iter());
        if let Err(e) = host.runner.change(&cmd) {
            // With its master stopped there is no postlogd, and postsuper, having
            // given up root, cannot open an instance's own maillog_file (Postfix 3.4
            // and later): it deletes every message, then dies writing its summary.
            // What counts is what it leaves in the queues it was asked to empty.
            // Counted strictly: a queue that cannot be read is no empty queue.
            if !QueueCounts::read_checked(queue_directory).is_ok_and(|q| left(&q) == 0) {
                return Err(e);
            }
            tracing::warn!(error = %e, "postsuper failed after emptying the queue");
        }
    }
    Ok(())
}

/// postmulti destroy removes the files Postfix installed, not those a running
/// instance made (pid files, caches); the instance's own directories go too. The
/// primary's directories are never touched, whatever an instance's main.cf says.
fn remove_leftovers(host: &Host, instance: &Instance) -> Result<()> {
    let primary = [
        host.postfix.config_directory.as_path(),
        &host.postfix.queue_directory,
        &host.postfix.data_directory,
    ];
    let (queue_directory, data_directory) = instance.directories()?;
    for dir in [
        instance.config_directory.as_path(),
        queue_directory,
        data_directory,
    ] {
        if primary.contains(&dir) || !dir.exists() || dir.parent().is_none() {
            continue;
        }
        host.runner.remove_tree(dir)?;
    }
    Ok(())
}

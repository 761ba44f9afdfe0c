//! Runs killed halfway: what their intent records say is finished or undone by the
//! next changing command (and each pass of `supervise` with a manager that has no
//! supervisor of its own), with the host lock held.

use super::{create, destroy};
use crate::error::{Result, StateError};
use crate::host::Host;
use crate::instance::{self, Instance};
use crate::manager::ServiceManager;
use crate::state::{Intent, IntentAction};

/// Finishes what runs that were killed halfway left undone, as their intent records
/// say: an interrupted destroy is finished, an interrupted create undone (it may have
/// got anywhere between postmulti create and the first SMTP answer). Called with the
/// host lock held, so no record left here belongs to a run still going. A failure is
/// reported and the record kept, for the next run to try again; it does not stop the
/// command at hand.
pub fn resume_interrupted(host: &Host, manager: &dyn ServiceManager) {
    for intent in host.state.intents().into_iter().filter(|i| !i.is_ours()) {
        let what = format!("`instancectl {} {}`", intent.action.as_str(), intent.name);
        let done = match intent.action {
            IntentAction::Create => "undid",
            IntentAction::Destroy => "finished",
        };
        let result =
            interrupted_instance(host, &intent).and_then(|(instance, listed)| {
                match intent.action {
                    IntentAction::Create => {
                        create::undo_interrupted(host, manager, &intent, &instance, listed)
                    }
                    IntentAction::Destroy => {
                        destroy::destroy(host, manager, &instance, listed, intent.discard_queue)
                    }
                }
            });
        match result.and_then(|()| host.state.end(&host.runner, &intent.name)) {
            Ok(()) if host.runner.dry_run() => crate::output::line(format!(
                "{}: would resume the interrupted {what}",
                intent.name
            )),
            Ok(()) => crate::output::line(format!(
                "{}: {done} the interrupted {what} (pid {} stopped halfway)",
                intent.name, intent.pid
            )),
            Err(e) => eprintln!(
                "instancectl: {}: cannot resume the interrupted {what}: {e}",
                intent.name
            ),
        }
    }
}

/// The instance an interrupted run was working on, as far as it got, and whether
/// postmulti still lists it. Its directories are those the run recorded.
fn interrupted_instance(host: &Host, intent: &Intent) -> Result<(Instance, bool)> {
    let [config, queue, data] = intent.directories.as_slice() else {
        return Err(StateError::IntentIncomplete {
            name: intent.name.clone(),
            path: host.state.intent_path(&intent.name),
        }
        .into());
    };
    let listed = host.postfix.postmulti().list()?;
    let found = listed.iter().find(|l| l.name == intent.name);
    let mut instance = match found {
        Some(entry) => instance::load(&host.postfix, &host.state, entry),
        None => Instance {
            name: intent.name.clone(),
            group: None,
            enabled: false,
            config_directory: config.clone(),
            queue_directory: None,
            data_directory: None,
            myhostname: None,
            listeners: Vec::new(),
            record: host.state.load(&intent.name),
            broken: None,
        },
    };
    instance.queue_directory = Some(queue.clone());
    instance.data_directory = Some(data.clone());
    instance.broken = None;
    Ok((instance, found.is_some()))
}

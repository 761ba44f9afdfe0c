//! `instancectl apply -f instances.toml`: create, change and remove instances until
//! the host matches the manifest, each step shown as it happens (`progress`). Everything is planned and checked before the first
//! change; a second apply of the same manifest changes nothing and says so.

use std::collections::BTreeMap;

use crate::cli::{ApplyArgs, CreateArgs};
use crate::error::InputError;
use crate::error::{Error, Result};
use crate::host::{Host, Selection};
use crate::instance::Instance;
use crate::manager::ServiceManager;
use crate::manifest::{self, Wanted};
use crate::output::{self, Schema};
use crate::postfix::main_cf::MainCf;
use crate::state::InstanceRecord;
use crate::transaction::Transaction;

use super::{config, create, destroy, lifecycle};

/// What apply does to one instance.
enum Change {
    Create(Wanted),
    Destroy(String),
    Update(Box<Update>),
}

/// How an existing instance differs from its manifest entry.
struct Update {
    wanted: Wanted,
    instance: Instance,
    /// The group changed.
    group: bool,
    set: Vec<(String, String)>,
    unset: Vec<String>,
    /// Enable (true) or disable (false) it; none: leave as it is.
    enabled: Option<bool>,
}

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &ApplyArgs) -> Result<()> {
    let defaults = host.postfix.defaults()?;
    let wanted = manifest::load(&args.file, &defaults)?;
    let current = host.instances()?;
    let changes = plan(host, &wanted, &current)?;
    output::field(Schema::APPLY, "changes", Vec::<()>::new());
    output::field(Schema::APPLY, "left_alone", Vec::<()>::new());
    for instance in current.iter().filter(|i| {
        !i.is_primary() && i.record.is_none() && !wanted.iter().any(|w| w.name == i.name)
    }) {
        output::entry(
            Schema::APPLY,
            "left_alone",
            format_args!(
                "{}: not in the manifest and not made by instancectl; left alone",
                instance.name
            ),
            &instance.name,
        );
    }
    if changes.is_empty() {
        output::line(format_args!(
            "nothing to change: the host matches {}",
            args.file.display()
        ));
        return Ok(());
    }
    let total = changes.len();
    let mut made: Vec<String> = Vec::new();
    for (k, change) in changes.into_iter().enumerate() {
        // Progress: which change of how many this is; create says each of its steps.
        output::text(format_args!("[{}/{total}] ", k + 1));
        let (name, kind) = change.describe();
        let result = apply(host, manager, change, args.force_discard_queue);
        #[derive(serde::Serialize)]
        struct Made<'a> {
            name: &'a str,
            /// "create", "destroy" or "update".
            change: &'a str,
            /// "done", "would do" (--dry-run) or "failed".
            result: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<String>,
        }
        let done = if host.runner.dry_run() {
            "would do"
        } else {
            "done"
        };
        output::record(
            Schema::APPLY,
            "changes",
            Made {
                name: &name,
                change: kind,
                result: if result.is_ok() { done } else { "failed" },
                error: result.as_ref().err().map(ToString::to_string),
            },
        );
        match result {
            Ok(()) => made.push(format!("{kind} {name}")),
            // What failed was undone, not what came before it: say where apply stopped.
            Err(e) if !made.is_empty() => {
                return Err(Error::Context {
                    context: format!(
                        "apply stopped at change {} of {total} ({kind} {name}); the {} before \
                         it stay as made ({}) and the rest were not tried; once the cause is \
                         fixed, apply the manifest again to finish",
                        k + 1,
                        made.len(),
                        made.join(", ")
                    ),
                    source: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Change {
    /// The instance it changes, and what kind of change it is.
    fn describe(&self) -> (String, &'static str) {
        match self {
            Change::Create(w) => (w.name.clone(), "create"),
            Change::Destroy(name) => (name.clone(), "destroy"),
            Change::Update(u) => (u.wanted.name.clone(), "update"),
        }
    }
}

fn plan(host: &Host, wanted: &[Wanted], current: &[Instance]) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    // Instances instancectl made that the manifest no longer has, last first.
    for instance in current.iter().rev() {
        if !instance.is_primary()
            && instance.record.is_some()
            && !wanted.iter().any(|w| w.name == instance.name)
        {
            changes.push(Change::Destroy(instance.name.clone()));
        }
    }
    for w in wanted {
        let Some(instance) = current.iter().find(|i| i.name == w.name) else {
            // Before any change: a destroy planned ahead of this create is not undone.
            create::refuse_addresses_not_here(&w.listen)?;
            changes.push(Change::Create(w.clone()));
            continue;
        };
        let recorded = instance.record.as_ref();
        if let Some(record) = recorded
            && record.listen != w.listen_words()
        {
            return Err(InputError::ManifestMovesListeners {
                name: w.name.clone(),
                recorded: record.listen.clone(),
                wanted: w.listen_words(),
            }
            .into());
        }
        let desired = create::desired_settings(host, &w.name, w.role, &w.listen, w.set.clone())?;
        let main_cf = MainCf::read(&instance.config_directory).unwrap_or_default();
        let set: Vec<(String, String)> = desired
            .into_iter()
            .filter(|(k, v)| main_cf.get(k) != Some(v.as_str()))
            .collect();
        // Overrides an earlier apply or create put there and the manifest dropped,
        // unless the preset sets them itself.
        let preset: Vec<&str> = w.role.preset().iter().map(|(k, _)| *k).collect();
        let unset: Vec<String> = recorded
            .map(|r| {
                r.settings
                    .keys()
                    .filter(|k| {
                        !w.set.iter().any(|(n, _)| n == *k) && !preset.contains(&k.as_str())
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let group = instance.group != w.group;
        let enabled = (instance.enabled != w.enabled).then_some(w.enabled);
        let record_changed = recorded.map(|r| r.role) != Some(w.role)
            || recorded.map(|r| &r.settings) != Some(&w.set.iter().cloned().collect());
        if group || !set.is_empty() || !unset.is_empty() || enabled.is_some() || record_changed {
            changes.push(Change::Update(Box::new(Update {
                wanted: w.clone(),
                instance: instance.clone(),
                group,
                set,
                unset,
                enabled,
            })));
        }
    }
    Ok(changes)
}

fn apply(
    host: &Host,
    manager: &dyn ServiceManager,
    change: Change,
    force_discard_queue: bool,
) -> Result<()> {
    match change {
        Change::Destroy(name) => {
            output::line(format_args!("{name}: not in the manifest -> destroy"));
            destroy::one(host, manager, &host.instance(&name)?, force_discard_queue)
        }
        Change::Create(w) => {
            output::line(format_args!("{}: missing -> create", w.name));
            create::run(
                host,
                manager,
                &CreateArgs {
                    name: w.name.clone(),
                    group: w.group.clone(),
                    role: w.role,
                    listen: w.listen_words(),
                    set: w.set_words(),
                    no_start: !w.enabled,
                    relay: Default::default(),
                    json: false,
                },
            )?;
            if !w.enabled {
                lifecycle::disable(host, manager, &Selection::One(w.name.clone()))?;
            }
            Ok(())
        }
        Change::Update(change) => update(host, manager, &change),
    }
}

/// Makes one instance match its manifest entry in one transaction: when a step fails,
/// the group, main.cf and master.cf (through `config`'s change: written, checked,
/// reloaded, serving) and the record go back to what they were.
fn update(host: &Host, manager: &dyn ServiceManager, change: &Update) -> Result<()> {
    let Update {
        wanted: w,
        instance,
        group,
        set,
        unset,
        enabled,
    } = change;
    let (group, enabled) = (*group, *enabled);
    let name = &w.name;
    let main_cf = if set.is_empty() && unset.is_empty() {
        None
    } else {
        let names: Vec<&str> = set
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(unset.iter().map(String::as_str))
            .collect();
        output::line(format_args!(
            "{name}: main.cf differs ({}) -> set",
            names.join(", ")
        ));
        let edit = config::Edit {
            set: set.clone(),
            unset: unset.clone(),
        };
        config::prepare(host, instance, &edit)?
    };
    let record = InstanceRecord {
        role: w.role,
        listen: w.listen_words(),
        settings: w.set.iter().cloned().collect::<BTreeMap<_, _>>(),
    };
    Transaction::run(host, |tx| {
        if group {
            output::line(format_args!(
                "{name}: group {} -> {}",
                instance.group.as_deref().unwrap_or("-"),
                w.group.as_deref().unwrap_or("-")
            ));
            tx.step(&format!("{name}: postmulti assign"), |h| {
                h.postfix.postmulti().assign_group(name, w.group.as_deref())
            })?;
            tx.on_undo(&format!("{name}: back to its group"), |h| {
                h.postfix
                    .postmulti()
                    .assign_group(name, instance.group.as_deref())
            });
        }
        if let Some((old, new)) = &main_cf {
            if host.runner.dry_run() {
                tx.step(&format!("{name}: writing main.cf"), |h| {
                    config::would_write(h, instance, old, new)
                })?;
            } else {
                config::apply(tx, manager, instance, new)?;
            }
        }
        if instance.record.as_ref() != Some(&record) {
            tx.step(&format!("{name}: recording its role and settings"), |h| {
                h.state.save(&h.runner, name, &record)
            })?;
            tx.on_undo(
                &format!("{name}: its record as it was"),
                |h| match &instance.record {
                    Some(old) => h.state.save(&h.runner, name, old),
                    None => h.state.remove(&h.runner, name),
                },
            );
        }
        let one = Selection::One(name.clone());
        match enabled {
            Some(true) => {
                output::line(format_args!("{name}: disabled -> enable"));
                tx.step(&format!("{name}: enable"), |h| {
                    lifecycle::enable(h, manager, &one)
                })
            }
            Some(false) => {
                output::line(format_args!("{name}: enabled -> disable"));
                tx.step(&format!("{name}: disable"), |h| {
                    lifecycle::disable(h, manager, &one)
                })
            }
            None => Ok(()),
        }
    })
}

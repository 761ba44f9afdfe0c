//! `instancectl relay set|show`: change or describe how an instance (the primary too,
//! as seed 000 does) relays through a provider's smart host. A change is checked
//! completely first, then applied as a whole or not at all.

use crate::cli::relay::{RelayCommand, RelaySetArgs, RelayShowArgs};
use crate::error::{Error, InputError, Result};
use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ServiceManager;
use crate::output::Schema;
use crate::relay::{self, RelayPlan};
use crate::transaction::Transaction;

pub fn run(host: &Host, manager: &dyn ServiceManager, cmd: &RelayCommand) -> Result<()> {
    match cmd {
        RelayCommand::Set(args) => set(host, manager, args),
        RelayCommand::Show(args) => show(host, args),
    }
}

fn set(host: &Host, manager: &dyn ServiceManager, args: &RelaySetArgs) -> Result<()> {
    if !args.opts.any() && !args.no_rewrite_from {
        return Err(InputError::NothingToChange.into());
    }
    let instance = host.instance(&args.name)?;
    let dir = instance.config_directory.clone();
    let values = host
        .postfix
        .expanded(&dir, &["default_database_type", "myorigin"])?;
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let db_type = get("default_database_type");
    let myorigin = relay::resolve_myorigin(&get("myorigin"));
    let label = if instance.is_primary() {
        "the primary instance".to_string()
    } else {
        instance.name.clone()
    };
    let current = relay::Current::read(&dir);
    let target = relay::Target {
        label: &label,
        config_dir: &dir,
        db_type: &db_type,
        myorigin: &myorigin,
        current: current.clone(),
    };
    // dispatch holds the host lock.
    let plan = relay::plan(&args.opts, args.no_rewrite_from, target, false)?;
    crate::output::fields(
        Schema::RELAY_CHANGE,
        Changed::new(&instance, &current, &plan),
    );
    let applied = apply(host, manager, &instance, &plan);
    let result = match &applied {
        Ok(_) if host.runner.dry_run() => "would change",
        Ok(true) => "reloaded",
        Ok(false) => "changed",
        Err(Error::RollbackFailed { .. }) => "undo failed",
        Err(_) => "undone",
    };
    crate::output::field(Schema::RELAY_CHANGE, "result", result);
    applied?;
    if host.runner.dry_run() {
        return Ok(());
    }
    crate::output::line(format_args!(
        "{}: {}",
        instance.display_name(),
        plan.describe()
    ));
    let summary = relay::summary(&instance);
    for line in summary.lines() {
        crate::output::line(format_args!("  {line}"));
    }
    if summary.deferred_messages > 0 {
        crate::output::line(format_args!(
            "{} deferred message(s) wait for the next retry; `postqueue -c {} -f` retries them now",
            summary.deferred_messages,
            instance.config_directory.display()
        ));
    }
    Ok(())
}

/// The `instancectl.relay-change/v1` document's fields: the relay as it now is (never
/// the password) and which of its parts differ from before.
#[derive(serde::Serialize)]
struct Changed<'a> {
    name: &'a str,
    provider: String,
    relay_host: String,
    tls_security_level: relay::TlsLevel,
    sasl_user: &'a str,
    /// A new password went into the password map.
    credentials_written: bool,
    sender_rewrites: usize,
    /// Which of relay_host, tls_security_level, sasl_user and sender_rewrites changed.
    changed: Vec<&'static str>,
}

impl<'a> Changed<'a> {
    fn new(instance: &'a Instance, current: &relay::Current, plan: &'a RelayPlan) -> Self {
        let relay_host = plan.host.relayhost();
        let differs = [
            ("relay_host", current.relayhost != relay_host),
            ("tls_security_level", current.level != Some(plan.level)),
            (
                "sasl_user",
                current.user.as_deref() != Some(plan.user.as_str()),
            ),
            ("sender_rewrites", current.rewrites != plan.rewrites),
        ];
        Changed {
            name: &instance.name,
            provider: plan.provider.to_string(),
            relay_host,
            tls_security_level: plan.level,
            sasl_user: &plan.user,
            credentials_written: plan.password.is_some(),
            sender_rewrites: plan.rewrites.len(),
            changed: differs
                .into_iter()
                .filter_map(|(name, differs)| differs.then_some(name))
                .collect(),
        }
    }
}

/// Writes the maps and settings, checks the result with `postfix check` and reloads a
/// running instance; any failure puts every file back as it was. Returns whether the
/// instance was reloaded.
fn apply(
    host: &Host,
    manager: &dyn ServiceManager,
    instance: &Instance,
    plan: &RelayPlan,
) -> Result<bool> {
    let dir = &instance.config_directory;
    let running = instance.running_master().is_some();
    Transaction::run(host, |tx| {
        // Registered first, so it runs last: after the files are back, a running
        // instance re-reads them.
        if running {
            let target = instance.clone();
            tx.on_undo("reload with the restored configuration", move |h| {
                manager.reload(h, &target)
            });
        }
        let mut files = vec![dir.join("main.cf"), dir.join("master.cf")];
        for source in [&plan.files.passwd, &plan.files.generic] {
            files.push(source.clone());
            files.extend(plan.files.index_files(source));
        }
        for file in &files {
            tx.guard_file(file)?;
        }
        tx.step("writing the relay's password and sender maps", |h| {
            relay::write_maps(h, plan)
        })?;
        tx.step("applying the relay settings", |h| {
            relay::write_settings(h, dir, plan)
        })?;
        if !instance.is_primary() {
            tx.step("running the relay's smtp client outside the chroot", |h| {
                relay::unchroot_smtp(h, dir)
            })?;
        }
        tx.step("postfix check", |h| h.postfix.require_check(dir))?;
        if running {
            tx.step("reloading the instance", |h| manager.reload(h, instance))?;
        } else if !host.runner.dry_run() {
            crate::output::line(format_args!(
                "{} is not running; the relay settings take effect when it starts",
                instance.display_name()
            ));
        }
        Ok(running)
    })
}

#[derive(serde::Serialize)]
struct ShowJson<'a> {
    name: &'a str,
    #[serde(flatten)]
    summary: &'a relay::RelaySummary,
}

fn show(host: &Host, args: &RelayShowArgs) -> Result<()> {
    let instance = host.instance(&args.name)?;
    let summary = relay::summary(&instance);
    if args.json {
        return crate::output::print_json(
            crate::output::Schema::RELAY,
            &ShowJson {
                name: &instance.name,
                summary: &summary,
            },
        );
    }
    crate::output::line(format_args!("{}:", instance.display_name()));
    for line in summary.lines() {
        crate::output::line(format_args!("  {line}"));
    }
    Ok(())
}

//! `instancectl config`: an instance's main.cf, shown like `postconf -n` and changed
//! the way an administrator should but rarely does: every setting checked before
//! anything is touched, the change shown as a diff, `postfix check`, a reload, and
//! the instance's listeners asked to greet again; when any of that fails, main.cf and
//! master.cf go back byte for byte and the instance is reloaded with them, so it keeps
//! running as before. `apply` changes main.cf through the same functions
//! ([`prepare`], [`apply`], [`would_write`]).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::cli::config::{ConfigAction, ConfigArgs, ShowArgs};
use crate::error::InputError;
use crate::error::{Error, Result};
use crate::host::{Host, Selection};
use crate::instance::Instance;
use crate::manager::ServiceManager;
use crate::output::{self, Schema};
use crate::postfix::main_cf::MainCf;
use crate::transaction::{FileSnapshot, Transaction};
use crate::validate;

/// How long the listeners may take to greet after a reload.
const SERVING_TIMEOUT: Duration = Duration::from_secs(15);
/// After a reload the master replaces its children; probing at once could reach an
/// old smtpd that still runs the old settings.
const RELOAD_SETTLE: Duration = Duration::from_secs(1);

/// One edit of main.cf: parameters to set (`postconf -e`), then parameters to remove
/// so that their defaults apply (`postconf -X`). `config set` and `unset` make one
/// kind; `apply` may make both.
#[derive(Default)]
pub struct Edit {
    pub set: Vec<(String, String)>,
    pub unset: Vec<String>,
}

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &ConfigArgs) -> Result<()> {
    let instances = host.select(&args.instances.selection()?)?;
    match &args.action {
        None => show(
            host,
            &instances,
            &ShowArgs {
                non_default: true,
                params: Vec::new(),
            },
        ),
        Some(ConfigAction::Show(s)) => show(host, &instances, s),
        Some(ConfigAction::Set { settings }) => {
            let defaults = host.postfix.defaults()?;
            let settings = settings
                .iter()
                .map(|s| validate::setting(s, &defaults))
                .collect::<Result<Vec<_>>>()?;
            let edit = Edit {
                set: settings,
                ..Edit::default()
            };
            change(host, manager, &instances, &edit)
        }
        Some(ConfigAction::Unset { params }) => {
            let mut known = host.postfix.defaults()?;
            for instance in &instances {
                known.extend(main_cf_params(instance));
            }
            for name in params {
                validate::parameter(name, &known)?;
            }
            let edit = Edit {
                unset: params.clone(),
                ..Edit::default()
            };
            change(host, manager, &instances, &edit)
        }
    }
}

fn main_cf_params(instance: &Instance) -> BTreeMap<String, String> {
    MainCf::read(&instance.config_directory)
        .map(|cf| cf.params)
        .unwrap_or_default()
}

fn show(host: &Host, instances: &[Instance], args: &ShowArgs) -> Result<()> {
    if !args.params.is_empty() {
        let mut known = host.postfix.defaults()?;
        for instance in instances {
            known.extend(main_cf_params(instance));
        }
        for name in &args.params {
            if !known.contains_key(name) {
                return Err(InputError::UndefinedParameter {
                    name: name.to_string(),
                }
                .into());
            }
        }
    }
    for instance in instances {
        let mut cmd = host.postfix.postconf_in(&instance.config_directory);
        if args.non_default || args.params.is_empty() {
            cmd = cmd.arg("-n");
        }
        let out = host.runner.query(&cmd.args(&args.params))?;
        if output::json_requested() {
            output::record(
                Schema::CONFIG,
                "instances",
                serde_json::json!({
                    "name": instance.name,
                    "config_directory": instance.config_directory,
                    "settings": MainCf::parse(&out.stdout).params,
                }),
            );
            continue;
        }
        if instances.len() > 1 {
            output::line(format_args!(
                "# {} ({})",
                instance.display_name(),
                instance.config_directory.display()
            ));
        }
        output::text(&out.stdout);
    }
    Ok(())
}

/// One instance's entry in the `instancectl.config-change/v1` document.
#[derive(serde::Serialize)]
struct Changed<'a> {
    name: &'a str,
    /// "unchanged" (main.cf already said so), "changed" (not running: applies when it
    /// starts), "reloaded" (checked, reloaded, its listeners answer), "undone" (the
    /// change of this or another instance failed, so every change was taken back),
    /// "undo failed" (and taking it back failed too: see the error), or "would change"
    /// (--dry-run).
    result: &'a str,
    /// Each parameter whose main.cf value changed: `old` or `new` is null where main.cf
    /// does not set it (its default applies).
    changes: Vec<SettingChange>,
}

#[derive(serde::Serialize)]
struct SettingChange {
    parameter: String,
    old: Option<String>,
    new: Option<String>,
}

/// The parameters whose main.cf value differs between the two texts.
fn setting_changes(old: &[u8], new: &[u8]) -> Vec<SettingChange> {
    let old = MainCf::parse(&String::from_utf8_lossy(old)).params;
    let new = MainCf::parse(&String::from_utf8_lossy(new)).params;
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| SettingChange {
            parameter: k.clone(),
            old: old.get(k).cloned(),
            new: new.get(k).cloned(),
        })
        .collect()
}

/// Says what became of one instance's main.cf.
fn report(instance: &Instance, result: &str, old: &[u8], new: &[u8], line: Option<String>) {
    let changed = Changed {
        name: &instance.name,
        result,
        changes: setting_changes(old, new),
    };
    match line {
        Some(line) => output::entry(Schema::CONFIG_CHANGE, "instances", line, changed),
        None => output::record(Schema::CONFIG_CHANGE, "instances", changed),
    }
}

/// main.cf as the edit leaves it: `postconf -e` or `-X` run on a copy, so that the
/// text is exactly what Postfix itself would write, and the diff shows it.
fn edited_main_cf(host: &Host, instance: &Instance, edit: &Edit) -> Result<(Vec<u8>, Vec<u8>)> {
    let path = instance.config_directory.join("main.cf");
    let old = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let scratch = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let copy = scratch.path().join("main.cf");
    std::fs::write(&copy, &old).map_err(|e| Error::io(&copy, e))?;
    let postconf = host.postfix.postconf_in(scratch.path());
    let set = (!edit.set.is_empty()).then(|| {
        postconf
            .clone()
            .arg("-e")
            .args(edit.set.iter().map(|(k, v)| format!("{k} = {v}")))
    });
    let unset = (!edit.unset.is_empty()).then(|| postconf.clone().arg("-X").args(&edit.unset));
    for cmd in set.iter().chain(&unset) {
        host.runner
            .query(cmd)
            .map_err(|e| e.context("editing a copy of main.cf"))?;
    }
    let new = std::fs::read(&copy).map_err(|e| Error::io(&copy, e))?;
    Ok((old, new))
}

/// A unified diff of main.cf, as `diff -u` shows it.
fn diff(path: &std::path::Path, old: &[u8], new: &[u8]) -> String {
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    let name = path.display().to_string();
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(2)
        .header(&name, &name)
        .to_string()
}

fn change(
    host: &Host,
    manager: &dyn ServiceManager,
    instances: &[Instance],
    edit: &Edit,
) -> Result<()> {
    let mut edits = Vec::new();
    for instance in instances {
        if let Some((old, new)) = prepare(host, instance, edit)? {
            edits.push((instance, old, new));
        }
    }
    if host.runner.dry_run() {
        for (instance, old, new) in &edits {
            would_write(host, instance, old, new)?;
        }
        return Ok(());
    }
    let results = Transaction::run(host, |tx| {
        let mut results = Vec::new();
        for (instance, _, new) in &edits {
            results.push(apply(tx, manager, instance, new)?);
        }
        Ok(results)
    });
    // Said once the whole change holds or is undone: a failure in one instance undoes
    // the change of every instance.
    for (k, (instance, old, new)) in edits.iter().enumerate() {
        let result = match &results {
            Ok(done) => done[k],
            Err(Error::RollbackFailed { .. }) => "undo failed",
            Err(_) => "undone",
        };
        report(instance, result, old, new, None);
    }
    results.map(drop)
}

/// One instance's main.cf before and after `edit`, with the diff shown; none (and said
/// so) when main.cf already says what the edit would make it say.
pub fn prepare(
    host: &Host,
    instance: &Instance,
    edit: &Edit,
) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let (old, new) = edited_main_cf(host, instance, edit)?;
    if old == new {
        report(
            instance,
            "unchanged",
            &old,
            &new,
            Some(format!(
                "{}: main.cf already says so; nothing to change",
                instance.display_name()
            )),
        );
        return Ok(None);
    }
    output::text(diff(&instance.config_directory.join("main.cf"), &old, &new));
    Ok(Some((old, new)))
}

/// `--dry-run`: shows the write of the new main.cf, and changes nothing.
pub fn would_write(host: &Host, instance: &Instance, old: &[u8], new: &[u8]) -> Result<()> {
    host.runner
        .write_file(&instance.config_directory.join("main.cf"), new, 0o644)?;
    report(instance, "would change", old, new, None);
    Ok(())
}

/// Writes one instance's new main.cf, checks it, reloads a running instance and waits
/// until its listeners greet; registers putting both files back (and reloading again)
/// first, so any failure from here on (in this step or a later one of `tx`) undoes it.
pub fn apply<'h>(
    tx: &mut Transaction<'h>,
    manager: &'h dyn ServiceManager,
    instance: &'h Instance,
    new: &[u8],
) -> Result<&'static str, crate::transaction::StepFailed> {
    let name = instance.display_name();
    let dir = &instance.config_directory;
    let main_cf = dir.join("main.cf");
    let snapshots = tx.step(&format!("reading {name}'s configuration"), |_| {
        Ok([
            FileSnapshot::take(&main_cf)?,
            FileSnapshot::take(&dir.join("master.cf"))?,
        ])
    })?;
    let mode = snapshots[0].mode().unwrap_or(0o644);
    let running = instance.running_master().is_some();
    let reloaded = Rc::new(Cell::new(false));
    let undo_reloaded = Rc::clone(&reloaded);
    tx.on_undo(
        &format!("restore {name}'s main.cf and master.cf"),
        move |h| {
            for snapshot in &snapshots {
                snapshot.restore(h)?;
            }
            if undo_reloaded.get() {
                back_to_serving(h, manager, instance)?;
            }
            Ok(())
        },
    );
    tx.step(&format!("writing {}", main_cf.display()), |h| {
        h.runner.write_file(&main_cf, new, mode)
    })?;
    tx.step(&format!("`postfix check` of {name}"), |h| {
        let outcome = h.postfix.check(dir)?;
        if outcome.success() {
            Ok(())
        } else {
            Err(Error::CommandFailed {
                context: "Postfix refuses the new settings".into(),
                outcome: Box::new(outcome),
            })
        }
    })?;
    if !running {
        output::line(format_args!(
            "{name}: changed; it is not running, so the change applies when it starts"
        ));
        return Ok("changed");
    }
    tx.step(&format!("reloading {name}"), |h| {
        reloaded.set(true);
        manager.reload(h, instance)
    })?;
    tx.step(&format!("{name} answering after the reload"), |_| {
        std::thread::sleep(RELOAD_SETTLE);
        crate::probe::wait_until_serving(instance, SERVING_TIMEOUT).map(drop)
    })?;
    output::line(format_args!(
        "{name}: changed, checked and reloaded; its listeners answer"
    ));
    Ok("reloaded")
}

/// After the files are back: a reload, and when the master still throttles a service
/// that failed under the bad settings (for `service_throttle_time`, 60 s by default),
/// a restart, so the instance answers again now. A restart too when the reload finds
/// no master: a supervisor kills one whose listeners stopped greeting under the bad
/// settings, and may not have started it again yet.
fn back_to_serving(host: &Host, manager: &dyn ServiceManager, instance: &Instance) -> Result<()> {
    if manager.reload(host, instance).is_ok() {
        std::thread::sleep(RELOAD_SETTLE);
        if crate::probe::wait_until_serving(instance, RELOAD_SETTLE * 3).is_ok() {
            return Ok(());
        }
    }
    super::lifecycle::restart(host, manager, &Selection::One(instance.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_changes_name_old_and_new_values() {
        let old = b"myhostname = a.example\nrelayhost =\ndelay_warning_time = 4h\n";
        let new = b"myhostname = a.example\nrelayhost = [mx.example]:587\nsmtpd_timeout = 60s\n";
        let changes: Vec<(String, Option<String>, Option<String>)> = setting_changes(old, new)
            .into_iter()
            .map(|c| (c.parameter, c.old, c.new))
            .collect();
        assert_eq!(
            changes,
            [
                ("delay_warning_time".into(), Some("4h".into()), None),
                (
                    "relayhost".into(),
                    Some(String::new()),
                    Some("[mx.example]:587".into())
                ),
                ("smtpd_timeout".into(), None, Some("60s".into())),
            ]
        );
        assert!(setting_changes(old, old).is_empty());
    }

    #[test]
    fn unified_diff_of_main_cf() {
        let old = b"# comment\nmyhostname = a.example\nrelayhost =\ninet_protocols = ipv4\n";
        let new = b"# comment\nmyhostname = a.example\nrelayhost = [mx.example]:587\ninet_protocols = ipv4\n";
        let text = diff(std::path::Path::new("/etc/postfix-a/main.cf"), old, new);
        assert!(text.starts_with("--- /etc/postfix-a/main.cf\n+++ /etc/postfix-a/main.cf\n"));
        assert!(
            text.contains("\n-relayhost =\n+relayhost = [mx.example]:587\n"),
            "{text}"
        );
        assert!(text.contains("@@ -1,4 +1,4 @@"), "{text}");
    }
}

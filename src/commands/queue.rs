//! `instancectl queue`: seed 003's queue chores (`postqueue -p`, `postfix flush`,
//! `postsuper -d ALL deferred`) for the chosen instances, each with its own `-c DIR`.
//! Messages are listed from `postqueue -j`; changes go through postsuper and postqueue,
//! and each instance says how many messages it touched (postsuper's own count).

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::confirm::confirm;
use crate::cli::queue::{QueueAction, QueueArgs, QueueName};
use crate::error::InputError;
use crate::error::PostfixError;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::Instance;
use crate::output::{self, Schema};
use crate::postfix::queue::{self, QueuedMessage};

/// The document `queue --json` answers with: the messages, or what was done to them.
pub fn schema(args: &QueueArgs) -> Schema {
    match args.action {
        None | Some(QueueAction::List) => Schema::QUEUE,
        Some(_) => Schema::QUEUE_CHANGE,
    }
}

/// A postsuper operation.
struct Operation {
    /// postsuper's option.
    flag: &'static str,
    /// What was done, for the report.
    done: &'static str,
    /// The queues `--all` covers when no --queue is given (empty: postsuper's default).
    all_queues: &'static [&'static str],
}

const DELETE: Operation = Operation {
    flag: "-d",
    done: "deleted",
    // postsuper's default leaves maildrop out; "all" means all.
    all_queues: &["maildrop", "incoming", "active", "deferred", "hold"],
};
const HOLD: Operation = Operation {
    flag: "-h",
    done: "put on hold",
    all_queues: &[],
};
const RELEASE: Operation = Operation {
    flag: "-H",
    done: "released from hold",
    all_queues: &[],
};
const REQUEUE: Operation = Operation {
    flag: "-r",
    done: "requeued",
    all_queues: &[],
};

pub fn run(host: &Host, args: &QueueArgs) -> Result<i32> {
    let instances = host.select(&args.instances.selection()?)?;
    let action = args.action.as_ref().unwrap_or(&QueueAction::List);
    let (operation, pick) = match action {
        QueueAction::List => return list(host, &instances, args),
        QueueAction::Flush => {
            if args.queue.is_some() {
                return Err(InputError::FlushTakesNoQueue.into());
            }
            host.require_root()?;
            return flush(host, &instances, args.json);
        }
        QueueAction::Delete(d) => (&DELETE, &d.pick),
        QueueAction::Hold(p) => (&HOLD, p),
        QueueAction::Release(p) => (&RELEASE, p),
        QueueAction::Requeue(p) => (&REQUEUE, p),
    };
    if operation.flag == RELEASE.flag && args.queue.is_some_and(|q| q != QueueName::Hold) {
        return Err(InputError::ReleaseTakesNoQueue.into());
    }
    if args.queue == Some(QueueName::Corrupt) {
        return Err(InputError::CorruptQueue.into());
    }
    host.require_root()?;
    for id in &pick.ids {
        check_queue_id(id)?;
    }
    let work = if pick.all {
        instances.iter().map(|i| (i, None)).collect()
    } else {
        plan(
            &all_listed(&listings(host, &instances))?,
            &pick.ids,
            args.queue,
        )?
    };
    if let QueueAction::Delete(d) = action
        && pick.all
    {
        let total: usize = listings(host, &instances)
            .iter()
            .filter_map(|(_, listed)| listed.as_ref().ok())
            .map(|m| in_queue(m, args.queue).count())
            .sum();
        let names: Vec<&str> = instances.iter().map(|i| i.display_name()).collect();
        confirm(
            &format!(
                "delete all {total} queued message(s) of {}{}",
                names.join(", "),
                args.queue
                    .map(|q| format!(" in {}", q.as_str()))
                    .unwrap_or_default()
            ),
            d.yes,
            host.runner.dry_run(),
        )?;
    }
    let mut results = Vec::new();
    for (instance, ids) in work {
        let mut result = postsuper(host, instance, operation, ids.as_deref(), args.queue);
        if operation.flag == REQUEUE.flag && result.is_ok() {
            result = result.and_then(|touched| wake_pickup(host, instance).map(|()| touched));
        }
        results.push(report(instance, operation.done, result, args.json));
    }
    finish(&results, args.json)
}

/// A queue ID as Postfix writes them: short (hexadecimal) or long (letters and digits).
fn check_queue_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(InputError::QueueId { id: id.into() }.into());
    }
    Ok(())
}

/// Each instance's messages, or why they could not be listed.
type Listings<'i> = Vec<(&'i Instance, Result<Vec<QueuedMessage>, String>)>;

fn listings<'i>(host: &Host, instances: &'i [Instance]) -> Listings<'i> {
    instances
        .iter()
        .map(|i| {
            let listed = queue::list(&host.postfix, &i.config_directory).map_err(|e| e.to_string());
            (i, listed)
        })
        .collect()
}

/// The listings, all of which must have worked (IDs are looked up in them).
fn all_listed<'l, 'i>(
    listings: &'l Listings<'i>,
) -> Result<Vec<(&'i Instance, &'l [QueuedMessage])>> {
    listings
        .iter()
        .map(|(i, listed)| match listed {
            Ok(messages) => Ok((*i, &messages[..])),
            Err(e) => Err(PostfixError::QueueUnlisted {
                instance: i.display_name().to_string(),
                cause: e.clone(),
            }
            .into()),
        })
        .collect()
}

fn in_queue(
    messages: &[QueuedMessage],
    only: Option<QueueName>,
) -> impl Iterator<Item = &QueuedMessage> {
    messages
        .iter()
        .filter(move |m| only.is_none_or(|q| m.queue_name == q.as_str()))
}

/// An instance and the IDs to work on (`None`: all of its messages).
type Work<'i> = (&'i Instance, Option<Vec<String>>);

/// Which instances hold which of `ids`; an ID that no selected instance holds is an
/// error before anything changes.
fn plan<'i>(
    listings: &[(&'i Instance, &[QueuedMessage])],
    ids: &[String],
    only: Option<QueueName>,
) -> Result<Vec<Work<'i>>> {
    let holds =
        |messages: &[QueuedMessage], id: &str| in_queue(messages, only).any(|m| m.queue_id == id);
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| !listings.iter().any(|(_, m)| holds(m, id)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(InputError::MessagesNotFound {
            ids: missing.iter().map(|id| id.to_string()).collect(),
            queue: only.map(|q| q.as_str()),
        }
        .into());
    }
    Ok(listings
        .iter()
        .filter_map(|(instance, messages)| {
            let mine: Vec<String> = ids
                .iter()
                .filter(|id| holds(messages, id))
                .cloned()
                .collect();
            (!mine.is_empty()).then_some((*instance, Some(mine)))
        })
        .collect())
}

/// Runs postsuper on one instance and returns how many messages it says it touched,
/// with anything else it said. IDs go on standard input (`-`), so any number fits.
fn postsuper(
    host: &Host,
    instance: &Instance,
    operation: &Operation,
    ids: Option<&[String]>,
    only: Option<QueueName>,
) -> Result<Touched> {
    let dir = instance.config_directory.to_string_lossy();
    let mut cmd = host
        .postfix
        .command("postsuper")
        .args(["-c", &dir, operation.flag]);
    cmd = match ids {
        Some(ids) => cmd.arg("-").stdin(ids.join("\n") + "\n"),
        None => cmd.arg("ALL"),
    };
    cmd = match (only, ids) {
        (Some(q), _) => cmd.arg(q.as_str()),
        (None, None) => cmd.args(operation.all_queues),
        (None, Some(_)) => cmd,
    };
    if host.runner.dry_run() {
        host.runner.change(&cmd)?;
        return Ok(Touched {
            count: None,
            note: None,
        });
    }
    // Not Runner::change: postsuper may fail after doing its work (say it cannot open
    // the instance's maillog_file), and what it did must still be reported.
    tracing::info!(command = %cmd.display(), "run");
    let outcome = host.runner.probe(&cmd)?;
    let count = queue::postsuper_count(&outcome.diagnostics);
    let others: Vec<&str> = outcome
        .diagnostics
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && queue::postsuper_count(l).is_none())
        .collect();
    match (count, outcome.success()) {
        (Some(count), _) => Ok(Touched {
            count: Some(count),
            note: (!others.is_empty()).then(|| others.join("; ")),
        }),
        (None, true) => Err(PostfixError::PostsuperSilent {
            command: outcome.command.to_string(),
        }
        .into()),
        (None, false) => Err(Error::CommandFailed {
            context: format!("{}: postsuper failed", instance.display_name()),
            outcome: Box::new(outcome),
        }),
    }
}

/// Requeued messages wait in maildrop until pickup looks there (once a minute); a
/// running instance's pickup is told to look now, as postdrop tells it.
fn wake_pickup(host: &Host, instance: &Instance) -> Result<()> {
    if host.runner.dry_run() || instance.running_master().is_none() {
        return Ok(());
    }
    let dir = instance.config_directory.to_string_lossy();
    let kick = host
        .postfix
        .command("postkick")
        .args(["-c", &dir, "public", "pickup", "W"]);
    host.runner
        .change(&kick)
        .map(drop)
        .map_err(|e| e.context(format!("{}: waking pickup", instance.display_name())))
}

struct Touched {
    /// `None` in a dry run.
    count: Option<u64>,
    /// What else postsuper said (warnings, a late fatal error).
    note: Option<String>,
}

#[derive(Serialize)]
struct InstanceResult {
    name: String,
    action: &'static str,
    /// How many messages postsuper touched (`null` in a dry run or on failure).
    touched: Option<u64>,
    note: Option<String>,
    error: Option<String>,
}

fn report(
    instance: &Instance,
    done: &'static str,
    result: Result<Touched>,
    json: bool,
) -> InstanceResult {
    let name = instance.display_name();
    let (touched, note, error) = match result {
        Ok(t) => (t.count, t.note, None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    if !json {
        match (&error, touched) {
            (Some(e), _) => eprintln!("instancectl: {name}: {e}"),
            (None, Some(n)) => output::line(format_args!("{name}: {done} {n} message(s)")),
            (None, None) => {}
        }
        if let Some(note) = &note {
            eprintln!("{name}: postsuper also said: {note}");
        }
    }
    InstanceResult {
        name: instance.name.clone(),
        action: done,
        touched,
        note,
        error,
    }
}

/// Prints the JSON report when asked; exit 1 when any instance failed.
fn finish(results: &[InstanceResult], json: bool) -> Result<i32> {
    if json {
        output::print_json(
            Schema::QUEUE_CHANGE,
            &serde_json::json!({ "instances": results }),
        )?;
    }
    Ok(if results.iter().any(|r| r.error.is_some()) {
        1
    } else {
        0
    })
}

/// `postqueue -f` asks the running instance's queue manager to retry deferred mail
/// now; the count is the deferred messages it had before.
fn flush(host: &Host, instances: &[Instance], json: bool) -> Result<i32> {
    let mut results = Vec::new();
    for instance in instances {
        let result = queue::list(&host.postfix, &instance.config_directory).and_then(|messages| {
            let deferred = in_queue(&messages, Some(QueueName::Deferred)).count() as u64;
            let dir = instance.config_directory.to_string_lossy();
            host.runner
                .change(&host.postfix.command("postqueue").args(["-c", &dir, "-f"]))
                .map_err(|e| e.context(format!("{}: flush failed", instance.display_name())))?;
            Ok(Touched {
                count: (!host.runner.dry_run()).then_some(deferred),
                note: None,
            })
        });
        results.push(report(
            instance,
            "asked to retry now (deferred)",
            result,
            json,
        ));
    }
    finish(&results, json)
}

#[derive(Serialize)]
struct Listing<'a> {
    name: &'a str,
    messages: Vec<&'a QueuedMessage>,
    /// Why the queue could not be listed.
    error: Option<String>,
}

fn list(host: &Host, instances: &[Instance], args: &QueueArgs) -> Result<i32> {
    let listings = listings(host, instances);
    let shown: Vec<Listing> = listings
        .iter()
        .map(|(i, listed)| Listing {
            name: &i.name,
            messages: listed
                .as_ref()
                .map(|m| in_queue(m, args.queue).collect())
                .unwrap_or_default(),
            error: listed.as_ref().err().cloned(),
        })
        .collect();
    let failed = shown.iter().any(|l| l.error.is_some());
    let code = if failed { 1 } else { 0 };
    if args.json {
        output::print_json(Schema::QUEUE, &serde_json::json!({ "instances": shown }))?;
        return Ok(code);
    }
    let several = instances.len() > 1;
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    let mut header = vec![
        "ID",
        "QUEUE",
        "SIZE",
        "ARRIVAL",
        "SENDER",
        "RECIPIENTS",
        "DELAY REASON",
    ];
    if several {
        header.insert(0, "INSTANCE");
    }
    table.set_header(header);
    for listing in &shown {
        for m in &listing.messages {
            let mut row = row(m);
            if several {
                row.insert(0, listing.name.to_string());
            }
            table.add_row(row);
        }
    }
    if shown.iter().any(|l| !l.messages.is_empty()) {
        output::line(table.trim_fmt());
    }
    for (listing, (instance, _)) in shown.iter().zip(&listings) {
        match &listing.error {
            Some(e) => eprintln!("instancectl: {}: {e}", instance.display_name()),
            None => output::line(format_args!(
                "{}: {}",
                instance.display_name(),
                summary(&listing.messages)
            )),
        }
    }
    Ok(code)
}

/// A message as the table shows it.
fn row(m: &QueuedMessage) -> Vec<String> {
    let mut reasons: Vec<&str> = m
        .recipients
        .iter()
        .filter_map(|r| r.delay_reason.as_deref())
        .collect();
    reasons.dedup();
    vec![
        m.queue_id.clone(),
        m.queue_name.clone(),
        m.message_size.to_string(),
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(m.arrival_time))
            .to_string(),
        if m.sender.is_empty() {
            "<>".to_string()
        } else {
            m.sender.clone()
        },
        m.recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if reasons.is_empty() {
            "-".to_string()
        } else {
            reasons.join("; ")
        },
    ]
}

/// `3 message(s) (2 deferred, 1 hold)` or `no queued mail`.
fn summary(messages: &[&QueuedMessage]) -> String {
    if messages.is_empty() {
        return "no queued mail".to_string();
    }
    let per_queue: Vec<String> = queue::QUEUES
        .iter()
        .filter_map(|q| {
            let n = messages.iter().filter(|m| m.queue_name == *q).count();
            (n > 0).then(|| format!("{n} {q}"))
        })
        .collect();
    format!("{} message(s) ({})", messages.len(), per_queue.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(line: &str) -> QueueArgs {
        let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
        match cli.command {
            Command::Queue(q) => q,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_lines() {
        let q = parse("instancectl queue postfix-a");
        assert_eq!(q.instances.name.as_deref(), Some("postfix-a"));
        assert!(q.action.is_none());
        let q = parse("instancectl queue postfix-a list --queue deferred --json");
        assert!(matches!(q.action, Some(QueueAction::List)));
        assert_eq!(q.queue, Some(QueueName::Deferred));
        assert!(q.json);
        let q = parse("instancectl queue -g mta delete --all --yes --queue hold");
        assert_eq!(q.instances.group.as_deref(), Some("mta"));
        let Some(QueueAction::Delete(d)) = q.action else {
            panic!()
        };
        assert!(d.pick.all && d.yes);
        let q = parse("instancectl queue -a hold ABC123 DEF456");
        assert!(q.instances.all);
        let Some(QueueAction::Hold(p)) = q.action else {
            panic!()
        };
        assert_eq!(p.ids, ["ABC123", "DEF456"]);
        let q = parse("instancectl queue -i postfix-b requeue --all");
        assert_eq!(q.instances.instance.as_deref(), Some("postfix-b"));
        for bad in [
            "instancectl queue postfix-a delete",
            "instancectl queue postfix-a delete --all ABC",
            "instancectl queue postfix-a -g mta",
            "instancectl queue postfix-a list --queue nosuch",
        ] {
            assert!(
                Cli::try_parse_from(bad.split_whitespace()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn queue_ids() {
        assert!(check_queue_id("E370454E0F2").is_ok());
        assert!(check_queue_id("4dKb3x0Wf3zJvK").is_ok());
        for bad in ["", "bad/id", "-", "a b", "../x"] {
            assert_eq!(check_queue_id(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn summaries() {
        let messages =
            queue::parse_listing(include_str!("../../tests/data/postqueue-j-stopped.jsonl"))
                .unwrap();
        let refs: Vec<&QueuedMessage> = messages.iter().collect();
        assert_eq!(summary(&refs), "2 message(s) (1 maildrop, 1 deferred)");
        assert_eq!(summary(&[]), "no queued mail");
    }
}

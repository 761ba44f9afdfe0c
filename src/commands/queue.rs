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
use crate::output::{self, Format, Schema};
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
    // postsuper's default includes hold, and a requeued message leaves hold: "all"
    // must not quietly release what someone put on hold (`--queue hold` does).
    all_queues: &["incoming", "active", "deferred"],
};

pub fn run(host: &Host, args: &QueueArgs) -> Result<i32> {
    let action = args.action.as_ref().unwrap_or(&QueueAction::List);
    let selection = match action {
        // Listing changes nothing: every instance's queue when none is named, as
        // mailq shows all of its mail.
        QueueAction::List => args.instances.selection_or_all(),
        _ => args
            .instances
            .selection()
            .map_err(|e| named_after_the_action(host, action).unwrap_or(e))?,
    };
    let instances = host.select(&selection)?;
    let (operation, pick) = match action {
        QueueAction::List => return list(host, &instances, args),
        QueueAction::Flush(f) => {
            if args.queue.is_some() {
                return Err(InputError::FlushTakesNoQueue.into());
            }
            host.require_root()?;
            for id in &f.ids {
                check_queue_id(id)?;
            }
            return flush(
                host,
                &instances,
                &f.ids,
                args.output.format() == Format::Json,
            );
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
        results.push(report(
            instance,
            operation.done,
            result,
            args.output.format() == Format::Json,
        ));
    }
    finish(&results, args.output.format() == Format::Json)
}

/// `queue hold postfix-out ID`: the instance was named after the action, where its
/// IDs go. Says where it belongs, when one of the IDs is an instance's name.
fn named_after_the_action(host: &Host, action: &QueueAction) -> Option<Error> {
    let (verb, pick) = match action {
        QueueAction::Delete(d) => ("delete", &d.pick),
        QueueAction::Hold(p) => ("hold", p),
        QueueAction::Release(p) => ("release", p),
        QueueAction::Requeue(p) => ("requeue", p),
        QueueAction::List | QueueAction::Flush(_) => return None,
    };
    let instances = host.instances().ok()?;
    let name = pick
        .ids
        .iter()
        .find(|id| instances.iter().any(|i| &i.name == *id))?;
    let rest: Vec<&str> = pick
        .ids
        .iter()
        .filter(|id| *id != name)
        .map(String::as_str)
        .chain(pick.all.then_some("--all"))
        .collect();
    Some(
        InputError::InstanceAfterAction {
            name: name.clone(),
            action: verb,
            rest: if rest.is_empty() {
                "ID...".to_string()
            } else {
                rest.join(" ")
            },
        }
        .into(),
    )
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
        .filter(|l| {
            !l.is_empty() && queue::postsuper_count(l).is_none() && !queue::postsuper_per_message(l)
        })
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
            // report() puts the instance's name in front.
            context: "postsuper failed".to_string(),
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
        .map_err(|e| e.context("waking pickup"))
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
/// now; the count is the deferred messages it had before. With IDs, `postqueue -i ID`
/// for each, on the instance that holds it in its deferred queue (an ID none of them
/// defers is bad input, and nothing is asked).
fn flush(host: &Host, instances: &[Instance], ids: &[String], json: bool) -> Result<i32> {
    let work = if ids.is_empty() {
        instances.iter().map(|i| (i, None)).collect()
    } else {
        plan(
            &all_listed(&listings(host, instances))?,
            ids,
            Some(QueueName::Deferred),
        )?
    };
    let mut results = Vec::new();
    for (instance, ids) in work {
        let dir = instance.config_directory.to_string_lossy();
        let postqueue = host.postfix.command("postqueue").args(["-c", &dir]);
        // Only a running queue manager can retry: say what to do before Postfix's
        // "mail system is down".
        let failed = |e: Error| match instance.running_master() {
            Some(_) => e.context("flush failed"),
            None => e.context(format!(
                "flush failed: {} is not running; start it (`instancectl start {}`), then \
                 flush",
                instance.display_name(),
                instance.name
            )),
        };
        let result = match ids {
            None => queue::list(&host.postfix, &instance.config_directory).and_then(|messages| {
                let deferred = in_queue(&messages, Some(QueueName::Deferred)).count() as u64;
                host.runner.change(&postqueue.arg("-f")).map_err(failed)?;
                Ok(deferred)
            }),
            Some(ids) => ids
                .iter()
                .try_for_each(|id| {
                    host.runner
                        .change(&postqueue.clone().args(["-i", id]))
                        .map(drop)
                })
                .map_err(failed)
                .map(|()| ids.len() as u64),
        }
        .map(|count| Touched {
            count: (!host.runner.dry_run()).then_some(count),
            note: None,
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
                .map(|m| {
                    let mut kept: Vec<&QueuedMessage> = in_queue(m, args.queue).collect();
                    // postqueue lists in the order of its directory walk; people read
                    // a queue oldest first.
                    kept.sort_by_key(|m| (m.arrival_time, m.queue_id.clone()));
                    kept
                })
                .unwrap_or_default(),
            error: listed.as_ref().err().cloned(),
        })
        .collect();
    let failed = shown.iter().any(|l| l.error.is_some());
    let code = if failed { 1 } else { 0 };
    if args.output.format() == Format::Json {
        output::print_json(Schema::QUEUE, &serde_json::json!({ "instances": shown }))?;
        return Ok(code);
    }
    // One section per instance, the table without an INSTANCE column and the long
    // delay reasons (a whole DNS or SMTP error) below it, once per reason: so that
    // the table fits 80 columns.
    let now = std::time::SystemTime::now();
    for (n, (listing, (instance, _))) in shown.iter().zip(&listings).enumerate() {
        let name = instance.display_name();
        if let Some(e) = &listing.error {
            eprintln!("instancectl: {name}: {e}");
            continue;
        }
        if n > 0 && !shown[n - 1].messages.is_empty() {
            output::line("");
        }
        output::line(format_args!("{name}: {}", summary(&listing.messages)));
        if listing.messages.is_empty() {
            continue;
        }
        let mut table = output::table(args.output.format() == Format::Wide);
        table.set_header(["ID", "QUEUE", "SIZE", "AGE", "SENDER", "RECIPIENTS"]);
        for m in &listing.messages {
            table.add_row(row(m, now).iter().map(output::cell));
        }
        output::line(output::render(&table));
        for (reason, count) in delay_reasons(&listing.messages) {
            output::line(format_args!("  {count} waiting because: {reason}"));
        }
    }
    Ok(code)
}

/// A message as the table shows it.
fn row(m: &QueuedMessage, now: std::time::SystemTime) -> Vec<String> {
    let arrival = UNIX_EPOCH + Duration::from_secs(m.arrival_time);
    let age = now.duration_since(arrival).unwrap_or_default().as_secs();
    vec![
        m.queue_id.clone(),
        m.queue_name.clone(),
        m.message_size.to_string(),
        short_age(age),
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
    ]
}

/// `45s`, `12m`, `3h`, `2d`: how long a message has waited, in its largest unit.
fn short_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// Each distinct delay reason with the number of messages that wait for it, most
/// frequent first.
fn delay_reasons<'m>(messages: &[&'m QueuedMessage]) -> Vec<(&'m str, usize)> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for m in messages {
        let mut reasons: Vec<&str> = m
            .recipients
            .iter()
            .filter_map(|r| r.delay_reason.as_deref())
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        for reason in reasons {
            match counts.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => counts.push((reason, 1)),
            }
        }
    }
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts
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
        assert_eq!(q.output.format(), Format::Json);
        let q = parse("instancectl queue postfix-a -o wide");
        assert_eq!(q.output.format(), Format::Wide);
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
        let q = parse("instancectl queue postfix-b flush ABC123 DEF456");
        let Some(QueueAction::Flush(f)) = q.action else {
            panic!()
        };
        assert_eq!(f.ids, ["ABC123", "DEF456"]);
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
        let deferred =
            queue::parse_listing(include_str!("../../tests/data/postqueue-j-deferred.jsonl"))
                .unwrap();
        let refs: Vec<&QueuedMessage> = deferred.iter().collect();
        let reasons = delay_reasons(&refs);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert_eq!(reasons[0].1, deferred.len());
        assert!(reasons[0].0.contains("Connection refused"), "{reasons:?}");
        assert_eq!(
            [0, 59, 60, 3599, 3600, 86399, 86400 * 3].map(short_age),
            ["0s", "59s", "1m", "59m", "1h", "23h", "3d"]
        );
    }
}

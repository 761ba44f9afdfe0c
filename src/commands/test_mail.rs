//! `instancectl test-mail NAME --to ADDRESS`: seed 000's step 6, automated. Hands a
//! message to the instance's sendmail, then follows it through the mail log (or, where
//! there is no log, the queue) until it is delivered, deferred or returned, and says
//! what happened with the server's own reply.
//!
//! The log is the instance's maillog_file (Postfix 3.4 and later; instancectl sets one
//! for the relay instances it creates) or the syslog mail log. Without either (macOS's
//! Postfix 3.2 logs to the unified log), the queue is followed instead: a deferral and
//! its reason show there, a delivery only as the message leaving the queue.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::relay::TestMailArgs;
use crate::error::InputError;
use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;
use crate::output::Schema;
use crate::postfix::MAILLOG_FILE_SINCE;
use crate::postfix::maillog::{self, Delivery, Follower};
use crate::postfix::queue;

const POLL: Duration = Duration::from_millis(200);
/// In queue-only mode: how long a message may stay unseen before it counts as gone.
const UNSEEN_GRACE: Duration = Duration::from_secs(5);

pub fn run(host: &Host, args: &TestMailArgs) -> Result<i32> {
    check_address("--to", &args.to)?;
    if let Some(from) = &args.from {
        check_address("--from", from)?;
    }
    if args.timeout == 0 {
        return Err(InputError::TimeoutTooShort.into());
    }
    let instance = host.instance(&args.name)?;
    crate::output::field(Schema::TEST_MAIL, "name", &instance.name);
    crate::output::field(Schema::TEST_MAIL, "to", &args.to);
    host.require_root()?;
    let dir = instance.config_directory.clone();
    if !host.runner.dry_run() && instance.running_master().is_none() {
        return Err(InputError::NotRunningForTestMail {
            instance: instance.display_name().to_string(),
            name: args.name.clone(),
        }
        .into());
    }
    let values = host
        .postfix
        .expanded(&dir, &["syslog_name", "maillog_file", "myhostname"])?;
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let syslog_name = get("syslog_name");
    let message_id = new_message_id(&get("myhostname"));
    crate::output::field(Schema::TEST_MAIL, "message_id", &message_id);
    // Before 3.4 Postfix has no maillog_file: one left in main.cf is ignored (Postfix
    // logs to syslog, or macOS's unified log), so that file would never grow.
    let own_log = if host.postfix.version >= MAILLOG_FILE_SINCE {
        get("maillog_file")
    } else {
        String::new()
    };
    let mut follower = maillog::locate(&own_log).map(|p| Follower::from_end(&p));

    let mut sendmail = host
        .postfix
        .command("sendmail")
        .args(["-C", &dir.to_string_lossy(), "-i"]);
    if let Some(from) = &args.from {
        sendmail = sendmail.args(["-f", from]);
    }
    let sendmail = sendmail
        .args(["--", &args.to])
        .stdin(message(&instance, args, &message_id));
    let started = SystemTime::now();
    host.runner
        .change(&sendmail)
        .map_err(|e| e.context("handing the test message to sendmail"))?;
    if host.runner.dry_run() {
        return Ok(0);
    }
    let name = instance.display_name();
    match &follower {
        Some(f) => crate::output::line(format_args!(
            "{name}: test message {message_id} submitted; following {}",
            f.path().display()
        )),
        None => crate::output::line(format_args!(
            "{name}: test message {message_id} submitted; no mail log found (no maillog_file, \
             no {}), so following the queue: a deferral shows with its reason, a delivery \
             only as the message leaving the queue",
            maillog::SYSLOG_FILES.join(" or ")
        )),
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let fate = match follower.as_mut() {
        Some(f) => follow_log(f, &syslog_name, &message_id, deadline),
        None => follow_queue(host, &instance, &message_id, started, deadline)?,
    };
    crate::output::fields(Schema::TEST_MAIL, Followed::new(&fate));
    Ok(report(&instance, &fate, args.timeout))
}

/// A plausible address: local@domain, nothing a shell, a header or Postfix's command
/// line would read differently.
fn check_address(option: &'static str, address: &str) -> Result<()> {
    let ok = match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address.starts_with('-')
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;()\"\\".contains(c))
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(InputError::EmailAddress {
            option,
            address: address.into(),
        }
        .into())
    }
}

fn new_message_id(myhostname: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let host = if myhostname.is_empty() {
        "localhost"
    } else {
        myhostname
    };
    format!(
        "<instancectl-test.{}.{:09}.{}@{host}>",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    )
}

fn message(instance: &Instance, args: &TestMailArgs, message_id: &str) -> String {
    let mut text = String::new();
    if let Some(from) = &args.from {
        text.push_str(&format!("From: {from}\n"));
    }
    let via = instance.display_name();
    text.push_str(&format!(
        "To: {to}\nSubject: instancectl test-mail through {via}\nMessage-ID: {message_id}\n\
         \n\
         This is a test message from `instancectl test-mail`, sent through the Postfix\n\
         instance {via}. If you can read it, that instance delivers mail.\n",
        to = args.to
    ));
    text
}

/// What became of the message.
#[derive(Debug)]
enum Fate {
    /// The final word on a recipient (sent, bounced, ...) or its first deferral.
    Attempt {
        queue_id: String,
        delivery: Delivery,
        tls: Option<String>,
    },
    /// Deferred, seen in the queue (no log).
    QueuedDeferred { queue_id: String, reason: String },
    /// Left the queue without a deferral (no log to say how).
    LeftQueue { queue_id: Option<String> },
    /// cleanup refused it (header or body checks, a milter).
    Rejected { queue_id: String, text: String },
    /// Still on its way when time ran out.
    TimedOut { queue_id: Option<String> },
}

/// The `instancectl.test-mail/v1` document's account of the message's fate.
#[derive(serde::Serialize)]
struct Followed<'a> {
    /// The queue ID the message was followed by (null: never seen in the queue).
    queue_id: Option<&'a str>,
    /// delivered, deferred, bounced, expired, rejected (by the instance's own
    /// checks), left the queue (no log to say how), timed out.
    outcome: &'a str,
    /// The server's reply, e.g. "250 2.0.0 Ok: queued as ...".
    reply: Option<String>,
    /// Why it was not delivered: the delay reason or the log's explanation.
    reason: Option<&'a str>,
    /// The next hop, as the log names it.
    relay: Option<&'a str>,
    dsn: Option<&'a str>,
    /// The log's TLS line for the connection.
    tls: Option<&'a str>,
}

impl<'a> Followed<'a> {
    fn new(fate: &'a Fate) -> Self {
        let (queue_id, outcome, text) = match fate {
            Fate::Attempt {
                queue_id, delivery, ..
            } => (
                Some(queue_id.as_str()),
                match delivery.status.as_str() {
                    "sent" => "delivered",
                    other => other,
                },
                Some(delivery.detail.as_str()),
            ),
            Fate::QueuedDeferred { queue_id, reason } => {
                (Some(queue_id.as_str()), "deferred", Some(reason.as_str()))
            }
            Fate::LeftQueue { queue_id } => (queue_id.as_deref(), "left the queue", None),
            Fate::Rejected { queue_id, text } => {
                (Some(queue_id.as_str()), "rejected", Some(text.as_str()))
            }
            Fate::TimedOut { queue_id } => (queue_id.as_deref(), "timed out", None),
        };
        let attempt = match fate {
            Fate::Attempt { delivery, tls, .. } => Some((delivery, tls.as_deref())),
            _ => None,
        };
        Followed {
            queue_id,
            outcome,
            reply: text.and_then(maillog::server_reply),
            reason: text.filter(|_| outcome != "delivered"),
            relay: attempt.map(|(d, _)| d.relay.as_str()),
            dsn: attempt.map(|(d, _)| d.dsn.as_str()),
            tls: attempt.and_then(|(_, tls)| tls),
        }
    }
}

fn follow_log(f: &mut Follower, syslog_name: &str, message_id: &str, deadline: Instant) -> Fate {
    let mut queue_id: Option<String> = None;
    // The last TLS line of each smtp process: it precedes that process's deliveries.
    let mut tls_by_pid: Vec<(Option<u32>, String)> = Vec::new();
    loop {
        for raw in f.poll() {
            let Some(line) = maillog::parse_line(&raw, syslog_name) else {
                continue;
            };
            if line.text.contains("TLS connection established to ") {
                tls_by_pid.retain(|(pid, _)| *pid != line.pid);
                tls_by_pid.push((line.pid, line.text.to_string()));
                continue;
            }
            match &queue_id {
                None => {
                    if let Some((qid, id)) = maillog::message_id(line.text)
                        && id == message_id
                    {
                        crate::output::line(format_args!("queued as {qid}"));
                        queue_id = Some(qid.to_string());
                    }
                }
                Some(qid) => {
                    let Some(rest) = line.text.strip_prefix(qid.as_str()) else {
                        continue;
                    };
                    if let Some(text) = rest
                        .strip_prefix(": reject: ")
                        .or_else(|| rest.strip_prefix(": milter-reject: "))
                    {
                        return Fate::Rejected {
                            queue_id: qid.clone(),
                            text: text.to_string(),
                        };
                    }
                    if let Some(delivery) = maillog::delivery(line.text) {
                        let tls = tls_by_pid
                            .iter()
                            .find(|(pid, _)| *pid == line.pid)
                            .map(|(_, t)| t.clone());
                        return Fate::Attempt {
                            queue_id: qid.clone(),
                            delivery,
                            tls,
                        };
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Fate::TimedOut { queue_id };
        }
        std::thread::sleep(POLL);
    }
}

fn follow_queue(
    host: &Host,
    instance: &Instance,
    message_id: &str,
    started: SystemTime,
    deadline: Instant,
) -> Result<Fate> {
    let dir = instance.config_directory.to_string_lossy().into_owned();
    let since = started
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        .saturating_sub(2);
    let mut checked: BTreeSet<String> = BTreeSet::new();
    let mut ours: Option<String> = None;
    let mut announced: Option<String> = None;
    let mut last_seen = Instant::now();
    loop {
        let entries = queue::list(&host.postfix, &instance.config_directory)?;
        let mut present = None;
        for entry in &entries {
            let known = ours.as_deref() == Some(entry.queue_id.as_str());
            if !known && entry.arrival_time >= since && checked.insert(entry.queue_id.clone()) {
                // The message is matched by its Message-ID; a message picked up from
                // maildrop gets a new queue ID, and is matched again.
                let headers = host.runner.probe(&host.postfix.command("postcat").args([
                    "-c",
                    &dir,
                    "-h",
                    "-q",
                    &entry.queue_id,
                ]))?;
                let mine = headers.stdout.lines().any(|l| {
                    l.split_once(':').is_some_and(|(k, v)| {
                        k.eq_ignore_ascii_case("message-id") && v.trim() == message_id
                    })
                });
                if mine {
                    ours = Some(entry.queue_id.clone());
                }
            }
            if ours.as_deref() == Some(entry.queue_id.as_str()) {
                present = Some(entry);
            }
        }
        match present {
            Some(entry) => {
                last_seen = Instant::now();
                // Its maildrop ID is gone once pickup hands it to cleanup: the ID to
                // give is the one it has in the queue proper.
                if entry.queue_name != "maildrop" && announced.as_deref() != ours.as_deref() {
                    crate::output::line(format_args!("queued as {}", entry.queue_id));
                    announced = ours.clone();
                }
                let reason = entry.recipients.iter().find_map(|r| r.delay_reason.clone());
                if let Some(reason) = reason
                    && entry.queue_name == "deferred"
                {
                    return Ok(Fate::QueuedDeferred {
                        queue_id: entry.queue_id.clone(),
                        reason,
                    });
                }
            }
            None if ours.is_some() || last_seen.elapsed() >= UNSEEN_GRACE => {
                return Ok(Fate::LeftQueue { queue_id: ours });
            }
            None => {}
        }
        if Instant::now() >= deadline {
            return Ok(Fate::TimedOut { queue_id: ours });
        }
        std::thread::sleep(POLL * 2);
    }
}

/// Prints what happened and returns the exit status: 0 delivered, 1 otherwise.
fn report(instance: &Instance, fate: &Fate, timeout: u64) -> i32 {
    let name = &instance.name;
    let still_queued = |qid: &str| {
        crate::output::line(format_args!(
            "the message stays in the queue and Postfix retries it: `instancectl queue {name}` \
             lists it, `instancectl queue {name} flush` retries it now, `instancectl queue \
             {name} delete {qid}` deletes it"
        ));
    };
    match fate {
        Fate::Attempt {
            queue_id,
            delivery,
            tls,
        } => {
            if let Some(tls) = tls {
                crate::output::line(format_args!("TLS: {tls}"));
            }
            let reply = maillog::server_reply(&delivery.detail);
            let outcome = match delivery.status.as_str() {
                "sent" => "DELIVERED",
                "deferred" => "DEFERRED",
                "bounced" => "BOUNCED (returned to the sender)",
                "expired" => "EXPIRED (returned to the sender)",
                other => other,
            };
            crate::output::line(format_args!(
                "{outcome}: to <{}> via {} (dsn {})",
                delivery.to,
                if delivery.relay.is_empty() {
                    "none"
                } else {
                    &delivery.relay
                },
                delivery.dsn
            ));
            if delivery.status == "sent" {
                if let Some(reply) = reply {
                    crate::output::line(format_args!("server replied: {reply}"));
                }
                return 0;
            }
            crate::output::line(format_args!("reason: {}", delivery.detail));
            if let Some(reply) = reply {
                crate::output::line(format_args!("server replied: {reply}"));
            }
            if let Some(hint) = diagnose(&delivery.detail) {
                crate::output::line(format_args!(
                    "what to do: {}",
                    hint.replace("NAME", &instance.name)
                ));
            }
            if delivery.status == "deferred" {
                still_queued(queue_id);
            }
            1
        }
        Fate::QueuedDeferred { queue_id, reason } => {
            crate::output::line(format_args!("DEFERRED: {reason}"));
            if let Some(reply) = maillog::server_reply(reason) {
                crate::output::line(format_args!("server replied: {reply}"));
            }
            if let Some(hint) = diagnose(reason) {
                crate::output::line(format_args!(
                    "what to do: {}",
                    hint.replace("NAME", &instance.name)
                ));
            }
            still_queued(queue_id);
            1
        }
        Fate::LeftQueue { queue_id } => {
            let which = queue_id
                .as_deref()
                .map(|q| format!(" ({q})"))
                .unwrap_or_default();
            crate::output::line(format_args!(
                "LEFT THE QUEUE{which} without being deferred: most likely delivered. Without \
                 a mail log instancectl cannot show the server's reply, or tell a delivery \
                 from a bounce (which goes to the sender); on macOS, `log show --info --last 5m \
                 --predicate 'process == \"smtp\"'` shows it (--info: Postfix logs \
                 deliveries as Info messages, which log skips by default)"
            ));
            0
        }
        Fate::Rejected { queue_id, text } => {
            crate::output::line(format_args!(
                "REJECTED by {}'s own checks ({queue_id}): {text}",
                instance.display_name()
            ));
            1
        }
        Fate::TimedOut { queue_id } => {
            match queue_id {
                Some(qid) => crate::output::line(format_args!(
                    "NO OUTCOME after {timeout} s: the message ({qid}) is still on its way; \
                     `instancectl queue {name}` shows it"
                )),
                None => crate::output::line(format_args!(
                    "NO OUTCOME after {timeout} s: the message never showed up in the log; \
                     is the instance running (`instancectl status {name}`)?"
                )),
            }
            1
        }
    }
}

/// What a delivery problem most likely means, and what to do about it.
fn diagnose(reason: &str) -> Option<&'static str> {
    let r = reason.to_ascii_lowercase();
    let hint = if r.contains("sasl authentication failed") || r.contains(" said: 535") {
        "the relay refused the SASL user name or password (an authentication failure). Check \
         the user (`instancectl relay show`), and set the password again with `instancectl \
         relay set NAME --sasl-password-stdin`; Gmail and iCloud want an app password"
    } else if r.contains("tls is required, but was not offered") {
        "the relay offers no STARTTLS on this port, so Postfix did not send the password: check \
         the port (587 for STARTTLS, 465 for TLS from the first byte)"
    } else if r.contains("certificate not verified")
        || r.contains("certificate verification failed")
        || r.contains("server certificate")
    {
        "the relay's certificate could not be verified against smtp_tls_CAfile and the relay's \
         host name, so Postfix did not send the password: check --relay-host and --tls-ca-file"
    } else if r.contains("cannot sasl authenticate") || r.contains("no mechanism") {
        "Postfix's SASL client has no mechanism the relay offers: install the Cyrus SASL \
         plugins (Debian: apt-get install libsasl2-modules)"
    } else if r.contains("connection refused")
        || r.contains("connection timed out")
        || r.contains("network is unreachable")
        || r.contains("no route to host")
    {
        "the next hop cannot be reached: check where NAME sends its mail (`instancectl config \
         NAME show relayhost default_transport content_filter`; a relay instance: `instancectl \
         relay show NAME`), that it is up, and that this host may connect out on that port"
    } else if r.contains("host or domain name not found") || r.contains("unable to look up host") {
        "the next hop's name does not resolve on this host: check where NAME sends its mail \
         (`instancectl config NAME show relayhost`; a relay instance: `instancectl relay show \
         NAME`) and this host's DNS"
    } else if r.contains("sender address rejected")
        || r.contains("send as")
        || r.contains("sender not")
        || r.contains("5.7.60")
    {
        "the provider refused the sender address: map local senders to your account's address \
         with `instancectl relay set NAME --rewrite-from USER=YOU@PROVIDER`"
    } else {
        return None;
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(check_address("--to", "a@b.example").is_ok());
        for bad in [
            "a", "@b", "a@", "-a@b", "a b@c", "a@b\nc", "<a@b>", "a@b,c@d",
        ] {
            assert_eq!(
                check_address("--to", bad).unwrap_err().exit_code(),
                2,
                "{bad}"
            );
        }
    }

    #[test]
    fn diagnoses() {
        assert!(
            diagnose("SASL authentication failed; server x said: 535 5.7.8 nope")
                .unwrap()
                .contains("authentication failure")
        );
        assert!(
            diagnose("TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]")
                .unwrap()
                .contains("STARTTLS")
        );
        assert!(
            diagnose("Server certificate not verified")
                .unwrap()
                .contains("certificate")
        );
        // Not only relay instances defer: an input instance's content filter, an output
        // instance's destination. The hint names what to look at for any of them.
        let refused = diagnose("connect to 127.0.0.1[127.0.0.1]:10025: Connection refused");
        assert!(
            refused
                .unwrap()
                .contains("show relayhost default_transport content_filter"),
            "{refused:?}"
        );
        let unknown = diagnose(
            "Host or domain name not found. Name service error for name=corp.example type=MX",
        );
        assert!(unknown.unwrap().contains("DNS"), "{unknown:?}");
        assert_eq!(diagnose("something new"), None);
    }

    #[test]
    fn message_ids_are_unique() {
        let a = new_message_id("relay.example");
        std::thread::sleep(Duration::from_millis(2));
        let b = new_message_id("relay.example");
        assert_ne!(a, b);
        assert!(a.starts_with("<instancectl-test.") && a.ends_with("@relay.example>"));
    }
}

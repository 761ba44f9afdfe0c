//! End-to-end: the day-2 commands (queue, config, exec, logs) and instance selection
//! (NAME, -i, -g, -a) on real Postfix instances with real mail in their queues, each
//! test in its own sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::systemd::Machine;
use crate::common::{Run, Sandbox, Shell};
use serde_json::Value;

/// Mail to a relay that refuses connections stays deferred.
const REFUSING_RELAY: &str = "--set relayhost=[127.0.0.1]:9";

/// Multi-instance on, the primary running as on a real host (only the primary:
/// `postfix start` would start every enabled instance).
fn initialized() -> Sandbox {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    sb.sh("postmulti -i - -p start").ok();
    sb
}

/// Hands `n` messages to an instance's sendmail (two recipients each).
fn send(sb: &Sandbox, name: &str, n: usize) {
    for i in 0..n {
        sb.sh(&format!(
            "printf 'Subject: day2 {i}\\n\\nhello\\n' | \
             sendmail -C /etc/{name} -f root rcpt{i}@example.org other@example.net"
        ))
        .ok();
    }
}

/// `postqueue -j` of an instance: queue ID -> queue name. Postfix's own view, to
/// check instancectl against.
fn postqueue(sb: &Sandbox, name: &str) -> BTreeMap<String, String> {
    sb.sh(&format!("postqueue -c /etc/{name} -j 2>/dev/null"))
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let m: Value = serde_json::from_str(l).unwrap();
            (
                m["queue_id"].as_str().unwrap().to_string(),
                m["queue_name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn count_in(queue: &BTreeMap<String, String>, name: &str) -> usize {
    queue.values().filter(|q| *q == name).count()
}

fn wait_deferred(sb: &Sandbox, name: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_in(&postqueue(sb, name), "deferred") != n {
        assert!(
            Instant::now() < deadline,
            "{name}: {:?}",
            postqueue(sb, name)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Creates an instance (with `options`) whose relay refuses connections, and waits
/// until `n` messages handed to it are deferred.
fn with_deferred_mail(sb: &Sandbox, name: &str, options: &str, n: usize) {
    sb.ctl(&format!("create {name} {options} {REFUSING_RELAY}"))
        .ok();
    send(sb, name, n);
    wait_deferred(sb, name, n);
}

fn myhostname(sb: &Sandbox, name: &str) -> String {
    let out = sb
        .sh(&format!("postconf -c /etc/{name} -h myhostname"))
        .ok();
    out.stdout.trim().to_string()
}

fn checksum(sb: &Sandbox, files: &str) -> String {
    sb.sh(&format!("sha256sum {files}")).ok().stdout
}

#[test]
fn queue_lists_and_changes_real_mail() {
    let sb = initialized();
    with_deferred_mail(&sb, "postfix-q", "--group mta --listen 127.0.0.1:2525", 3);
    with_deferred_mail(&sb, "postfix-r", "--group mta --listen 127.0.0.1:2526", 2);

    // The listing is postqueue's, with every field.
    let run = sb.ctl("queue postfix-q --json").ok();
    let listing: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listing["schema"], "instancectl.queue/v1");
    let messages = listing["instances"][0]["messages"].as_array().unwrap();
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m["queue_id"].as_str().unwrap().to_string())
        .collect();
    let truth = postqueue(&sb, "postfix-q");
    assert_eq!(
        ids.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        truth.keys().cloned().collect()
    );
    let first = &messages[0];
    assert_eq!(first["queue_name"], "deferred");
    assert!(
        first["sender"].as_str().unwrap().starts_with("root@"),
        "{first:#}"
    );
    assert_eq!(first["recipients"].as_array().unwrap().len(), 2);
    assert!(
        first["recipients"][0]["delay_reason"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{first:#}"
    );
    assert!(first["message_size"].as_u64().unwrap() > 0);

    // A group: one table, both instances, every message.
    let table = sb.ctl("queue -g mta list").ok();
    for id in postqueue(&sb, "postfix-r").keys().chain(ids.iter()) {
        assert!(table.stdout.contains(id.as_str()), "{table:#?}");
    }
    assert!(
        table
            .stdout
            .contains("postfix-q: 3 message(s) (3 deferred)")
    );
    assert!(
        table
            .stdout
            .contains("postfix-r: 2 message(s) (2 deferred)")
    );
    assert!(table.stdout.contains("Connection refused"));
    let wide = sb.ctl("queue -g mta -o wide").ok();
    for id in &ids {
        assert!(wide.stdout.contains(id.as_str()), "{wide:#?}");
    }

    // Hold one by ID, then the rest of the deferred mail of the group.
    let held = sb.ctl(&format!("queue postfix-q hold {}", ids[0])).ok();
    assert!(
        held.stdout.contains("postfix-q: put on hold 1 message(s)"),
        "{held:#?}"
    );
    assert_eq!(postqueue(&sb, "postfix-q")[&ids[0]], "hold");
    let run = sb.ctl("queue -g mta hold --all --queue deferred").ok();
    assert!(
        run.stdout.contains("postfix-q: put on hold 2 message(s)"),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains("postfix-r: put on hold 2 message(s)"),
        "{run:#?}"
    );
    assert_eq!(count_in(&postqueue(&sb, "postfix-q"), "hold"), 3);
    assert_eq!(count_in(&postqueue(&sb, "postfix-r"), "hold"), 2);
    // -o json is --json, as for list and status.
    let only_held = sb.ctl("queue -a --queue hold -o json").ok();
    let only_held: Value = serde_json::from_str(&only_held.stdout).unwrap();
    let total: usize = only_held["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["messages"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 5);

    // Release (the JSON report carries the counts), then requeue.
    let run = sb.ctl("queue -i postfix-r release --all --json").ok();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["instances"][0]["name"], "postfix-r");
    assert_eq!(report["instances"][0]["touched"], 2);
    assert_eq!(count_in(&postqueue(&sb, "postfix-r"), "hold"), 0);
    let run = sb.ctl("queue postfix-r requeue --all").ok();
    assert!(
        run.stdout.contains("postfix-r: requeued 2 message(s)"),
        "{run:#?}"
    );
    wait_deferred(&sb, "postfix-r", 2);
    let run = sb.ctl("queue postfix-r flush").ok();
    assert!(
        run.stdout
            .contains("postfix-r: asked to retry now (deferred) 2 message(s)"),
        "{run:#?}"
    );

    // Bad input changes nothing: an unknown ID, deleting all without --yes.
    let before = postqueue(&sb, "postfix-q");
    let run = sb.ctl("queue postfix-q delete ABCDEF12345");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("ABCDEF12345"), "{run:#?}");
    let run = sb.ctl("queue postfix-q delete bad/id");
    assert_eq!(run.code, 2, "{run:#?}");
    let run = sb.ctl("queue postfix-q delete --all");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("--yes"), "{run:#?}");
    let run = sb.ctl("--dry-run queue postfix-q delete --all").ok();
    assert!(run.stdout.contains("would run:"), "{run:#?}");
    assert_eq!(postqueue(&sb, "postfix-q"), before);

    // Delete one by ID, then everything everywhere.
    let run = sb.ctl(&format!("queue postfix-q delete {}", ids[1])).ok();
    assert!(
        run.stdout.contains("postfix-q: deleted 1 message(s)"),
        "{run:#?}"
    );
    assert_eq!(postqueue(&sb, "postfix-q").len(), 2);
    let run = sb.ctl("queue -g mta delete --all --yes").ok();
    assert!(
        run.stdout.contains("postfix-q: deleted 2 message(s)"),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains("postfix-r: deleted 2 message(s)"),
        "{run:#?}"
    );
    assert!(postqueue(&sb, "postfix-q").is_empty());
    assert!(postqueue(&sb, "postfix-r").is_empty());
    let empty = sb.ctl("queue postfix-q").ok();
    assert!(
        empty.stdout.contains("postfix-q: no queued mail"),
        "{empty:#?}"
    );

    // A stopped instance: maildrop is listed and deleted too, flush says why not.
    sb.ctl("stop postfix-q").ok();
    send(&sb, "postfix-q", 1);
    let run = sb.ctl("queue postfix-q").ok();
    assert!(run.stdout.contains("1 message(s) (1 maildrop)"), "{run:#?}");
    let run = sb.ctl("queue postfix-q flush");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("mail system is down"), "{run:#?}");
    let run = sb.ctl("queue postfix-q delete --all --yes").ok();
    assert!(
        run.stdout.contains("postfix-q: deleted 1 message(s)"),
        "{run:#?}"
    );
}

#[test]
fn config_set_is_checked_reloaded_and_undone_on_failure() {
    let sb = initialized();
    sb.ctl("create postfix-c --listen 127.0.0.1:2527").ok();
    let files = "/etc/postfix-c/main.cf /etc/postfix-c/master.cf";
    let pristine = checksum(&sb, files);
    let banner = sb.banner("127.0.0.1", 2527);
    assert!(banner.starts_with("220 "), "{banner}");

    // Show: the settings main.cf makes, like postconf -n.
    let shown = sb.ctl("config postfix-c").ok();
    let postconf_n = sb.sh("postconf -c /etc/postfix-c -n").ok();
    assert_eq!(shown.stdout, postconf_n.stdout);
    let one = sb.ctl("config postfix-c show inet_interfaces").ok();
    assert_eq!(one.stdout, "inet_interfaces = 127.0.0.1\n");

    // Bad input: exit 2, nothing touched.
    for bad in [
        "set message_size_limt=1",
        "set queue_directory=/tmp",
        "set noequals",
        "unset config_directory",
        "show no_such_parameter",
    ] {
        let run = sb.ctl(&format!("config postfix-c {bad}"));
        assert_eq!(run.code, 2, "{bad}: {run:#?}");
    }
    assert_eq!(checksum(&sb, files), pristine);

    // A dry run shows the diff and changes nothing.
    let run = sb
        .ctl("--dry-run config postfix-c set message_size_limit=20480000")
        .ok();
    assert!(
        run.stdout.contains("--- /etc/postfix-c/main.cf")
            && run.stdout.contains("+message_size_limit = 20480000"),
        "{run:#?}"
    );
    assert_eq!(checksum(&sb, files), pristine);

    // A value postfix check refuses: rolled back byte for byte, still serving.
    let run = sb.ctl("config postfix-c set message_size_limit=lots");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("undone"), "{run:#?}");
    assert!(run.stderr.contains("message_size_limit"), "{run:#?}");
    assert_eq!(checksum(&sb, files), pristine);
    assert_eq!(sb.banner("127.0.0.1", 2527), banner);

    // A value that passes the check but keeps smtpd from starting: the reload is
    // undone as well, and the instance greets again.
    let run = sb.ctl("config postfix-c set smtpd_timeout=never");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("undone"), "{run:#?}");
    assert_eq!(checksum(&sb, files), pristine);
    assert!(
        sb.wait_for(
            "exec 3<>/dev/tcp/127.0.0.1/2527 && timeout 5 head -1 <&3 | grep -q '^220 '",
            Duration::from_secs(20)
        ),
        "postfix-c does not answer after the rollback"
    );

    // A good change: written, checked, reloaded, and Postfix reads it back.
    let run = sb
        .ctl("config postfix-c set message_size_limit=20480000")
        .ok();
    assert!(
        run.stdout.contains("changed, checked and reloaded"),
        "{run:#?}"
    );
    let value = sb
        .sh("postconf -c /etc/postfix-c -h message_size_limit")
        .ok();
    assert_eq!(value.stdout.trim(), "20480000");
    let run = sb
        .ctl("config postfix-c set message_size_limit=20480000")
        .ok();
    assert!(run.stdout.contains("nothing to change"), "{run:#?}");
    sb.ctl("config postfix-c unset message_size_limit").ok();
    let shown = sb.ctl("config postfix-c show -n message_size_limit").ok();
    assert_eq!(shown.stdout, "", "unset: main.cf no longer sets it");
}

#[test]
fn config_rollback_under_the_native_supervisor() {
    // The default manager on Linux: the supervisor runs the masters.
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-n --listen 127.0.0.1:2534").ok();
    let files = "/etc/postfix-n/main.cf /etc/postfix-n/master.cf";
    let pristine = checksum(&sb, files);
    let run = sb.ctl("config postfix-n set smtpd_timeout=never");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("answering after the reload"),
        "{run:#?}"
    );
    assert_eq!(checksum(&sb, files), pristine);
    assert!(
        sb.banner("127.0.0.1", 2534).starts_with("220 "),
        "{run:#?}\n{}",
        sb.supervisor_log()
    );
    let run = sb.ctl("config postfix-n set smtpd_timeout=600s").ok();
    assert!(
        run.stdout.contains("changed, checked and reloaded"),
        "{run:#?}"
    );
}

#[test]
fn config_of_a_group_is_changed_all_or_nothing() {
    let sb = initialized();
    sb.ctl("create postfix-ga --group edge --listen 127.0.0.1:2535")
        .ok();
    sb.ctl("create postfix-gb --group edge --listen 127.0.0.1:2536")
        .ok();
    let files = "/etc/postfix-ga/main.cf /etc/postfix-ga/master.cf \
                 /etc/postfix-gb/main.cf /etc/postfix-gb/master.cf";
    let pristine = checksum(&sb, files);
    let shown = sb.ctl("config -g edge show inet_interfaces").ok();
    assert_eq!(
        shown.stdout,
        "# postfix-ga (/etc/postfix-ga)\ninet_interfaces = 127.0.0.1\n\
         # postfix-gb (/etc/postfix-gb)\ninet_interfaces = 127.0.0.1\n"
    );

    // The first instance fails: nothing is changed anywhere.
    let run = sb.ctl("config -g edge set smtpd_timeout=never");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("postfix-ga answering after the reload"),
        "{run:#?}"
    );
    assert_eq!(checksum(&sb, files), pristine);

    // The second fails after the first was changed and reloaded (its main.cf was
    // already broken by hand, which only shows at its check): both go back.
    sb.sh("postconf -c /etc/postfix-gb -e message_size_limit=lots")
        .ok();
    let broken = checksum(&sb, files);
    let run = sb.ctl("config -g edge set smtpd_banner='$myhostname ESMTP edge'");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("postfix check` of postfix-gb"),
        "{run:#?}"
    );
    assert_eq!(checksum(&sb, files), broken);
    assert_eq!(
        sb.banner("127.0.0.1", 2535),
        format!(
            "220 {} ESMTP Postfix (Debian/GNU)",
            myhostname(&sb, "postfix-ga")
        ),
        "postfix-ga was reloaded with its old main.cf"
    );
    assert!(sb.banner("127.0.0.1", 2536).starts_with("220 "));
    sb.sh("postconf -c /etc/postfix-gb -X message_size_limit")
        .ok();

    sb.ctl("config -g edge set message_size_limit=20480000")
        .ok();
    for name in ["postfix-ga", "postfix-gb"] {
        let value = sb.sh(&format!("postconf -c /etc/{name} -h message_size_limit"));
        assert_eq!(value.stdout.trim(), "20480000", "{name}");
    }
}

#[test]
fn exec_runs_in_the_instance_environment_like_postmulti_x() {
    let sb = initialized();
    sb.ctl("create postfix-e --group mta --listen 127.0.0.1:2528")
        .ok();
    let ours = sb.ctl("exec postfix-e -- env").ok().stdout;
    let postmulti = sb.sh("postmulti -i postfix-e -x env").ok().stdout;
    let vars = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (ours, postmulti) = (vars(&ours), vars(&postmulti));
    for name in [
        "MAIL_CONFIG",
        "command_directory",
        "daemon_directory",
        "config_directory",
        "queue_directory",
        "data_directory",
        "multi_instance_name",
        "multi_instance_group",
        "multi_instance_enable",
    ] {
        assert_eq!(ours.get(name), postmulti.get(name), "{name}");
    }
    assert_eq!(ours["MAIL_CONFIG"], "/etc/postfix-e");
    assert_eq!(ours["multi_instance_group"], "mta");
    assert!(ours["PATH"].starts_with("/usr/sbin:"), "{}", ours["PATH"]);

    // Postfix commands find the instance without -c.
    let run = sb
        .ctl("exec -i postfix-e -- postconf -h queue_directory")
        .ok();
    assert_eq!(run.stdout.trim(), "/var/spool/postfix-e");

    // The exit status passes through; with several instances each failure is named.
    assert_eq!(sb.ctl("exec postfix-e -- sh -c 'exit 7'").code, 7);
    // As a shell says it: 127 for a command that is not there, 126 for one that
    // cannot be run.
    let missing = sb.ctl("exec postfix-e -- no-such-command");
    assert_eq!(missing.code, 127, "{missing:#?}");
    assert!(missing.stderr.contains("no-such-command"), "{missing:#?}");
    assert_eq!(sb.ctl("exec postfix-e -- /etc/postfix-e/main.cf").code, 126);
    let run = sb.ctl("exec -a -- sh -c 'test \"$MAIL_CONFIG\" = /etc/postfix'");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("postfix-e: `sh -c"), "{run:#?}");
    assert!(!run.stderr.contains("(primary)"), "{run:#?}");
    assert_eq!(sb.ctl("exec postfix-e").code, 2, "no command");
}

#[test]
fn logs_show_one_instance_from_a_shared_maillog_file() {
    let sb = initialized();
    let log = "--set maillog_file=/var/log/shared.log";
    with_deferred_mail(
        &sb,
        "postfix-l",
        &format!("--listen 127.0.0.1:2529 {log}"),
        1,
    );
    with_deferred_mail(
        &sb,
        "postfix-m",
        &format!("--listen 127.0.0.1:2530 {log}"),
        1,
    );

    let all = sb.ctl("logs postfix-l -n 1000").ok();
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert!(lines.len() > 5, "{all:#?}");
    assert!(lines.iter().all(|l| l.contains(" postfix-l/")), "{all:#?}");
    assert!(all.stdout.contains("status=deferred"), "{all:#?}");
    let shared = sb.sh("cat /var/log/shared.log").ok().stdout;
    assert!(
        shared.contains(" postfix-m/"),
        "both instances write the file"
    );

    let two = sb.ctl("logs postfix-l -n 2").ok();
    assert_eq!(
        two.stdout.lines().collect::<Vec<_>>(),
        lines[lines.len() - 2..]
    );
    let default = sb.ctl("logs postfix-l").ok();
    assert_eq!(default.stdout.lines().count(), lines.len().min(10));
    let recent = sb.ctl("logs postfix-l --since 1h").ok();
    assert_eq!(recent.stdout, all.stdout);
    let future = sb.ctl("logs postfix-l --since '2999-01-01 00:00'").ok();
    assert_eq!(future.stdout, "");
    assert_eq!(sb.ctl("logs postfix-l --since soon").code, 2);
    assert_eq!(sb.ctl("logs -a").code, 2, "one instance at a time");

    // -f prints what is written from now on.
    let follow = sb.sh(
        "(timeout 6 instancectl logs postfix-l -f -n 0 > /tmp/follow.out &) ; sleep 2; \
         printf 'Subject: f\\n\\nx\\n' | sendmail -C /etc/postfix-l -f root late@example.org; \
         sleep 3; cat /tmp/follow.out",
    );
    assert!(follow.stdout.contains("late@example.org"), "{follow:#?}");
    assert!(
        follow.stdout.lines().all(|l| l.contains(" postfix-l/")),
        "{follow:#?}"
    );
}

#[test]
fn every_command_selects_instances_like_postmulti() {
    let sb = initialized();
    sb.ctl("create postfix-s1 --group mta --listen 127.0.0.1:2531")
        .ok();
    sb.ctl("create postfix-s2 --group mta --listen 127.0.0.1:2532")
        .ok();
    sb.ctl("create postfix-s3 --listen 127.0.0.1:2533").ok();

    let names = |args: &str| -> Vec<String> {
        let run = sb.ctl(&format!("list {args} --json")).ok();
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        doc["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("-g mta"), ["postfix-s1", "postfix-s2"]);
    assert_eq!(names("-i postfix-s3"), ["postfix-s3"]);
    assert_eq!(names("postfix-s3"), ["postfix-s3"]);
    assert_eq!(names(""), ["-", "postfix-s1", "postfix-s2", "postfix-s3"]);
    assert_eq!(names("-a"), names(""));
    let status = sb.ctl("status -i postfix-s2 --json --no-check").ok();
    let report: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(report["summary"]["instances"], 1);

    // Two ways of naming at once, or none where one is needed: bad input.
    assert_eq!(sb.ctl("list postfix-s1 -g mta").code, 2);
    assert_eq!(sb.ctl("stop").code, 2);
    assert_eq!(sb.ctl("enable -").code, 2);

    sb.ctl("stop -i postfix-s3").ok();
    assert_eq!(sb.banner("127.0.0.1", 2533), "");
    sb.ctl("disable -g mta").ok();
    let rows = sb.ctl("list -g mta --json").ok();
    let rows: Value = serde_json::from_str(&rows.stdout).unwrap();
    assert!(
        rows["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["enabled"] == false)
    );
    sb.ctl("enable -g mta").ok();
    assert!(sb.banner("127.0.0.1", 2531).starts_with("220 "));
    assert!(sb.banner("127.0.0.1", 2532).starts_with("220 "));

    // Destroying a group needs --yes, or a yes at the terminal; without it nothing
    // changes.
    let before = sb.config_snapshot();
    let run = sb.ctl("destroy -g mta");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("--yes"), "{run:#?}");
    let at_terminal = |answer: &str, args: &str| {
        sb.sh(&format!(
            "printf '{answer}\\n' | script -qec 'instancectl {args}' /dev/null"
        ))
    };
    let run = at_terminal("n", "destroy -g mta");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stdout
            .contains("destroy postfix-s1, postfix-s2 (2)? This cannot be undone. [y/N]"),
        "{run:#?}"
    );
    assert_eq!(sb.config_snapshot(), before);
    // One of them has mail: the whole group is refused before anything goes (and
    // before anyone is asked).
    sb.ctl("stop postfix-s2").ok();
    send(&sb, "postfix-s2", 1);
    let run = sb.ctl("destroy -g mta");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("queued"), "{run:#?}");
    assert_eq!(names("-g mta"), ["postfix-s1", "postfix-s2"]);
    let run = at_terminal("y", "destroy -g mta --force-discard-queue").ok();
    assert!(run.stdout.contains("postfix-s1: destroyed"), "{run:#?}");
    assert!(run.stdout.contains("postfix-s2: destroyed"), "{run:#?}");
    assert_eq!(names(""), ["-", "postfix-s3"]);
}

/// Checks `logs` against the whole log as `source` (a shell command) prints it, once
/// both instances' deferrals are there: `logs -n N` of the first instance shows N
/// consecutive lines of its own from the source (newer ones may have come
/// meanwhile), and each instance's whole listing has its deferral and no line of the
/// other's. Returns the `-v logs -n N` run (its stderr names the commands it ran).
fn logs_match_the_source(shell: &impl Shell, source: &str, names: [&str; 2], n: usize) -> Run {
    for name in names {
        assert!(
            shell.wait_for(
                &format!("{source} | grep -q ' {name}/smtp\\[.*status=deferred'"),
                Duration::from_secs(60)
            ),
            "{name}'s deferral never reached the log:\n{}",
            shell.sh(&format!("{source} | tail -40")).stdout
        );
    }
    let [name, other] = names;
    let truth: Vec<String> = shell
        .sh(&format!("{source} | grep ' {name}/'"))
        .ok()
        .stdout
        .lines()
        .map(String::from)
        .collect();
    let last = shell.sh(&format!("instancectl -v logs {name} -n {n}")).ok();
    let shown: Vec<&str> = last.stdout.lines().collect();
    assert_eq!(shown.len(), n, "{last:#?}");
    let at = truth
        .iter()
        .position(|l| l == shown[0])
        .unwrap_or_else(|| panic!("{shown:#?} not in {truth:#?}"));
    assert_eq!(truth[at..at + n], shown[..], "{last:#?}");
    for (name, other) in [(name, other), (other, name)] {
        let all = shell.sh(&format!("instancectl logs {name} -n 1000")).ok();
        assert!(all.stdout.contains("status=deferred"), "{all:#?}");
        assert!(
            all.stdout.lines().all(|l| l.contains(&format!(" {name}/"))),
            "{all:#?}"
        );
        assert!(!all.stdout.contains(other), "{all:#?}");
    }
    last
}

/// Under a real systemd (journald running, no syslog daemon, no maillog_file), `logs`
/// reads the journal's mail facility and keeps one instance's lines by its
/// syslog_name.
#[test]
fn logs_read_one_instance_from_the_journal() {
    let Some(m) = Machine::boot() else {
        return;
    };
    m.ctl("init --null-client").ok();
    for (name, port) in [("postfix-ja", 2541), ("postfix-jb", 2542)] {
        m.ctl(&format!(
            "create {name} --listen 127.0.0.1:{port} {REFUSING_RELAY}"
        ))
        .ok();
        let main_cf = m
            .sh(&format!("postconf -c /etc/{name} -h maillog_file"))
            .ok();
        assert_eq!(main_cf.stdout.trim(), "", "{name} logs through syslog");
        m.sh(&format!(
            "printf 'Subject: j\\n\\nx\\n' | sendmail -C /etc/{name} -f root to-{name}@example.org"
        ))
        .ok();
    }
    let journal = "journalctl --no-pager --quiet --output=short-iso SYSLOG_FACILITY=2";
    assert!(m.sh("test -S /run/systemd/journal/socket").code == 0);
    assert!(m.sh("ls /var/log/mail.log /var/log/maillog").code != 0);
    let last = logs_match_the_source(&m, journal, ["postfix-ja", "postfix-jb"], 5);
    // journalctl itself picks the instance's last lines, by its tags.
    assert!(
        last.stderr
            .contains("'--lines=5' 'SYSLOG_FACILITY=2' 'SYSLOG_IDENTIFIER=postfix-ja/")
            && last.stderr.contains("'SYSLOG_IDENTIFIER=postfix-ja/smtp'")
            && !last.stderr.contains("postfix-jb"),
        "{last:#?}"
    );

    // -f: journalctl --follow, from now on, still one instance only.
    let follow = m.sh(
        "timeout 8 instancectl logs postfix-ja -f -n 0 > /tmp/follow.out 2>&1 & sleep 3; \
         for name in postfix-jb postfix-ja; do printf 'Subject: f\\n\\nx\\n' | \
         sendmail -C /etc/$name -f root late-$name@example.org; done; wait; cat /tmp/follow.out",
    );
    assert!(
        follow.stdout.contains("late-postfix-ja@example.org"),
        "{follow:#?}"
    );
    assert!(
        follow.stdout.lines().all(|l| l.contains(" postfix-ja/")),
        "{follow:#?}"
    );
}

/// Deferred messages of an instance, per `postqueue -j`, and how many are held.
fn deferred_and_held(sb: &Sandbox, name: &str) -> (usize, usize) {
    let queue = postqueue(sb, name);
    (count_in(&queue, "deferred"), count_in(&queue, "hold"))
}

fn wait_queue(sb: &Sandbox, name: &str, deferred: usize, held: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while deferred_and_held(sb, name) != (deferred, held) {
        assert!(
            Instant::now() < deadline,
            "{name}: wanted {deferred} deferred and {held} held: {:?}",
            postqueue(sb, name)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 12's day: three instances (an input on a port, an output, a null client
/// whose relay does not resolve) under the default manager, mail queued and deferred
/// in each, and the administrator's chores done only with instancectl, checking
/// Postfix's own view after each. What other tests here check in depth (bad queue IDs,
/// config rollback, exec's whole environment, logs -f) is not repeated.
#[test]
fn a_day_of_work_on_three_instances() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    let log = "--set maillog_file=/var/log/instances.log";
    sb.ctl(&format!(
        "create postfix-out --group mta --role output {log}"
    ))
    .ok();
    sb.ctl(&format!(
        "create postfix-in --group mta --role input --listen 127.0.0.1:2525 {log}"
    ))
    .ok();
    sb.ctl(&format!(
        "create postfix-nc --role null-client --set relayhost=[smtp.corp.example]:587 {log}"
    ))
    .ok();

    // Mail arrives: over SMTP at the input (its content filter is not running), at
    // the output (for a domain that does not resolve here), and from a local
    // program through the null client (whose relay does not resolve).
    sb.sh("smtp-source -m 3 -f alice@example.com -t bob@example.org 127.0.0.1:2525")
        .ok();
    sb.sh("smtp-source -m 2 -f alice@example.com -t carol@nowhere.example 127.0.0.1:10026")
        .ok();
    send(&sb, "postfix-nc", 2);
    wait_queue(&sb, "postfix-in", 3, 0);
    wait_queue(&sb, "postfix-out", 2, 0);
    wait_queue(&sb, "postfix-nc", 2, 0);

    // Every queue at once, and why the mail waits.
    let all = sb.ctl("queue").ok();
    for expected in [
        "postfix-in: 3 message(s) (3 deferred)",
        "postfix-out: 2 message(s) (2 deferred)",
        "postfix-nc: 2 message(s) (2 deferred)",
        "3 waiting because: connect to 127.0.0.1[127.0.0.1]:10025: Connection refused",
        "name=smtp.corp.example",
        "name=nowhere.example",
    ] {
        assert!(all.stdout.contains(expected), "{expected:?} in {all:#?}");
    }
    for id in postqueue(&sb, "postfix-in").keys() {
        assert!(all.stdout.contains(id.as_str()), "{id} in {all:#?}");
    }
    let status = sb.ctl("status --no-check").ok();
    assert!(status.stdout.contains("postfix-nc"), "{status:#?}");

    // Hold one message of the input: only it moves, and postsuper's own line per
    // message is not repeated as a note.
    let input_ids: Vec<String> = postqueue(&sb, "postfix-in").into_keys().collect();
    // The instance named after the action, as git-style commands would have it: bad
    // input, and the message shows the order.
    let run = sb.ctl(&format!("queue hold postfix-in {}", input_ids[0]));
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "as in `instancectl queue postfix-in hold {}`",
            input_ids[0]
        )),
        "{run:#?}"
    );
    let held = sb
        .ctl(&format!("queue postfix-in hold {}", input_ids[0]))
        .ok();
    assert_eq!(held.stdout, "postfix-in: put on hold 1 message(s)\n");
    assert_eq!(held.stderr, "", "{held:#?}");
    wait_queue(&sb, "postfix-in", 2, 1);

    // The null client's relay is wrong: set it to the output instance, then flush.
    // The two messages leave it and arrive at the output.
    let run = sb
        .ctl("config postfix-nc set relayhost=[127.0.0.1]:10026")
        .ok();
    assert!(
        run.stdout.contains("+relayhost = [127.0.0.1]:10026")
            && run.stdout.contains("changed, checked and reloaded"),
        "{run:#?}"
    );
    // One message first (postqueue -i), then the rest (postqueue -f).
    let nc_ids: Vec<String> = postqueue(&sb, "postfix-nc").into_keys().collect();
    let run = sb
        .ctl(&format!("queue postfix-nc flush {}", nc_ids[0]))
        .ok();
    assert_eq!(
        run.stdout,
        "postfix-nc: asked to retry now (deferred) 1 message(s)\n"
    );
    wait_queue(&sb, "postfix-nc", 1, 0);
    wait_queue(&sb, "postfix-out", 3, 0);
    assert!(postqueue(&sb, "postfix-nc").contains_key(&nc_ids[1]));
    let run = sb.ctl("queue postfix-nc flush").ok();
    assert!(
        run.stdout
            .contains("postfix-nc: asked to retry now (deferred) 1 message(s)")
    );
    wait_queue(&sb, "postfix-nc", 0, 0);
    wait_queue(&sb, "postfix-out", 4, 0);

    // Requeue everything of the input: the held message stays on hold.
    let run = sb.ctl("queue postfix-in requeue --all").ok();
    assert!(
        run.stdout.contains("postfix-in: requeued 2 message(s)"),
        "{run:#?}"
    );
    wait_queue(&sb, "postfix-in", 2, 1);
    let run = sb.ctl("queue postfix-in release --all").ok();
    assert!(
        run.stdout.contains("released from hold 1 message(s)"),
        "{run:#?}"
    );
    wait_queue(&sb, "postfix-in", 3, 0);

    // Delete one of the output's by ID, then the group's deferred mail.
    let out_ids: Vec<String> = postqueue(&sb, "postfix-out").into_keys().collect();
    let run = sb
        .ctl(&format!("queue postfix-out delete {}", out_ids[0]))
        .ok();
    assert_eq!(
        run.stdout, "postfix-out: deleted 1 message(s)\n",
        "{run:#?}"
    );
    assert_eq!(postqueue(&sb, "postfix-out").len(), 3);

    // Postfix's own tools through exec: MAIL_CONFIG picks the instance.
    let run = sb.ctl("exec postfix-out -- postqueue -p").ok();
    for id in postqueue(&sb, "postfix-out").keys() {
        assert!(run.stdout.contains(id.as_str()), "{id} in {run:#?}");
    }
    let run = sb.ctl("exec -g mta -- sh -c 'echo $MAIL_CONFIG'").ok();
    assert_eq!(
        run.stdout,
        "# postfix-out (/etc/postfix-out)\n/etc/postfix-out\n\
         # postfix-in (/etc/postfix-in)\n/etc/postfix-in\n"
    );
    let run = sb.ctl("exec postfix-in -- postsuper -d ALL deferred").ok();
    assert!(run.stderr.contains("Deleted: 3 messages"), "{run:#?}");
    assert!(postqueue(&sb, "postfix-in").is_empty());
    let run = sb
        .ctl("queue -g mta delete --all --queue deferred --yes")
        .ok();
    assert!(
        run.stdout.contains("postfix-out: deleted 3 message(s)"),
        "{run:#?}"
    );
    assert!(postqueue(&sb, "postfix-out").is_empty());

    // The null client's log: only its own lines of the shared file, from the failed
    // lookups to the delivery through the output instance.
    let lines = sb.ctl("logs postfix-nc -n 1000").ok();
    assert!(
        lines.stdout.lines().all(|l| l.contains(" postfix-nc/")),
        "{lines:#?}"
    );
    assert!(lines.stdout.contains("smtp.corp.example"), "{lines:#?}");
    assert!(
        lines.stdout.contains("relay=127.0.0.1[127.0.0.1]:10026")
            && lines.stdout.contains("status=sent"),
        "{lines:#?}"
    );
    let shared = sb.sh("cat /var/log/instances.log").ok().stdout;
    assert!(shared.contains(" postfix-in/") && shared.contains(" postfix-out/"));

    // Reload one instance, then stop and start the group.
    let master = sb.pid_file_pid("postfix-out");
    assert_eq!(
        sb.ctl("reload postfix-out").ok().stdout,
        "postfix-out: reloaded\n"
    );
    assert_eq!(
        sb.pid_file_pid("postfix-out"),
        master,
        "a reload keeps the master"
    );
    let run = sb.ctl("stop -g mta").ok();
    assert_eq!(run.stdout, "postfix-in: stopped\npostfix-out: stopped\n");
    let status = sb.ctl("status -g mta --no-check").ok();
    assert!(
        status
            .stdout
            .contains("postfix-out: stopped — run: instancectl start postfix-out"),
        "{status:#?}"
    );
    assert_eq!(sb.ctl("status -g mta --no-check --strict").code, 1);
    // Mail handed to a stopped instance waits in maildrop: queued, not deferred.
    send(&sb, "postfix-out", 1);
    let run = sb.ctl("queue postfix-out").ok();
    assert!(run.stdout.contains("1 message(s) (1 maildrop)"), "{run:#?}");
    let run = sb.ctl("queue postfix-out flush");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.starts_with(
            "instancectl: postfix-out: flush failed: postfix-out is not running; start it \
             (`instancectl start postfix-out`), then flush"
        ) && run.stderr.contains("mail system is down"),
        "{run:#?}"
    );
    sb.ctl("start -g mta").ok();
    let status = sb.ctl("status --no-check --strict").ok();
    assert!(!status.stdout.contains("stopped"), "{status:#?}");
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 "));
    // Started again, the output picks the message up and tries it.
    wait_queue(&sb, "postfix-out", 1, 0);
}

/// Debian's rsyslog, unpacked (not installed: a test may not change the host's /usr)
/// from the packages the registry serves, once per build directory: rsyslog and the
/// libraries of its that a Postfix host may lack.
fn rsyslog_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rsyslog");
        let root = base.join("root");
        if root.join("usr/sbin/rsyslogd").is_file() {
            return root;
        }
        std::fs::create_dir_all(&base).unwrap();
        let work = tempfile::tempdir_in(&base).unwrap();
        let packages = "rsyslog libestr0 libfastjson4 liblognorm5";
        let script = format!(
            "set -e; cd {dir}; apt-get download -q {packages} 2>/dev/null || \
             {{ apt-get update -q >/dev/null && apt-get download -q {packages}; }}; \
             for deb in *.deb; do dpkg-deb -x \"$deb\" root; done",
            dir = work.path().display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "could not fetch Debian's rsyslog packages ({packages}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another test binary may have won the race; its copy is as good.
        let _ = std::fs::rename(work.path().join("root"), &root);
        root
    })
    .clone()
}

/// Shell lines that give a sandbox a /dev of its own (an overlay on the host's, with
/// its pseudo-terminals), so that a syslog daemon's /dev/log is not made on the host;
/// and hide a journald of the host's, so that the sandbox has none.
const PRIVATE_DEV: &str = "set -e
mkdir -p /tmp/host-dev /tmp/dev-upper /tmp/dev-work
mount --rbind /dev /tmp/host-dev
mount -t overlay overlay -o lowerdir=/tmp/host-dev,upperdir=/tmp/dev-upper,workdir=/tmp/dev-work /dev
mount --rbind /tmp/host-dev/pts /dev/pts
mount --rbind /tmp/host-dev/shm /dev/shm
if [ -d /run/systemd/journal ]; then mount -t tmpfs tmpfs /run/systemd/journal; fi";

/// A host without journald whose syslog daemon is rsyslog with Debian's rsyslog.conf
/// (`mail.* -/var/log/mail.log`): `logs` reads that file and keeps one instance's
/// lines.
#[test]
fn logs_read_one_instance_from_rsyslogs_mail_log() {
    let rsyslog = rsyslog_root();
    let sb = initialized();
    sb.sh(PRIVATE_DEV).ok();
    let r = rsyslog.display();
    sb.sh(&format!(
        "set -e; sed -e '/imklog/d' -e '/IncludeConfig/d' {r}/etc/rsyslog.conf > /tmp/rsyslog.conf
         mkdir -p /var/spool/rsyslog
         LD_LIBRARY_PATH={r}/usr/lib/x86_64-linux-gnu {r}/usr/sbin/rsyslogd -f /tmp/rsyslog.conf \
           -M {r}/usr/lib/x86_64-linux-gnu/rsyslog -i /tmp/rsyslogd.pid"
    ))
    .ok();
    assert!(sb.wait_for("test -S /dev/log", Duration::from_secs(10)));
    assert_ne!(sb.sh("test -e /run/systemd/journal/socket").code, 0);

    for (name, port) in [("postfix-sa", 2543), ("postfix-sb", 2544)] {
        with_deferred_mail(&sb, name, &format!("--listen 127.0.0.1:{port}"), 1);
    }
    let last = logs_match_the_source(
        &sb,
        "cat /var/log/mail.log",
        ["postfix-sa", "postfix-sb"],
        4,
    );
    // rsyslog's own format: an RFC 3339 time with microseconds, the host, the tag.
    let first = last.stdout.lines().next().unwrap_or_default();
    assert!(
        first.len() > 32 && first.as_bytes()[10] == b'T' && first.contains(" sandbox postfix-sa/"),
        "{last:#?}"
    );
    let recent = sb.ctl("logs postfix-sa -n 1000 --since 10m").ok();
    assert!(recent.stdout.contains("status=deferred"), "{recent:#?}");
}

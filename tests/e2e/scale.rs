//! End-to-end: what keeps many instances cheap to handle: start and stop of
//! independent instances in parallel (order kept within a group), and the quick
//! `postfix check` after an edit of main.cf. The timings themselves are measured by
//! bench/scale.sh, not here.

use crate::common::Sandbox;
use serde_json::Value;

/// When a process started, in clock ticks since boot (field 22 of /proc/PID/stat).
fn start_ticks(sb: &Sandbox, name: &str) -> u64 {
    let stat = sb
        .sh(&format!(
            "cat /proc/$(head -1 /var/spool/{name}/pid/master.pid | tr -d ' ')/stat"
        ))
        .ok()
        .stdout;
    let after = stat.rsplit_once(") ").unwrap().1;
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// Where in `text` a line containing `what` starts.
fn position(text: &str, what: &str) -> usize {
    text.find(what)
        .unwrap_or_else(|| panic!("{what:?} is not in:\n{text}"))
}

/// `stop --all` of [`mta_and_one_more`]: the group's input before its output, and
/// afterwards nothing answers.
fn stop_all_input_first(sb: &Sandbox) {
    let stop = sb.ctl("stop --all").ok().stdout;
    assert!(
        position(&stop, "postfix-in: stopped") < position(&stop, "postfix-out: stopped"),
        "input stops before output: {stop}"
    );
    for port in [2525, 10026, 2601] {
        assert_eq!(
            sb.banner("127.0.0.1", port),
            "",
            "port {port} still answers"
        );
    }
}

/// A group (output before input) and an instance outside any group.
fn mta_and_one_more(sb: &Sandbox) {
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-out --group mta --role output").ok();
    sb.ctl("create postfix-in --group mta --role input --listen 127.0.0.1:2525")
        .ok();
    sb.ctl("create postfix-a --listen 127.0.0.1:2601").ok();
}

#[test]
fn start_and_stop_all_keep_the_order_within_a_group() {
    let sb = Sandbox::scripted();
    mta_and_one_more(&sb);

    stop_all_input_first(&sb);

    let start = sb.ctl("start --all").ok().stdout;
    assert!(
        position(&start, "postfix-out: started") < position(&start, "postfix-in: started"),
        "output starts before input: {start}"
    );
    assert!(start.contains("postfix-a: started"), "{start}");
    assert!(
        start_ticks(&sb, "postfix-out") <= start_ticks(&sb, "postfix-in"),
        "postfix-in's master started before postfix-out's"
    );
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 in."));
    assert!(sb.banner("127.0.0.1", 10026).starts_with("220 out."));
    assert!(sb.banner("127.0.0.1", 2601).starts_with("220 "));

    // One instance that cannot start does not keep the independent ones down, and
    // the command fails naming it, with Postfix's words.
    sb.ctl("stop --all").ok();
    sb.sh("echo 'bogus line' >> /etc/postfix-a/main.cf").ok();
    let broken = sb.ctl("start --all");
    assert_eq!(broken.code, 1, "{broken:#?}");
    assert!(
        broken.stderr.contains("missing '=' after attribute name"),
        "{broken:#?}"
    );
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 in."));
    assert!(sb.banner("127.0.0.1", 10026).starts_with("220 out."));
    assert_eq!(sb.banner("127.0.0.1", 2601), "");
}

#[test]
fn the_supervisor_starts_and_stops_a_set_on_one_request() {
    let sb = Sandbox::new();
    mta_and_one_more(&sb);

    stop_all_input_first(&sb);
    let before = sb.supervisor_log().len();
    let start = sb.ctl("start --all").ok().stdout;
    for name in ["postfix-out", "postfix-in", "postfix-a"] {
        assert!(start.contains(&format!("{name}: started")), "{start}");
    }
    assert!(start_ticks(&sb, "postfix-out") <= start_ticks(&sb, "postfix-in"));
    // The supervisor starts postfix-a (outside the group) with postfix-out, and
    // postfix-in only once postfix-out listens: in start order (out, in, a) one
    // after another, postfix-a would come last.
    let log = sb.supervisor_log()[before..].to_string();
    let started = |name: &str| position(&log, &format!("started instance=\"{name}\""));
    assert!(started("postfix-out") < started("postfix-in"), "{log}");
    assert!(started("postfix-a") < started("postfix-in"), "{log}");
    for port in [2525, 10026, 2601] {
        assert!(sb.banner("127.0.0.1", port).starts_with("220 "), "{port}");
    }
    // Started again: nothing to do, and it says so.
    let again = sb.ctl("start --all").ok().stdout;
    assert!(again.contains("postfix-a: already running"), "{again}");
}

/// The JSON document of `status ARGS` run by `prefix` (a command that runs it, e.g.
/// under taskset), whatever its exit status.
fn status_report(sb: &Sandbox, prefix: &str, args: &str) -> Value {
    let run = sb.sh(&format!("{prefix} instancectl status --json {args}"));
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("status printed no JSON ({e}):\n{run:#?}"))
}

fn check_of(sb: &Sandbox, name: &str) -> Value {
    status_report(sb, "", name)["instances"][0]["check"].clone()
}

#[test]
fn an_edit_of_main_cf_gets_the_quick_check() {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();

    let first = check_of(&sb, "postfix-a");
    assert_eq!(first["status"], "ok", "{first:#}");
    assert_eq!(first["quick"], false, "nothing remembered: the full check");

    // Postfix programs wait a moment when main.cf has just changed; so does this.
    sb.sh("postconf -c /etc/postfix-a -e bounce_queue_lifetime=6d; sleep 3")
        .ok();
    let quick = check_of(&sb, "postfix-a");
    assert_eq!(quick["status"], "ok", "{quick:#}");
    assert_eq!(quick["quick"], true, "{quick:#}");
    assert_eq!(quick["cached"], false, "{quick:#}");
    assert!(
        quick["reason"]
            .as_str()
            .unwrap()
            .contains("postsuper -c /etc/postfix-a"),
        "{quick:#}"
    );
    // Remembered like any result until the next edit.
    assert_eq!(check_of(&sb, "postfix-a")["cached"], true);

    // What postfix check would say about a broken main.cf, the quick check says too.
    sb.sh("echo 'bogus line' >> /etc/postfix-a/main.cf; sleep 3")
        .ok();
    let broken = check_of(&sb, "postfix-a");
    assert_eq!(broken["status"], "failed", "{broken:#}");
    assert_eq!(broken["quick"], true, "{broken:#}");
    assert!(
        broken["output"]
            .as_str()
            .unwrap()
            .contains("missing '=' after attribute name"),
        "{broken:#}"
    );

    // A postlog service is needed once the instance logs to a file.
    sb.sh("sed -i '/^bogus line$/d' /etc/postfix-a/main.cf; \
         postconf -c /etc/postfix-a -X maillog_file; \
         postconf -c /etc/postfix-a -MX postlog/unix-dgram; sleep 3")
        .ok();
    // (the failed quick check above is not a base for another quick one)
    assert_eq!(check_of(&sb, "postfix-a")["quick"], false);
    sb.sh("postconf -c /etc/postfix-a -e maillog_file=/var/log/postfix-a.log; sleep 3")
        .ok();
    let no_postlog = check_of(&sb, "postfix-a");
    assert_eq!(no_postlog["status"], "failed", "{no_postlog:#}");
    assert_eq!(no_postlog["quick"], true, "{no_postlog:#}");
    assert!(
        no_postlog["output"]
            .as_str()
            .unwrap()
            .contains("missing 'postlog' service in master.cf"),
        "{no_postlog:#}"
    );

    // Where the check looks changed: the full check again.
    sb.sh("postconf -c /etc/postfix-a -X maillog_file; \
         postconf -c /etc/postfix-a -e compatibility_level=3.6; sleep 3")
        .ok();
    let layout = check_of(&sb, "postfix-a");
    assert_eq!(layout["quick"], false, "{layout:#}");

    // A master.cf line the master would die on, the quick check finds too.
    sb.sh("echo 'broken inet n' >> /etc/postfix-a/master.cf; sleep 3")
        .ok();
    let bad_master_cf = check_of(&sb, "postfix-a");
    assert_eq!(bad_master_cf["status"], "failed", "{bad_master_cf:#}");
    assert_eq!(bad_master_cf["quick"], true, "{bad_master_cf:#}");
    assert!(
        bad_master_cf["output"]
            .as_str()
            .unwrap()
            .contains("bad field count"),
        "{bad_master_cf:#}"
    );
}

/// Makes every remembered check two hours old, so that each full check is due.
fn age_remembered_checks(sb: &Sandbox) {
    sb.sh(
        "perl -pi -e 's/\"(checked_at|full_checked_at)\": (\\d+)/\"\\\"$1\\\": \".($2 - 7200)/ge' \
         /var/lib/instancectl/health/*.check.json",
    )
    .ok();
}

/// Which instances' full checks a status run left waiting, and which it ran.
fn due_and_ran(sb: &Sandbox, args: &str) -> (Vec<String>, Vec<String>) {
    // One CPU: a round is two full checks, fewer than the three instances.
    let report = status_report(sb, "taskset -c 0", args);
    let (mut due, mut ran) = (vec![], vec![]);
    for i in report["instances"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap().to_string();
        let check = &i["check"];
        if check["full_check_due"] == true {
            assert_eq!(check["status"], "ok", "the last result is shown: {check:#}");
            assert_eq!(check["cached"], true, "{check:#}");
            assert!(
                check["reason"].as_str().unwrap().contains("--recheck"),
                "{check:#}"
            );
            due.push(name);
        } else if check["cached"] == false {
            assert_eq!(check["quick"], false, "{check:#}");
            ran.push(name);
        }
    }
    (due, ran)
}

/// Full checks that came due while nobody ran status do not all run in the next
/// status run: one round does, the others show their last result until a later run.
#[test]
fn due_full_checks_run_one_round_per_status_run() {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    sb.ctl("create postfix-b --listen 127.0.0.1:2526").ok();
    // The primary, a null client, is down here: status says so and exits 1.
    sb.ctl("status --json");

    age_remembered_checks(&sb);
    let (due, ran) = due_and_ran(&sb, "");
    assert_eq!((due.len(), ran.len()), (1, 2), "due {due:?}, ran {ran:?}");
    // The next run takes the one left; nothing is due after it.
    let (due2, ran2) = due_and_ran(&sb, "");
    assert_eq!((due2.clone(), ran2), (vec![], due), "due {due2:?}");

    // --recheck runs every one.
    age_remembered_checks(&sb);
    let (due, ran) = due_and_ran(&sb, "--recheck");
    assert!(due.is_empty(), "{due:?}");
    assert_eq!(ran.len(), 3, "{ran:?}");
}

fn listener_of(sb: &Sandbox, name: &str) -> Value {
    status_report(sb, "", name)["instances"][0]["listeners"][0].clone()
}

/// smtpd's connect lines in the instance's own log.
fn connects(sb: &Sandbox) -> usize {
    sb.sh("grep -c 'smtpd.*: connect from' /var/log/postfix-a.log || true")
        .stdout
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn status_remembers_greetings_while_the_master_holds_its_listeners() {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525 --set maillog_file=/var/log/postfix-a.log")
        .ok();

    let first = listener_of(&sb, "postfix-a");
    assert_eq!(first["ok"], true, "{first:#}");
    assert_eq!(first["remembered"], false, "{first:#}");
    sb.wait_for(
        "grep -q 'smtpd.*: disconnect from' /var/log/postfix-a.log",
        std::time::Duration::from_secs(5),
    );
    let before = connects(&sb);
    assert!(before >= 1, "the first status connects");

    let again = listener_of(&sb, "postfix-a");
    assert_eq!(again["ok"], true, "{again:#}");
    assert_eq!(again["remembered"], true, "{again:#}");
    assert_eq!(again["banner"], first["banner"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(connects(&sb), before, "no connection, no log line");

    // --recheck probes.
    let recheck = sb.ctl("status postfix-a --json --recheck").ok();
    assert!(
        recheck.stdout.contains("\"remembered\": false"),
        "{recheck:#?}"
    );

    // A stopped master is not taken at its word: the probe runs, and times out.
    sb.sh(
        "kill -STOP $(head -1 /var/spool/postfix-a/pid/master.pid | tr -d ' '); \
           pkill -STOP -x smtpd",
    )
    .ok();
    let stopped = sb.ctl("status postfix-a --json --timeout 1");
    sb.sh(
        "kill -CONT $(head -1 /var/spool/postfix-a/pid/master.pid | tr -d ' '); \
           pkill -CONT -x smtpd",
    )
    .ok();
    assert_eq!(stopped.code, 1, "{stopped:#?}");
    assert!(
        stopped.stdout.contains("\"remembered\": false"),
        "{stopped:#?}"
    );

    // A new master: probed again.
    sb.ctl("stop postfix-a").ok();
    sb.ctl("start postfix-a").ok();
    assert_eq!(listener_of(&sb, "postfix-a")["remembered"], false);
    assert_eq!(listener_of(&sb, "postfix-a")["remembered"], true);

    // The master closed the listener (reload with the service disabled) and main.cf
    // was put back: the socket is gone, so the probe runs and is refused.
    sb.sh(
        "postconf -c /etc/postfix-a -e master_service_disable=inet && \
         postfix -c /etc/postfix-a reload 2>/dev/null; sleep 2; \
         postconf -c /etc/postfix-a -e master_service_disable=",
    )
    .ok();
    let closed = listener_of(&sb, "postfix-a");
    assert_eq!(closed["ok"], false, "{closed:#}");
    assert_eq!(closed["remembered"], false, "{closed:#}");
}

/// With Postfix's scripts, a start after instancectl's own check leaves out
/// postfix-script's check-fatal and check-warn the way Postfix itself allows (the
/// queue directory's `quick-start` file, which the start removes); an instance whose
/// check fails is left to `postfix start`'s own check, which refuses it in Postfix's
/// words.
#[test]
fn a_checked_start_skips_postfix_scripts_second_check() {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    sb.ctl("stop postfix-a").ok();
    // status remembers the full check; the start runs the quick one on top.
    assert_eq!(check_of(&sb, "postfix-a")["quick"], false);

    let start = sb.ctl("-v start postfix-a").ok();
    assert!(
        start.stderr.contains("/var/spool/postfix-a/quick-start"),
        "{start:#?}"
    );
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 "));
    assert!(
        sb.sh("test -e /var/spool/postfix-a/quick-start").code != 0,
        "postfix-script removes quick-start when it starts"
    );
    assert_eq!(
        check_of(&sb, "postfix-a")["quick"],
        true,
        "remembered for status"
    );

    // A full check of any age will do before a start: what Postfix's own start
    // refuses on is the quick check's part; the rest only ever warns.
    sb.ctl("stop postfix-a").ok();
    age_remembered_checks(&sb);
    let after_hours = sb.ctl("-vv start postfix-a").ok();
    assert!(
        after_hours.stderr.contains("postsuper -c /etc/postfix-a")
            && !after_hours
                .stderr
                .contains("postfix -c /etc/postfix-a check"),
        "{after_hours:#?}"
    );

    // A queue directory gone: postsuper fails on it, and the full check creates it
    // again, as Postfix's own start does.
    sb.ctl("stop postfix-a").ok();
    sb.sh("rm -rf /var/spool/postfix-a/deferred").ok();
    sb.ctl("start postfix-a").ok();
    assert!(sb.sh("test -d /var/spool/postfix-a/deferred").code == 0);
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 "));

    sb.ctl("stop postfix-a").ok();
    sb.sh("echo 'bogus line' >> /etc/postfix-a/main.cf; sleep 3")
        .ok();
    let broken = sb.ctl("start postfix-a");
    assert_eq!(broken.code, 1, "{broken:#?}");
    assert!(
        broken.stderr.contains("missing '=' after attribute name"),
        "{broken:#?}"
    );
    assert!(sb.sh("test -e /var/spool/postfix-a/quick-start").code != 0);
}

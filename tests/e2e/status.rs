//! End-to-end: `instancectl status` on real instances, each test in its own sandbox.

use std::time::{Duration, Instant};

use crate::common::{Run, Sandbox};
use serde_json::Value;

/// Starts the primary instance only (`postfix start` would start every enabled
/// instance through the multi-instance wrapper).
fn start_primary(sb: &Sandbox) {
    sb.sh("postmulti -i - -p start").ok();
}

/// Runs `instancectl status ARGS --json` and parses what it printed.
fn status_json(sb: &Sandbox, args: &str) -> (Run, Value) {
    let run = sb.ctl(&format!("status {args} --json"));
    let json: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("status printed no JSON ({e}):\n{run:#?}"));
    (run, json)
}

fn instance<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the report: {report:#}"))
}

fn reasons(i: &Value) -> String {
    lines(i, "reasons")
}

fn warnings(i: &Value) -> String {
    lines(i, "warnings")
}

/// An instance's list of sentences under `key`, one per line.
fn lines(i: &Value, key: &str) -> String {
    i[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn healthy_instance_reports_everything() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --group mta --role output --listen 127.0.0.1:2525")
        .ok();
    start_primary(&sb);

    let (run, report) = status_json(&sb, "");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(report["schema"], "instancectl.status/v2");
    assert_eq!(report["summary"]["verdict"], "healthy");
    assert_eq!(report["summary"]["exit_status"], 0);
    assert_eq!(report["summary"]["instances"], 2);
    assert_eq!(report["summary"]["healthy"], 2);
    assert_eq!(report["host"]["manager"], "postfix");
    assert!(
        report["host"]["postfix_version"]
            .as_str()
            .unwrap()
            .starts_with('3')
    );
    assert_eq!(report["conflicts"], serde_json::json!([]));

    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "healthy", "{a:#}");
    assert_eq!(a["group"], "mta");
    assert_eq!(a["role"], "output");
    assert_eq!(a["enabled"], true);
    assert_eq!(a["config_directory"], "/etc/postfix-a");
    assert_eq!(a["queue_directory"], "/var/spool/postfix-a");
    assert_eq!(a["warnings"], serde_json::json!([]));
    // Reasons are problems: a healthy instance has none, and needs no fix.
    assert_eq!(a["reasons"], serde_json::json!([]), "{a:#}");
    assert_eq!(a["fix"], Value::Null, "{a:#}");

    let pid = i64::from(sb.pid_file_pid("postfix-a").expect("a pid file"));
    let master = &a["master"];
    assert_eq!(master["running"], true);
    assert_eq!(master["lock"], "held");
    assert_eq!(master["pid"], pid);
    assert_eq!(master["pid_file_pid"], pid);
    assert_eq!(master["stale"], false);
    assert_eq!(master["alive"], true);
    assert_eq!(master["holds_lock"], true);
    assert_eq!(master["lock_holder"], pid);
    assert_eq!(master["pid_file"], "/var/spool/postfix-a/pid/master.pid");
    assert!(master["uptime_seconds"].as_u64().unwrap() < 600);
    assert!(master["started_at"].as_str().unwrap().ends_with('Z'));

    // The manager's view: Postfix's scripts know the pid file lock.
    assert_eq!(a["manager"]["kind"], "postfix");
    assert_eq!(a["manager"]["state"], "running");
    assert_eq!(a["manager"]["pid"], pid);
    assert_eq!(a["manager"]["restarts_on_exit"], false);

    // The master and its daemons, as ps sees them.
    let procs = &a["processes"];
    let list = procs["list"].as_array().unwrap();
    assert_eq!(list[0]["pid"], pid);
    assert_eq!(list[0]["name"], "master");
    let names: Vec<&str> = list.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"qmgr") && names.contains(&"pickup"),
        "{names:?}"
    );
    assert_eq!(procs["count"], list.len());
    // Every process below the master has its parent in the list.
    let pids: Vec<&Value> = list.iter().map(|p| &p["pid"]).collect();
    for p in &list[1..] {
        assert!(pids.contains(&&p["ppid"]), "{p} is not below the master");
    }
    assert!(procs["rss_bytes"].as_u64().unwrap() > 1_000_000);

    let myhostname = sb
        .sh("postconf -c /etc/postfix-a -h myhostname")
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(a["myhostname"], myhostname.as_str());
    let l = &a["listeners"][0];
    assert_eq!(l["address"], "127.0.0.1:2525");
    assert_eq!(l["service"], "127.0.0.1:2525/inet");
    assert_eq!(l["command"], "smtpd");
    assert_eq!(l["probe"], "smtp");
    assert_eq!(l["ok"], true);
    assert!(
        l["banner"]
            .as_str()
            .unwrap()
            .starts_with(&format!("220 {myhostname} ESMTP")),
        "{l:#}"
    );
    assert!(l["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(l["error"], Value::Null);

    for q in [
        "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
    ] {
        assert_eq!(a["queues"][q], 0, "{q}");
    }
    assert_eq!(a["queues"]["total"], 0);

    assert_eq!(a["check"]["status"], "ok");
    assert!(a["check"]["checked_at"].as_str().unwrap().ends_with('Z'));

    let primary = instance(&report, "-");
    assert_eq!(primary["role"], "primary");
    assert_eq!(primary["verdict"], "healthy", "{primary:#}");
    assert_eq!(primary["listeners"], serde_json::json!([]));

    // The check is remembered while main.cf and master.cf do not change, and run
    // again when they do.
    let (_, again) = status_json(&sb, "postfix-a");
    let a2 = instance(&again, "postfix-a");
    assert_eq!(a2["check"]["cached"], true);
    assert_eq!(a2["check"]["checked_at"], a["check"]["checked_at"]);
    sb.sh("postconf -c /etc/postfix-a -e 'smtpd_banner = $myhostname ESMTP'")
        .ok();
    let (_, edited) = status_json(&sb, "postfix-a");
    assert_eq!(instance(&edited, "postfix-a")["check"]["cached"], false);
    let (_, forced) = status_json(&sb, "postfix-a --recheck");
    assert_eq!(instance(&forced, "postfix-a")["check"]["cached"], false);

    // For people: a table with no colour on a pipe.
    let table = sb.ctl("status").ok();
    let header = table.stdout.lines().next().unwrap();
    assert!(
        header.contains("NAME") && header.contains("STATUS"),
        "{table:#?}"
    );
    let row = table
        .stdout
        .lines()
        .find(|l| l.contains("postfix-a"))
        .unwrap();
    assert!(row.contains("healthy") && row.contains("1/1"), "{row}");
    assert!(
        !table.stdout.contains('\x1b'),
        "colour on a pipe: {table:#?}"
    );
    let verbose = sb.ctl("status postfix-a -v").ok();
    assert!(
        verbose.stdout.contains(&format!("220 {myhostname} ESMTP")),
        "{verbose:#?}"
    );
    assert!(verbose.stdout.contains("qmgr"), "{verbose:#?}");
}

#[test]
fn prometheus_exposition_is_well_formed() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    start_primary(&sb);
    let run = sb.ctl("status --format prometheus").ok();
    let text = run.stdout;
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_string()), "{name} typed twice");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        // name{labels} value
        let (series, value) = line.rsplit_once(' ').unwrap();
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "{name} has no TYPE line before it");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
    }
    for expected in [
        "instancectl_up{postfix_instance=\"postfix-a\"} 1",
        "instancectl_up{postfix_instance=\"-\"} 1",
        "instancectl_healthy{postfix_instance=\"postfix-a\"} 1",
        "instancectl_verdict{postfix_instance=\"postfix-a\",verdict=\"healthy\"} 1",
        "instancectl_verdict{postfix_instance=\"postfix-a\",verdict=\"down\"} 0",
        "instancectl_listener_up{postfix_instance=\"postfix-a\",listener=\"127.0.0.1:2525\",service=\"127.0.0.1:2525/inet\"} 1",
        "instancectl_queue_messages{postfix_instance=\"postfix-a\",queue=\"deferred\"} 0",
        "instancectl_postfix_check_ok{postfix_instance=\"postfix-a\"} 1",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
    assert!(text.contains("instancectl_listener_latency_seconds{postfix_instance=\"postfix-a\""));
    assert!(text.contains("instancectl_master_start_time_seconds{postfix_instance=\"postfix-a\"}"));

    // --textfile writes the file whatever the verdict, atomically, and prints nothing;
    // a relative path is taken from the working directory.
    sb.ctl("stop postfix-a").ok();
    let run = sb.sh("mkdir -p /tmp/textfile && cd /tmp/textfile && instancectl status --strict --textfile instancectl.prom");
    assert_eq!(run.code, 1, "stopped fails with --strict: {run:#?}");
    assert_eq!(run.stdout, "");
    let file = sb.sh("cat /tmp/textfile/instancectl.prom").ok().stdout;
    for expected in [
        "instancectl_up{postfix_instance=\"postfix-a\"} 0",
        "instancectl_verdict{postfix_instance=\"postfix-a\",verdict=\"stopped\"} 1",
        "instancectl_healthy{postfix_instance=\"postfix-a\"} 0",
    ] {
        assert!(file.contains(expected), "{expected} missing in:\n{file}");
    }
    let leftovers = sb.sh("ls -A /tmp/textfile").ok().stdout;
    assert_eq!(leftovers, "instancectl.prom\n", "no temporary file left");
    // Without --strict a stopped instance is fine; with -o the report goes to stdout
    // as well.
    let run = sb.sh("cd /tmp/textfile && instancectl status --textfile ./instancectl.prom -o json");
    assert_eq!(run.code, 0, "{run:#?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["schema"], "instancectl.status/v2");
    let file = sb.sh("cat /tmp/textfile/instancectl.prom").ok().stdout;
    assert!(
        file.contains("instancectl_healthy{postfix_instance=\"postfix-a\"} 1"),
        "{file}"
    );
}

#[test]
fn failing_check_degrades_a_running_instance() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    // The running master does not read main.cf again until reloaded; the next start
    // would fail.
    sb.sh("echo 'bogus line' >> /etc/postfix-a/main.cf").ok();
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 1, "{run:#?}");
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "degraded", "{a:#}");
    assert_eq!(a["check"]["status"], "failed");
    assert!(
        a["check"]["output"]
            .as_str()
            .unwrap()
            .contains("missing '=' after attribute name"),
        "Postfix's own words: {a:#}"
    );
    assert!(reasons(a).contains("postfix check fails"), "{a:#}");
    assert_eq!(a["listeners"][0]["ok"], true);
    let prom = sb.ctl("status postfix-a --format prometheus").stdout;
    assert!(prom.contains("instancectl_postfix_check_ok{postfix_instance=\"postfix-a\"} 0"));
    let table = sb.ctl("status postfix-a");
    assert!(
        table.stdout.contains(
            "postfix-a: degraded \u{2014} correct what `postfix -c /etc/postfix-a check` \
             reports, then run: instancectl reload postfix-a\n"
        ),
        "{table:#?}"
    );

    // Fixed: the edit changes main.cf, so the check runs again at once.
    sb.sh("sed -i '/^bogus line$/d' /etc/postfix-a/main.cf")
        .ok();
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(instance(&report, "postfix-a")["check"]["status"], "ok");
}

#[test]
fn stopped_then_disabled() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    let pid = i64::from(sb.pid_file_pid("postfix-a").expect("a pid file"));
    sb.ctl("stop postfix-a").ok();

    // Stopped on purpose: not a failure unless --strict.
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(report["summary"]["verdict"], "healthy");
    assert_eq!(report["summary"]["stopped"], 1);
    assert_eq!(report["summary"]["strict"], false);
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "stopped");
    assert_eq!(a["reasons"], serde_json::json!([]), "{a:#}");
    assert_eq!(
        a["fix"],
        serde_json::json!({"first": null, "run": "instancectl start postfix-a"})
    );
    assert_eq!(a["master"]["running"], false);
    assert_eq!(a["master"]["pid"], Value::Null);
    // Postfix leaves its pid file behind when it stops.
    assert_eq!(a["master"]["pid_file_pid"], pid);
    assert_eq!(a["master"]["lock"], "free");
    assert_eq!(a["master"]["stale"], true);
    assert_eq!(a["master"]["alive"], false);
    assert_eq!(a["master"]["holds_lock"], false);
    assert_eq!(a["processes"], Value::Null);
    assert_eq!(a["listeners"][0]["ok"], false);
    assert!(
        a["listeners"][0]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{a:#}"
    );
    assert_eq!(a["manager"]["state"], "not running");

    let (run, report) = status_json(&sb, "postfix-a --strict");
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(report["summary"]["verdict"], "stopped");
    assert_eq!(report["summary"]["exit_status"], 1);

    let table = sb.ctl("status postfix-a");
    assert_eq!(table.code, 0, "{table:#?}");
    assert!(
        table
            .stdout
            .contains("postfix-a: stopped \u{2014} run: instancectl start postfix-a\n"),
        "{table:#?}"
    );
    assert_eq!(sb.ctl("status postfix-a --strict").code, 1);

    // Down without being asked: the master killed behind instancectl's back.
    sb.ctl("start postfix-a").ok();
    let pid = sb.pid_file_pid("postfix-a").expect("a pid file");
    sb.sh(&format!("kill -9 {pid}")).ok();
    assert!(sb.wait_for(
        &format!("! kill -0 {pid} 2>/dev/null"),
        Duration::from_secs(10)
    ));
    let table = sb.ctl("status postfix-a");
    assert_eq!(table.code, 1, "{table:#?}");
    assert!(
        table
            .stdout
            .contains("postfix-a: down \u{2014} run: instancectl start postfix-a\n  - not running"),
        "{table:#?}"
    );

    sb.ctl("disable postfix-a").ok();
    let (run, report) = status_json(&sb, "postfix-a --strict");
    assert_eq!(run.code, 0, "{run:#?}");
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "disabled");
    assert_eq!(a["enabled"], false);
    assert_eq!(a["fix"], Value::Null);
    assert!(
        a["listeners"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not probed"),
        "{a:#}"
    );
    assert_eq!(report["summary"]["disabled"], 1);
}

/// postfix-a's master closes the listeners that `master_service_disable = DISABLE`
/// names on reload (until `port` no longer answers); then main.cf is put back, as an
/// administrator who forgot the second reload would leave it.
fn close_by_reload(sb: &Sandbox, disable: &str, port: u16) {
    sb.sh(&format!(
        "postconf -c /etc/postfix-a -e master_service_disable={disable} && \
         postfix -c /etc/postfix-a reload 2>/dev/null"
    ))
    .ok();
    assert!(sb.wait_for(
        &format!("! (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null"),
        Duration::from_secs(10)
    ));
    sb.sh("postconf -c /etc/postfix-a -e master_service_disable=")
        .ok();
}

#[test]
fn listener_gone_while_the_master_lives() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525 --listen 127.0.0.1:2526")
        .ok();
    let pid = i64::from(sb.pid_file_pid("postfix-a").expect("a pid file"));

    // The master closes a listener it is told to disable on reload; then main.cf is
    // put back, as an administrator who forgot the second reload would leave it.
    close_by_reload(&sb, "127.0.0.1:2526/inet", 2526);
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 1, "{run:#?}");
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "degraded", "{a:#}");
    assert_eq!(a["master"]["running"], true);
    assert_eq!(a["master"]["pid"], pid);
    assert!(
        reasons(a).contains("1 of 2 listeners do not answer: 127.0.0.1:2526: Connection refused"),
        "{a:#}"
    );
    let by_addr = |addr: &str| {
        a["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["address"] == addr)
            .unwrap()
            .clone()
    };
    assert_eq!(by_addr("127.0.0.1:2525")["ok"], true);
    assert_eq!(by_addr("127.0.0.1:2526")["ok"], false);

    // Now every listener: the master lives, nothing answers.
    close_by_reload(&sb, "inet", 2525);
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 1, "{run:#?}");
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "down", "{a:#}");
    assert_eq!(a["master"]["running"], true);
    assert!(
        reasons(a).contains("no listener answers, although the master runs"),
        "{a:#}"
    );
    assert_eq!(a["fix"]["run"], "instancectl restart postfix-a", "{a:#}");
}

#[test]
fn hung_instance_times_out_quickly() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    sb.ctl("create postfix-b --listen 127.0.0.1:2526").ok();
    let pid = i64::from(sb.pid_file_pid("postfix-a").expect("a pid file"));
    // Freeze the master and its daemons: the kernel still accepts connections on the
    // listening socket, but nobody greets.
    sb.sh(&format!("kill -STOP -{pid}")).ok();
    let started = Instant::now();
    // Without postfix check, whose half a second (or more on a busy host) is not
    // what is timed here.
    let (run, report) = status_json(&sb, "--timeout 1 --no-check");
    let took = started.elapsed();
    sb.sh(&format!("kill -CONT -{pid}")).ok();
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(took < Duration::from_secs(4), "status took {took:?}");
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "down", "{a:#}");
    assert_eq!(
        a["master"]["running"], true,
        "a stopped process still holds its lock"
    );
    assert_eq!(
        a["listeners"][0]["error"], "no greeting within 1000 ms",
        "{a:#}"
    );
    // The others are not held up by it.
    assert_eq!(instance(&report, "postfix-b")["verdict"], "healthy");

    let (run, _) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 0, "after SIGCONT: {run:#?}");
}

#[test]
fn stale_pid_file_after_kill_9() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    let pid = i64::from(sb.pid_file_pid("postfix-a").expect("a pid file"));
    sb.sh(&format!("kill -9 {pid}")).ok();
    assert!(sb.wait_for(
        &format!("! kill -0 {pid} 2>/dev/null"),
        Duration::from_secs(5)
    ));

    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 1, "{run:#?}");
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "down");
    assert_eq!(a["master"]["stale"], true);
    assert_eq!(a["master"]["running"], false);
    assert_eq!(a["master"]["pid_file_pid"], pid);
    assert_eq!(a["master"]["alive"], false);
    assert_eq!(a["master"]["holds_lock"], false);
    assert!(
        reasons(a).contains(&format!("pid {pid}, which it names, is gone")),
        "{a:#}"
    );

    // The pid now belongs to another process: kill -0 would call the instance
    // running; the lock says it is not.
    let other = sb
        .sh("setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!")
        .ok()
        .stdout
        .trim()
        .parse::<i64>()
        .unwrap();
    sb.sh(&format!(
        "printf '%33s\\n' {other} > /var/spool/postfix-a/pid/master.pid"
    ))
    .ok();
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 1, "{run:#?}");
    let a = instance(&report, "postfix-a");
    assert_eq!(a["verdict"], "down");
    assert_eq!(a["master"]["pid_file_pid"], other);
    assert_eq!(a["master"]["alive"], true, "{a:#}");
    assert_eq!(a["master"]["holds_lock"], false, "{a:#}");
    assert!(reasons(a).contains("now belongs to `sleep`"), "{a:#}");
    let table = sb.ctl("status postfix-a -o wide");
    assert!(
        table.stdout.contains(&format!("- ({other} stale)")),
        "{table:#?}"
    );

    // And start is not fooled either.
    let start = sb.ctl("start postfix-a").ok();
    assert!(start.stdout.contains("postfix-a: started"), "{start:#?}");
    let (run, _) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 0, "{run:#?}");
}

#[test]
fn queue_counts_follow_held_delivery() {
    let sb = Sandbox::scripted().null_client();
    // The relay refuses connections: mail waits in the deferred queue.
    sb.ctl("create postfix-q --listen 127.0.0.1:2525 --set relayhost=[127.0.0.1]:9")
        .ok();
    for n in 0..3 {
        sb.sh(&format!(
            "printf 'Subject: t{n}\\n\\nhello\\n' | \
             postmulti -i postfix-q -x sendmail -f root someone@example.org"
        ))
        .ok();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while instance(&status_json(&sb, "postfix-q --no-check").1, "postfix-q")["queues"]["deferred"]
        != 3
    {
        assert!(
            Instant::now() < deadline,
            "{:#?}",
            sb.ctl("status postfix-q -v")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (run, report) = status_json(&sb, "postfix-q");
    assert_eq!(
        run.code, 0,
        "a queue does not make an instance unhealthy: {run:#?}"
    );
    let q = &instance(&report, "postfix-q")["queues"];
    assert_eq!(q["deferred"], 3, "{q:#}");
    assert_eq!(q["total"], 3, "{q:#}");
    // Postfix agrees.
    let postqueue = sb.sh("postqueue -c /etc/postfix-q -j").ok().stdout;
    let queues: Vec<String> = postqueue
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["queue_name"].to_string())
        .collect();
    assert_eq!(queues, ["\"deferred\""; 3], "{postqueue}");

    sb.sh("postsuper -c /etc/postfix-q -h ALL deferred 2>/dev/null")
        .ok();
    let (_, report) = status_json(&sb, "postfix-q");
    let q = &instance(&report, "postfix-q")["queues"];
    assert_eq!(
        (q["hold"].clone(), q["deferred"].clone()),
        (3.into(), 0.into())
    );
    let table = sb.ctl("status postfix-q -o wide").ok();
    assert!(table.stdout.contains("3 (3 hold)"), "{table:#?}");

    // A stopped instance's submissions wait in maildrop.
    sb.ctl("stop postfix-q").ok();
    sb.sh(
        "printf 'Subject: m\\n\\nhi\\n' | postmulti -i postfix-q -x sendmail -f root x@example.org",
    )
    .ok();
    let (run, report) = status_json(&sb, "postfix-q");
    assert_eq!(run.code, 0, "stopped on purpose: {run:#?}");
    let q = &instance(&report, "postfix-q")["queues"];
    assert_eq!(q["maildrop"], 1, "{q:#}");
    assert_eq!(q["total"], 4, "{q:#}");
}

#[test]
fn shared_myhostname_and_clashing_listeners_are_flagged() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --group mta --listen 127.0.0.1:2525")
        .ok();
    sb.ctl("create postfix-b --group mta --listen 127.0.0.1:2526")
        .ok();
    start_primary(&sb);
    let a_name = sb
        .sh("postconf -c /etc/postfix-a -h myhostname")
        .ok()
        .stdout
        .trim()
        .to_string();
    sb.sh(&format!(
        "postconf -c /etc/postfix-b -e myhostname={a_name}"
    ))
    .ok();
    let (run, report) = status_json(&sb, "-g mta");
    assert_eq!(run.code, 0, "a shared myhostname is a warning: {run:#?}");
    assert_eq!(report["summary"]["instances"], 2, "-g selects the group");
    assert_eq!(
        report["conflicts"],
        serde_json::json!([{
            "kind": "myhostname",
            "myhostname": a_name,
            "instances": ["postfix-a", "postfix-b"],
        }])
    );
    assert!(
        warnings(instance(&report, "postfix-b")).contains("also the myhostname of postfix-a"),
        "{report:#}"
    );
    let table = sb.ctl("status -g mta").ok();
    assert!(table.stdout.contains("! myhostname"), "{table:#?}");

    // postfix-b's main.cf now names postfix-a's address (not yet reloaded).
    sb.sh(&format!(
        "postconf -c /etc/postfix-b -e myhostname=b.{a_name}"
    ))
    .ok();
    sb.sh("postconf -c /etc/postfix-b -F '127.0.0.1:2526/inet/service = 127.0.0.1:2525'")
        .ok();
    let (run, report) = status_json(&sb, "");
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        report["conflicts"],
        serde_json::json!([{
            "kind": "listener",
            "instances": ["postfix-a", "postfix-b"],
            "addresses": ["127.0.0.1:2525", "127.0.0.1:2525"],
        }])
    );
    for (name, other) in [("postfix-a", "postfix-b"), ("postfix-b", "postfix-a")] {
        let i = instance(&report, name);
        assert_eq!(i["verdict"], "degraded", "{i:#}");
        assert!(
            reasons(i).contains(&format!(
                "127.0.0.1:2525 is also configured for {other}: only one of them can bind it"
            )),
            "{i:#}"
        );
    }
    assert_eq!(instance(&report, "-")["verdict"], "healthy");
    // postfix-b still runs on 2526; what answers on 2525 is postfix-a.
    assert!(
        warnings(instance(&report, "postfix-b"))
            .contains("127.0.0.1:2525 is answered by postfix-a (its greeting names"),
        "{report:#}"
    );
}

/// The instance list status reads from the files, as `postmulti -l -a` lines.
fn listed_by_status(sb: &Sandbox) -> Vec<String> {
    let (_, report) = status_json(sb, "--no-check");
    report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {} {} {}",
                i["name"].as_str().unwrap(),
                i["group"].as_str().unwrap_or("-"),
                if i["enabled"] == true { "y" } else { "n" },
                i["config_directory"].as_str().unwrap()
            )
        })
        .collect()
}

fn listed_by_postmulti(sb: &Sandbox) -> Vec<String> {
    sb.sh("postmulti -l -a")
        .ok()
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn instance_list_matches_postmulti() {
    let sb = Sandbox::scripted();
    // Before init the primary's multi_instance_enable is "no"; it is enabled anyway.
    assert_eq!(listed_by_status(&sb), listed_by_postmulti(&sb));
    assert_eq!(listed_by_status(&sb), ["- - y /etc/postfix"]);
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-in --group mta --role input --listen 127.0.0.1:2525 --no-start")
        .ok();
    sb.ctl("create postfix-out --group mta --role output --no-start")
        .ok();
    sb.ctl("create postfix-x --listen 127.0.0.1:2527 --no-start")
        .ok();
    sb.ctl("disable postfix-x").ok();
    assert_eq!(listed_by_status(&sb), listed_by_postmulti(&sb));
    assert_eq!(listed_by_status(&sb).len(), 4);
    let (_, report) = status_json(&sb, "--no-check");
    assert_eq!(
        instance(&report, "postfix-in")["check"]["status"],
        "not-run",
        "--no-check"
    );
}

#[test]
fn selection_errors_are_bad_input() {
    let sb = Sandbox::scripted().null_client();
    let run = sb.ctl("status postfix-nope");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("no instance named \"postfix-nope\""));
    let run = sb.ctl("status -g nogroup");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no instance is in group"));
    let run = sb.ctl("status --timeout 0");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--timeout"), "{run:#?}");
    let run = sb.ctl("status --json --format table");
    assert_eq!(run.code, 2, "{run:#?}");
}

#[test]
fn colour_only_on_a_terminal_and_watch_redraws() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    start_primary(&sb);
    // `script` gives the command a terminal.
    let tty = sb.sh("script -qec 'instancectl status' /dev/null").ok();
    assert!(
        tty.stdout.contains("\x1b["),
        "no colour on a terminal: {tty:#?}"
    );
    let no_color = sb
        .sh("NO_COLOR=1 script -qec 'instancectl status' /dev/null")
        .ok();
    assert!(!no_color.stdout.contains("\x1b["), "{no_color:#?}");
    assert!(no_color.stdout.contains("healthy"));

    let watch = sb.sh("script -qec 'timeout 2.5 instancectl status --watch 1' /dev/null");
    let frames = watch.stdout.matches("\x1b[H").count();
    assert!(frames >= 2, "{frames} frames: {watch:#?}");
    assert!(watch.stdout.contains("Every 1s: instancectl status"));

    // On a pipe, --watch --json streams one document per line.
    let stream = sb
        .sh("timeout 2.5 instancectl status --watch 1 --json | head -2")
        .stdout;
    let docs: Vec<Value> = stream
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{stream}");
    assert_eq!(docs[1]["summary"]["verdict"], "healthy");
}

#[test]
fn without_root_status_still_tells_what_it_can() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    let pid = i64::from(sb.pid_file_pid("postfix-a").expect("a pid file"));
    // Forget the remembered check, so nobody has run it.
    sb.sh("rm -rf /var/lib/instancectl/health").ok();
    let run = sb.sh(
        "setpriv --reuid=nobody --regid=nogroup --clear-groups instancectl status postfix-a --json",
    );
    let report: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:#?}"));
    let a = instance(&report, "postfix-a");
    // The pid file is root's (mode 0600), but /proc/locks tells who holds its lock.
    assert_eq!(a["master"]["running"], true, "{a:#}");
    assert_eq!(a["master"]["pid"], pid);
    assert_eq!(a["listeners"][0]["ok"], true);
    assert_eq!(a["check"]["status"], "not-run");
    assert!(
        a["check"]["reason"]
            .as_str()
            .unwrap()
            .contains("needs root")
    );
    assert_eq!(a["queues"], Value::Null);
    assert!(
        a["queues_error"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{a:#}"
    );
    assert_eq!(a["verdict"], "healthy", "{a:#}");
}

#[test]
fn tls_wrapped_listener_must_answer_a_client_hello() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    // A submissions service (port 465 style): smtpd greets only after a TLS handshake.
    // postmulti's main.cf for the instance names no certificate, so TLS cannot work.
    sb.sh(
        "postconf -c /etc/postfix-a -M \
         '127.0.0.1:4650/inet = 127.0.0.1:4650 inet n - y - - smtpd -o smtpd_tls_wrappermode=yes' && \
         postfix -c /etc/postfix-a reload 2>/dev/null",
    )
    .ok();
    assert!(sb.wait_for(
        "(exec 3<>/dev/tcp/127.0.0.1/4650) 2>/dev/null",
        Duration::from_secs(10)
    ));
    let wrapper = |report: &Value| {
        instance(report, "postfix-a")["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["address"] == "127.0.0.1:4650")
            .unwrap()
            .clone()
    };
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 1, "{run:#?}");
    let l = wrapper(&report);
    assert_eq!(l["probe"], "tls-wrapper", "{l:#}");
    assert_eq!(l["ok"], false, "{l:#}");
    assert!(
        l["error"]
            .as_str()
            .unwrap()
            .contains("closed the connection without a TLS answer"),
        "{l:#}"
    );
    assert_eq!(instance(&report, "postfix-a")["verdict"], "degraded");

    // With a certificate the handshake starts, and the instance is healthy.
    sb.sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=a.example \
           -keyout /etc/postfix-a/key.pem -out /etc/postfix-a/cert.pem 2>/dev/null && \
         postconf -c /etc/postfix-a -e smtpd_tls_cert_file=/etc/postfix-a/cert.pem \
           smtpd_tls_key_file=/etc/postfix-a/key.pem && \
         postfix -c /etc/postfix-a reload 2>/dev/null",
    )
    .ok();
    let healthy = "instancectl status postfix-a >/dev/null";
    assert!(
        sb.wait_for(healthy, Duration::from_secs(10)),
        "{:#?}",
        sb.ctl("status postfix-a -v")
    );
    let (_, report) = status_json(&sb, "postfix-a");
    let l = wrapper(&report);
    assert_eq!(l["ok"], true, "{l:#}");
    assert_eq!(l["banner"], Value::Null);
    assert!(l["latency_ms"].as_f64().unwrap() > 0.0);
    // start and restart wait for it the same way.
    sb.ctl("restart postfix-a").ok();
}

#[test]
fn a_master_on_an_overlay_with_its_upper_layer_on_tmpfs_is_seen_running() {
    let sb = Sandbox::scripted_on_tmpfs();
    sb.ctl("init --null-client").ok();
    let created = sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    assert!(
        created.stdout.contains("SMTP answering on 127.0.0.1:2525"),
        "{created:?}"
    );
    let status = sb.ctl("status --json postfix-a");
    assert_eq!(status.code, 0, "{status:?}");
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let a = &report["instances"][0];
    assert_eq!(a["verdict"], "healthy", "{a:#}");
    assert_eq!(a["master"]["lock"], "held", "{a:#}");
    assert_eq!(a["master"]["running"], true, "{a:#}");
}

/// Starts a program that listens on ADDR:PORT beside whatever is there
/// (SO_REUSEPORT) and greets every client as an impostor; returns when it listens.
fn start_impostor(sb: &Sandbox, addr: &str, port: u16) {
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n\
         s.bind(('{addr}', {port}))\n\
         s.listen()\n\
         open('/tmp/impostor-{port}', 'w').close()\n\
         while True:\n    c, _ = s.accept()\n    c.sendall(b'220 impostor ESMTP\\r\\n')\n    c.close()\n"
    );
    std::fs::write(sb.root().join(format!("impostor-{port}.py")), script).unwrap();
    sb.sh(&format!(
        "setsid python3 {}/impostor-{port}.py >/dev/null 2>&1 < /dev/null &",
        sb.root().display()
    ))
    .ok();
    assert!(sb.wait_for(
        &format!("test -e /tmp/impostor-{port}"),
        Duration::from_secs(10)
    ));
}

#[test]
fn another_program_on_an_instances_port_is_a_problem_and_stops_create() {
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    let (run, report) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 0, "{run:?}");
    start_impostor(&sb, "127.0.0.1", 2525);
    let (run, report_after) = status_json(&sb, "postfix-a");
    assert_eq!(run.code, 1, "{run:?}");
    let a = instance(&report_after, "postfix-a");
    assert_eq!(a["verdict"], "degraded", "{a:#}");
    let why = reasons(a);
    assert!(
        why.contains("127.0.0.1:2525 is also listened on by pid "),
        "{why}"
    );
    assert!(why.contains("`python3`"), "{why}");
    drop(report);

    start_impostor(&sb, "127.0.0.1", 2526);
    let before = sb.config_snapshot();
    let refused = sb.ctl("create postfix-b --listen 127.0.0.1:2526");
    assert_eq!(refused.code, 1, "{refused:?}");
    for expected in [
        "postfix-b serves, but another program listens where it does: 127.0.0.1:2526 is \
         also listened on by pid ",
        "`python3`",
        "undone",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected:?} in {refused:?}"
        );
    }
    assert_eq!(before, sb.config_snapshot());
}

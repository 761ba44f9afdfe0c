//! End-to-end: sessions a macOS Postfix administrator has with instancectl, under the
//! launchd emulator (tests/e2e/launchd.rs's `Mac`), each in every generation (macOS 12
//! and older, 13 to 15, 26 and later). Each test is one session: what the admin does, in order,
//! and what they must be told: a true message, the right exit status, nothing left
//! half-done, and a status that says what launchd is doing.

use crate::common::Run;
use crate::launchd::{DAEMONS, Mac, STATE, WAIT, env, in_each_generation};
use crate::postfix32::as_postfix_32;
use instancectl::manager::launchd::launchctl::{JobInfo, parse_print};

const OUT: &str = "org.postfix.postfix-out";

/// How long the emulator holds each spawn in `xpcproxy` for the slow-Mac session:
/// long enough that the command that follows surely meets it on a loaded machine.
const HOLD_MS: u64 = 5000;

/// `launchctl print system/LABEL` as written to FILE by a script, parsed.
fn printed(mac: &Mac, file: &str) -> JobInfo {
    parse_print(&mac.sb.sh(&format!("cat {file}")).ok().stdout)
}

/// The pid in "NAME: VERB (master pid PID)".
fn reported_pid(line: &str) -> i32 {
    let tail = line.rsplit("master pid ").next().unwrap_or_default();
    tail.trim_end_matches([')', '\n'])
        .parse()
        .unwrap_or_else(|_| panic!("no master pid in {line:?}"))
}

/// A slow Mac: launchd is still spawning the job (`state = xpcproxy`, the run already
/// counted, no master yet) when the admin's start, restart or reload comes. Each must
/// wait for that run and take it, not fail, and not start a second master.
fn a_command_during_xpcproxy_waits_for_that_run(release: &'static str) {
    let mac = Mac::with_emulator_args(release, &format!("--xpcproxy-hold {HOLD_MS}"));
    mac.create_out();
    let mut runs = mac.print(OUT).unwrap().runs.unwrap();
    assert_eq!(runs, 1);
    for command in ["restart", "start", "reload"] {
        // launchctl kickstart -k returns once the new process is spawned, so the job is
        // in xpcproxy when instancectl begins.
        let run = mac.sh(&format!(
            "launchctl kickstart -k system/{OUT} >/dev/null && \
             launchctl print system/{OUT} > /tmp/before && instancectl {command} postfix-out"
        ));
        let before = printed(&mac, "/tmp/before");
        assert!(
            before.is_spawning(),
            "{command}: not in xpcproxy: {before:?}"
        );
        runs += 1;
        assert_eq!(before.runs, Some(runs));
        let spawned = before.pid.unwrap();
        assert_eq!(run.code, 0, "{command} during xpcproxy: {run:?}");
        if command != "reload" {
            assert_eq!(reported_pid(&run.stdout), spawned, "{run:?}");
        }
        let after = mac.print(OUT).unwrap();
        assert!(after.is_running(), "{after:?}");
        assert_eq!(after.runs, Some(runs), "{command} started another master");
        assert_eq!(after.pid, Some(spawned));
        assert_eq!(mac.master_pid("postfix-out"), Some(spawned as u32));
        assert!(mac.sb.banner("127.0.0.1", 10026).starts_with("220 "));
    }
    // A stop in that window stops what launchd was starting, and says so.
    let stop = mac.sh(&format!(
        "launchctl kickstart -k system/{OUT} >/dev/null && instancectl stop postfix-out"
    ));
    assert_eq!(stop.code, 0, "{stop:?}");
    assert_eq!(stop.stdout, "postfix-out: stopped\n");
    assert!(mac.print(OUT).is_none());
    assert_eq!(mac.master_pid("postfix-out"), None);
}

/// The JSON document of `COMMAND --json` (an instancectl command line, possibly after
/// variable assignments), with the run.
fn json(mac: &Mac, command: &str) -> (serde_json::Value, Run) {
    let run = mac.sh(&format!("{command} --json"));
    let doc = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no JSON from {command} ({e}): {run:?}"));
    (doc, run)
}

/// The `result` of each entry of a lifecycle document.
fn results(doc: &serde_json::Value) -> Vec<String> {
    doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["action"].as_str().unwrap(),
                i["result"].as_str().unwrap()
            )
        })
        .collect()
}

/// A Mac as it comes: Apple's on-demand Postfix job, nothing of instancectl's. Status
/// is healthy (the primary idle is what on demand means), and nothing has drifted.
fn a_fresh_mac_shows_apples_idle_job_as_healthy(release: &'static str) {
    let mac = Mac::new(release);
    let (doc, run) = json(&mac, "instancectl status");
    assert_eq!(run.code, 0, "{run:?}");
    let primary = &doc["instances"][0];
    assert_eq!(primary["name"], "-");
    assert_eq!(primary["verdict"], "on-demand", "{primary:#}");
    assert_eq!(primary["manager"]["label"], "com.apple.postfix.master");
    assert_eq!(primary["manager"]["state"], "not running");
    assert_eq!(primary["reasons"], serde_json::json!([]));
    assert_eq!(doc["instances"].as_array().unwrap().len(), 1);
    let table = mac.ctl("status").ok().stdout;
    assert!(table.contains("on-demand"), "{table}");
    let list = mac.ctl("list").ok().stdout;
    assert!(list.contains("on demand (com.apple.postfix."), "{list}");
    assert!(mac.ctl("reconcile").ok().stdout.contains("no drift"));
    let lint = mac.ctl("plist --check").ok();
    assert!(lint.stdout.contains("no LaunchDaemon in"), "{lint:?}");
    // The primary is Apple's: instancectl neither stops nor writes a plist for it.
    let refused = mac.ctl("plist -");
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("com.apple.postfix.master"),
        "{refused:?}"
    );
    assert_eq!(mac.sb.sh(&format!("ls {DAEMONS}")).ok().stdout, "");

    // Mail is submitted and launchd runs Apple's job, whose master fails at once (here:
    // its program, /usr/libexec/postfix/master, is not on this Linux host, and launchd
    // records `78: EX_CONFIG`, as for a program it cannot run): mail now waits in the
    // maildrop, and status must not call that idle.
    let label = "com.apple.postfix.master";
    let kicked = mac.sh(&format!("launchctl kickstart system/{label}"));
    assert_ne!(kicked.code, 0, "{kicked:?}");
    let (doc, run) = json(&mac, "instancectl status -");
    assert_eq!(run.code, 1, "{run:?}");
    let primary = &doc["instances"][0];
    assert_eq!(primary["verdict"], "degraded", "{primary:#}");
    let why = primary["reasons"].to_string();
    assert!(
        why.contains("the master's last run ended with exit status 78 (EX_CONFIG)"),
        "{why}"
    );
    assert_eq!(
        primary["fix"]["run"],
        format!("launchctl kickstart system/{label}"),
        "{primary:#}"
    );
    let list = mac.ctl("list -o wide").ok().stdout;
    assert!(
        list.contains("idle, its last run ended with exit status 78 (EX_CONFIG)"),
        "{list}"
    );
}

/// Every command run a second time: it says the thing is already so, exits 0 (destroy
/// of a destroyed instance: 2, naming the instances there are), and changes nothing.
fn every_command_twice(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    let pid = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    let twice = |args: &str, first: &[&str], second: &[&str]| {
        let (one, run) = json(&mac, &format!("instancectl {args}"));
        assert_eq!(run.code, 0, "{args}: {run:?}");
        assert_eq!(results(&one), first, "{args}");
        let (two, run) = json(&mac, &format!("instancectl {args}"));
        assert_eq!(run.code, 0, "{args} again: {run:?}");
        assert_eq!(results(&two), second, "{args} again");
    };
    twice(
        "start postfix-out",
        &["start already running"],
        &["start already running"],
    );
    assert_eq!(mac.print(OUT).unwrap().pid, Some(pid as i32));
    twice(
        "stop postfix-out",
        &["stop stopped"],
        &["stop already stopped"],
    );
    assert!(mac.print(OUT).is_none());
    twice(
        "start postfix-out",
        &["start started"],
        &["start already running"],
    );
    assert_eq!(mac.print(OUT).unwrap().runs, Some(1));
    // Each restart is one more run of the same loaded job.
    twice(
        "restart postfix-out",
        &["restart restarted"],
        &["restart restarted"],
    );
    assert_eq!(mac.print(OUT).unwrap().runs, Some(3));
    twice(
        "disable postfix-out",
        &["stop stopped", "disable disabled"],
        &["stop already stopped", "disable disabled"],
    );
    assert_eq!(
        mac.override_of(OUT),
        Some(instancectl::manager::Override::Disabled)
    );
    twice(
        "enable postfix-out",
        &["enable enabled", "start started"],
        &["enable enabled", "start already running"],
    );
    assert_eq!(
        mac.override_of(OUT),
        Some(instancectl::manager::Override::Enabled)
    );
    assert!(mac.ctl("reconcile").ok().stdout.contains("no drift"));
    // Enabled: a reboot brings it back, a fresh run of a fresh load.
    mac.sh("launchctl reboot").ok();
    let booted = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    assert_eq!(mac.print(OUT).unwrap().runs, Some(1));
    // Stopped (not disabled): the plist stays, so launchd loads it at boot, as the
    // README says; status says it runs although it was stopped, and how to settle it.
    mac.ctl("stop postfix-out").ok();
    mac.sh("launchctl reboot").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(booted));
    let (doc, run) = json(&mac, "instancectl status postfix-out");
    assert_eq!(run.code, 0, "{run:?}");
    let warnings = doc["instances"][0]["warnings"].to_string();
    assert!(
        warnings.contains("marked stopped by `instancectl stop`, yet its master runs"),
        "{warnings}"
    );
    mac.ctl("destroy postfix-out").ok();
    let again = mac.ctl("destroy postfix-out");
    assert_eq!(again.code, 2, "{again:?}");
    assert!(
        again.stderr.contains("no instance named \"postfix-out\""),
        "{again:?}"
    );
    assert_eq!(mac.sb.sh(&format!("ls {DAEMONS}")).ok().stdout, "");
}

/// Stops the master with SIGSTOP and boots its job out by hand, in the background,
/// until launchd shows it `SIGTERMed` (waiting for ExitTimeOut).
fn hang_in_a_bootout(mac: &Mac, master: impl std::fmt::Display) {
    mac.sb.sh(&format!("kill -STOP {master}")).ok();
    mac.sh(&format!(
        "setsid launchctl bootout system/{OUT} </dev/null >/dev/null 2>&1 &"
    ))
    .ok();
    assert!(mac.sb.wait_for(
        &format!(
            "{} launchctl print system/{OUT} | grep -q 'state = SIGTERMed'",
            env()
        ),
        WAIT
    ));
}

/// A master that does not die on SIGTERM (stopped here with SIGSTOP): a bootout done
/// by hand leaves launchd waiting for ExitTimeOut with the job `SIGTERMed` (macOS 13
/// returns at once, older releases block). Status says so, and a start waits the stop
/// out, loads the job again and reports the new master as started, not "already
/// running".
fn a_start_waits_out_a_hung_bootout_and_says_what_it_did(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    let old = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    hang_in_a_bootout(&mac, old);
    let status = mac.ctl("status postfix-out");
    assert_eq!(status.code, 1, "{status:?}");
    let list = mac.ctl("list postfix-out").ok().stdout;
    assert!(list.contains("SIGTERMed"), "{list}");
    let start = mac.ctl("start postfix-out").ok();
    let new = reported_pid(&start.stdout);
    assert!(
        start.stdout.starts_with("postfix-out: started (master pid"),
        "{start:?}"
    );
    assert_ne!(new, old as i32);
    let job = mac.print(OUT).unwrap();
    assert_eq!(job.pid, Some(new));
    assert_eq!(job.runs, Some(1), "a new load of the job: {job:?}");
    assert_eq!(mac.ctl("status postfix-out").code, 0);

    // The same window met by a restart: it too waits, loads the job again and serves.
    hang_in_a_bootout(&mac, new);
    let restart = mac.ctl("restart postfix-out").ok();
    assert!(
        restart
            .stdout
            .starts_with("postfix-out: restarted (master pid"),
        "{restart:?}"
    );
    let third = reported_pid(&restart.stdout);
    assert_ne!(third, new);
    assert_eq!(mac.print(OUT).unwrap().pid, Some(third));
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(new as u32));
}

/// instancectl killed in the middle of create, once launchd runs the new job: status
/// and list say so and how it is mended; the same create run again undoes the
/// interrupted one (the job booted out) and makes the instance afresh.
fn an_interrupted_create_is_undone_by_running_it_again(release: &'static str) {
    let mac = Mac::new(release);
    let create = "instancectl create postfix-out --group mta --role output";
    mac.sh(&format!(
        "{create} >/dev/null 2>&1 & p=$!; \
         until launchctl print system/{OUT} >/dev/null 2>&1; do sleep 0.05; done; \
         kill -9 $p"
    ))
    .ok();
    let (doc, run) = json(&mac, "instancectl status postfix-out");
    assert_eq!(run.code, 1, "{run:?}");
    let entry = &doc["instances"][0];
    assert_eq!(entry["verdict"], "broken", "{entry:#}");
    let why = entry["reasons"].to_string();
    assert!(why.contains("was interrupted halfway"), "{why}");
    assert!(why.contains("undoes it"), "{why}");
    let first = mac.print(OUT).expect("the interrupted run loaded the job");
    let again = mac.sh(create).ok();
    assert!(
        again
            .stdout
            .contains("undid the interrupted `instancectl create postfix-out`"),
        "{again:?}"
    );
    let pid = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    assert_ne!(Some(pid as i32), first.pid);
    let job = mac.print(OUT).unwrap();
    assert_eq!(job.runs, Some(1), "the job was loaded afresh: {job:?}");
    let files = mac.sb.sh(&format!("ls {DAEMONS}")).ok().stdout;
    assert_eq!(files, format!("{OUT}.plist\n"));
    let list = mac.sb.sh("postmulti -l").ok().stdout;
    let rows = list
        .lines()
        .filter(|l| l.starts_with("postfix-out "))
        .count();
    assert_eq!(rows, 1, "{list}");
    assert_eq!(mac.ctl("status postfix-out").code, 0);
}

/// A plist edited by hand while the instance is disabled: reconcile writes it back and
/// leaves the instance down, the override disabled, the job unloaded; enable then
/// loads the rewritten job.
fn a_hand_edited_plist_of_a_disabled_instance_is_rewritten_and_stays_down(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.ctl("disable postfix-out").ok();
    let path = format!("{DAEMONS}/{OUT}.plist");
    let written = mac.sb.sh(&format!("cat {path}")).ok().stdout;
    mac.sb
        .sh(&format!(
            "sed -i 's|<integer>10</integer>|<integer>1</integer>|' {path}"
        ))
        .ok();
    let plan = mac.ctl("reconcile --dry-run").ok().stdout;
    assert!(
        plan.contains("differs from the plist instancectl would write"),
        "{plan}"
    );
    assert!(!plan.contains("launchctl enable"), "{plan}");
    mac.ctl("reconcile").ok();
    assert_eq!(mac.sb.sh(&format!("cat {path}")).ok().stdout, written);
    assert_eq!(
        mac.override_of(OUT),
        Some(instancectl::manager::Override::Disabled)
    );
    assert!(mac.print(OUT).is_none(), "reconcile loaded a disabled job");
    assert_eq!(mac.master_pid("postfix-out"), None);
    assert!(mac.ctl("reconcile").ok().stdout.contains("no drift"));
    mac.ctl("enable postfix-out").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
}

/// macOS's Postfix 3.2 (no `master -s`, no `maillog_file`, no postlogd) under launchd:
/// a relay instance with a password, its job, status, test-mail and the supervisor's
/// job, as instancectl sees them on such a Mac.
fn a_relay_on_postfix_3_2_under_launchd(release: &'static str) {
    let mac = Mac::new(release);
    let as_32 = as_postfix_32(&mac.sb);
    mac.sb.add_addr("127.0.1.2");
    let secret = "s3cret-not-in-any-plist";
    let created = mac.sb.sh_input(
        &format!(
            "{} {as_32} instancectl create postfix-relay --role relay --provider custom \
             --relay-host 127.0.0.1:2599 --tls-security-level encrypt \
             --sasl-user relayuser@relay.test --sasl-password-stdin --listen 127.0.1.2:25",
            env()
        ),
        &format!("{secret}\n"),
    );
    assert_eq!(created.code, 0, "{created:?}");
    let label = "org.postfix.postfix-relay";
    let pid = mac.wait_serving("postfix-relay", "127.0.1.2", 25, None);
    // The master launchd runs has no -s; main.cf no maillog_file.
    let argv = mac.argv_of(pid);
    assert_eq!(argv[1..], ["-c", "/etc/postfix-relay"], "{argv:?}");
    let cf = mac.sb.sh("cat /etc/postfix-relay/main.cf").ok().stdout;
    assert!(!cf.contains("maillog_file"), "{cf}");
    // The password is in the 0600 map only: not in the plist, launchd's view, logs.
    let leaks = mac.sb.sh(&format!(
        "grep -rl {secret} {DAEMONS} /var/log {STATE} /var/db 2>/dev/null"
    ));
    assert_eq!(leaks.stdout, "", "the password leaked");
    let mode = mac
        .sb
        .sh("stat -c %a /etc/postfix-relay/sasl_passwd")
        .ok()
        .stdout;
    assert_eq!(mode.trim(), "600");

    let (doc, run) = json(&mac, &format!("{as_32} instancectl status"));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(doc["host"]["postfix_version"], "3.2.2");
    assert_eq!(doc["host"]["manager"], "launchd");
    let relay = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "postfix-relay")
        .unwrap();
    assert_eq!(relay["verdict"], "healthy", "{relay:#}");
    assert_eq!(relay["manager"]["label"], label);
    assert_eq!(relay["relay"]["relay_host"], "[127.0.0.1]:2599");

    let sent = mac.sh(&format!(
        "{as_32} instancectl test-mail postfix-relay --to rcpt@dest.example --timeout 60"
    ));
    assert_eq!(sent.code, 1, "{sent:?}");
    assert!(sent.stdout.contains("following the queue"), "{sent:?}");
    assert!(
        sent.stdout.contains("DEFERRED: connect to 127.0.0.1"),
        "{sent:?}"
    );

    // restart and stop/start keep the job as written for 3.2.
    mac.sh(&format!("{as_32} instancectl restart postfix-relay"))
        .ok();
    let after = mac.wait_serving("postfix-relay", "127.0.1.2", 25, Some(pid));
    assert_eq!(mac.argv_of(after)[1..], ["-c", "/etc/postfix-relay"]);
    let plan = mac
        .sh(&format!("{as_32} instancectl reconcile --dry-run"))
        .ok();
    assert!(plan.stdout.contains("no drift"), "{plan:?}");
    // The supervisor's own LaunchDaemon on this host.
    let job = mac
        .sh(&format!(
            "{as_32} instancectl plist --supervisor --program /usr/local/sbin/instancectl"
        ))
        .ok()
        .stdout;
    let parsed = instancectl::manager::launchd::strict::parse(job.as_bytes());
    assert!(parsed.is_valid(), "{:?}", parsed.errors);
    assert!(job.contains("<string>supervise</string>"), "{job}");
}

/// The supervisor installed as the LaunchDaemon `plist --supervisor` prints, on a slow
/// Mac (each spawn held in xpcproxy): launchd runs it like any job, it can drive
/// launchctl, a pass that meets an instance being spawned takes that run instead of
/// starting a second master, and a job booted out by hand comes back.
fn the_supervisor_as_a_launchdaemon_on_a_slow_mac(release: &'static str) {
    let mac = Mac::with_emulator_args(release, "--xpcproxy-hold 3000");
    mac.create_out();
    let label = "org.postfix.instancectl";
    let path = format!("{DAEMONS}/{label}.plist");
    mac.sh(&format!(
        "instancectl plist --supervisor --program $(command -v instancectl) --interval 1s \
         > {path} && chmod 644 {path} && launchctl bootstrap system {path}"
    ))
    .ok();
    let lint = mac.ctl("plist --check").ok();
    assert!(
        lint.stdout.contains(&format!("{path}: no problems found")),
        "{lint:?}"
    );
    assert!(mac.sb.wait_for(
        &format!(
            "{} launchctl print system/{label} | grep -q 'state = running'",
            env()
        ),
        WAIT
    ));
    let log = || mac.sb.sh(&format!("cat /var/log/{label}.log")).stdout;
    // Passes run (a second one is logged only when it finds something; wait for two
    // intervals).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!log().contains("ERROR"), "{}", log());

    // A restart by hand: launchd spawns the job slowly, the supervisor's passes meet it
    // in xpcproxy, and no second master is started.
    mac.sh(&format!("launchctl kickstart -k system/{OUT}")).ok();
    let spawning = mac.print(OUT).unwrap();
    assert_eq!(spawning.runs, Some(2));
    let pid = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    assert_eq!(Some(pid as i32), spawning.pid);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let job = mac.print(OUT).unwrap();
    assert_eq!(
        job.runs,
        Some(2),
        "a second master was started: {job:?}\n{}",
        log()
    );
    assert_eq!(job.pid, Some(pid as i32));

    // A bootout by hand: the supervisor loads the job again.
    mac.sh(&format!("launchctl bootout system/{OUT}")).ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(pid));
    assert!(
        mac.sb.wait_for(
            &format!("grep -q 'drift repaired' /var/log/{label}.log"),
            WAIT
        ),
        "{}",
        log()
    );
    assert!(!log().contains("ERROR"), "{}", log());
}

/// `init --null-client` while the primary's master runs (Apple's job runs it for a
/// minute after mail is submitted; here it was started the Postfix way): the master
/// must let go of its listener, as init says it did, and the next start is Apple's
/// job's, on demand.
fn init_makes_a_running_primary_master_let_go_of_its_listener(release: &'static str) {
    let mac = Mac::new(release);
    mac.sb
        .sh("postconf -e master_service_disable= && postfix start")
        .ok();
    assert!(mac.sb.banner("127.0.0.1", 25).starts_with("220 "));
    let init = mac.ctl("init --null-client").ok();
    assert!(
        init.stdout
            .contains("restarted the primary instance so that it lets go of its listeners"),
        "{init:?}"
    );
    assert_eq!(
        mac.sb.banner("127.0.0.1", 25),
        "",
        "the primary still listens"
    );
    let (doc, run) = json(&mac, "instancectl status -");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(doc["instances"][0]["verdict"], "on-demand");
}

in_each_generation!(
    a_fresh_mac_shows_apples_idle_job_as_healthy,
    every_command_twice,
    a_start_waits_out_a_hung_bootout_and_says_what_it_did,
    an_interrupted_create_is_undone_by_running_it_again,
    a_hand_edited_plist_of_a_disabled_instance_is_rewritten_and_stays_down,
    a_relay_on_postfix_3_2_under_launchd,
    a_command_during_xpcproxy_waits_for_that_run,
    the_supervisor_as_a_launchdaemon_on_a_slow_mac,
    init_makes_a_running_primary_master_let_go_of_its_listener,
);

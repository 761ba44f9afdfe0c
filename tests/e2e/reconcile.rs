//! End-to-end: reconcile finds drift between desired and actual state on the real
//! Postfix and repairs it, or reports what it must not touch.

use std::time::Duration;

use crate::common::Sandbox;

/// Postfix's own scripts as the manager, so nothing but reconcile repairs anything.
fn scripted(name: &str) -> Sandbox {
    let sb = Sandbox::bare();
    sb.ctl("--manager postfix init --null-client").ok();
    sb.ctl(&format!(
        "--manager postfix create {name} --listen 127.0.0.1:2525"
    ))
    .ok();
    sb.ctl("--manager postfix start -").ok();
    sb
}

fn reconcile(sb: &Sandbox, args: &str) -> crate::common::Run {
    sb.ctl(&format!("--manager postfix reconcile {args}"))
}

fn serving(sb: &Sandbox) -> bool {
    sb.banner("127.0.0.1", 2525).starts_with("220 ")
}

#[test]
fn stale_pid_file_is_found_and_the_instance_started() {
    let sb = scripted("postfix-r");
    sb.sh("kill -9 $(cat /var/spool/postfix-r/pid/master.pid); sleep 0.5; pkill -9 -f '^smtpd|^qmgr|^pickup' || true")
        .ok();
    assert!(!serving(&sb));

    let before = sb.config_snapshot();
    let plan = reconcile(&sb, "--dry-run").ok();
    assert!(
        plan.stdout.contains("postfix-r: stale pid file"),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("-> start it"), "{plan:?}");
    assert!(
        plan.stdout
            .contains("would run: /usr/sbin/postfix -c /etc/postfix-r start"),
        "{plan:?}"
    );
    assert!(!serving(&sb), "a dry run must not start anything");
    assert_eq!(before, sb.config_snapshot());

    let applied = reconcile(&sb, "").ok();
    assert!(
        applied.stdout.contains("1 problem(s) found: 1 repaired"),
        "{applied:?}"
    );
    assert!(sb.wait_for(
        "timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' | grep -q '^220 '",
        Duration::from_secs(10)
    ));

    let clean = reconcile(&sb, "").ok();
    assert!(clean.stdout.contains("no drift"), "{clean:?}");
}

#[test]
fn failing_postfix_check_is_reported_not_restarted() {
    let sb = scripted("postfix-c");
    // The master dies behind instancectl's back, and its configuration breaks.
    sb.sh("kill -9 $(cat /var/spool/postfix-c/pid/master.pid)")
        .ok();
    sb.sh("echo 'broken inet n' >> /etc/postfix-c/master.cf")
        .ok();
    let run = reconcile(&sb, "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("`postfix check` fails"), "{run:?}");
    assert!(run.stdout.contains("bad field count"), "{run:?}");
    assert!(run.stdout.contains("report only"), "{run:?}");
    assert!(!run.stdout.contains("-> start it"), "{run:?}");
    assert!(!serving(&sb));
}

#[test]
fn master_running_while_disabled_is_stopped() {
    let sb = scripted("postfix-d");
    // Disabled behind instancectl's back, still running.
    sb.sh("postmulti -i postfix-d -e disable").ok();
    let run = reconcile(&sb, "").ok();
    assert!(
        run.stdout
            .contains("postfix-d: disabled or stopped, but its master runs"),
        "{run:?}"
    );
    assert!(sb.wait_for(
        "! test -e /proc/$(cat /var/spool/postfix-d/pid/master.pid)",
        Duration::from_secs(10)
    ));
    assert!(!serving(&sb));
}

#[test]
fn silent_master_is_restarted_after_the_grace_period() {
    let sb = scripted("postfix-s");
    sb.sh("kill -STOP $(cat /var/spool/postfix-s/pid/master.pid); pkill -STOP -f '^smtpd' || true")
        .ok();
    let old = sb
        .sh("tr -d ' ' < /var/spool/postfix-s/pid/master.pid")
        .stdout;
    let run = reconcile(&sb, "--grace 2s");
    assert!(
        run.stdout.contains("SMTP has not answered for 2 s"),
        "{run:?}"
    );
    assert!(run.stdout.contains("-> restart it"), "{run:?}");
    assert_eq!(run.code, 0, "{run:?}");
    // A stopped master ignores SIGTERM; the restart kills it and starts a new one.
    assert!(sb.wait_for(
        "timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' | grep -q '^220 '",
        Duration::from_secs(15)
    ));
    let new = sb
        .sh("tr -d ' ' < /var/spool/postfix-s/pid/master.pid")
        .stdout;
    assert_ne!(old, new);
}

#[test]
fn a_secondary_without_its_own_directories_is_broken_and_never_mistaken_for_the_primary() {
    let sb = scripted("postfix-r");
    sb.ctl("--manager postfix create postfix-gone --listen 127.0.0.1:2526 --no-start")
        .ok();
    let primary_pid = || {
        sb.sh("cat /var/spool/postfix/pid/master.pid")
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    let before = primary_pid();
    assert!(!before.is_empty());
    // postfix-r's main.cf emptied, postfix-gone's directory gone.
    sb.sh(": > /etc/postfix-r/main.cf; mv /etc/postfix-gone /tmp/")
        .ok();

    let list = sb.ctl("--manager postfix list --json").ok();
    let doc: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let rows = doc["instances"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["-", "postfix-r", "postfix-gone"], "{list:?}");
    for row in &rows[1..] {
        assert_eq!(row["queue_directory"], serde_json::Value::Null, "{row:#}");
        assert_eq!(row["master_pid"], serde_json::Value::Null, "{row:#}");
        assert!(row["broken"].as_str().is_some(), "{row:#}");
    }
    assert!(
        rows[1]["broken"]
            .as_str()
            .unwrap()
            .contains("sets no queue_directory"),
        "{rows:#?}"
    );

    let status = sb.ctl("--manager postfix status --json");
    assert_eq!(status.code, 1, "{status:?}");
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(report["summary"]["broken"], 2, "{report:#}");
    assert_eq!(report["instances"][1]["verdict"], "broken");

    let run = reconcile(&sb, "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("postfix-r: broken: "), "{run:?}");
    assert!(run.stdout.contains("postfix-gone: broken: "), "{run:?}");

    let destroy = sb.ctl("--manager postfix destroy postfix-r");
    assert_eq!(destroy.code, 1, "{destroy:?}");
    assert!(
        destroy.stderr.contains("postfix-r is broken"),
        "{destroy:?}"
    );
    let stop = sb.ctl("--manager postfix stop postfix-r");
    assert_eq!(stop.code, 1, "{stop:?}");

    assert_eq!(primary_pid(), before, "the primary was restarted");
    assert!(
        sb.sh(&format!("kill -0 {before}")).code == 0,
        "the primary's master was stopped"
    );
}

/// `disable --all` and `enable --all` with a broken instance act on none: postmulti
/// would refuse every `-e enable`/`-e disable` while one instance is broken, so the
/// broken one is named first, with how to mend it, and nothing changes.
#[test]
fn enable_and_disable_all_refuse_while_an_instance_is_broken() {
    let sb = Sandbox::bare();
    sb.ctl("--manager postfix init --null-client").ok();
    for (name, port) in [("postfix-gone", 2526), ("postfix-ok", 2527)] {
        sb.ctl(&format!(
            "--manager postfix create {name} --listen 127.0.0.1:{port} --no-start"
        ))
        .ok();
    }
    // postmulti's own answer when one instance is broken: it cannot disable another.
    sb.sh("mv /etc/postfix-gone /tmp/").ok();
    let by_hand = sb.sh("postmulti -i postfix-ok -e disable");
    assert_ne!(by_hand.code, 0, "{by_hand:?}");
    for action in ["disable", "enable"] {
        let run = sb.ctl(&format!("--manager postfix {action} --all"));
        assert_eq!(run.code, 1, "{action}: {run:?}");
        assert!(
            run.stderr.contains("postfix-gone is broken")
                && run
                    .stderr
                    .contains("restore the instance's configuration directory"),
            "{action}: {run:?}"
        );
        let set = sb
            .sh("postconf -c /etc/postfix-ok -h multi_instance_enable")
            .ok()
            .stdout;
        assert_eq!(set.trim(), "yes", "{action}: {run:?}");
    }
    // postmulti refuses while any instance is broken, selected or not: disabling only
    // the sound one is refused before its master is stopped.
    sb.ctl("--manager postfix start postfix-ok").ok();
    let run = sb.ctl("--manager postfix disable postfix-ok");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("postfix-gone is broken"), "{run:?}");
    let set = sb
        .sh("postconf -c /etc/postfix-ok -h multi_instance_enable")
        .ok()
        .stdout;
    assert_eq!(set.trim(), "yes", "{run:?}");
    sb.sh("postfix -c /etc/postfix-ok status").ok();
}

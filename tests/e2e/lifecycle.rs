//! End-to-end: instance life cycle on the real Postfix, each test in its own sandbox.

use crate::common::Sandbox;

fn postmulti_names(sb: &Sandbox) -> Vec<String> {
    sb.sh("postmulti -l -a")
        .ok()
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn init_twice_changes_nothing_the_second_time() {
    let sb = Sandbox::new();
    let first = sb.ctl("init").ok();
    assert!(
        first.stdout.contains("multi-instance management is on"),
        "{first:?}"
    );
    let main_cf = sb
        .sh("postconf -h multi_instance_enable multi_instance_wrapper")
        .ok();
    assert!(main_cf.stdout.starts_with("yes\n"), "{main_cf:?}");
    let before = sb.config_snapshot();
    let second = sb.ctl("init").ok();
    assert!(
        second.stdout.contains("already on; nothing changed"),
        "{second:?}"
    );
    assert_eq!(before, sb.config_snapshot());
}

#[test]
fn output_is_placed_before_input_and_both_answer_smtp() {
    let sb = Sandbox::new().null_client();
    sb.add_addr("127.0.1.1");
    let created = sb
        .ctl("create postfix-in --group mta --role input --listen 127.0.1.1:25")
        .ok();
    assert!(
        created.stdout.contains("SMTP answering on 127.0.1.1:25"),
        "{created:?}"
    );
    sb.ctl("create postfix-out --group mta --role output").ok();
    assert_eq!(postmulti_names(&sb), ["-", "postfix-out", "postfix-in"]);

    let base = sb
        .sh("postconf -h myhostname")
        .ok()
        .stdout
        .trim()
        .to_string();
    let banner_in = sb.banner("127.0.1.1", 25);
    assert!(
        banner_in.starts_with(&format!("220 in.{base} ESMTP")),
        "{banner_in}"
    );
    let banner_out = sb.banner("127.0.0.1", 10026);
    assert!(
        banner_out.starts_with(&format!("220 out.{base} ESMTP")),
        "{banner_out}"
    );

    let settings = sb
        .sh("postconf -c /etc/postfix-in -h default_transport master_service_disable authorized_submit_users")
        .ok();
    assert_eq!(settings.stdout, "smtp:[127.0.0.1]:10025\n\nroot\n");
}

#[test]
fn group_stops_in_reverse_and_starts_in_order() {
    let sb = Sandbox::new().null_client();
    sb.add_addr("127.0.1.1");
    sb.ctl("create postfix-out --group mta --role output").ok();
    sb.ctl("create postfix-in --group mta --role input --listen 127.0.1.1")
        .ok();

    let stop = sb.ctl("stop -g mta").ok();
    let lines: Vec<&str> = stop.stdout.lines().collect();
    assert_eq!(lines, ["postfix-in: stopped", "postfix-out: stopped"]);
    assert_eq!(sb.banner("127.0.1.1", 25), "");
    assert_eq!(sb.banner("127.0.0.1", 10026), "");

    let start = sb.ctl("start -g mta").ok();
    let order: Vec<&str> = start
        .stdout
        .lines()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(order, ["postfix-out", "postfix-in"]);
    assert!(sb.banner("127.0.1.1", 25).starts_with("220 "));
    assert!(sb.banner("127.0.0.1", 10026).starts_with("220 "));

    let again = sb.ctl("start postfix-in").ok();
    assert!(again.stdout.contains("already running"), "{again:?}");
}

#[test]
fn custom_port_is_set_in_master_cf() {
    let sb = Sandbox::new().null_client();
    sb.ctl("create postfix-alt --listen 127.0.0.1:2525 --listen 127.0.0.1:2526")
        .ok();
    let services = sb
        .sh("postconf -c /etc/postfix-alt -M | awk '$2==\"inet\"{print $1}'")
        .ok();
    assert_eq!(services.stdout, "127.0.0.1:2525\n127.0.0.1:2526\n");
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 alt."));
    assert!(sb.banner("127.0.0.1", 2526).starts_with("220 "));
}

#[test]
fn destroy_removes_everything_and_guards_the_queue() {
    let sb = Sandbox::new().null_client();
    sb.ctl("create postfix-tmp --listen 127.0.0.1:2525").ok();
    sb.ctl("stop postfix-tmp").ok();
    sb.sh("printf 'Subject: t\\n\\nhello\\n' | postmulti -i postfix-tmp -x sendmail -f root root@example.org")
        .ok();
    let refused = sb.ctl("destroy postfix-tmp");
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("1 queued message(s) (1 in maildrop)"),
        "{refused:?}"
    );
    assert!(postmulti_names(&sb).contains(&"postfix-tmp".to_string()));

    sb.ctl("destroy postfix-tmp --force-discard-queue").ok();
    assert_eq!(postmulti_names(&sb), ["-"]);
    let left = sb.sh("ls -d /etc/postfix-tmp /var/spool/postfix-tmp /var/lib/postfix-tmp /var/lib/instancectl/instances/postfix-tmp.toml 2>/dev/null");
    assert_eq!(left.stdout, "");

    let primary = sb.ctl("destroy -");
    assert_eq!(primary.code, 2);
    assert!(
        primary
            .stderr
            .contains("primary instance cannot be destroyed")
    );
}

#[test]
fn list_remembers_roles() {
    let sb = Sandbox::new().null_client();
    sb.ctl("create postfix-out --group mta --role output --no-start")
        .ok();
    let json = sb.ctl("list --json").ok();
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let out = &rows[1];
    assert_eq!(out["name"], "postfix-out");
    assert_eq!(out["role"], "output");
    assert_eq!(out["group"], "mta");
    assert_eq!(out["enabled"], true);
    assert_eq!(out["master_pid"], serde_json::Value::Null);
    assert_eq!(out["listen"][0], "127.0.0.1:10026");
    assert_eq!(out["queue_directory"], "/var/spool/postfix-out");
    assert_eq!(rows[0]["role"], "primary");
    let table = sb.ctl("list").ok();
    assert!(table.stdout.contains("postfix-out"), "{table:?}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let sb = Sandbox::new().null_client();
    sb.ctl("create postfix-one --listen 127.0.0.1:2525").ok();
    let before = sb.config_snapshot();
    let cases = [
        ("create in", "must start with \"postfix-\""),
        ("create postfix.in", "must start with \"postfix-\""),
        ("create postfix-Bad", "lower-case letters"),
        ("create 'postfix-a;b'", "lower-case letters"),
        (
            "create postfix-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "at most 40",
        ),
        ("create postfix-x --group 'M T A'", "group"),
        ("create postfix-x --role boss", "invalid value 'boss'"),
        ("create postfix-x --listen localhost", "not an IP address"),
        ("create postfix-x --listen 127.0.0.1:99999", "port"),
        ("create postfix-x --listen 127.0.0.1:0", "port"),
        (
            "create postfix-x --listen 127.0.0.1:2525",
            "already serves 127.0.0.1:2525",
        ),
        (
            "create postfix-x --set no_such_param=1",
            "does not know a parameter",
        ),
        (
            "create postfix-x --set queue_directory=/tmp",
            "cannot be set this way",
        ),
        ("create postfix-x --set inet_interfaces=all", "use --listen"),
        (
            "create postfix-x --set $'relayhost=a\\nmynetworks=0/0'",
            "line break",
        ),
        ("create postfix-x --set nonsense", "expected PARAM=VALUE"),
        ("create postfix-one", "already exists"),
        ("start postfix-nope", "no instance named"),
        ("destroy postfix-nope", "no instance named"),
        ("stop -g nogroup", "no instance is in group"),
    ];
    for (args, expected) in cases {
        let run = sb.ctl(args);
        assert_eq!(run.code, 2, "{args}: {run:?}");
        assert!(
            run.stderr.contains(expected),
            "{args}: expected {expected:?} in {run:?}"
        );
        assert_eq!(before, sb.config_snapshot(), "{args} changed the disk");
    }
}

#[test]
fn failed_start_is_rolled_back_with_postfixs_reason() {
    let sb = Sandbox::new().null_client();
    let before = sb.config_snapshot();
    // 127.0.1.9 is routable but on no interface: Postfix refuses to start.
    let run = sb.ctl("create postfix-bad --group mta --listen 127.0.1.9");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("no local interface found for 127.0.1.9"),
        "{run:?}"
    );
    assert!(run.stderr.contains("undone"), "{run:?}");
    assert_eq!(before, sb.config_snapshot());
    assert_eq!(postmulti_names(&sb), ["-"]);
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let sb = Sandbox::new().null_client();
    let before = sb.config_snapshot();
    let run = sb
        .ctl("create postfix-in --group mta --role input --listen 127.0.0.1:2525 --dry-run")
        .ok();
    assert!(
        run.stdout
            .contains("would run: /usr/sbin/postmulti -I postfix-in -G mta -e create"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("smtp/inet/service = 127.0.0.1:2525"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("would write: /var/lib/instancectl/instances/postfix-in.toml"),
        "{run:?}"
    );
    assert_eq!(before, sb.config_snapshot());
}

#[test]
fn create_requires_init() {
    let sb = Sandbox::new();
    let run = sb.ctl("create postfix-in");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("run `instancectl init` first"),
        "{run:?}"
    );
}

#[test]
fn postfix_manager_still_works_without_a_supervisor() {
    let sb = Sandbox::bare();
    sb.ctl("--manager postfix init --null-client").ok();
    sb.ctl("--manager postfix create postfix-plain --listen 127.0.0.1:2525")
        .ok();
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 "));
    sb.ctl("--manager postfix stop postfix-plain").ok();
    assert_eq!(sb.banner("127.0.0.1", 2525), "");
    let native = sb.ctl("start postfix-plain");
    assert_eq!(native.code, 1);
    assert!(
        native
            .stderr
            .contains("no instancectl supervisor is running"),
        "{native:?}"
    );
}

#[test]
fn concurrent_creates_both_succeed() {
    let sb = Sandbox::new().null_client();
    let run = sb.sh(
        "instancectl create postfix-c1 --listen 127.0.0.1:2601 > /tmp/c1.out 2>&1 & p1=$!; \
         instancectl create postfix-c2 --listen 127.0.0.1:2602 > /tmp/c2.out 2>&1 & p2=$!; \
         wait $p1; a=$?; wait $p2; b=$?; cat /tmp/c1.out /tmp/c2.out; exit $((a + b))",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let mut names = postmulti_names(&sb);
    names.sort();
    assert_eq!(names, ["-", "postfix-c1", "postfix-c2"]);
    let dirs = sb.sh("postconf -h multi_instance_directories").ok().stdout;
    assert!(
        dirs.contains("/etc/postfix-c1") && dirs.contains("/etc/postfix-c2"),
        "{dirs}"
    );
    assert!(sb.banner("127.0.0.1", 2601).starts_with("220 "));
    assert!(sb.banner("127.0.0.1", 2602).starts_with("220 "));
}

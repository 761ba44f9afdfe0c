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
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["schema"], "instancectl.list/v1");
    let rows = &doc["instances"];
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
        (
            "create postfix-x- --listen 127.0.0.1:2530",
            "ending with a letter or digit",
        ),
        (
            "create postfix-x --listen 127.0.0.1:2530 --set master_service_disable=inet",
            "turns inet off; drop one of the two",
        ),
        ("create postfix-x --role boss", "invalid value 'boss'"),
        ("create postfix-x --listen localhost", "not an IP address"),
        ("create postfix-x --listen 127.0.0.1:99999", "port"),
        // TEST-NET-1: no interface of the sandbox has it.
        (
            "create postfix-x --listen 192.0.2.7:25",
            "192.0.2.7 is not an address of this host",
        ),
        // Link-local: the kernel refuses a bind without an interface (EINVAL, not
        // EADDRNOTAVAIL), as it would refuse the master.
        (
            "create postfix-x --listen '[fe80::99]:2525'",
            "cannot bind fe80::99 (Invalid argument (os error 22)), so Postfix could not \
             either; a link-local address",
        ),
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
    // Without root every changing command is refused before it reads or asks anything
    // (the password here), and says how to go on.
    for args in [
        "create postfix-x --listen 127.0.0.1:2530",
        "init",
        "destroy postfix-one",
        "config postfix-one set relayhost=[127.0.0.1]:10026",
        "relay set postfix-one --provider gmail --sasl-user u --sasl-password-stdin",
        "reconcile",
    ] {
        let run = sb.sh(&format!(
            "echo secret | setpriv --reuid=nobody --regid=nogroup --clear-groups \
             instancectl {args}"
        ));
        assert_eq!(run.code, 2, "{args}: {run:?}");
        assert!(
            run.stderr
                .contains("must run as root (try again with sudo)"),
            "{args}: {run:?}"
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

#[test]
fn restart_with_a_broken_configuration_refuses_and_keeps_serving() {
    let sb = Sandbox::new().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    let pid_before = sb.sh("cat /var/spool/postfix-a/pid/master.pid").ok().stdout;
    sb.sh("echo 'bogus line' >> /etc/postfix-a/main.cf").ok();
    let refused = sb.ctl("restart postfix-a");
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("fails `postfix check`, so nothing was restarted"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("bogus line"), "{refused:?}");
    assert!(!refused.stdout.contains("stopped"), "{refused:?}");
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 "));
    let pid_after = sb.sh("cat /var/spool/postfix-a/pid/master.pid").ok().stdout;
    assert_eq!(pid_before, pid_after, "the master was restarted");
}

#[test]
fn an_ipv6_listen_address_is_served_and_probed_on_ipv6() {
    let sb = Sandbox::new().null_client();
    assert!(
        sb.sh("ip -6 addr show dev lo")
            .ok()
            .stdout
            .contains("::1/128"),
        "the sandbox's loopback has no ::1"
    );
    let created = sb
        .ctl("create postfix-six --listen [::1]:2526 --listen 127.0.0.1:2527")
        .ok();
    assert!(
        created
            .stdout
            .contains("SMTP answering on 127.0.0.1:2527, [::1]:2526")
            || created
                .stdout
                .contains("SMTP answering on [::1]:2526, 127.0.0.1:2527"),
        "{created:?}"
    );
    assert!(
        sb.banner("::1", 2526).starts_with("220 six."),
        "not served on ::1"
    );
    let status = sb.ctl("status --json postfix-six").ok();
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let listeners = report["instances"][0]["listeners"]
        .as_array()
        .unwrap()
        .clone();
    let v6 = listeners
        .iter()
        .find(|l| l["address"] == "[::1]:2526")
        .unwrap_or_else(|| panic!("{listeners:#?}"));
    assert_eq!(v6["probed"], "[::1]:2526");
    assert_eq!(v6["ok"], true, "{v6:#}");

    // A --set that leaves IPv6 out is refused before anything changes.
    let before = sb.config_snapshot();
    let refused = sb.ctl("create postfix-four --listen [::1]:2528 --set inet_protocols=ipv4");
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("leaves IPv6 out"), "{refused:?}");
    assert_eq!(before, sb.config_snapshot());
}

#[test]
fn an_instance_without_inet_listeners_says_so() {
    let sb = Sandbox::new().null_client();
    let created = sb
        .ctl("create postfix-quiet --set master_service_disable=inet")
        .ok();
    assert!(
        created
            .stdout
            .contains("no inet listener (master_service_disable turns them off)"),
        "{created:?}"
    );
    assert!(!created.stdout.contains("SMTP answering on"), "{created:?}");
}

#[test]
fn a_create_killed_halfway_is_flagged_and_undone_by_the_next_command() {
    let sb = Sandbox::new().null_client();
    // Another program holds the port: the master cannot bind it, and create waits for
    // SMTP. It is killed once the instance is enabled and waits for its master, the
    // furthest a create gets.
    sb.sh("setsid python3 -c 'import socket,time; s=socket.socket(); \
         s.bind((\"127.0.0.1\", 2599)); s.listen(); time.sleep(3600)' \
         </dev/null >/dev/null 2>&1 &")
        .ok();
    assert!(sb.wait_for(
        "exec 3<>/dev/tcp/127.0.0.1/2599",
        std::time::Duration::from_secs(10)
    ));
    let killed = sb.sh(
        "instancectl create postfix-k --listen 127.0.0.1:2599 & pid=$!; \
         for i in $(seq 300); do \
           grep -q '^multi_instance_enable = yes' /etc/postfix-k/main.cf 2>/dev/null && break; \
           sleep 0.1; \
         done; sleep 0.5; kill -9 $pid; wait $pid",
    );
    assert_eq!(killed.code, 137, "{killed:?}");
    assert!(postmulti_names(&sb).contains(&"postfix-k".to_string()));

    let status = sb.ctl("status --json postfix-k");
    assert_eq!(status.code, 1, "{status:?}");
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let k = &report["instances"][0];
    assert_eq!(k["verdict"], "broken", "{k:#}");
    assert!(
        k["reasons"][0]
            .as_str()
            .unwrap()
            .contains("`instancectl create postfix-k` was interrupted halfway"),
        "{k:#}"
    );

    let run = sb.ctl("reconcile");
    assert!(
        run.stdout
            .contains("postfix-k: undid the interrupted `instancectl create postfix-k`"),
        "{run:?}"
    );
    assert_eq!(postmulti_names(&sb), ["-"]);
    let left = sb.sh("ls -d /etc/postfix-k /var/spool/postfix-k /var/lib/postfix-k /var/lib/instancectl/instances/postfix-k.toml /var/lib/instancectl/intents/postfix-k.toml 2>/dev/null");
    assert_eq!(left.stdout, "");
    sb.ctl("create postfix-k --listen 127.0.0.1:2525").ok();
}

#[test]
fn a_destroy_killed_after_postmulti_destroy_is_finished_by_the_next_command() {
    let sb = Sandbox::new().null_client();
    sb.ctl("create postfix-d --listen 127.0.0.1:2525").ok();
    // Where a destroy killed right after `postmulti -e destroy` leaves the host: the
    // instance unlisted, its queue and data directories left, its intent record
    // naming a process that is gone.
    sb.ctl("stop postfix-d").ok();
    sb.sh("postmulti -i postfix-d -e disable && postmulti -i postfix-d -e destroy")
        .ok();
    let dead = sb.sh("sh -c 'echo $$'").ok().stdout.trim().to_string();
    sb.sh(&format!(
        "mkdir -p /var/lib/instancectl/intents && cat > /var/lib/instancectl/intents/postfix-d.toml <<'EOF'
action = \"destroy\"
name = \"postfix-d\"
pid = {dead}
started = 1700000000
directories = [\"/etc/postfix-d\", \"/var/spool/postfix-d\", \"/var/lib/postfix-d\"]
discard_queue = false
EOF"
    ))
    .ok();
    assert_eq!(
        sb.sh("ls -d /var/spool/postfix-d /var/lib/postfix-d")
            .ok()
            .stdout,
        "/var/lib/postfix-d\n/var/spool/postfix-d\n"
    );
    let created = sb.ctl("create postfix-d --listen 127.0.0.1:2525");
    assert_eq!(created.code, 0, "{created:?}");
    assert!(
        created
            .stdout
            .contains("postfix-d: finished the interrupted `instancectl destroy postfix-d`"),
        "{created:?}"
    );
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 d."));
}

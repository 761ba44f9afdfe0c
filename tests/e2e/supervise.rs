//! End-to-end fault tests of the native supervisor on the real Postfix: kills, hangs,
//! broken configuration, a restarted supervisor, and mail that must not be lost.

use std::time::Duration;

use crate::common::Sandbox;

/// A sandbox with the primary as a null client and one plain instance on
/// 127.0.0.1:2525, running under the supervisor.
fn one_instance(name: &str) -> Sandbox {
    let sb = Sandbox::new().null_client();
    sb.ctl(&format!("create {name} --listen 127.0.0.1:2525"))
        .ok();
    sb
}

fn masters_of(sb: &Sandbox, name: &str) -> usize {
    sb.sh(&format!("pgrep -fc '/master -c /etc/{name}$'"))
        .stdout
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn killed_master_comes_back_every_time() {
    let sb = one_instance("postfix-k");
    // Kill the master 20 times; each time wait for a new master whose listener greets.
    let script = r#"
pidfile=/var/spool/postfix-k/pid/master.pid
for i in $(seq 20); do
  old=$(tr -d ' ' < $pidfile)
  t0=$(date +%s%N)
  kill -9 $old
  deadline=$(( t0 + 15000000000 ))
  while :; do
    new=$(tr -d ' ' < $pidfile 2>/dev/null)
    if [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null &&
       timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' 2>/dev/null | grep -q '^220 '; then
      echo $(( ($(date +%s%N) - t0) / 1000000 ))
      break
    fi
    [ $(date +%s%N) -lt $deadline ] || { echo "timeout after kill $i"; exit 1; }
    sleep 0.01
  done
  sleep 1
done
"#;
    let run = sb.sh(script);
    assert_eq!(run.code, 0, "{run:?}\n{}", sb.supervisor_log());
    let mut millis: Vec<u64> = run.stdout.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(millis.len(), 20);
    millis.sort();
    println!(
        "kill-to-banner recovery (ms): median {} max {}",
        millis[10], millis[19]
    );
    assert_eq!(masters_of(&sb, "postfix-k"), 1);
    let log = sb.supervisor_log();
    assert!(log.contains("exited"), "{log}");
    assert!(log.contains("killed by SIGKILL"), "{log}");
}

#[test]
fn stopped_master_is_found_hung_and_replaced() {
    let sb = one_instance("postfix-h");
    let old = sb.pid_file_pid("postfix-h").unwrap();
    sb.sh(&format!("kill -STOP {old}")).ok();
    // Interval 500 ms and 3 failed probes: well within 10 s.
    let replaced = sb.wait_for(
        &format!(
            "new=$(tr -d ' ' < /var/spool/postfix-h/pid/master.pid); [ \"$new\" != {old} ] && kill -0 $new"
        ),
        Duration::from_secs(10),
    );
    assert!(replaced, "{}", sb.supervisor_log());
    assert!(sb.wait_for(
        "timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' | grep -q '^220 '",
        Duration::from_secs(10)
    ));
    let log = sb.supervisor_log();
    assert!(log.contains("hung; killing the master"), "{log}");
    let state = sb.sh(&format!("ps -o stat= -p {old}")).stdout;
    assert_eq!(state.trim(), "", "the hung master must be gone\n{log}");
}

#[test]
fn broken_configuration_is_reported_without_a_restart_loop() {
    let sb = one_instance("postfix-b");
    sb.sh("echo 'broken inet n' >> /etc/postfix-b/master.cf")
        .ok();
    let pid = sb.pid_file_pid("postfix-b").unwrap();
    sb.sh(&format!("kill -9 {pid}")).ok();
    let log_path = sb.root().join("supervise.log");
    assert!(sb.wait_for(
        &format!("grep -q 'configuration error' {}", log_path.display()),
        Duration::from_secs(10)
    ));
    // Give it time to loop if it were going to.
    std::thread::sleep(Duration::from_secs(4));
    let log = sb.supervisor_log();
    let errors = log.matches("configuration error").count();
    assert_eq!(errors, 1, "expected one report, no loop:\n{log}");
    assert!(
        log.contains("bad field count") || log.contains("master.cf"),
        "{log}"
    );
    assert_eq!(masters_of(&sb, "postfix-b"), 0);

    let start = sb.ctl("start postfix-b");
    assert_eq!(start.code, 1, "{start:?}");
    assert!(start.stderr.contains("postfix check failed"), "{start:?}");

    // Fixing the file is enough: the supervisor notices and starts it.
    sb.sh("sed -i '/^broken inet n$/d' /etc/postfix-b/master.cf")
        .ok();
    assert!(
        sb.wait_for(
            "timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' | grep -q '^220 '",
            Duration::from_secs(10)
        ),
        "{}",
        sb.supervisor_log()
    );
}

#[test]
fn restarted_supervisor_adopts_and_never_doubles_masters() {
    let sb = one_instance("postfix-a");
    let pid = sb.pid_file_pid("postfix-a").unwrap();
    sb.sh("pkill -9 -f '[i]nstancectl supervise'").ok();
    sb.start_supervisor("");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sb.pid_file_pid("postfix-a"),
        Some(pid),
        "adopted, not restarted"
    );
    assert_eq!(masters_of(&sb, "postfix-a"), 1);
    assert!(sb.supervisor_log().contains("adopted a running master"));

    // The adopted master is watched: when it dies, a new one takes over.
    sb.sh(&format!("kill -9 {pid}")).ok();
    assert!(
        sb.wait_for(
            &format!("new=$(tr -d ' ' < /var/spool/postfix-a/pid/master.pid); [ \"$new\" != {pid} ] && kill -0 $new && timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' | grep -q '^220 '"),
            Duration::from_secs(15)
        ),
        "{}",
        sb.supervisor_log()
    );
    assert_eq!(masters_of(&sb, "postfix-a"), 1);
}

#[test]
fn sigterm_stops_instances_in_reverse_order() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-out --group mta --role output").ok();
    sb.ctl("create postfix-in --group mta --role input --listen 127.0.0.1:2525")
        .ok();
    sb.sh("pkill -TERM -f '[i]nstancectl supervise'").ok();
    assert!(sb.wait_for(
        "! pgrep -f '[i]nstancectl supervise'",
        Duration::from_secs(30)
    ));
    assert_eq!(
        masters_of(&sb, "postfix-in") + masters_of(&sb, "postfix-out"),
        0
    );
    let log = sb.supervisor_log();
    let stopped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" stopped ") && l.contains("instance="))
        .collect();
    let position = |name: &str| {
        stopped
            .iter()
            .position(|l| l.contains(&format!("instance=\"{name}\"")))
    };
    assert!(position("postfix-in") < position("postfix-out"), "{log}");
}

#[test]
fn supervisor_as_pid_1_reaps_orphans() {
    let sb = Sandbox::bare();
    sb.ctl("--manager postfix init --null-client").ok();
    sb.ctl("--manager postfix create postfix-p --listen 127.0.0.1:2525 --no-start")
        .ok();
    let log = sb.root().join("pid1.log");
    // A pid namespace of its own, with the supervisor as its PID 1.
    sb.sh(&format!(
        "setsid unshare -p -f --mount-proc instancectl supervise --interval 500ms >{} 2>&1 < /dev/null &",
        log.display()
    ))
    .ok();
    assert!(sb.wait_for(
        "timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' | grep -q '^220 '",
        Duration::from_secs(20)
    ));
    // Pid files hold pids of the inner namespace: find the master by its command line.
    let master = "pgrep -f '^/usr/lib/postfix/sbin/master -c /etc/postfix-p$'";
    for _ in 0..3 {
        let pid = sb.sh(master).ok().stdout.trim().to_string();
        sb.sh(&format!("kill -9 {pid}")).ok();
        assert!(sb.wait_for(
            &format!("new=$({master}); [ -n \"$new\" ] && [ \"$new\" != {pid} ] && timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -1 <&3' | grep -q '^220 '"),
            Duration::from_secs(15)
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    let zombies = sb
        .sh("ps -eo stat= | grep -c '^Z'")
        .stdout
        .trim()
        .to_string();
    assert_eq!(
        zombies,
        "0",
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn no_mail_is_lost_while_the_output_instance_keeps_dying() {
    let sb = Sandbox::new();
    sb.add_addr("127.0.1.1");
    sb.ctl("init --null-client").ok();
    sb.sh("mkdir -p /tmp/sink && (setsid smtp-sink -u root -d '/tmp/sink/%M.' 127.0.0.1:2500 128 </dev/null >/dev/null 2>&1 &)").ok();
    sb.ctl(
        "create postfix-out --group mta --role output --set 'relayhost=[127.0.0.1]:2500' \
            --set minimal_backoff_time=1s --set maximal_backoff_time=2s --set queue_run_delay=1s",
    )
    .ok();
    sb.ctl(
        "create postfix-in --group mta --role input --listen 127.0.1.1 \
            --set 'default_transport=smtp:[127.0.0.1]:10026' \
            --set minimal_backoff_time=1s --set maximal_backoff_time=2s --set queue_run_delay=1s",
    )
    .ok();
    // Mail flows in over SMTP, each message with its own subject, while the output
    // instance is killed again and again.
    let killer = "for i in $(seq 10); do kill -9 $(cat /var/spool/postfix-out/pid/master.pid) 2>/dev/null; sleep 0.4; done";
    let sent = sb.sh(&format!(
        "send() {SMTP_SEND}\n({killer}) & for n in $(seq 60); do send $n && echo accepted; done; wait"
    ));
    let accepted = sent.stdout.matches("accepted").count();
    assert_eq!(accepted, 60, "{sent:?}");
    // A master killed between handing a message on and recording it delivers it
    // again later: count distinct messages (at least once, never lost).
    let distinct = "grep -h '^Subject: msg-' /tmp/sink/* | sort -u | wc -l";
    let all_arrived = sb.wait_for(
        &format!("[ $({distinct}) -ge 60 ]"),
        Duration::from_secs(90),
    );
    let count = sb.sh(distinct).stdout.trim().to_string();
    assert!(
        all_arrived,
        "only {count} of 60 messages arrived\n{}",
        sb.supervisor_log()
    );
    assert!(sb.supervisor_log().matches("killed by SIGKILL").count() >= 3);
}

/// A bash function body (a subshell) that sends message number $1 to the input instance over
/// SMTP and succeeds only on a 250 reply to the end of DATA.
const SMTP_SEND: &str = r#"(exec 3<>/dev/tcp/127.0.1.1/25 || exit 1
reply() { while read -r -t 10 line <&3; do [[ $line == [0-9][0-9][0-9]-* ]] || break; done; [[ $line == $1* ]]; }
reply 220 || exit 1
for c in "EHLO test.example" "MAIL FROM:<sender@example.org>" "RCPT TO:<rcpt@example.net>"; do
  printf '%s\r\n' "$c" >&3; reply 250 || exit 1
done
printf 'DATA\r\n' >&3; reply 354 || exit 1
printf 'Subject: msg-%s\r\n\r\nbody\r\n.\r\n' "$1" >&3; reply 250 || exit 1
printf 'QUIT\r\n' >&3)"#;

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
    // Both lines must be there: a missing one is a failure, not "None < Some".
    let position = |name: &str| {
        stopped
            .iter()
            .position(|l| l.contains(&format!("instance=\"{name}\"")))
            .unwrap_or_else(|| panic!("no \"stopped\" line for {name}:\n{log}"))
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

/// The supervisor's log lines about one instance that contain `what`.
fn log_lines(sb: &Sandbox, name: &str, what: &str) -> usize {
    sb.supervisor_log()
        .lines()
        .filter(|l| l.contains(&format!("instance=\"{name}\"")) && l.contains(what))
        .count()
}

/// Issue 11, item 1: a qmqpd listener says nothing, and postscreen with its pregreet
/// test holds back the end of its greeting for seconds. Both are healthy: the
/// supervisor must not kill the master as hung, and while all is well it must not
/// talk to the listeners at all (no connect lines in the mail log).
#[test]
fn quiet_listeners_and_postscreen_are_healthy_and_not_probed() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-q --listen 127.0.0.1:2525 --set maillog_file=/var/log/postfix-q.log")
        .ok();
    let cf = "/etc/postfix-q";
    sb.sh(&format!(
        "set -e
         postconf -c {cf} -M '6628/inet=6628 inet n - n - - qmqpd'
         postconf -c {cf} -F '127.0.0.1:2525/inet/command=postscreen' \
           '127.0.0.1:2525/inet/process_limit=1'
         postconf -c {cf} -M 'smtpd/pass=smtpd pass - - n - - smtpd'
         postconf -c {cf} -M 'dnsblog/unix=dnsblog unix - - n - 0 dnsblog'
         postconf -c {cf} -M 'tlsproxy/unix=tlsproxy unix - - n - 0 tlsproxy'
         postconf -c {cf} -e postscreen_greet_action=enforce postscreen_greet_wait=6s \
           postscreen_access_list="
    ))
    .ok();
    let restart = sb.ctl("restart postfix-q");
    assert_eq!(
        restart.code,
        0,
        "{restart:?}\n{}\n{}",
        sb.supervisor_log(),
        sb.sh("cat /var/log/postfix-q.log; postconf -c /etc/postfix-q -M")
            .stdout
    );
    let listeners = sb.sh("ss -ltnp | grep -E ':(2525|6628) '").stdout;
    assert!(
        listeners.contains("127.0.0.1:2525") && listeners.contains("127.0.0.1:6628"),
        "{listeners}"
    );
    // The first line of postscreen's greeting comes at once, the rest 6 s later.
    let first = sb.banner("127.0.0.1", 2525);
    assert!(first.starts_with("220-"), "{first:?}");

    let pid = sb.pid_file_pid("postfix-q").unwrap();
    // smtpd and qmqpd log "connect from", postscreen "CONNECT from".
    let connects = "grep -c -E ': (connect|CONNECT) from' /var/log/postfix-q.log || true";
    std::thread::sleep(Duration::from_secs(2));
    let before = sb.sh(connects).stdout.trim().to_string();
    // 16 looks at 500 ms; the old prober killed it after 3.
    std::thread::sleep(Duration::from_secs(8));
    let after = sb.sh(connects).stdout.trim().to_string();
    assert_eq!(
        sb.pid_file_pid("postfix-q"),
        Some(pid),
        "{}",
        sb.supervisor_log()
    );
    assert_eq!(
        log_lines(&sb, "postfix-q", "hung"),
        0,
        "{}",
        sb.supervisor_log()
    );
    assert_eq!(
        before,
        after,
        "health checks talked to the listeners:\n{}",
        sb.sh("cat /var/log/postfix-q.log").stdout
    );
    let status = sb.ctl("status postfix-q");
    assert_eq!(status.code, 0, "{status:?}");
}

/// Issue 11, item 2: a master that exits 1 after Postfix's one-second fatal sleep
/// (here: its port is taken) failed. It is restarted with growing delays, not every
/// second, and `status` says why, in Postfix's words.
#[test]
fn a_master_that_keeps_failing_backs_off_and_status_says_why() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    sb.ctl("create postfix-f --listen 127.0.0.1:2525 --set maillog_file=/var/log/postfix-f.log")
        .ok();
    sb.ctl("stop postfix-f").ok();
    // A stopped instance has nothing to reload, and the message says what to do.
    let reload = sb.ctl("reload postfix-f");
    assert_eq!(reload.code, 1, "{reload:?}");
    assert!(
        reload
            .stderr
            .contains("postfix-f is not running, so there is nothing to reload; start it instead"),
        "{reload:?}"
    );
    // Another program takes the port (without SO_REUSEPORT, which Postfix's
    // listeners would share it with).
    sb.sh(
        "(setsid /usr/bin/python3 -c 'import socket, time; s = socket.socket(); \
          s.bind((\"127.0.0.1\", 2525)); s.listen(); time.sleep(600)' \
          </dev/null >/dev/null 2>&1 &)",
    )
    .ok();
    assert!(sb.wait_for(
        "ss -ltn | grep -q '127.0.0.1:2525 '",
        Duration::from_secs(5)
    ));
    // Lift the stop mark behind instancectl's back and have the supervisor look.
    sb.sh("rm /var/lib/instancectl/stopped/postfix-f && pkill -HUP -f '[i]nstancectl supervise'")
        .ok();
    std::thread::sleep(Duration::from_secs(10));
    let starts = log_lines(&sb, "postfix-f", " started ");
    let log = sb.supervisor_log();
    // Every second for 10 s would be 10 starts; 0.25, 0.5, 1, 2, 4 s of backoff
    // after each 1 s run allow at most 6.
    assert!(
        (2..=6).contains(&starts),
        "{starts} starts:\n{log}\n{}",
        sb.sh("ss -ltnp; ps -ef; cat /var/log/postfix-f.log").stdout
    );
    assert!(
        log.contains("exit status 1"),
        "{log}\n{}",
        sb.sh("ss -ltnp; ps -ef; cat /var/log/postfix-f.log").stdout
    );
    assert!(log.contains("restart scheduled"), "{log}");

    let status = sb.ctl("status postfix-f -v");
    assert_eq!(status.code, 1, "{status:?}");
    assert!(status.stdout.contains("keeps failing"), "{status:?}");
    assert!(status.stdout.contains("exit status 1"), "{status:?}");
    assert!(
        status
            .stdout
            .contains("127.0.0.1:2525 already bound by another program"),
        "{status:?}"
    );
    let json = sb.ctl("status postfix-f --json");
    assert!(json.stdout.contains("keeps failing"), "{json:?}");
}

/// Issue 11, item 6: whatever the umask, the control socket is 0600; a user other
/// than root is refused even when the socket's mode lets them in; a huge request line
/// is refused without the supervisor growing.
#[test]
fn the_control_socket_is_private_and_bounded() {
    let sb = Sandbox::bare();
    sb.sh(&format!(
        "umask 000; setsid instancectl supervise --interval 500ms >>{} 2>&1 </dev/null &",
        sb.root().join("supervise.log").display()
    ))
    .ok();
    let socket = "/var/lib/instancectl/supervisor.sock";
    assert!(sb.wait_for(&format!("test -S {socket}"), Duration::from_secs(20)));
    assert_eq!(sb.sh(&format!("stat -c %a {socket}")).stdout.trim(), "600");

    let client = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect("/var/lib/instancectl/supervisor.sock")
try:
    s.sendall(sys.argv[1].encode() * int(sys.argv[2]) + b"\n")
except (BrokenPipeError, ConnectionResetError):
    pass  # the supervisor stopped reading: its answer is waiting
print(s.makefile().readline(), end="")
"#;
    sb.sh(&format!("cat > /tmp/client.py <<'EOF'\n{client}EOF"))
        .ok();
    let root_ok = sb.sh(r#"/usr/bin/python3 /tmp/client.py '{"op":"status"}' 1"#);
    assert!(root_ok.stdout.contains(r#""ok":true"#), "{root_ok:?}");

    sb.sh(&format!(
        "chmod 666 {socket}; chmod 755 /var/lib/instancectl /tmp/client.py"
    ))
    .ok();
    let nobody = sb.sh(
        r#"setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 /tmp/client.py '{"op":"status"}' 1"#,
    );
    assert!(
        nobody.stdout.contains("permission denied: only root"),
        "{nobody:?}"
    );

    // 100 MiB without a newline: refused once 64 KiB have come.
    let huge = sb.sh("/usr/bin/python3 /tmp/client.py x 104857600 2>&1");
    assert!(huge.stdout.contains("longer than"), "{huge:?}");
    let rss_kb: u64 = sb
        .sh("grep VmHWM /proc/$(pgrep -f '[i]nstancectl supervise')/status | awk '{print $2}'")
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(rss_kb < 50_000, "peak RSS {rss_kb} kB");
}

/// Issue 11, item 10, and issue 10, item 3: with no supervisor running, `stop`
/// fails and leaves no stop mark, `status` says the supervisor is missing (exit 1, in
/// JSON and Prometheus too), and a supervisor started later adopts the master.
#[test]
fn without_a_supervisor_stop_fails_cleanly_and_status_says_so() {
    let sb = one_instance("postfix-m");
    let pid = sb.pid_file_pid("postfix-m").unwrap();
    sb.sh("pkill -9 -f '[i]nstancectl supervise'").ok();
    assert!(sb.wait_for(
        "! pgrep -f '[i]nstancectl supervise'",
        Duration::from_secs(5)
    ));

    let stop = sb.ctl("stop postfix-m");
    assert_eq!(stop.code, 1, "{stop:?}");
    assert!(
        stop.stderr.contains("no instancectl supervisor"),
        "{stop:?}"
    );
    assert_eq!(
        sb.sh("ls /var/lib/instancectl/stopped/").stdout.trim(),
        "",
        "a failed stop left its mark"
    );

    let status = sb.ctl("status postfix-m");
    assert_eq!(status.code, 1, "{status:?}");
    assert!(
        status
            .stdout
            .contains("no instancectl supervisor is running"),
        "{status:?}"
    );
    let json = sb.ctl("status postfix-m --json");
    assert!(
        json.stdout.contains("no instancectl supervisor is running"),
        "{json:?}"
    );
    let prometheus = sb.ctl("status postfix-m --format prometheus").stdout;
    let healthy = prometheus
        .lines()
        .find(|l| l.starts_with("instancectl_healthy{") && l.contains("postfix-m"))
        .unwrap_or_else(|| panic!("{prometheus}"));
    assert!(healthy.ends_with(" 0"), "{healthy}");

    sb.start_supervisor("");
    assert!(
        sb.wait_for(
            &format!(
                "grep -q 'adopted a running master' {}",
                sb.root().join("supervise.log").display()
            ),
            Duration::from_secs(10)
        ),
        "{}",
        sb.supervisor_log()
    );
    assert_eq!(sb.pid_file_pid("postfix-m"), Some(pid));
    let status = sb.ctl("status postfix-m");
    assert_eq!(status.code, 0, "{status:?}");
}

/// Issue 10, item 3: under systemd (Type=notify) the supervisor says READY=1 over
/// NOTIFY_SOCKET once every enabled instance serves, and not before.
#[test]
fn the_supervisor_notifies_readiness_when_the_instances_serve() {
    use std::os::unix::net::UnixDatagram;
    let sb = one_instance("postfix-n");
    sb.sh("pkill -TERM -f '[i]nstancectl supervise'").ok();
    assert!(sb.wait_for(
        "! pgrep -f '[i]nstancectl supervise' && ! ss -ltn | grep -q 127.0.0.1:2525",
        Duration::from_secs(30)
    ));
    let path = sb.root().join("notify.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    sb.sh(&format!(
        "NOTIFY_SOCKET={} setsid instancectl supervise --interval 500ms >>{} 2>&1 </dev/null &",
        path.display(),
        sb.root().join("supervise.log").display()
    ))
    .ok();
    let mut buf = [0u8; 4096];
    let n = listener
        .recv(&mut buf)
        .expect("no notification within 60 s");
    let banner = sb.banner("127.0.0.1", 2525);
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.contains("READY=1"), "{message}");
    assert!(message.contains("2 of 2 instance(s) running"), "{message}");
    assert!(
        banner.starts_with("220 "),
        "ready before serving: {banner:?}"
    );
}

/// Issue 10, item 3: a supervisor that hangs (here stopped) is a problem in `status`
/// too, reported after a bounded wait instead of hanging it.
#[test]
fn a_hung_supervisor_is_a_problem_in_status() {
    let sb = one_instance("postfix-z");
    sb.sh("pkill -STOP -f '[i]nstancectl supervise'").ok();
    let started = std::time::Instant::now();
    let status = sb.ctl("status postfix-z");
    let waited = started.elapsed();
    sb.sh("pkill -CONT -f '[i]nstancectl supervise'").ok();
    assert_eq!(status.code, 1, "{status:?}");
    assert!(
        status.stdout.contains("did not answer within 15 s"),
        "{status:?}"
    );
    assert!(waited < Duration::from_secs(60), "status waited {waited:?}");
}

#[test]
fn a_broken_instance_is_not_started_on_directories_not_its_own() {
    let sb = one_instance("postfix-b");
    sb.ctl("stop postfix-b").ok();
    assert_eq!(masters_of(&sb, "postfix-b"), 0);
    // Still enabled, but its main.cf no longer names directories of its own: Postfix
    // would fall back to the compiled-in (the primary's) queue directory.
    sb.sh(
        "postconf -c /etc/postfix-b -X queue_directory data_directory && \
         rm /var/lib/instancectl/stopped/postfix-b && \
         pkill -HUP -f '[i]nstancectl supervise'",
    )
    .ok();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(masters_of(&sb, "postfix-b"), 0, "{}", sb.supervisor_log());
    let status = sb.ctl("status postfix-b --json");
    assert_eq!(status.code, 1, "{status:?}");
    assert!(status.stdout.contains("\"broken\""), "{status:?}");
}

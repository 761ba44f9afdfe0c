//! End-to-end: what instancectl does on macOS's Postfix 3.2.2, which has no `master -s`,
//! no `maillog_file` and no postlogd.
//!
//! There is no Postfix 3.2 for this Debian host, and building one is out of reach, so
//! the real Postfix 3.7 answers everything and only instancectl is told it is 3.2:
//! a `postconf` first in PATH runs the real /usr/sbin/postconf with the same arguments
//! and rewrites one line of its output, `mail_version = ...`, to what macOS's postconf
//! answers (tests/data/macos-postconf-mail_version.txt, with its sources). instancectl
//! finds postconf on PATH, reads `mail_version` as a `name = value` line (never with
//! `-h`) and decides every version gate by it; Postfix's
//! own scripts call `$command_directory/postconf`, so Postfix itself is unchanged. This
//! tests instancectl's gates, not Postfix 3.2: each test also shows the same step on the
//! unmodified 3.7, where the gated feature is used, so that a gate that stopped working
//! would fail here.

use crate::common::{Run, Sandbox};

const RECORDED: &str = include_str!("../data/macos-postconf-mail_version.txt");

/// `mail_version = 3.2.2`, the recorded answer.
fn recorded_answer() -> &'static str {
    RECORDED.lines().next().unwrap()
}

/// Installs the wrapper in the sandbox's private directory and returns the shell
/// prefix that puts it first in PATH.
pub(crate) fn as_postfix_32(sb: &Sandbox) -> String {
    let dir = sb.root().join("postfix-3.2-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let answer = recorded_answer();
    let script = format!(
        "#!/bin/bash\n\
         # Postfix 3.7's postconf, except that mail_version reads as on macOS.\n\
         set -o pipefail\n\
         /usr/sbin/postconf \"$@\" | sed -e 's/^mail_version = .*/{answer}/'\n"
    );
    let path = dir.join("postconf");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("PATH={}:$PATH", dir.display())
}

/// A relay instance to a smart host that is not there (nothing listens on
/// 127.0.0.1:2599), so mail to it is deferred with Postfix's reason.
fn create_relay(sb: &Sandbox, prefix: &str, name: &str) -> Run {
    sb.sh_input(
        &format!(
            "{prefix} instancectl create {name} --role relay --provider custom \
             --relay-host 127.0.0.1:2599 --tls-security-level encrypt \
             --sasl-user relayuser@relay.test --sasl-password-stdin --listen 127.0.1.{}:25",
            if name.ends_with("32") { 2 } else { 3 }
        ),
        "not-a-real-password\n",
    )
}

fn main_cf(sb: &Sandbox, name: &str) -> String {
    sb.sh(&format!("cat /etc/{name}/main.cf")).ok().stdout
}

#[test]
fn the_wrapper_changes_only_mail_version() {
    let sb = Sandbox::scripted();
    let prefix = as_postfix_32(&sb);
    let names = "mail_version daemon_directory config_directory maillog_file";
    let real = sb.sh(&format!("postconf {names}")).ok().stdout;
    let seen = sb.sh(&format!("{prefix} postconf {names}")).ok().stdout;
    assert!(real.contains("mail_version = 3.7"), "{real}");
    assert_eq!(
        seen,
        real.replace(
            real.lines()
                .find(|l| l.starts_with("mail_version"))
                .unwrap(),
            recorded_answer()
        )
    );
    // Errors and exit statuses are the real postconf's.
    let bad = sb.sh(&format!("{prefix} postconf -c /nonexistent mail_version"));
    assert_ne!(bad.code, 0, "{bad:?}");
}

#[test]
fn relay_instances_and_test_mail_on_postfix_3_2() {
    let sb = Sandbox::scripted().null_client();
    let prefix = as_postfix_32(&sb);
    sb.add_addr("127.0.1.2");
    sb.add_addr("127.0.1.3");

    // On 3.7 a relay instance gets a log file of its own ...
    create_relay(&sb, "", "postfix-relay37").ok();
    assert!(
        main_cf(&sb, "postfix-relay37").contains("maillog_file = /var/log/postfix-relay37.log"),
        "{}",
        main_cf(&sb, "postfix-relay37")
    );
    // ... on 3.2 there is no such parameter.
    let created = create_relay(&sb, &prefix, "postfix-relay32").ok();
    let cf = main_cf(&sb, "postfix-relay32");
    assert!(!cf.contains("maillog_file"), "{cf}\n{created:?}");
    assert!(cf.contains("relayhost = [127.0.0.1]:2599"), "{cf}");

    // test-mail follows the queue on 3.2: no maillog_file, no syslog file here.
    let sent = sb.sh(&format!(
        "{prefix} instancectl test-mail postfix-relay32 --to rcpt@dest.example --timeout 60"
    ));
    assert_eq!(sent.code, 1, "{sent:#?}");
    assert!(sent.stdout.contains("following the queue"), "{sent:#?}");
    assert!(
        sent.stdout
            .contains("DEFERRED: connect to 127.0.0.1[127.0.0.1]:2599: Connection refused"),
        "{sent:#?}"
    );

    // An instance whose main.cf names a maillog_file (made on 3.4+): Postfix 3.2 would
    // ignore it, so test-mail must not wait for that file to grow.
    let on_37 = sb.ctl("test-mail postfix-relay37 --to rcpt@dest.example --timeout 60");
    assert!(
        on_37
            .stdout
            .contains("following /var/log/postfix-relay37.log"),
        "{on_37:#?}"
    );
    let on_32 = sb.sh(&format!(
        "{prefix} instancectl test-mail postfix-relay37 --to rcpt@dest.example --timeout 60"
    ));
    assert_eq!(on_32.code, 1, "{on_32:#?}");
    assert!(on_32.stdout.contains("following the queue"), "{on_32:#?}");
    assert!(
        on_32.stdout.contains("DEFERRED: connect to 127.0.0.1"),
        "{on_32:#?}"
    );

    // status says which Postfix it saw, and shows the relay's last delivery problem
    // from the queue's defer logs, which 3.2 keeps as 3.7 does.
    let status = sb.sh(&format!(
        "{prefix} instancectl status postfix-relay32 --json"
    ));
    assert!(status.code == 0 || status.code == 1, "{status:#?}");
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(report["host"]["postfix_version"], "3.2.2", "{report:#}");
    let relay = &report["instances"][0];
    assert_eq!(relay["name"], "postfix-relay32", "{report:#}");
    assert_ne!(relay["verdict"], "down", "{relay:#}");
    assert_eq!(
        relay["relay"]["relay_host"], "[127.0.0.1]:2599",
        "{relay:#}"
    );
    assert!(
        relay["relay"]["last_delivery_problem"]
            .as_str()
            .is_some_and(|p| p.contains("Connection refused")),
        "{relay:#}"
    );
}

#[test]
fn launchd_jobs_on_postfix_3_2_have_no_master_s() {
    let sb = Sandbox::scripted();
    let prefix = as_postfix_32(&sb);
    sb.ctl("init").ok();
    sb.ctl("create postfix-out --role output --no-start").ok();

    let on_37 = sb.ctl("plist postfix-out").ok();
    assert!(on_37.stdout.contains("<string>-s</string>"), "{on_37:?}");
    let on_32 = sb
        .sh(&format!("{prefix} instancectl plist postfix-out"))
        .ok();
    assert!(!on_32.stdout.contains("<string>-s</string>"), "{on_32:?}");
    assert!(
        on_32
            .stdout
            .contains("<string>-c</string>\n\t\t<string>/etc/postfix-out</string>\n\t</array>"),
        "{on_32:?}"
    );

    // The job written for 3.7, installed on a 3.2 host: the lint says the master
    // refuses -s there (and finds nothing wrong on 3.7).
    sb.sh(
        "mkdir -p /etc/LaunchDaemons && instancectl plist postfix-out > \
         /etc/LaunchDaemons/org.postfix.postfix-out.plist && \
         chmod 644 /etc/LaunchDaemons/org.postfix.postfix-out.plist",
    )
    .ok();
    let lint = "instancectl --launchd-dir /etc/LaunchDaemons plist --check \
                /etc/LaunchDaemons/org.postfix.postfix-out.plist";
    let clean = sb.sh(lint);
    assert_eq!(clean.code, 0, "{clean:?}");
    let flagged = sb.sh(&format!("{prefix} {lint}"));
    assert_eq!(flagged.code, 1, "{flagged:?}");
    assert!(
        flagged
            .stdout
            .contains("master -s exists since Postfix 3.4.0, and this host has Postfix 3.2.2"),
        "{flagged:?}"
    );
}

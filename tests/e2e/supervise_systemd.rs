//! End-to-end: the native supervisor under a real systemd (pid 1 of private
//! namespaces, tests/e2e/common/systemd.rs) with contrib/instancectl.service as shipped:
//! Type=notify, a restart of the unit that keeps every master running, a stop that
//! stops them, and a clear word beside Debian's postfix.service.

use crate::common::Shell;
use crate::common::systemd::{BIN, Machine};

use std::time::Duration;

/// The master pids of the primary and of postfix-s, from their pid files.
fn masters(m: &Machine) -> String {
    m.sh("cat /var/spool/postfix/pid/master.pid /var/spool/postfix-s/pid/master.pid | tr -s ' \\n' ' '")
        .stdout
        .trim()
        .to_string()
}

#[test]
fn the_unit_warns_beside_debian_and_restarts_without_an_outage() {
    let Some(m) = Machine::boot() else {
        return;
    };
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/instancectl.service"
    ))
    .unwrap()
    .replace(
        "/usr/local/sbin/instancectl",
        &format!("{}/instancectl", BIN),
    );
    m.sh(&format!(
        "cat > /etc/systemd/system/instancectl.service <<'EOF'\n{unit}EOF\nsystemctl daemon-reload"
    ))
    .ok();

    // Debian's postfix.service is enabled as the package leaves it: the supervisor
    // says so, with the fix, and adopts the primary's master that Debian started.
    let debian_master = m.sh("cat /var/spool/postfix/pid/master.pid").ok().stdout;
    m.sh("systemctl start instancectl").ok();
    let status = m.sh("systemctl status instancectl --no-pager").stdout;
    assert!(
        status.contains("WARNING: Debian's postfix.service also starts these masters"),
        "{status}"
    );
    let journal = m.sh("journalctl -u instancectl --no-pager -o cat").stdout;
    assert!(
        journal.contains("Debian's postfix.service is enabled")
            && journal.contains("systemctl disable --now postfix.service")
            && journal.contains("adopted a running master"),
        "{journal}"
    );
    assert_eq!(
        m.sh("cat /var/spool/postfix/pid/master.pid").stdout,
        debian_master
    );
    assert_eq!(m.sh("pgrep -cx master").stdout.trim(), "1");

    // Following the advice: Debian's unit stops its master, the supervisor starts
    // its own.
    m.sh("systemctl disable --now postfix.service && systemctl restart instancectl")
        .ok();
    // Type=notify: started means ready, so the primary serves now.
    assert!(m.banner("127.0.0.1", 25).starts_with("220 "), "{}", m.log());
    m.ctl("init").ok();
    m.ctl("create postfix-s --listen 127.0.0.1:2525").ok();
    let before = masters(&m);
    let supervisor = m.show("instancectl", "MainPID");
    assert_eq!(before.split(' ').count(), 2, "{before:?}");

    // A restart (an upgrade) leaves the masters running; the new supervisor adopts
    // them and answers at once.
    m.sh("systemctl restart instancectl").ok();
    assert_ne!(m.show("instancectl", "MainPID"), supervisor);
    assert_eq!(
        masters(&m),
        before,
        "a restart of the unit restarted the masters"
    );
    assert!(m.banner("127.0.0.1", 2525).starts_with("220 "));
    let journal = m.sh("journalctl -u instancectl --no-pager -o cat").stdout;
    assert!(
        journal.contains("systemd restarts the supervisor")
            && journal.contains("adopted a running master"),
        "{journal}"
    );
    let restart = m.ctl("restart postfix-s");
    assert_eq!(restart.code, 0, "{restart:?}");

    // A stop stops every master, in reverse start order.
    m.sh("systemctl stop instancectl").ok();
    assert!(
        m.wait_for("! pgrep -x master", Duration::from_secs(30)),
        "{}",
        m.sh("ps -ef").stdout
    );
    let journal = m.sh("journalctl -u instancectl --no-pager -o cat").stdout;
    assert!(
        journal.contains("stopping every instance in reverse start order"),
        "{journal}"
    );
    let status = m.ctl("status");
    assert_eq!(status.code, 1, "{status:?}");
}

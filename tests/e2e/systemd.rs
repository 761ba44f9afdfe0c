//! End-to-end: the systemd manager under a real systemd (pid 1 of private namespaces,
//! tests/e2e/common/systemd.rs) with Postfix and Debian's postfix units as the package
//! leaves them, proven with real SMTP.

use crate::machine;
use crate::machine_or_skip;

#[test]
fn systemd_boots_and_debian_starts_the_primary() {
    let m = machine_or_skip!();
    assert_eq!(m.show("postfix.service", "ActiveState"), "active");
    assert_eq!(
        m.show("postfix@-.service", "ActiveState"),
        "active",
        "{}",
        m.log()
    );
    assert!(m.banner("127.0.0.1", 25).starts_with("220 "), "{}", m.log());
    let pid1 = m.sh("cat /proc/1/comm").ok().stdout;
    assert_eq!(pid1.trim(), "systemd");
}

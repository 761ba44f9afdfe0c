//! End-to-end: the systemd manager under a real systemd (pid 1 of private namespaces,
//! tests/e2e/common/systemd.rs) with Postfix and Debian's postfix units as the package
//! leaves them (postfix.service enabled, the instance generator installed), proven
//! with real SMTP. Where systemd cannot boot, each test says why and skips.

use crate::common::Shell;
use crate::common::systemd::Machine;

/// A booted machine with multi-instance Postfix (the primary a null client, as the
/// walk-through has it).
fn with_multi_instance() -> Option<Machine> {
    let m = Machine::boot()?;
    m.ctl("init --null-client").ok();
    Some(m)
}

fn main_pid(m: &Machine, unit: &str) -> Option<u32> {
    m.show(unit, "MainPID").parse().ok().filter(|p| *p > 0)
}

/// The pid in an instance's master.pid, when that process lives.
fn master_pid(m: &Machine, name: &str) -> Option<u32> {
    m.sh(&format!(
        "p=$(tr -d ' ' < /var/spool/{name}/pid/master.pid) && kill -0 $p && echo $p"
    ))
    .stdout
    .trim()
    .parse()
    .ok()
}

/// How many master processes serve an instance: a master works in its queue
/// directory, however it was started (`master -c DIR` or postfix-script's `master -w`).
fn masters(m: &Machine, name: &str) -> usize {
    m.sh(&format!(
        "for p in $(pgrep -x master); do readlink /proc/$p/cwd; done | grep -cx /var/spool/{name}"
    ))
    .stdout
    .trim()
    .parse()
    .unwrap()
}

fn serves(m: &Machine, port: u16) -> bool {
    m.banner("127.0.0.1", port).starts_with("220 ")
}

#[test]
fn systemd_boots_and_debian_starts_the_primary() {
    let Some(m) = Machine::boot() else {
        return;
    };
    assert_eq!(m.show("postfix.service", "ActiveState"), "active");
    assert_eq!(
        m.show("postfix@-.service", "ActiveState"),
        "active",
        "{}",
        m.log()
    );
    assert!(serves(&m, 25), "{}", m.log());
    let pid1 = m.sh("cat /proc/1/comm").ok().stdout;
    assert_eq!(pid1.trim(), "systemd");
    // status says which unit runs the primary's master, and that it is Debian's.
    let status = m.ctl("status -v -");
    for expected in [
        "master in postfix@-.service",
        "this host has Debian's postfix.service, postfix@.service, postfix-instance-generator",
    ] {
        assert!(
            status.stdout.contains(expected),
            "{expected:?} in {status:#?}"
        );
    }
}

#[test]
fn create_stop_start_disable_enable_destroy_through_systemd() {
    let Some(m) = with_multi_instance() else {
        return;
    };
    let unit = "instancectl-postfix-a.service";
    // A dry run shows every systemctl call and unit write, and changes nothing.
    let units = |m: &Machine| m.sh("ls -la /etc/systemd/system").ok().stdout;
    let before = units(&m);
    let dry = m
        .ctl("--dry-run create postfix-a --listen 127.0.0.1:2525")
        .ok();
    for expected in [
        "would run: systemctl mask postfix@postfix-a.service",
        "would write: /etc/systemd/system/instancectl-postfix-a.service (mode 0644",
        "would run: systemctl daemon-reload",
        "would run: systemctl enable instancectl-postfix-a.service",
        "would run: systemctl start instancectl-postfix-a.service",
    ] {
        assert!(dry.stdout.contains(expected), "{expected:?} in {dry:?}");
    }
    assert_eq!(before, units(&m));
    assert_eq!(m.show(unit, "LoadState"), "not-found");
    // No --manager: systemd is the default where it is the init system.
    m.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    assert!(serves(&m, 2525));
    // systemd runs the master itself, in the instance's unit.
    let master = master_pid(&m, "postfix-a").expect("a master");
    assert_eq!(main_pid(&m, unit), Some(master));
    assert_eq!(m.show(unit, "UnitFileState"), "enabled");
    assert_eq!(m.show("postfix@postfix-a.service", "LoadState"), "masked");
    let cgroup = m.sh(&format!("cat /proc/{master}/cgroup")).stdout;
    assert!(cgroup.contains(unit), "{cgroup}");
    let printed = m.ctl("unit postfix-a").ok().stdout;
    let installed = m.sh(&format!("cat /etc/systemd/system/{unit}")).ok().stdout;
    assert_eq!(printed, installed);

    m.ctl("stop postfix-a").ok();
    assert_eq!(m.show(unit, "ActiveState"), "inactive");
    assert_eq!(master_pid(&m, "postfix-a"), None);
    assert!(!serves(&m, 2525));

    m.ctl("start postfix-a").ok();
    assert_eq!(m.show(unit, "ActiveState"), "active");
    assert!(serves(&m, 2525));

    // restart: a new master under the same unit; reload: the same master, re-read.
    let before = main_pid(&m, unit).unwrap();
    m.ctl("restart postfix-a").ok();
    let after = main_pid(&m, unit).unwrap();
    assert_ne!(before, after);
    assert_eq!(master_pid(&m, "postfix-a"), Some(after));
    m.ctl("reload postfix-a").ok();
    assert_eq!(main_pid(&m, unit), Some(after));
    assert!(serves(&m, 2525));
    // The primary goes to Debian's unit.
    let primary = "postfix@-.service";
    let since = m.show(primary, "ActiveEnterTimestampMonotonic");
    m.ctl("restart -").ok();
    assert_ne!(m.show(primary, "ActiveEnterTimestampMonotonic"), since);
    assert_eq!(m.show(primary, "ActiveState"), "active");

    m.ctl("disable postfix-a").ok();
    assert_eq!(m.show(unit, "UnitFileState"), "disabled");
    assert_eq!(m.show(unit, "ActiveState"), "inactive");
    assert!(!serves(&m, 2525));

    m.ctl("enable postfix-a").ok();
    assert_eq!(m.show(unit, "UnitFileState"), "enabled");
    assert!(serves(&m, 2525));

    let status = m.ctl("status postfix-a --json").ok().stdout;
    let doc: serde_json::Value = serde_json::from_str(&status).unwrap();
    let instance = &doc["instances"][0];
    assert_eq!(instance["verdict"], "healthy", "{status}");
    assert_eq!(instance["manager"]["kind"], "systemd", "{status}");
    assert_eq!(instance["manager"]["master_unit"], unit, "{status}");

    m.ctl("destroy postfix-a").ok();
    assert_eq!(m.show(unit, "ActiveState"), "inactive");
    assert_ne!(m.sh(&format!("test -e /etc/systemd/system/{unit}")).code, 0);
    assert_ne!(
        m.sh("test -L /etc/systemd/system/postfix@postfix-a.service")
            .code,
        0
    );
    assert!(!serves(&m, 2525));
}

#[test]
fn a_killed_master_is_brought_back_by_systemd() {
    let Some(m) = with_multi_instance() else {
        return;
    };
    let unit = "instancectl-postfix-k.service";
    m.ctl("create postfix-k --listen 127.0.0.1:2526").ok();
    let old = master_pid(&m, "postfix-k").unwrap();
    m.sh(&format!("kill -9 {old}")).ok();
    assert!(
        m.wait_for(
            &format!(
                "p=$(systemctl show {unit} -p MainPID --value); [ $p != 0 ] && [ $p != {old} ] \
                 && exec 3<>/dev/tcp/127.0.0.1/2526 && timeout 2 head -1 <&3 | grep -q '^220 '"
            ),
            std::time::Duration::from_secs(30)
        ),
        "{}",
        m.sh(&format!(
            "systemctl status {unit}; journalctl -u {unit} -o cat"
        ))
        .stdout
    );
    assert_eq!(m.show(unit, "NRestarts"), "1");
    let new = master_pid(&m, "postfix-k").unwrap();
    assert_ne!(new, old);
    assert_eq!(main_pid(&m, unit), Some(new));
    assert_eq!(masters(&m, "postfix-k"), 1);
    // status tells the restart and how the last master ended.
    let status = m.ctl("status postfix-k --json").ok().stdout;
    let doc: serde_json::Value = serde_json::from_str(&status).unwrap();
    let view = &doc["instances"][0]["manager"];
    assert_eq!(view["runs"], 2, "{status}");
    assert_eq!(
        view["last_exit_code"], "code=killed, status=9/KILL",
        "{status}"
    );
}

#[test]
fn a_reboot_brings_enabled_instances_up_and_leaves_disabled_ones_down() {
    let Some(mut m) = with_multi_instance() else {
        return;
    };
    m.ctl("create postfix-out --group mta --role output --listen 127.0.0.1:2527")
        .ok();
    m.ctl("create postfix-in --group mta --role input --listen 127.0.0.1:2528")
        .ok();
    m.ctl("create postfix-off --listen 127.0.0.1:2529").ok();
    m.ctl("disable postfix-off").ok();
    // The input instance starts after the output instance of its group.
    let after = m.show("instancectl-postfix-in.service", "After");
    assert!(after.contains("instancectl-postfix-out.service"), "{after}");

    m.reboot();
    assert!(serves(&m, 2527), "{}", m.log());
    assert!(serves(&m, 2528));
    assert!(!serves(&m, 2529));
    for name in ["postfix-out", "postfix-in"] {
        assert_eq!(masters(&m, name), 1);
        let unit = format!("instancectl-{name}.service");
        assert_eq!(main_pid(&m, &unit), master_pid(&m, name));
    }
    assert_eq!(masters(&m, "postfix-off"), 0);
    // The input instance came up after the output instance did.
    let started = |unit: &str| -> u64 {
        m.show(unit, "ExecMainStartTimestampMonotonic")
            .parse()
            .unwrap()
    };
    assert!(started("instancectl-postfix-out.service") < started("instancectl-postfix-in.service"));
    let status = m.ctl("status");
    assert_eq!(status.code, 0, "{status:#?}");
}

#[test]
fn debian_units_never_start_a_second_master() {
    let Some(mut m) = with_multi_instance() else {
        return;
    };
    assert!(
        m.sh("test -x /lib/systemd/system-generators/postfix-instance-generator")
            .code
            == 0
    );
    assert_eq!(m.show("postfix.service", "UnitFileState"), "enabled");
    m.ctl("create postfix-d --listen 127.0.0.1:2530").ok();
    let one_master_in_our_unit = |m: &Machine, when: &str| {
        assert_eq!(masters(m, "postfix-d"), 1, "{when}");
        assert_eq!(
            main_pid(m, "instancectl-postfix-d.service"),
            master_pid(m, "postfix-d"),
            "{when}"
        );
        assert_eq!(
            m.show("postfix@postfix-d.service", "ActiveState"),
            "inactive",
            "{when}"
        );
    };
    // The generator links postfix@postfix-d.service into postfix.service.wants ...
    m.sh("systemctl daemon-reload").ok();
    let wants = m
        .sh("ls /run/systemd/generator/postfix.service.wants")
        .ok()
        .stdout;
    assert!(wants.contains("postfix@postfix-d.service"), "{wants}");
    // ... but the mask wins, whatever starts postfix.service or the instance's unit.
    m.sh("systemctl restart postfix.service").ok();
    one_master_in_our_unit(&m, "after restarting postfix.service");
    let refused = m.sh("systemctl start postfix@postfix-d.service");
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("masked"), "{refused:?}");
    one_master_in_our_unit(&m, "after starting Debian's unit by hand");
    m.reboot();
    one_master_in_our_unit(&m, "after a reboot");
    assert!(serves(&m, 2530));
}

#[test]
fn reconcile_takes_an_instance_over_from_debians_unit() {
    let Some(m) = with_multi_instance() else {
        return;
    };
    // An instance made by hand, which Debian's generated unit runs.
    m.sh("postmulti -I postfix-h -e create && \
         postconf -c /etc/postfix-h -e master_service_disable= inet_interfaces=127.0.0.1 \
           myhostname=h.example.org && \
         postconf -c /etc/postfix-h -F smtp/inet/service=2531 && \
         postmulti -i postfix-h -e enable && systemctl daemon-reload && \
         systemctl start postfix.service postfix@postfix-h.service")
        .ok();
    assert!(serves(&m, 2531));
    assert_eq!(m.show("postfix@postfix-h.service", "ActiveState"), "active");

    let status = m.ctl("status postfix-h --json");
    assert_eq!(status.code, 1, "{status:?}");
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let instance = &doc["instances"][0];
    assert_eq!(instance["verdict"], "degraded", "{}", status.stdout);
    assert_eq!(
        instance["manager"]["master_unit"], "postfix@postfix-h.service",
        "{}",
        status.stdout
    );

    let run = m.ctl("reconcile");
    assert!(
        run.stdout
            .contains("Debian's postfix@postfix-h.service runs this instance's master"),
        "{run:?}"
    );
    assert!(serves(&m, 2531), "{run:?}");
    assert_eq!(masters(&m, "postfix-h"), 1);
    assert_eq!(
        main_pid(&m, "instancectl-postfix-h.service"),
        master_pid(&m, "postfix-h")
    );
    assert_eq!(m.show("postfix@postfix-h.service", "LoadState"), "masked");
    let again = m.ctl("reconcile");
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("no drift"), "{again:?}");
}

#[test]
fn a_failed_start_is_explained_with_postfixs_words() {
    let Some(m) = with_multi_instance() else {
        return;
    };
    // Something else holds the port: `postfix check` cannot know; the master exits at
    // once and systemd would start it again and again.
    m.sh(&crate::common::occupy_port_script(2532)).ok();
    assert!(m.wait_for(
        "exec 3<>/dev/tcp/127.0.0.1/2532",
        std::time::Duration::from_secs(30)
    ));
    m.ctl("create postfix-f --listen 127.0.0.1:2532 --no-start")
        .ok();
    let run = m.ctl("start postfix-f");
    assert_eq!(run.code, 1, "{run:?}");
    for expected in [
        "postfix-f's master did not come up under systemd",
        "instancectl-postfix-f.service is",
        "bind 127.0.0.1 port 2532: Address already in use",
        "instancectl stopped instancectl-postfix-f.service",
    ] {
        assert!(run.stderr.contains(expected), "{expected:?} in {run:?}");
    }
    assert_eq!(
        m.show("instancectl-postfix-f.service", "ActiveState"),
        "inactive"
    );
}

#[test]
fn where_instancectls_own_supervisor_runs_it_stays_the_manager() {
    let Some(m) = with_multi_instance() else {
        return;
    };
    // As contrib/instancectl.service runs it: `supervise`, no manager named.
    m.sh("systemd-run --unit=instancectl-supervise /opt/instancectl/instancectl supervise")
        .ok();
    assert!(m.wait_for(
        "test -S /var/lib/instancectl/supervisor.sock",
        std::time::Duration::from_secs(60)
    ));
    m.ctl("create postfix-n --listen 127.0.0.1:2533").ok();
    assert!(serves(&m, 2533));
    assert_ne!(
        m.sh("test -e /etc/systemd/system/instancectl-postfix-n.service")
            .code,
        0,
        "the systemd manager wrote a unit although the native supervisor runs"
    );
    let master = master_pid(&m, "postfix-n").unwrap();
    let cgroup = m.sh(&format!("cat /proc/{master}/cgroup")).ok().stdout;
    assert!(cgroup.contains("instancectl-supervise.service"), "{cgroup}");
    assert_eq!(masters(&m, "postfix-n"), 1);
}

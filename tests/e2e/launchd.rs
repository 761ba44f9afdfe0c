//! End-to-end: the launchd manager on the real Postfix, under the launchd emulator.
//!
//! Each test has its own sandbox (tests/common) with its own emulated launchd running
//! inside it: the emulator's `launchctl` comes first in PATH (it is built next to
//! instancectl by `cargo test --workspace`), and the daemon spawns the instances'
//! masters as its children, honouring RunAtLoad, KeepAlive, ThrottleInterval and
//! ExitTimeOut, persistent disabled overrides and reboots.
//!
//! Every scenario runs three times, against the emulator answering as macOS 12 and
//! older, as macOS 13 to 15 and as macOS 26 and later (`mod macos_12`, `mod macos_13`,
//! `mod macos_26` at the end): the layouts of `print-disabled`, `Bad request.`, a
//! bootout that returns while the job is still `SIGTERMed`, what a bootstrap in that
//! window gets (37 on 13 to 15, 5 on 26) and 26's refusals for seconds after it all
//! differ, and the driver must cope with each. Every generation loads Apple's own
//! Postfix job (`com.apple.postfix.master`), as a Mac has it.

use std::path::Path;
use std::time::Duration;

use crate::common::{Run, Sandbox};

/// Where the sandboxed launchd keeps its plists (/Library is not in the sandbox's
/// overlays, /var is).
pub(crate) const DAEMONS: &str = "/var/Library/LaunchDaemons";
pub(crate) const STATE: &str = "/var/db/launchd-emulator";
/// Generous: the machine is shared with other builds.
pub(crate) const WAIT: Duration = Duration::from_secs(90);

pub(crate) struct Mac {
    pub(crate) sb: Sandbox,
    /// The macOS release the emulator answers as.
    pub(crate) release: &'static str,
}

pub(crate) fn env() -> String {
    format!(
        "export INSTANCECTL_MANAGER=launchd INSTANCECTL_LAUNCHD_DIR={DAEMONS} \
         LAUNCHD_EMULATOR_DIR={STATE};"
    )
}

impl Mac {
    /// A sandbox with multi-instance Postfix and an emulated launchd (booted) answering
    /// as macOS `release`, with Apple's Postfix job loaded.
    pub(crate) fn new(release: &'static str) -> Mac {
        Mac::with_emulator_args(release, "")
    }

    /// As [`Mac::new`], with more arguments for the emulator (such as `--xpcproxy-hold
    /// MS`, a slow Mac).
    pub(crate) fn with_emulator_args(release: &'static str, extra: &str) -> Mac {
        let bin = Path::new(crate::common::instancectl()).parent().unwrap();
        for tool in ["launchctl", "launchd-emulator"] {
            assert!(
                bin.join(tool).is_file(),
                "{tool} is missing next to instancectl: run `cargo test --workspace`"
            );
        }
        let sb = Sandbox::bare();
        sb.ctl("init --null-client").ok();
        sb.sh(&format!(
            "mkdir -p {DAEMONS} {STATE} && chmod 755 {DAEMONS}"
        ))
        .ok();
        // A simple command in the background, every descriptor redirected, so that the
        // shell returns at once and nothing holds its output open.
        sb.sh(&format!(
            "setsid launchd-emulator --state-dir {STATE} --daemons-dir {DAEMONS} \
             --macos {release} --apple-postfix {extra} \
             </dev/null >>/var/log/launchd-emulator.log 2>&1 & echo $! > {STATE}.pid"
        ))
        .ok();
        let mac = Mac { sb, release };
        assert!(
            mac.sb
                .wait_for(&format!("test -S {STATE}/launchd.sock"), WAIT),
            "the emulated launchd did not come up: {}",
            mac.emulator_log()
        );
        mac
    }

    /// How `print-disabled` of this generation writes an override.
    pub(crate) fn listed(&self, label: &str, disabled: bool) -> String {
        let major: u32 = self.release.split('.').next().unwrap().parse().unwrap();
        let word = match (disabled, major < 13) {
            (true, true) => "true",
            (false, true) => "false",
            (true, false) => "disabled",
            (false, false) => "enabled",
        };
        format!("\"{label}\" => {word}")
    }

    /// `launchctl print-disabled system`, read by instancectl's own parser.
    pub(crate) fn override_of(&self, label: &str) -> Option<instancectl::manager::Override> {
        let run = self.sh("launchctl print-disabled system").ok();
        instancectl::manager::launchd::launchctl::parse_print_disabled(&run.stdout).remove(label)
    }

    pub(crate) fn sh(&self, script: &str) -> Run {
        self.sb.sh(&format!("{} {script}", env()))
    }

    pub(crate) fn ctl(&self, args: &str) -> Run {
        self.sh(&format!("instancectl {args}"))
    }

    pub(crate) fn emulator_log(&self) -> String {
        self.sb.sh("cat /var/log/launchd-emulator.log").stdout
    }

    pub(crate) fn emulator_pid(&self) -> u32 {
        self.sb
            .sh(&format!("cat {STATE}.pid"))
            .ok()
            .stdout
            .trim()
            .parse()
            .unwrap()
    }

    /// `launchctl print system/LABEL`, parsed by instancectl's own parser.
    pub(crate) fn print(
        &self,
        label: &str,
    ) -> Option<instancectl::manager::launchd::launchctl::JobInfo> {
        let run = self.sh(&format!("launchctl print system/{label}"));
        match run.code {
            0 => Some(instancectl::manager::launchd::launchctl::parse_print(
                &run.stdout,
            )),
            113 => None,
            _ => panic!("launchctl print failed: {run:?}"),
        }
    }

    /// The pid in an instance's master.pid, when that process lives.
    pub(crate) fn master_pid(&self, name: &str) -> Option<u32> {
        let run = self.sb.sh(&format!(
            "p=$(cat /var/spool/{name}/pid/master.pid 2>/dev/null) && kill -0 $p && echo $p"
        ));
        run.stdout.trim().parse().ok()
    }

    pub(crate) fn parent_of(&self, pid: u32) -> u32 {
        let stat = self.sb.sh(&format!("cat /proc/{pid}/stat")).ok().stdout;
        // The command name is in parentheses and may contain spaces.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub(crate) fn argv_of(&self, pid: u32) -> Vec<String> {
        self.sb
            .sh(&format!("tr '\\0' '\\n' < /proc/{pid}/cmdline"))
            .ok()
            .stdout
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until launchd runs the job with a pid other than `not`, the master's pid
    /// file names it, and SMTP answers at `addr:port`. Returns the new pid.
    pub(crate) fn wait_serving(&self, name: &str, addr: &str, port: u16, not: Option<u32>) -> u32 {
        let label = format!("org.postfix.{name}");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let job = self.print(&label);
            let pid = job.as_ref().and_then(|j| j.pid).map(|p| p as u32);
            if let Some(pid) = pid
                && Some(pid) != not
                && self.master_pid(name) == Some(pid)
                && self.sb.banner(addr, port).starts_with("220 ")
            {
                return pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} did not come back: {job:?}\n{}",
                self.emulator_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(crate) fn list_json(&self) -> serde_json::Value {
        let run = self.ctl("list --json").ok();
        serde_json::from_str(&run.stdout).unwrap()
    }

    pub(crate) fn job_of(&self, name: &str) -> serde_json::Value {
        let rows = self.list_json()["instances"].clone();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {rows}"))["job"]
            .clone()
    }

    /// `instancectl create ARGS` fails (exit 1) saying each of `expected`, and leaves
    /// the configuration and the daemons directory as they were.
    pub(crate) fn create_fails(&self, args: &str, expected: &[&str]) {
        let before = self.sb.config_snapshot();
        let plists = self.sb.sh(&format!("ls {DAEMONS}")).ok().stdout;
        let run = self.ctl(&format!("create {args}"));
        assert_eq!(run.code, 1, "{run:?}");
        for expected in expected {
            assert!(run.stderr.contains(expected), "{expected:?} in {run:?}");
        }
        assert_eq!(before, self.sb.config_snapshot());
        assert_eq!(plists, self.sb.sh(&format!("ls {DAEMONS}")).ok().stdout);
    }

    pub(crate) fn create_out(&self) {
        self.ctl("create postfix-out --group mta --role output")
            .ok();
    }

    pub(crate) fn create_in(&self) {
        self.sb.add_addr("127.0.1.1");
        self.ctl("create postfix-in --group mta --role input --listen 127.0.1.1:25")
            .ok();
    }
}

fn create_makes_jobs_whose_masters_are_launchds_children_and_answer_smtp(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.create_in();
    let launchd = mac.emulator_pid();
    let daemon_dir = mac.sb.sh("postconf -h daemon_directory").ok().stdout;
    let master = format!("{}/master", daemon_dir.trim());
    for (name, addr, port) in [
        ("postfix-out", "127.0.0.1", 10026),
        ("postfix-in", "127.0.1.1", 25),
    ] {
        let label = format!("org.postfix.{name}");
        let path = format!("{DAEMONS}/{label}.plist");
        // The file: root, mode 0644, exactly what `instancectl plist NAME` prints, and
        // a plist a strict parser accepts.
        let meta = mac.sb.sh(&format!("stat -c '%u %g %a' {path}")).ok();
        assert_eq!(meta.stdout.trim(), "0 0 644", "{path}");
        let on_disk = mac.sb.sh(&format!("cat {path}")).ok().stdout;
        assert_eq!(on_disk, mac.ctl(&format!("plist {name}")).ok().stdout);
        let parsed = instancectl::manager::launchd::strict::parse(on_disk.as_bytes());
        assert!(parsed.is_valid(), "{:?}", parsed.errors);
        // The job as launchd sees it: running, loaded from that file, pid = master.
        let job = mac.print(&label).expect("loaded");
        assert!(job.is_running(), "{job:?}");
        assert_eq!(job.path.as_deref(), Some(Path::new(&path)));
        assert_eq!(job.runs, Some(1));
        let pid = job.pid.unwrap() as u32;
        assert_eq!(mac.master_pid(name), Some(pid));
        assert_eq!(
            mac.parent_of(pid),
            launchd,
            "{name}'s master is launchd's child"
        );
        assert_eq!(
            mac.argv_of(pid),
            [master.as_str(), "-c", &format!("/etc/{name}"), "-s"]
        );
        assert!(mac.sb.banner(addr, port).starts_with("220 "), "{name}");
        let view = mac.job_of(name);
        assert_eq!(view["state"], "running");
        assert_eq!(view["pid"], pid);
        assert_eq!(view["runs"], 1);
    }
    // The primary stays with Apple's on-demand job, found by what launchd has loaded:
    // no plist, left alone.
    let primary = mac.job_of("-");
    assert_eq!(primary["on_demand"], true, "{primary}");
    assert_eq!(primary["label"], "com.apple.postfix.master");
    assert_eq!(
        primary["summary"],
        "on demand (com.apple.postfix.master), idle"
    );
    let files = mac.sb.sh(&format!("ls {DAEMONS}")).ok().stdout;
    assert_eq!(
        files,
        "org.postfix.postfix-in.plist\norg.postfix.postfix-out.plist\n"
    );
    let refused = mac.ctl("plist -");
    assert_eq!(refused.code, 2, "{refused:?}");
    // Installed and correct: the lint agrees.
    let lint = mac.ctl("plist --check").ok();
    assert!(
        lint.stdout
            .contains("org.postfix.postfix-in.plist: no problems found"),
        "{lint:?}"
    );
}

fn a_killed_master_is_respawned_by_keepalive_and_the_extra_run_is_reported(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    let first = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    mac.sb.sh(&format!("kill -9 {first}")).ok();
    let second = mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(first));
    assert_ne!(first, second);
    assert_eq!(mac.parent_of(second), mac.emulator_pid());
    let job = mac.job_of("postfix-out");
    assert_eq!(job["runs"], 2, "{job}");
    assert_eq!(job["pid"], second);
    assert_eq!(
        job["last_exit_code"], "killed by signal 9 (Killed)",
        "{job}"
    );
    // The whole phrase in one cell: `-o wide` does not fit the table to 80 columns.
    let table = mac.ctl("list -o wide").ok().stdout;
    assert!(
        table.contains("running, runs 2, last killed by signal 9 (Killed)"),
        "{table}"
    );
}

fn postfix_stop_alone_is_undone_by_keepalive_and_stop_boots_out(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    let first = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    // What an admin used to type: the master stops, and launchd starts it again.
    mac.sb.sh("postfix -c /etc/postfix-out stop").ok();
    let again = mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(first));
    assert_eq!(mac.print("org.postfix.postfix-out").unwrap().runs, Some(2));
    // instancectl stop boots the job out: nothing restarts it.
    let stop = mac.ctl("stop postfix-out").ok();
    assert_eq!(stop.stdout, "postfix-out: stopped\n");
    assert!(mac.print("org.postfix.postfix-out").is_none());
    assert_eq!(mac.master_pid("postfix-out"), None);
    let gone = mac.sb.sh(&format!("kill -0 {again} 2>/dev/null")).code;
    assert_ne!(gone, 0, "the old master still lives");
    // Longer than ThrottleInterval: still down.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(mac.sb.banner("127.0.0.1", 10026), "");
    assert!(mac.print("org.postfix.postfix-out").is_none());
    assert_eq!(mac.job_of("postfix-out")["summary"], "not loaded");
    // start bootstraps it again; restart is kickstart -k (a new master, one more run).
    // A start right after a raw bootout finds the job still stopping on macOS 13 and
    // later (bootout returned at once): it waits, and does not fail with 37 (13 to 15)
    // or 5 (26, which also goes on refusing for seconds once the job is gone).
    mac.ctl("start postfix-out").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    mac.sh("launchctl bootout system/org.postfix.postfix-out && instancectl start postfix-out")
        .ok();
    let started = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    let restart = mac.ctl("restart postfix-out").ok();
    assert!(
        restart.stdout.starts_with("postfix-out: restarted"),
        "{restart:?}"
    );
    let restarted = mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(started));
    let job = mac.print("org.postfix.postfix-out").unwrap();
    assert_eq!(job.runs, Some(2), "{job:?}");
    // reload is SIGHUP through launchd: the same master.
    mac.ctl("reload postfix-out").ok();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(mac.master_pid("postfix-out"), Some(restarted));
}

fn reboot_brings_both_back_and_a_disabled_instance_stays_down(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.create_in();
    let out1 = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    let in1 = mac.wait_serving("postfix-in", "127.0.1.1", 25, None);
    mac.sh("launchctl reboot").ok();
    let out2 = mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(out1));
    let in2 = mac.wait_serving("postfix-in", "127.0.1.1", 25, Some(in1));
    for (name, pid) in [("postfix-out", out2), ("postfix-in", in2)] {
        assert_eq!(mac.parent_of(pid), mac.emulator_pid(), "{name}");
        assert_eq!(mac.job_of(name)["runs"], 1, "{name}: a fresh boot");
    }

    let disabled = mac.ctl("disable postfix-in").ok();
    assert!(
        disabled.stdout.contains("postfix-in: stopped"),
        "{disabled:?}"
    );
    let overrides = mac.sh("launchctl print-disabled system").ok().stdout;
    assert!(
        overrides.contains(&mac.listed("org.postfix.postfix-in", true)),
        "{overrides}"
    );
    mac.sh("launchctl reboot").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(out2));
    // Give a wrongly loaded job every chance to show up.
    std::thread::sleep(Duration::from_secs(3));
    assert!(mac.print("org.postfix.postfix-in").is_none());
    assert_eq!(mac.master_pid("postfix-in"), None);
    assert_eq!(mac.sb.banner("127.0.1.1", 25), "");
    let rows = mac.list_json();
    let row = rows["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "postfix-in")
        .unwrap();
    assert_eq!(row["enabled"], false);
    assert_eq!(row["job"]["disabled_override"], "disabled");
    assert_eq!(row["job"]["summary"], "disabled");
    let start = mac.ctl("start postfix-in");
    assert_eq!(start.code, 2, "{start:?}");
    assert!(start.stderr.contains("is disabled"), "{start:?}");

    // enable is the reverse: the override goes, the job loads and serves.
    mac.ctl("enable postfix-in").ok();
    mac.wait_serving("postfix-in", "127.0.1.1", 25, None);
    let overrides = mac.sh("launchctl print-disabled system").ok().stdout;
    assert!(
        overrides.contains(&mac.listed("org.postfix.postfix-in", false)),
        "{overrides}"
    );
}

/// The bug of issue #9: on macOS 13 and later `print-disabled` is indented, an
/// unindented-only parser found no override, and start failed with bootstrap's 5 and
/// "none of the known causes applies".
fn a_label_left_disabled_is_enabled_before_bootstrap(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.sh("launchctl bootout system/org.postfix.postfix-out && launchctl disable system/org.postfix.postfix-out")
        .ok();
    // On macOS 13 and later bootout returned while the job is still SIGTERMed (a
    // bootstrap now would get 37, or 5 on 26): wait until launchd has let go of it.
    assert!(mac.sb.wait_for(
        &format!("{} ! launchctl print system/org.postfix.postfix-out", env()),
        WAIT
    ));
    let overrides = mac.sh("launchctl print-disabled system").ok().stdout;
    assert!(
        overrides.contains(&mac.listed("org.postfix.postfix-out", true)),
        "{overrides}"
    );
    // A plain bootstrap is refused, as launchd refuses it.
    let refused = mac.sh(&format!(
        "launchctl bootstrap system {DAEMONS}/org.postfix.postfix-out.plist"
    ));
    assert_eq!(refused.code, 5, "{refused:?}");
    assert_eq!(mac.job_of("postfix-out")["summary"], "disabled");
    mac.ctl("start postfix-out").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    assert_eq!(
        mac.override_of("org.postfix.postfix-out"),
        Some(instancectl::manager::Override::Enabled)
    );
}

fn a_group_writable_plist_is_reported_with_the_exact_cause(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.ctl("stop postfix-out").ok();
    let path = format!("{DAEMONS}/org.postfix.postfix-out.plist");
    mac.sb.sh(&format!("chmod g+w {path}")).ok();
    let start = mac.ctl("start postfix-out");
    assert_eq!(start.code, 1, "{start:?}");
    for expected in [
        "Bootstrap failed: 5: Input/output error",
        "mode 0664 lets group write it",
        &format!("chmod 644 {path}"),
    ] {
        assert!(start.stderr.contains(expected), "{expected:?} in {start:?}");
    }
    assert!(mac.print("org.postfix.postfix-out").is_none());
    let lint = mac.ctl("plist --check");
    assert_eq!(lint.code, 1, "{lint:?}");
    assert!(
        lint.stdout
            .contains(&format!("{path}: error[ownership]: mode 0664")),
        "{lint:?}"
    );
    mac.sb.sh(&format!("chmod 644 {path}")).ok();
    mac.ctl("start postfix-out").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
}

fn the_seeds_plist_installed_by_hand_is_detected(release: &'static str) {
    let mac = Mac::new(release);
    let seed = include_str!("../data/seed-002-launchdaemon.plist");
    let path = format!("{DAEMONS}/org.postfix.in.plist");
    mac.sb
        .sh_input(&format!("cat > {path} && chmod 644 {path}"), seed)
        .ok();
    // launchd refuses it: it is not a valid plist.
    let bootstrap = mac.sh(&format!("launchctl bootstrap system {path}"));
    assert_eq!(bootstrap.code, 5, "{bootstrap:?}");

    let lint = mac.ctl("plist --check");
    assert_eq!(lint.code, 1, "{lint:?}");
    for kind in [
        "syntax",
        "program-mismatch",
        "unknown-instance",
        "daemonizes",
    ] {
        assert!(
            lint.stdout.contains(&format!("error[{kind}]")),
            "{kind} in {lint:?}"
        );
    }

    let before = mac.sb.config_snapshot();
    mac.sb.add_addr("127.0.1.1");
    let create = mac.ctl("create postfix-in --group mta --role input --listen 127.0.1.1:25");
    assert_eq!(create.code, 2, "{create:?}");
    for expected in [
        path.as_str(),
        "already runs postfix-in",
        "postmulti -p start runs `master -w`",
        "launchctl bootout system/org.postfix.in",
    ] {
        assert!(
            create.stderr.contains(expected),
            "{expected:?} in {create:?}"
        );
    }
    assert_eq!(before, mac.sb.config_snapshot());
    assert!(
        !Path::new(
            &mac.sb
                .path_in_upper(&format!("{DAEMONS}/org.postfix.postfix-in.plist"))
        )
        .exists()
    );

    // Once it is gone, the same create works.
    mac.sb.sh(&format!("rm {path}")).ok();
    mac.ctl("create postfix-in --group mta --role input --listen 127.0.1.1:25")
        .ok();
    mac.wait_serving("postfix-in", "127.0.1.1", 25, None);
}

fn a_failed_start_under_launchd_is_rolled_back(release: &'static str) {
    let mac = Mac::new(release);
    // Something else holds the port: `postfix check` cannot know, the master exits at
    // once (and launchd would start it again and again).
    mac.sb.sh(&crate::common::occupy_port_script(2599)).ok();
    assert!(mac.sb.wait_for("exec 3<>/dev/tcp/127.0.0.1/2599", WAIT));
    mac.create_fails(
        "postfix-bad --listen 127.0.0.1:2599",
        &[
            "undone",
            "postfix-bad's master ended with exit status 1 right after launchd started it",
            "127.0.0.1:2599 is already in use by another program",
            "booted the job out",
        ],
    );
    assert!(mac.print("org.postfix.postfix-bad").is_none());
    let files = mac.sb.sh(&format!("ls {DAEMONS}")).ok().stdout;
    assert_eq!(files, "");
}

fn dry_run_shows_the_launchd_steps_and_changes_nothing(release: &'static str) {
    let mac = Mac::new(release);
    let before = mac.sb.config_snapshot();
    let run = mac
        .ctl("create postfix-out --group mta --role output --dry-run")
        .ok();
    for expected in [
        format!("would write: {DAEMONS}/org.postfix.postfix-out.plist (mode 0644, owner 0:0"),
        format!("would run: launchctl bootstrap system {DAEMONS}/org.postfix.postfix-out.plist"),
        "would run: /usr/sbin/postfix -c /etc/postfix-out check".to_string(),
    ] {
        assert!(run.stdout.contains(&expected), "{expected:?} in {run:?}");
    }
    assert_eq!(before, mac.sb.config_snapshot());
    assert_eq!(mac.sb.sh(&format!("ls {DAEMONS}")).ok().stdout, "");
}

fn destroy_boots_out_and_removes_the_plist(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    mac.ctl("destroy postfix-out").ok();
    assert!(mac.print("org.postfix.postfix-out").is_none());
    assert_eq!(mac.sb.sh(&format!("ls {DAEMONS}")).ok().stdout, "");
    assert_eq!(mac.master_pid("postfix-out"), None);
    // destroy left launchd's "disabled" override behind; a later instance of the same
    // name that is created without starting still loads at the next boot.
    assert_eq!(
        mac.override_of("org.postfix.postfix-out"),
        Some(instancectl::manager::Override::Disabled)
    );
    mac.ctl("create postfix-out --group mta --role output --no-start")
        .ok();
    assert!(mac.print("org.postfix.postfix-out").is_none());
    mac.sh("launchctl reboot").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
}

fn reconcile_repairs_launchd_drift(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    let path = format!("{DAEMONS}/org.postfix.postfix-out.plist");
    // Behind instancectl's back: the job is booted out, its plist made
    // group-writable, and launchd told to keep it down at boot.
    mac.sh("launchctl bootout system/org.postfix.postfix-out")
        .ok();
    mac.sb.sh(&format!("chmod g+w {path}")).ok();
    mac.sh("launchctl disable system/org.postfix.postfix-out")
        .ok();

    let plan = mac.ctl("reconcile --dry-run").ok();
    assert!(
        plan.stdout.contains("postfix-out: stale pid file"),
        "{plan:?}"
    );
    for expected in [
        "is not running) -> start it",
        "mode 0664 lets group write it",
        "launchd has org.postfix.postfix-out disabled",
        "would run: launchctl enable system/org.postfix.postfix-out",
    ] {
        assert!(plan.stdout.contains(expected), "{expected:?} in {plan:?}");
    }
    assert!(
        mac.print("org.postfix.postfix-out").is_none(),
        "dry run changed launchd"
    );

    mac.ctl("reconcile").ok();
    let mode = mac.sb.sh(&format!("stat -c %a {path}")).ok().stdout;
    assert_eq!(mode.trim(), "644");
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    assert_eq!(
        mac.override_of("org.postfix.postfix-out"),
        Some(instancectl::manager::Override::Enabled)
    );
    assert!(mac.ctl("reconcile").ok().stdout.contains("no drift"));

    // Drift agrees with the lint and with launchd: the group does not matter
    // (root:admin 0644, what `sudo brew services` writes, loads; admin is gid 80 on
    // macOS), a non-root owner does.
    mac.sb.sh(&format!("chgrp 80 {path}")).ok();
    let plan = mac.ctl("reconcile --dry-run").ok();
    assert!(plan.stdout.contains("no drift"), "{plan:?}");
    mac.sb.sh(&format!("chown 501 {path}")).ok();
    let plan = mac.ctl("reconcile --dry-run").ok();
    assert!(
        plan.stdout.contains("owned by uid 501, not root"),
        "{plan:?}"
    );
}

fn supervise_with_launchd_repairs_a_booted_out_job(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    let job = mac
        .ctl("plist --supervisor --program /usr/local/sbin/instancectl")
        .ok();
    assert!(job.stdout.contains("<string>supervise</string>"), "{job:?}");
    mac.sh(&format!(
        "setsid instancectl supervise --interval 1s > {}/watch.log 2>&1 < /dev/null &",
        STATE
    ))
    .ok();
    let old = mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    mac.sh("launchctl bootout system/org.postfix.postfix-out")
        .ok();
    let new = mac.wait_serving("postfix-out", "127.0.0.1", 10026, Some(old));
    assert_ne!(old, new);
    // supervise logs the repair once its start has seen the master serve, which may
    // be a poll after this test saw it.
    let repaired = mac
        .sb
        .wait_for(&format!("grep -q 'drift repaired' {STATE}/watch.log"), WAIT);
    let log = mac.sb.sh(&format!("cat {STATE}/watch.log")).stdout;
    assert!(repaired, "{log}");
    mac.sb.sh("pkill -TERM -f '[i]nstancectl supervise'").ok();
}

/// `status` asks launchd for the overrides once, however many instances there are, and
/// shows the primary as Apple's on-demand job, healthy while idle.
fn status_reads_the_overrides_once_and_shows_apples_job(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.create_in();
    let wrap = "/var/db/launchctl-log";
    mac.sh(&format!(
        "mkdir -p {wrap} && real=$(command -v launchctl) && \
         printf '#!/bin/sh\\necho \"$*\" >> {wrap}/log\\nexec %s \"$@\"\\n' \"$real\" \
         > {wrap}/launchctl && chmod 755 {wrap}/launchctl"
    ))
    .ok();
    mac.sh("launchctl enable system/org.postfix.postfix-out")
        .ok();
    let run = mac.sh(&format!("PATH={wrap}:$PATH instancectl status --json"));
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {run:?}"));
    let log = mac.sb.sh(&format!("cat {wrap}/log")).ok().stdout;
    assert_eq!(log.matches("print-disabled").count(), 1, "{log}");
    let instances = report["instances"].as_array().unwrap();
    let primary = instances.iter().find(|i| i["name"] == "-").unwrap();
    assert_eq!(
        primary["manager"]["label"], "com.apple.postfix.master",
        "{primary:#}"
    );
    assert_eq!(primary["manager"]["on_demand"], true, "{primary:#}");
    let verdict = primary["verdict"].as_str().unwrap();
    assert!(["on-demand", "healthy"].contains(&verdict), "{primary:#}");
    // Read from the one print-disabled: an explicit override, and none.
    let out = instances
        .iter()
        .find(|i| i["name"] == "postfix-out")
        .unwrap();
    assert_eq!(out["manager"]["disabled_override"], "enabled", "{out:#}");
    let input = instances
        .iter()
        .find(|i| i["name"] == "postfix-in")
        .unwrap();
    assert_eq!(
        input["manager"]["disabled_override"],
        serde_json::Value::Null
    );
    for i in [out, input] {
        assert_eq!(i["verdict"], "healthy", "{i:#}");
    }
}

/// Reconcile's repair of "its master runs outside launchd" neither clears a disabled
/// override nor starts an instance that was stopped or disabled.
fn a_master_outside_launchd_of_a_stopped_or_disabled_instance_stays_down(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    let label = "org.postfix.postfix-out";
    let outside_start = |mac: &Mac| {
        mac.sb.sh("postfix -c /etc/postfix-out start").ok();
        assert!(mac.master_pid("postfix-out").is_some());
    };

    mac.ctl("disable postfix-out").ok();
    outside_start(&mac);
    mac.ctl("reconcile").ok();
    assert_eq!(
        mac.override_of(label),
        Some(instancectl::manager::Override::Disabled),
        "reconcile cleared the disabled override"
    );
    assert!(mac.print(label).is_none(), "a disabled job was loaded");
    assert_eq!(mac.master_pid("postfix-out"), None);

    mac.ctl("enable postfix-out").ok();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
    mac.ctl("stop postfix-out").ok();
    outside_start(&mac);
    mac.ctl("reconcile").ok();
    assert!(mac.print(label).is_none(), "a stopped instance was started");
    assert_eq!(mac.master_pid("postfix-out"), None);
}

/// When `create` cannot clear the disabled override an earlier instance of the same
/// name left behind, the plist it wrote is removed and the message says so.
fn an_enable_that_fails_during_create_leaves_no_plist(release: &'static str) {
    let mac = Mac::new(release);
    mac.create_out();
    mac.ctl("destroy postfix-out").ok();
    // launchd cannot write its overrides file: `launchctl enable` fails.
    mac.sb.sh(&format!("mkdir {STATE}/disabled.plist.tmp")).ok();
    mac.create_fails(
        "postfix-out --group mta --role output",
        &[
            "org.postfix.postfix-out could not be enabled in launchd",
            "org.postfix.postfix-out.plist was removed again",
            "Could not enable service: 5: Input/output error",
        ],
    );
    mac.sb.sh(&format!("rmdir {STATE}/disabled.plist.tmp")).ok();
    mac.create_out();
    mac.wait_serving("postfix-out", "127.0.0.1", 10026, None);
}

/// Before macOS 10.12 Apple's job was org.postfix.master: found by what is loaded.
#[test]
fn apples_job_has_its_old_name_on_old_releases() {
    let mac = Mac::new("10.11");
    let primary = mac.job_of("-");
    assert_eq!(primary["label"], "org.postfix.master", "{primary}");
    assert_eq!(primary["on_demand"], true, "{primary}");
}

/// Each scenario, once per generation (macos_admin.rs runs its sessions with it too).
macro_rules! in_each_generation {
    ($($name:ident),* $(,)?) => {
        mod macos_12 {
            $( #[test] fn $name() { super::$name("12") } )*
        }
        mod macos_13 {
            $( #[test] fn $name() { super::$name("13") } )*
        }
        mod macos_26 {
            $( #[test] fn $name() { super::$name("26") } )*
        }
    };
}
pub(crate) use in_each_generation;

in_each_generation!(
    create_makes_jobs_whose_masters_are_launchds_children_and_answer_smtp,
    a_killed_master_is_respawned_by_keepalive_and_the_extra_run_is_reported,
    postfix_stop_alone_is_undone_by_keepalive_and_stop_boots_out,
    reboot_brings_both_back_and_a_disabled_instance_stays_down,
    a_label_left_disabled_is_enabled_before_bootstrap,
    a_group_writable_plist_is_reported_with_the_exact_cause,
    the_seeds_plist_installed_by_hand_is_detected,
    a_failed_start_under_launchd_is_rolled_back,
    dry_run_shows_the_launchd_steps_and_changes_nothing,
    destroy_boots_out_and_removes_the_plist,
    reconcile_repairs_launchd_drift,
    supervise_with_launchd_repairs_a_booted_out_job,
    status_reads_the_overrides_once_and_shows_apples_job,
    a_master_outside_launchd_of_a_stopped_or_disabled_instance_stays_down,
    an_enable_that_fails_during_create_leaves_no_plist,
);

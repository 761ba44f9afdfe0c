//! End-to-end: sessions a macOS Postfix administrator has with instancectl, under the
//! launchd emulator (tests/e2e/launchd.rs's `Mac`), each in both generations (macOS 12
//! and older, 13 and later). Each test is one session: what the admin does, in order,
//! and what they must be told: a true message, the right exit status, nothing left
//! half-done, and a status that says what launchd is doing.

use crate::launchd::Mac;
use instancectl::manager::launchd::launchctl::{JobInfo, parse_print};

const OUT: &str = "org.postfix.postfix-out";

/// How long the emulator holds each spawn in `xpcproxy` for the slow-Mac session:
/// long enough that the command that follows surely meets it on a loaded machine.
const HOLD_MS: u64 = 5000;

/// `launchctl print system/LABEL` as written to FILE by a script, parsed.
fn printed(mac: &Mac, file: &str) -> JobInfo {
    parse_print(&mac.sb.sh(&format!("cat {file}")).ok().stdout)
}

/// The pid in "NAME: VERB (master pid PID)".
fn reported_pid(line: &str) -> i32 {
    let tail = line.rsplit("master pid ").next().unwrap_or_default();
    tail.trim_end_matches([')', '\n'])
        .parse()
        .unwrap_or_else(|_| panic!("no master pid in {line:?}"))
}

/// A slow Mac: launchd is still spawning the job (`state = xpcproxy`, the run already
/// counted, no master yet) when the admin's start, restart or reload comes. Each must
/// wait for that run and take it, not fail, and not start a second master.
fn a_command_during_xpcproxy_waits_for_that_run(release: &'static str) {
    let mac = Mac::with_emulator_args(release, &format!("--xpcproxy-hold {HOLD_MS}"));
    mac.create_out();
    let mut runs = mac.print(OUT).unwrap().runs.unwrap();
    assert_eq!(runs, 1);
    for command in ["restart", "start", "reload"] {
        // launchctl kickstart -k returns once the new process is spawned, so the job is
        // in xpcproxy when instancectl begins.
        let run = mac.sh(&format!(
            "launchctl kickstart -k system/{OUT} >/dev/null && \
             launchctl print system/{OUT} > /tmp/before && instancectl {command} postfix-out"
        ));
        let before = printed(&mac, "/tmp/before");
        assert!(
            before.is_spawning(),
            "{command}: not in xpcproxy: {before:?}"
        );
        runs += 1;
        assert_eq!(before.runs, Some(runs));
        let spawned = before.pid.unwrap();
        assert_eq!(run.code, 0, "{command} during xpcproxy: {run:?}");
        if command != "reload" {
            assert_eq!(reported_pid(&run.stdout), spawned, "{run:?}");
        }
        let after = mac.print(OUT).unwrap();
        assert!(after.is_running(), "{after:?}");
        assert_eq!(after.runs, Some(runs), "{command} started another master");
        assert_eq!(after.pid, Some(spawned));
        assert_eq!(mac.master_pid("postfix-out"), Some(spawned as u32));
        assert!(mac.sb.banner("127.0.0.1", 10026).starts_with("220 "));
    }
}

/// Each scenario, once per generation.
macro_rules! in_each_generation {
    ($($name:ident),* $(,)?) => {
        mod macos_12 {
            $( #[test] fn $name() { super::$name("12") } )*
        }
        mod macos_13 {
            $( #[test] fn $name() { super::$name("13") } )*
        }
    };
}

in_each_generation!(a_command_during_xpcproxy_waits_for_that_run,);

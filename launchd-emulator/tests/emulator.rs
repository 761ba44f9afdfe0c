//! End-to-end tests: a real emulator process in a temporary state directory, driven through
//! the real `launchctl` binary, with /bin/sleep and small shell scripts as jobs.
//!
//! Every test has its own directories and daemon, so they run in parallel; dropping the
//! harness stops the daemon, which leaves no process behind.

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const DAEMON: &str = env!("CARGO_BIN_EXE_launchd-emulator");
const LAUNCHCTL: &str = env!("CARGO_BIN_EXE_launchctl");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

struct Emu {
    child: Option<Child>,
    state: TempDir,
    daemons: TempDir,
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

impl Emu {
    /// An emulator answering as macOS 12 and older (the behaviour most tests here pin
    /// down is the same in both generations; `start_macos` picks another).
    fn start() -> Self {
        Self::start_with(&["--macos", "12"])
    }

    fn start_macos(release: &str) -> Self {
        Self::start_with(&["--macos", release, "--apple-postfix"])
    }

    fn start_with(extra: &[&str]) -> Self {
        Self::start_env(extra, &[])
    }

    fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut emu = Emu {
            child: None,
            state: TempDir::new().unwrap(),
            daemons: TempDir::new().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        emu.boot();
        emu
    }

    /// Starts the daemon process (again, after `stop`), as a machine boots.
    fn boot(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.path().join("emulator.log"))
            .unwrap();
        let child = Command::new(DAEMON)
            .arg("--state-dir")
            .arg(self.state.path())
            .arg("--daemons-dir")
            .arg(self.daemons.path())
            .arg("--die-with-parent")
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let sock = self.state.path().join("launchd.sock");
        wait_until(Duration::from_secs(10), || sock.exists());
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM to the daemon and wait for it, as the harness does on drop.
    fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ctl(&self, args: &[&str]) -> Out {
        self.ctl_env(args, &[])
    }

    fn ctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let out = Command::new(LAUNCHCTL)
            .args(args)
            .env("LAUNCHD_EMULATOR_DIR", self.state.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert_eq!(
            out.code,
            0,
            "launchctl {args:?}: stdout {:?} stderr {:?}\nlog:\n{}",
            out.stdout,
            out.stderr,
            self.log()
        );
        out.stdout
    }

    fn log(&self) -> String {
        fs::read_to_string(self.state.path().join("emulator.log")).unwrap_or_default()
    }

    /// Writes `daemons/LABEL.plist` (mode 0644) with the given dictionary body.
    fn plist(&self, label: &str, body: &str) -> PathBuf {
        let path = self.daemons.path().join(format!("{label}.plist"));
        write_plist(&path, label, body);
        path
    }

    fn plist_path(&self, label: &str) -> String {
        self.daemons
            .path()
            .join(format!("{label}.plist"))
            .to_string_lossy()
            .into_owned()
    }

    /// A top-level property of `launchctl print system/LABEL` (one-tab lines only).
    fn field(&self, label: &str, key: &str) -> Option<String> {
        let out = self.ctl(&["print", &format!("system/{label}")]);
        if out.code != 0 {
            return None;
        }
        top_level(&out.stdout, key)
    }

    fn job_pid(&self, label: &str) -> Option<i32> {
        self.field(label, "pid").map(|p| p.parse().unwrap())
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_plist(path: &Path, label: &str, body: &str) {
    let text = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{label}</string>
{body}
</dict>
</plist>
"#
    );
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

fn args_xml(args: &[&str]) -> String {
    let items: String = args
        .iter()
        .map(|a| format!("<string>{a}</string>"))
        .collect();
    format!("<key>ProgramArguments</key><array>{items}</array>")
}

fn top_level(print: &str, key: &str) -> Option<String> {
    let prefix = format!("\t{key} = ");
    print
        .lines()
        .find(|l| l.starts_with(&prefix) && !l.starts_with("\t\t"))
        .map(|l| l[prefix.len()..].to_string())
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "condition not met in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie is as good as dead here: its parent just has not collected it yet.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// (ppid, pgid, sid) of a process.
fn ids(pid: i32) -> (i32, i32, i32) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<i32> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|s| s.parse().unwrap())
        .collect();
    (f[0], f[1], f[2])
}

const SLEEPER: &str = "<key>ProgramArguments</key><array><string>/bin/sleep</string><string>1000</string></array>\n<key>RunAtLoad</key><true/>";
const NOT_LOADED: &str = "Could not find service \"org.test.a\" in domain for system\n";

#[test]
fn bootstrap_print_kickstart_bootout() {
    let emu = Emu::start();
    let path = emu.plist("org.test.a", SLEEPER);
    let path = path.to_str().unwrap();

    let out = emu.ctl(&["bootstrap", "system", path]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );

    // Spawned through xpcproxy first (a moment), then running.
    wait_until(Duration::from_secs(1), || {
        emu.field("org.test.a", "state").as_deref() == Some("running")
    });
    let print = emu.ok(&["print", "system/org.test.a"]);
    assert!(print.starts_with("system/org.test.a = {\n"), "{print}");
    assert!(print.ends_with("}\n"), "{print}");
    for line in [
        "\tactive count = 1\n",
        &format!("\tpath = {path}\n"),
        "\tstate = running\n",
        "\tprogram = /bin/sleep\n",
        "\targuments = {\n\t\t/bin/sleep\n\t\t1000\n\t}\n",
        "\tdomain = system\n",
        "\truns = 1\n",
        "\tlast exit code = (never exited)\n",
        "\tspawn type = daemon (3)\n",
        "\tproperties = runatload | inferred program\n",
        "\texit timeout = 5\n",
        "\t\tstate = active\n",
    ] {
        assert!(print.contains(line), "missing {line:?} in\n{print}");
    }
    // As macOS 12 (and 11, and OS X 10.10) printed it: no `type` line.
    assert!(!print.contains("\n\ttype = "), "{print}");
    let pid = top_level(&print, "pid").unwrap().parse::<i32>().unwrap();
    // The job is the emulator's child and leads its own session and process group.
    assert_eq!(ids(pid), (emu.pid(), pid, pid));

    let out = emu.ctl(&["bootstrap", "system", path]);
    assert_eq!(out.code, 5);
    assert_eq!(out.stderr, "Bootstrap failed: 5: Input/output error\n");

    assert_eq!(
        emu.ok(&["kickstart", "-p", "system/org.test.a"]),
        format!("{pid}\n")
    );
    let new_pid: i32 = emu
        .ok(&["kickstart", "-k", "-p", "system/org.test.a"])
        .trim()
        .parse()
        .unwrap();
    assert_ne!(new_pid, pid);
    assert!(!alive(pid));
    assert_eq!(emu.job_pid("org.test.a"), Some(new_pid));
    assert_eq!(emu.field("org.test.a", "runs").as_deref(), Some("2"));
    assert_eq!(
        emu.field("org.test.a", "last terminating signal")
            .as_deref(),
        Some("Terminated: 15")
    );
    assert_eq!(emu.field("org.test.a", "last exit code"), None);

    emu.ok(&["kill", "SIGTERM", "system/org.test.a"]);
    wait_until(Duration::from_secs(5), || !alive(new_pid));
    wait_until(Duration::from_secs(5), || {
        emu.field("org.test.a", "state").as_deref() == Some("not running")
    });
    assert_eq!(emu.field("org.test.a", "pid"), None);
    // As macOS 12 and older print it: no `job state` line.
    assert_eq!(emu.field("org.test.a", "job state"), None);
    let out = emu.ctl(&["kill", "TERM", "system/org.test.a"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (3, "No process to signal.\n")
    );

    let started: i32 = emu
        .ok(&["kickstart", "-p", "system/org.test.a"])
        .trim()
        .parse()
        .unwrap();
    assert!(alive(started));
    let out = emu.ctl(&["bootout", "system/org.test.a"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert!(!alive(started));

    let out = emu.ctl(&["print", "system/org.test.a"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (113, "", NOT_LOADED)
    );
    let out = emu.ctl(&["bootout", "system/org.test.a"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (3, "Boot-out failed: 3: No such process\n")
    );
    let out = emu.ctl(&["kickstart", "-k", "system/org.test.a"]);
    assert_eq!((out.code, out.stderr.as_str()), (113, NOT_LOADED));
    let out = emu.ctl(&["kill", "9", "system/org.test.a"]);
    assert_eq!((out.code, out.stderr.as_str()), (113, NOT_LOADED));

    // bootout by path reads the label from the plist.
    emu.ok(&["bootstrap", "system", path]);
    emu.ok(&["bootout", "system", path]);
    assert_eq!(emu.ctl(&["print", "system/org.test.a"]).code, 113);
}

#[test]
fn stop_waits_exit_timeout_then_sigkills_and_second_bootout_is_in_progress() {
    let emu = Emu::start();
    // Ignores SIGTERM, and so do its children (ignored signals survive exec).
    let path = emu.plist(
        "org.test.a",
        "<key>ProgramArguments</key><array><string>/bin/sh</string><string>-c</string>\
         <string>trap '' TERM; /bin/sleep 1000 &amp; wait; wait</string></array>\
         <key>RunAtLoad</key><true/><key>KeepAlive</key><true/><key>ExitTimeOut</key><integer>2</integer>",
    );
    let path = path.to_str().unwrap().to_string();
    emu.ok(&["bootstrap", "system", &path]);
    let pid = emu.job_pid("org.test.a").unwrap();
    assert_eq!(
        emu.field("org.test.a", "exit timeout").as_deref(),
        Some("2")
    );
    wait_until(Duration::from_secs(5), || {
        ids_children(pid).iter().any(|c| alive(*c))
    });
    let grandchild = ids_children(pid)[0];

    let started = Instant::now();
    let first = {
        let state = emu.state.path().to_path_buf();
        std::thread::spawn(move || {
            Command::new(LAUNCHCTL)
                .args(["bootout", "system/org.test.a"])
                .env("LAUNCHD_EMULATOR_DIR", state)
                .output()
                .unwrap()
        })
    };
    wait_until(Duration::from_secs(5), || {
        emu.field("org.test.a", "state").as_deref() == Some("SIGTERMed")
    });
    let out = emu.ctl(&["bootout", "system/org.test.a"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (36, "Boot-out failed: 36: Operation now in progress\n")
    );
    // Still loaded while stopping: bootstrap is refused, and KeepAlive does not respawn it.
    assert_eq!(emu.ctl(&["bootstrap", "system", &path]).code, 5);
    assert!(alive(pid));

    let out = first.join().unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{:?}", out);
    assert!(
        took >= Duration::from_millis(1900),
        "bootout returned after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "bootout took {took:?}");
    assert!(!alive(pid));
    assert!(!alive(grandchild), "the process group was not killed");
    assert_eq!(emu.ctl(&["print", "system/org.test.a"]).code, 113);
    emu.ok(&["bootstrap", "system", &path]);
}

fn ids_children(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn keepalive_respawn_after_kill_9_honours_throttle_interval() {
    let emu = Emu::start();
    let path = emu.plist(
        "org.test.a",
        &format!(
            "{}<key>KeepAlive</key><true/><key>ThrottleInterval</key><integer>3</integer>",
            args_xml(&["/bin/sleep", "1000"])
        ),
    );
    let t0 = Instant::now();
    emu.ok(&["bootstrap", "system", path.to_str().unwrap()]);
    // KeepAlive true starts the job at load even without RunAtLoad.
    let first = emu.job_pid("org.test.a").unwrap();
    assert_eq!(
        emu.field("org.test.a", "properties").as_deref(),
        Some("keepalive | inferred program")
    );
    assert_eq!(
        emu.field("org.test.a", "minimum runtime").as_deref(),
        Some("3")
    );

    signal::kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    wait_until(Duration::from_secs(2), || {
        emu.field("org.test.a", "pid").is_none()
    });
    assert_eq!(
        emu.field("org.test.a", "state").as_deref(),
        Some("spawn scheduled")
    );
    assert_eq!(
        emu.field("org.test.a", "last terminating signal")
            .as_deref(),
        Some("Killed: 9")
    );
    assert_eq!(emu.field("org.test.a", "runs").as_deref(), Some("1"));

    wait_until(Duration::from_secs(6), || {
        emu.job_pid("org.test.a").is_some()
    });
    assert!(
        t0.elapsed() >= Duration::from_secs(3),
        "respawned after {:?}",
        t0.elapsed()
    );
    let second = emu.job_pid("org.test.a").unwrap();
    assert_ne!(first, second);
    assert_eq!(emu.field("org.test.a", "runs").as_deref(), Some("2"));
    // Spawned through xpcproxy first, as real launchd does, then running.
    wait_until(Duration::from_secs(1), || {
        emu.field("org.test.a", "state").as_deref() == Some("running")
    });

    // launchctl kill takes names and numbers, and KeepAlive applies to it too.
    emu.ok(&["kill", "9", "system/org.test.a"]);
    wait_until(Duration::from_secs(8), || {
        emu.job_pid("org.test.a").is_some_and(|p| p != second)
    });
    assert_eq!(emu.field("org.test.a", "runs").as_deref(), Some("3"));
}

#[test]
fn crash_loop_is_throttled_and_keepalive_conditions_apply() {
    let emu = Emu::start();
    let looping = emu.plist(
        "org.test.loop",
        &format!(
            "{}<key>KeepAlive</key><true/><key>ThrottleInterval</key><integer>1</integer>",
            args_xml(&["/bin/sh", "-c", "exit 3"])
        ),
    );
    let once = emu.plist(
        "org.test.once",
        &format!(
            "{}<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>",
            args_xml(&["/bin/sh", "-c", "exit 0"])
        ),
    );
    let config = emu.plist(
        "org.test.config",
        &format!(
            "{}<key>RunAtLoad</key><true/>",
            args_xml(&["/nonexistent/program"])
        ),
    );
    let t0 = Instant::now();
    for p in [&looping, &once, &config] {
        emu.ok(&["bootstrap", "system", p.to_str().unwrap()]);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let runs: u64 = emu.field("org.test.loop", "runs").unwrap().parse().unwrap();
    let max = t0.elapsed().as_secs() + 1;
    assert!(
        (2..=max).contains(&runs),
        "runs = {runs} after {:?}",
        t0.elapsed()
    );
    assert_eq!(
        emu.field("org.test.loop", "last exit code").as_deref(),
        Some("3")
    );

    // SuccessfulExit false: a clean exit is not restarted (and the key implies RunAtLoad).
    assert_eq!(emu.field("org.test.once", "runs").as_deref(), Some("1"));
    assert_eq!(
        emu.field("org.test.once", "state").as_deref(),
        Some("not running")
    );
    assert_eq!(
        emu.field("org.test.once", "last exit code").as_deref(),
        Some("0")
    );

    // A program that cannot be run is reported as EX_CONFIG.
    assert_eq!(
        emu.field("org.test.config", "last exit code").as_deref(),
        Some("78: EX_CONFIG")
    );
    assert_eq!(
        emu.field("org.test.config", "properties").as_deref(),
        Some("runatload | inferred program")
    );
}

#[test]
fn program_argv0_environment_directories_and_log_files() {
    let emu = Emu::start();
    let work = TempDir::new().unwrap();
    let out_path = work.path().join("logs/deeper/out.log");
    let err_path = work.path().join("logs/err.log");
    let path = emu.plist(
        "org.test.env",
        &format!(
            "<key>Program</key><string>/bin/sh</string>\
             {}<key>RunAtLoad</key><true/>\
             <key>EnvironmentVariables</key><dict><key>FOO</key><string>bar</string><key>N</key><integer>1</integer></dict>\
             <key>WorkingDirectory</key><string>{}</string>\
             <key>StandardOutPath</key><string>{}</string>\
             <key>StandardErrorPath</key><string>{}</string>",
            args_xml(&[
                "fake-argv0",
                "-c",
                "echo \"$0 $FOO ${N-unset} $XPC_SERVICE_NAME $PATH\"; pwd; echo oops >&amp;2; \
                 launchctl print system/org.test.env | grep -c 'state = running'"
            ]),
            work.path().display(),
            out_path.display(),
            err_path.display()
        ),
    );
    emu.ok(&["bootstrap", "system", path.to_str().unwrap()]);
    wait_until(Duration::from_secs(5), || {
        emu.field("org.test.env", "last exit code").as_deref() == Some("0")
    });
    // launchd's PATH, then (as /bin/launchctl is on a Mac) where this launchctl is,
    // which reaches this daemon: the job sees itself running.
    let expected = format!(
        "fake-argv0 bar unset org.test.env /usr/bin:/bin:/usr/sbin:/sbin:{}\n{}\n1\n",
        Path::new(LAUNCHCTL).parent().unwrap().display(),
        work.path().display()
    );
    assert_eq!(fs::read_to_string(&out_path).unwrap(), expected);
    assert_eq!(fs::read_to_string(&err_path).unwrap(), "oops\n");
    let print = emu.ok(&["print", "system/org.test.env"]);
    assert!(
        print.contains("\tprogram = /bin/sh\n\targuments = {\n\t\tfake-argv0\n"),
        "{print}"
    );
    assert!(print.contains(&format!("\tstdout path = {}\n", out_path.display())));

    // Log files are appended to, never truncated.
    emu.ok(&["kickstart", "system/org.test.env"]);
    wait_until(Duration::from_secs(5), || {
        emu.field("org.test.env", "runs").as_deref() == Some("2")
            && emu.field("org.test.env", "state").as_deref() == Some("not running")
    });
    assert_eq!(fs::read_to_string(&out_path).unwrap(), expected.repeat(2));
}

#[test]
fn process_group_is_killed_when_the_job_exits_unless_abandoned() {
    let emu = Emu::start();
    let script = "/bin/sleep 1000 &amp; echo $! > pidfile; exit 0";
    let kept = TempDir::new().unwrap();
    let killed = TempDir::new().unwrap();
    for (label, dir, abandon) in [
        ("org.test.kill", &killed, false),
        ("org.test.keep", &kept, true),
    ] {
        let p = emu.plist(
            label,
            &format!(
                "{}<key>RunAtLoad</key><true/><key>WorkingDirectory</key><string>{}</string>\
                 <key>AbandonProcessGroup</key><{abandon}/>",
                args_xml(&["/bin/sh", "-c", script]),
                dir.path().display()
            ),
        );
        emu.ok(&["bootstrap", "system", p.to_str().unwrap()]);
    }
    let child_of = |dir: &TempDir| -> i32 {
        let f = dir.path().join("pidfile");
        wait_until(Duration::from_secs(5), || {
            fs::read_to_string(&f).is_ok_and(|s| s.ends_with('\n'))
        });
        fs::read_to_string(&f).unwrap().trim().parse().unwrap()
    };
    let (left, right) = (child_of(&killed), child_of(&kept));
    wait_until(Duration::from_secs(5), || !alive(left));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        alive(right),
        "AbandonProcessGroup: the group must be left alone"
    );
    assert_eq!(
        emu.field("org.test.keep", "properties").as_deref(),
        Some("runatload | inferred program | abandon process group")
    );
}

#[test]
fn disabled_override_survives_reboot_restart_and_plist_recreation() {
    let mut emu = Emu::start();
    let a = emu.plist("org.test.a", SLEEPER);
    let b = emu.plist("org.test.b", SLEEPER);
    emu.ok(&["bootstrap", "system", a.to_str().unwrap()]);
    emu.ok(&["bootstrap", "system", b.to_str().unwrap()]);
    let a_pid = emu.job_pid("org.test.a").unwrap();
    let b_pid = emu.job_pid("org.test.b").unwrap();

    emu.ok(&["disable", "system/org.test.a"]);
    emu.ok(&["enable", "system/org.test.b"]);
    // Disabling does not stop a loaded job.
    assert_eq!(emu.job_pid("org.test.a"), Some(a_pid));
    let listing = "disabled services = {\n\t\"org.test.a\" => true\n\t\"org.test.b\" => false\n}\n";
    assert_eq!(emu.ok(&["print-disabled", "system"]), listing);

    emu.ok(&["reboot", "userspace"]);
    assert!(!alive(a_pid) && !alive(b_pid));
    assert_eq!(emu.ctl(&["print", "system/org.test.a"]).code, 113);
    let b_new = emu.job_pid("org.test.b").unwrap();
    assert_ne!(b_new, b_pid);
    assert_eq!(emu.field("org.test.b", "runs").as_deref(), Some("1"));

    // Deleting and re-creating the plist does not clear the override.
    fs::remove_file(&a).unwrap();
    emu.plist("org.test.a", SLEEPER);
    let out = emu.ctl(&["bootstrap", "system", a.to_str().unwrap()]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (5, "Bootstrap failed: 5: Input/output error\n")
    );

    // Nor does restarting the emulator itself.
    assert_eq!(emu.stop(), Some(0));
    emu.boot();
    assert_eq!(emu.ok(&["print-disabled", "system"]), listing);
    assert_eq!(emu.ctl(&["print", "system/org.test.a"]).code, 113);
    assert!(emu.job_pid("org.test.b").is_some());

    emu.ok(&["enable", "system/org.test.a"]);
    emu.ok(&["bootstrap", "system", a.to_str().unwrap()]);
    assert!(emu.job_pid("org.test.a").is_some());
}

#[test]
fn reboot_kills_everything_and_loads_the_daemons_directory() {
    let emu = Emu::start();
    let work = TempDir::new().unwrap();
    // Forks a grandchild into a session of its own, as a daemonizing program would.
    let forker = emu.plist(
        "org.test.forker",
        &format!(
            "{}<key>RunAtLoad</key><true/><key>WorkingDirectory</key><string>{}</string>",
            args_xml(&[
                "/bin/sh",
                "-c",
                "setsid /bin/sleep 1000 &amp; echo $! > pidfile; exec /bin/sleep 1000"
            ]),
            work.path().display()
        ),
    );
    let idle = emu.plist("org.test.idle", &args_xml(&["/bin/sleep", "1000"]));
    let gone = emu.plist("org.test.gone", SLEEPER);
    // Its own Disabled key keeps this one from loading at boot, unless an override says so.
    let off = emu.plist(
        "org.test.off",
        &format!("{SLEEPER}<key>Disabled</key><true/>"),
    );
    let on = emu.plist(
        "org.test.on",
        &format!("{SLEEPER}<key>Disabled</key><true/>"),
    );
    for p in [&forker, &idle, &gone] {
        emu.ok(&["bootstrap", "system", p.to_str().unwrap()]);
    }
    assert_eq!(
        emu.ctl(&["bootstrap", "system", off.to_str().unwrap()])
            .code,
        5
    );
    emu.ok(&["enable", "system/org.test.on"]);
    emu.ok(&["bootstrap", "system", on.to_str().unwrap()]);
    emu.ok(&["bootout", "system/org.test.gone"]);
    assert_eq!(
        emu.field("org.test.idle", "state").as_deref(),
        Some("not running")
    );

    let pidfile = work.path().join("pidfile");
    wait_until(Duration::from_secs(5), || {
        fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let daemonized: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let forker_pid = emu.job_pid("org.test.forker").unwrap();
    assert!(alive(daemonized));

    assert_eq!(emu.ok(&["reboot"]), "");
    assert!(!alive(forker_pid));
    assert!(!alive(daemonized), "a reboot leaves no process behind");
    let forker_new = emu.job_pid("org.test.forker").unwrap();
    assert_ne!(forker_new, forker_pid);
    assert_eq!(emu.field("org.test.forker", "runs").as_deref(), Some("1"));
    assert_eq!(
        emu.field("org.test.forker", "last exit code").as_deref(),
        Some("(never exited)")
    );
    assert!(
        emu.job_pid("org.test.gone").is_some(),
        "booted-out plists load at boot"
    );
    assert!(
        emu.job_pid("org.test.on").is_some(),
        "the override wins over Disabled"
    );
    assert_eq!(emu.ctl(&["print", "system/org.test.off"]).code, 113);
    assert_eq!(
        emu.field("org.test.idle", "state").as_deref(),
        Some("not running")
    );
    assert_eq!(emu.field("org.test.idle", "runs").as_deref(), Some("0"));
}

#[test]
fn seed_plist_and_bad_permissions_are_refused() {
    let emu = Emu::start();
    let seed = emu.daemons.path().join("seed-002-launchdaemon.plist");
    let seed_src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/docs/seed-002-launchdaemon.plist");
    let seed_src = if seed_src.exists() {
        seed_src
    } else {
        PathBuf::from("/work/shared/docs/seed-002-launchdaemon.plist")
    };
    fs::copy(&seed_src, &seed).unwrap();
    fs::set_permissions(&seed, fs::Permissions::from_mode(0o644)).unwrap();
    let out = emu.ctl(&["bootstrap", "system", seed.to_str().unwrap()]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (5, "Bootstrap failed: 5: Input/output error\n")
    );
    assert!(emu.log().contains("unexpected key"), "{}", emu.log());
    assert_eq!(emu.ctl(&["print", "system/org.postfix.in"]).code, 113);

    let a = emu.plist("org.test.a", SLEEPER);
    fs::set_permissions(&a, fs::Permissions::from_mode(0o664)).unwrap();
    assert_eq!(
        emu.ctl(&["bootstrap", "system", a.to_str().unwrap()]).code,
        5
    );
    fs::set_permissions(&a, fs::Permissions::from_mode(0o646)).unwrap();
    assert_eq!(
        emu.ctl(&["bootstrap", "system", a.to_str().unwrap()]).code,
        5
    );
    std::os::unix::fs::chown(&a, Some(1), None).unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        emu.ctl(&["bootstrap", "system", a.to_str().unwrap()]).code,
        5
    );
    std::os::unix::fs::chown(&a, Some(0), None).unwrap();
    assert!(emu.log().contains("bad ownership/permissions"));
    assert_eq!(emu.ctl(&["print", "system/org.test.a"]).code, 113);

    let no_label = emu.daemons.path().join("nolabel.plist");
    fs::write(
        &no_label,
        "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>Program</key><string>/bin/true</string></dict></plist>",
    )
    .unwrap();
    fs::set_permissions(&no_label, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        emu.ctl(&["bootstrap", "system", no_label.to_str().unwrap()])
            .code,
        5
    );
    let missing = emu.plist_path("org.test.missing");
    assert_eq!(emu.ctl(&["bootstrap", "system", &missing]).code, 5);

    emu.ok(&["bootstrap", "system", a.to_str().unwrap()]);
    // A reboot skips the broken files and loads the good one.
    emu.ok(&["reboot"]);
    assert!(emu.job_pid("org.test.a").is_some());
    assert_eq!(emu.ctl(&["print", "system/org.postfix.in"]).code, 113);
}

#[test]
fn print_disabled_in_each_generations_layout() {
    // The release is chosen on the daemon, by flag or by environment variable.
    for (emu, new) in [
        (Emu::start_with(&["--macos", "12"]), false),
        (
            Emu::start_env(&[], &[("LAUNCHD_EMULATOR_MACOS", "12.7")]),
            false,
        ),
        (Emu::start_with(&["--macos", "13"]), true),
        (
            Emu::start_env(&[], &[("LAUNCHD_EMULATOR_MACOS", "26.3")]),
            true,
        ),
    ] {
        emu.ok(&["disable", "system/org.test.a"]);
        emu.ok(&["enable", "system/org.test.b"]);
        let expected = if new {
            "\n\tdisabled services = {\n\t\t\"org.test.a\" => disabled\n\t\t\"org.test.b\" => enabled\n\t}\n"
        } else {
            "disabled services = {\n\t\"org.test.a\" => true\n\t\"org.test.b\" => false\n}\n"
        };
        assert_eq!(emu.ok(&["print-disabled", "system"]), expected);
    }
}

/// The recorded sample of each generation's print-disabled, and its shape: the system
/// domain's where one is recorded in tabs (a user domain's adds its login items).
fn recorded_disabled_shape(new: bool) -> Vec<String> {
    let samples = launchd_emulator::corpus::load();
    let entry = if new {
        "\\t\\tentry new"
    } else {
        "\\tentry old"
    }
    .to_string();
    let of_generation: Vec<_> = samples
        .iter()
        .filter(|s| s.subcommand() == "print-disabled")
        .filter(|s| launchd_emulator::corpus::disabled_shape(&s.output).contains(&entry))
        .collect();
    let sample = of_generation
        .iter()
        .find(|s| s.target() == "system")
        .or(of_generation.first())
        .expect("a recorded sample of that generation");
    without_foreign_entries(launchd_emulator::corpus::disabled_shape(&sample.output))
}

/// Entries of blocks other than the overrides (login items) vary by machine.
fn without_foreign_entries(shape: Vec<String>) -> Vec<String> {
    shape
        .into_iter()
        .filter(|t| !t.ends_with("entry other"))
        .collect()
}

#[test]
fn the_emulators_output_has_the_shapes_of_recorded_real_output() {
    use launchd_emulator::corpus;
    let samples = corpus::load();
    for (release, new) in [("12", false), ("13", true), ("26", true)] {
        let emu = Emu::start_macos(release);
        emu.ok(&["disable", "system/org.test.a"]);
        emu.ok(&["enable", "system/org.test.b"]);
        // print-disabled: line for line the layout a real Mac of that generation prints.
        let shape = without_foreign_entries(corpus::disabled_shape(
            &emu.ok(&["print-disabled", "system"]),
        ));
        assert_eq!(shape, recorded_disabled_shape(new), "macOS {release}");

        // print of a loaded job: tab-indented, and every job-level property the emulator
        // prints is one that real launchd prints.
        let path = emu.plist(
            "org.test.a",
            "<key>ProgramArguments</key><array><string>/bin/sleep</string><string>1000</string></array>\
             <key>RunAtLoad</key><true/><key>KeepAlive</key><true/>",
        );
        emu.ok(&["enable", "system/org.test.a"]);
        emu.ok(&["bootstrap", "system", path.to_str().unwrap()]);
        let printed = emu.ok(&["print", "system/org.test.a"]);
        let real: std::collections::BTreeSet<String> = samples
            .iter()
            .filter(|s| s.subcommand() == "print" && s.exit == 0 && s.is_service_target())
            .flat_map(|s| corpus::print_property_names(&s.output))
            .collect();
        let names = corpus::print_property_names(&printed);
        for name in &names {
            assert!(
                real.contains(name),
                "macOS {release}: {name:?} is in no recording"
            );
        }
        // `type` is in every recording of macOS 13 and later that shows the block's
        // head, and neither it nor `job state` is in any of OS X 10.10 to macOS 12.
        assert_eq!(names.contains(&"type".to_string()), new, "macOS {release}");
        if !new {
            assert!(!names.contains(&"job state".to_string()), "macOS {release}");
        }
        assert_eq!(corpus::print_indent_unit(&printed), "\\t");

        // Failures: the recorded words and exit status, with the emulator's label.
        for sample in samples.iter().filter(|s| s.stream == "stderr") {
            let label = "org.test.gone";
            let (args, expected): (Vec<String>, String) = match (sample.subcommand(), sample.exit) {
                ("print", 113) if new => (
                    vec!["print".into(), format!("system/{label}")],
                    format!(
                        "Bad request.\nCould not find service \"{label}\" in domain for system\n"
                    ),
                ),
                ("kickstart", 113) => (
                    vec!["kickstart".into(), "-k".into(), format!("system/{label}")],
                    format!("Could not find service \"{label}\" in domain for system\n"),
                ),
                ("bootout", 3) => (
                    vec!["bootout".into(), format!("system/{label}")],
                    sample.output.clone(),
                ),
                ("bootout", 5) => {
                    let unloaded = emu.plist("org.test.unloaded", SLEEPER);
                    (
                        vec![
                            "bootout".into(),
                            "system".into(),
                            unloaded.to_string_lossy().into_owned(),
                        ],
                        sample.output.clone(),
                    )
                }
                ("bootout", 2) => {
                    let missing = emu.plist_path("org.test.missing");
                    (
                        vec!["bootout".into(), "system".into(), missing.clone()],
                        format!(
                            "{missing}: No such file or directory\nBoot-out failed: 2: No such file or directory\n"
                        ),
                    )
                }
                _ => continue,
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = emu.ctl(&args);
            assert_eq!(
                (out.code, out.stderr.as_str()),
                (sample.exit, expected.as_str()),
                "macOS {release}, like {}",
                sample.name
            );
            // The recorded message has the same form once its label is put in.
            let recorded = sample.output.lines().last().unwrap_or_default();
            let emulated = expected.lines().last().unwrap_or_default();
            assert_eq!(
                recorded.split('"').next(),
                emulated.split('"').next(),
                "{}",
                sample.name
            );
        }
        if new {
            bootout_window_has_the_recorded_shapes(&emu, release, &samples);
        }
    }
}

/// When, around a bootout, a recorded bootstrap was refused.
enum Window {
    /// While the old job showed `SIGTERMed`.
    Sigtermed,
    /// After print no longer found the job.
    After,
    /// Right after the bootout, without saying which of the two.
    Either,
}

/// The recorded bootstrap refusals around a bootout (their notes say so).
const AROUND_BOOTOUT: [(&str, Window); 4] = [
    (
        "error-bootstrap-37-homebrew-core-132781.sample",
        Window::Sigtermed,
    ),
    (
        "error-bootstrap-5-sigtermed-window-codex-remote-914.sample",
        Window::Sigtermed,
    ),
    (
        "error-bootstrap-5-settle-window-headroom-1289.sample",
        Window::After,
    ),
    ("error-bootstrap-5-cc-connect-35.sample", Window::Either),
];

/// The generation a recording belongs to, as `--macos` names it: 12 and older, 13 to
/// 15, 26 and later.
fn generation(sample: &launchd_emulator::corpus::Sample) -> Option<&'static str> {
    sample.macos_major().map(|major| match major {
        ..=12 => "12",
        13..=15 => "13",
        _ => "26",
    })
}

/// What an administrator's filter of `print` keeps (`grep "state ="`, or the `state`,
/// `program` and `pid` lines): the lines whose property is among `keys`, as indentation
/// (unless `indented` is false: the recording lost it) and property, with the value of
/// every `state`; a run of equal lines (the coalitions' `state = active`, of which real
/// launchd prints two and the emulator one) counts once.
fn filtered(print: &str, keys: &std::collections::BTreeSet<String>, indented: bool) -> Vec<String> {
    let mut shape: Vec<String> = Vec::new();
    for line in print.lines() {
        let Some((key, value)) = line.trim().split_once(" = ") else {
            continue;
        };
        if !keys.contains(key) {
            continue;
        }
        let indent = if indented {
            launchd_emulator::corpus::indentation(line)
        } else {
            String::new()
        };
        let token = match key {
            "state" => format!("{indent}state = {value}"),
            _ => format!("{indent}{key}"),
        };
        if shape.last() != Some(&token) {
            shape.push(token);
        }
    }
    shape
}

/// The window after a bootout on the generations where bootout returns at once, against
/// that generation's recordings: `print` of the running job and of the `SIGTERMed` one
/// filtered as the recordings were, every recorded bootstrap refusal of the generation
/// (in the window: 37 on 13.4, 5 on 26.5.2; after it, while print finds nothing: 5 on
/// 26.3 and 26.5.1), and on 13 to 15 a bootstrap that loads once print finds nothing.
/// The recordings are of gui domains without root, where launchctl adds "Try re-running
/// the command as root for richer errors."; as root in the system domain it prints the
/// first line only (error-bootstrap-5-system-mip-38).
fn bootout_window_has_the_recorded_shapes(
    emu: &Emu,
    release: &str,
    samples: &[launchd_emulator::corpus::Sample],
) {
    const HINT: &str = "Try re-running the command as root for richer errors.";
    let of_generation: Vec<_> = samples
        .iter()
        .filter(|s| generation(s) == Some(release))
        .collect();
    let path = emu.plist("org.test.window", TERM_IGNORING);
    let path = path.to_str().unwrap();
    emu.ok(&["bootstrap", "system", path]);
    wait_until(Duration::from_secs(5), || {
        emu.field("org.test.window", "state").as_deref() == Some("running")
    });
    let mut compared = Vec::new();
    let mut compare_print = |print: &str, state: &str| {
        for sample in of_generation
            .iter()
            .filter(|s| s.name.starts_with("print-filtered-") && s.expected("state") == Some(state))
        {
            let recorded = &sample.output;
            let keys = recorded
                .lines()
                .filter_map(|l| l.trim().split_once(" = ").map(|(k, _)| k.to_string()))
                .collect();
            let indented = recorded.lines().any(|l| l.starts_with('\t'));
            let mut emulated = filtered(print, &keys, indented);
            let recorded = filtered(recorded, &keys, indented);
            if !indented {
                // Edited by its author, who kept only the job's own line of the grep
                // (its note says so): the emulator's grep begins with it.
                emulated.truncate(recorded.len());
            }
            assert_eq!(
                emulated, recorded,
                "macOS {release}, like {}:\n{print}",
                sample.name
            );
            compared.push(sample.name.clone());
        }
    };
    compare_print(&emu.ok(&["print", "system/org.test.window"]), "running");

    let pid = emu.job_pid("org.test.window").unwrap();
    emu.ok(&["bootout", "system/org.test.window"]);
    let in_window = emu.ok(&["print", "system/org.test.window"]);
    assert_eq!(top_level(&in_window, "state").as_deref(), Some("SIGTERMed"));
    compare_print(&in_window, "SIGTERMed");
    let refused_in_window = emu.ctl(&["bootstrap", "system", path]);
    assert_eq!(top_level(&in_window, "pid"), Some(pid.to_string()));
    wait_until(Duration::from_secs(10), || {
        emu.ctl(&["print", "system/org.test.window"]).code == 113
    });
    let after = emu.ctl(&["bootstrap", "system", path]);
    for (name, when) in AROUND_BOOTOUT {
        let sample = of_generation.iter().find(|s| s.name == *name);
        let Some(sample) = sample else { continue };
        let mut lines = sample.output.lines();
        let first = format!("{}\n", lines.next().unwrap_or_default());
        assert!(lines.all(|l| l == HINT), "{}", sample.name);
        let emulated = match when {
            Window::Sigtermed => vec![&refused_in_window],
            Window::After => vec![&after],
            Window::Either => vec![&refused_in_window, &after],
        };
        for out in emulated {
            assert_eq!(
                (out.code, out.stderr.as_str()),
                (sample.exit, first.as_str()),
                "macOS {release}, like {}",
                sample.name
            );
        }
        compared.push(sample.name.clone());
    }
    if release == "13" {
        // Nothing recorded refusing it once print found nothing: it loads.
        assert_eq!(after.code, 0, "{}", after.stderr);
    }
    eprintln!("macOS {release}: the bootout window compared with {compared:?}");
    assert!(
        !compared.is_empty(),
        "macOS {release}: no recording compared"
    );
}

#[test]
fn macos_13_bootout_returns_at_once_and_a_bootstrap_meanwhile_gets_37() {
    let emu = Emu::start_macos("13");
    let path = emu.plist("org.test.a", TERM_IGNORING);
    let path = path.to_str().unwrap();
    emu.ok(&["bootstrap", "system", path]);
    let pid = emu.job_pid("org.test.a").unwrap();
    let started = Instant::now();
    emu.ok(&["bootout", "system/org.test.a"]);
    assert!(started.elapsed() < Duration::from_secs(1), "bootout waited");
    assert_eq!(
        emu.field("org.test.a", "state").as_deref(),
        Some("SIGTERMed")
    );
    assert!(alive(pid));
    let out = emu.ctl(&["bootstrap", "system", path]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (37, "Bootstrap failed: 37: Operation already in progress\n")
    );
    wait_until(Duration::from_secs(10), || {
        emu.ctl(&["print", "system/org.test.a"]).code == 113
    });
    assert!(!alive(pid));
    emu.ok(&["bootstrap", "system", path]);
}

/// A job that ignores SIGTERM, so a bootout's stop lasts until ExitTimeOut's SIGKILL.
const TERM_IGNORING: &str = "<key>ProgramArguments</key><array><string>/bin/sh</string><string>-c</string>\
     <string>trap '' TERM; while :; do /bin/sleep 1; done</string></array>\
     <key>RunAtLoad</key><true/><key>KeepAlive</key><true/><key>ExitTimeOut</key><integer>2</integer>";

/// macOS 26 as recorded: in the bootout window the job shows `SIGTERMed` with its old
/// pid (print-filtered-sigtermed-pid-bilbo) and a bootstrap is refused with 5, not 37
/// (codex-remote-feishu #914/#916, 26.5.2); once print no longer finds it, the label
/// stays refused with 5 for about 5 s, then loads (headroom #1289, 26.5.1). This is the
/// default settle time.
#[test]
fn macos_26_refuses_a_bootstrap_with_5_in_the_bootout_window_and_for_seconds_after_it() {
    let emu = Emu::start_macos("26.5");
    let path = emu.plist("org.test.a", TERM_IGNORING);
    let path = path.to_str().unwrap();
    emu.ok(&["bootstrap", "system", path]);
    let pid = emu.job_pid("org.test.a").unwrap();
    let booted_out = Instant::now();
    emu.ok(&["bootout", "system/org.test.a"]);
    assert!(
        booted_out.elapsed() < Duration::from_secs(1),
        "bootout waited"
    );
    assert_eq!(
        emu.field("org.test.a", "state").as_deref(),
        Some("SIGTERMed")
    );
    assert_eq!(emu.job_pid("org.test.a"), Some(pid), "the old pid is shown");
    assert!(alive(pid));
    let refused = (5, "Bootstrap failed: 5: Input/output error\n");
    let out = emu.ctl(&["bootstrap", "system", path]);
    assert_eq!((out.code, out.stderr.as_str()), refused);

    wait_until(Duration::from_secs(10), || {
        emu.ctl(&["print", "system/org.test.a"]).code == 113
    });
    let gone = Instant::now();
    assert!(!alive(pid));
    // Nothing is loaded, and still launchd refuses, and the refusal loads nothing.
    let out = emu.ctl(&["bootstrap", "system", path]);
    assert_eq!((out.code, out.stderr.as_str()), refused, "{}", emu.log());
    assert_eq!(emu.ctl(&["print", "system/org.test.a"]).code, 113);
    assert!(
        emu.log()
            .contains("still releasing the label after its bootout"),
        "{}",
        emu.log()
    );
    let mut refusals = 1;
    while emu.ctl(&["bootstrap", "system", path]).code == 5 {
        refusals += 1;
        assert!(
            gone.elapsed() < Duration::from_secs(20),
            "still refused after {:?}",
            gone.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Refused for the whole settle time after the unload (which came after the bootout
    // began and before the test saw print fail).
    assert!(
        booted_out.elapsed() >= Duration::from_secs(5),
        "{:?}",
        booted_out.elapsed()
    );
    assert!(refusals >= 2, "{refusals}");
    assert!(emu.job_pid("org.test.a").is_some_and(|p| p != pid));
}

/// The settle time is the emulator's knob (`--bootout-settle MS`, or
/// LAUNCHD_EMULATOR_BOOTOUT_SETTLE_MS in its environment), follows a bootout of a job
/// that was not running too, ends with a reboot, and is only macOS 26's.
#[test]
fn the_settle_after_a_bootout_is_macos_26s_and_its_length_is_a_knob() {
    let idle = "<key>ProgramArguments</key><array><string>/bin/sleep</string><string>1000</string></array>";
    let fast = Emu::start_with(&["--macos", "26", "--bootout-settle", "0"]);
    let slow = Emu::start_env(
        &["--macos", "26"],
        &[("LAUNCHD_EMULATOR_BOOTOUT_SETTLE_MS", "1500")],
    );
    let sequoia = Emu::start_with(&["--macos", "15", "--bootout-settle", "60000"]);
    for (emu, settling) in [(&fast, false), (&slow, true), (&sequoia, false)] {
        let path = emu.plist("org.test.a", idle);
        let path = path.to_str().unwrap();
        emu.ok(&["bootstrap", "system", path]);
        emu.ok(&["bootout", "system/org.test.a"]);
        assert_eq!(emu.ctl(&["print", "system/org.test.a"]).code, 113);
        let first = emu.ctl(&["bootstrap", "system", path]).code;
        assert_eq!(first, if settling { 5 } else { 0 });
        if settling {
            wait_until(Duration::from_secs(10), || {
                emu.ctl(&["bootstrap", "system", path]).code == 0
            });
            // A reboot forgets what was settling: a bootstrap right after it loads.
            emu.ok(&["bootout", "system/org.test.a"]);
            emu.ok(&["disable", "system/org.test.a"]);
            emu.ok(&["reboot"]);
            emu.ok(&["enable", "system/org.test.a"]);
            emu.ok(&["bootstrap", "system", path]);
        }
    }
    let out = Command::new(DAEMON)
        .args([
            "--state-dir",
            "/nonexistent",
            "--daemons-dir",
            "/nonexistent",
        ])
        .args(["--bootout-settle", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--bootout-settle \"soon\": expected milliseconds"),
        "{out:?}"
    );
}

#[test]
fn apples_postfix_job_is_loaded_under_each_releases_label() {
    for (release, label, other) in [
        ("13", "com.apple.postfix.master", "org.postfix.master"),
        ("12", "com.apple.postfix.master", "org.postfix.master"),
        ("10.11", "org.postfix.master", "com.apple.postfix.master"),
    ] {
        let emu = Emu::start_macos(release);
        let print = emu.ok(&["print", &format!("system/{label}")]);
        assert_eq!(top_level(&print, "state").as_deref(), Some("not running"));
        assert_eq!(
            top_level(&print, "path"),
            Some(format!("/System/Library/LaunchDaemons/{label}.plist"))
        );
        assert_eq!(emu.ctl(&["print", &format!("system/{other}")]).code, 113);
        // A reboot loads it again.
        emu.ok(&["reboot"]);
        assert!(emu.field(label, "state").is_some(), "macOS {release}");
    }
}

#[test]
fn usage_and_domain_errors_match_launchctl() {
    let emu = Emu::start();
    let out = emu.ctl(&["bootstrap", "system/org.test.a", "/x.plist"]);
    assert_eq!(out.code, 64);
    assert!(
        out.stderr.starts_with("Unrecognized target specifier."),
        "{}",
        out.stderr
    );
    assert!(out.stderr.ends_with(
        "Usage: launchctl bootstrap <domain-target> [service-path, service-path2, ...]\n"
    ));
    let out = emu.ctl(&["kickstart"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (64, "Usage: launchctl kickstart [-kp] <service-target>\n")
    );
    let out = emu.ctl(&["print", "user/501/org.test.a"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (112, "Could not find domain for uid: 501\n")
    );
    let out = emu.ctl(&["frobnicate"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Unrecognized subcommand: frobnicate\n");
    let out = emu.ctl(&[]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("Usage: launchctl"));

    let out = Command::new(LAUNCHCTL)
        .args(["print", "system/org.test.a"])
        .env_remove("LAUNCHD_EMULATOR_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
}

#[test]
fn sigterm_stops_every_job_and_leaves_nothing_behind() {
    let mut emu = Emu::start();
    let work = TempDir::new().unwrap();
    let p = emu.plist(
        "org.test.tree",
        &format!(
            "{}<key>RunAtLoad</key><true/><key>KeepAlive</key><true/><key>WorkingDirectory</key><string>{}</string>",
            args_xml(&[
                "/bin/sh",
                "-c",
                "setsid /bin/sleep 1000 &amp; echo $! > pidfile; /bin/sleep 1000 &amp; wait"
            ]),
            work.path().display()
        ),
    );
    emu.ok(&["bootstrap", "system", p.to_str().unwrap()]);
    let pidfile = work.path().join("pidfile");
    wait_until(Duration::from_secs(5), || {
        fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let outside_group: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let job = emu.job_pid("org.test.tree").unwrap();
    let in_group = ids_children(job);
    assert_eq!(emu.stop(), Some(0));
    assert!(!alive(job));
    assert!(!alive(outside_group));
    for c in in_group {
        assert!(!alive(c));
    }
    assert!(!emu.state.path().join("launchd.sock").exists());
}

/// `--xpcproxy-hold MS` (or its environment variable): every spawn stays `xpcproxy`
/// for MS, its process not yet the program (the same pid becomes it), as on a slow
/// Mac; a bootout in that window kills the trampoline at once, as SIGTERM kills
/// xpcproxy.
#[test]
fn a_held_spawn_stays_xpcproxy_then_the_same_pid_runs_the_program() {
    let hold = Duration::from_millis(1500);
    let emu = Emu::start_env(
        &["--macos", "13"],
        &[(
            "LAUNCHD_EMULATOR_XPCPROXY_HOLD_MS",
            &hold.as_millis().to_string(),
        )],
    );
    let path = emu.plist("org.test.a", SLEEPER);
    let began = Instant::now();
    emu.ok(&["bootstrap", "system", path.to_str().unwrap()]);
    let state = emu.field("org.test.a", "state");
    let pid = emu.job_pid("org.test.a").expect("a pid while xpcproxy");
    let comm = || fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    if began.elapsed() < hold {
        assert_eq!(state.as_deref(), Some("xpcproxy"));
        assert_eq!(comm().trim(), "xpcproxy", "not yet the program");
        assert_eq!(emu.field("org.test.a", "runs").as_deref(), Some("1"));
    }
    wait_until(Duration::from_secs(10), || {
        emu.field("org.test.a", "state").as_deref() == Some("running")
    });
    assert!(began.elapsed() >= hold, "running before the hold was over");
    assert_eq!(emu.job_pid("org.test.a"), Some(pid), "the same pid");
    assert_eq!(comm().trim(), "sleep");
    assert_eq!(emu.field("org.test.a", "runs").as_deref(), Some("1"));

    // kickstart -k: the new spawn is held again; a bootout meanwhile ends it with
    // SIGTERM, without waiting for ExitTimeOut.
    emu.ok(&["kickstart", "-k", "system/org.test.a"]);
    assert_eq!(emu.field("org.test.a", "runs").as_deref(), Some("2"));
    let stopping = Instant::now();
    emu.ok(&["bootout", "system/org.test.a"]);
    wait_until(Duration::from_secs(10), || {
        emu.field("org.test.a", "state").is_none()
    });
    assert!(stopping.elapsed() < Duration::from_secs(5));

    // A program that cannot be exec'd ends the run with EX_CONFIG, as an unheld
    // spawn that fails does.
    let missing = emu.plist(
        "org.test.b",
        "<key>ProgramArguments</key><array><string>/nonexistent/prog</string></array>",
    );
    emu.ok(&["bootstrap", "system", missing.to_str().unwrap()]);
    emu.ok(&["kickstart", "system/org.test.b"]);
    wait_until(Duration::from_secs(10), || {
        emu.field("org.test.b", "last exit code").as_deref() == Some("78: EX_CONFIG")
    });
}

//! A real systemd for end-to-end tests: `systemd --system` as pid 1 of private mount,
//! pid, network, UTS, IPC and cgroup namespaces, on overlays of the host's /usr, /etc
//! and /var (so Postfix and Debian's postfix units are there as the package left them),
//! driven from outside with `nsenter`. The overlays' upper directories outlive a
//! poweroff, so booting again on them is a reboot.
//!
//! Each machine has its own cgroups (`instancectl-test-PID-N`) and its own directory
//! under the build's tmp directory, so test binaries can run side by side. Every
//! command run in a machine has a time limit. Where systemd cannot boot (not root, no
//! systemd, no cgroup v1 `name=systemd` hierarchy), [`Machine::boot`] says why and the
//! test skips (a failure when INSTANCECTL_REQUIRE_SYSTEMD is set); when it boots but
//! does not come up, the test fails with systemd's log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Run, Shell, instancectl};

/// The boot script: mounts the new root and execs systemd (see its comments).
const BOOT_SCRIPT: &str = include_str!("boot-systemd.sh");
const SYSTEMD: &str = "/usr/lib/systemd/systemd";
const CGROUP_V1: &str = "/sys/fs/cgroup/systemd";
const CGROUP_V2: &str = "/sys/fs/cgroup/unified";
/// How long a boot may take to reach `running`; generous, the host is shared.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// The time limit of one command in the machine.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// Where instancectl and the test tools appear inside the machine.
pub const BIN: &str = "/opt/instancectl";

static MACHINES: AtomicU32 = AtomicU32::new(0);

pub struct Machine {
    dir: tempfile::TempDir,
    cgroup: String,
    /// `unshare`, whose child is systemd.
    boot: Option<Child>,
    /// systemd's pid as the host sees it.
    pub pid: u32,
}

/// Why systemd cannot boot on this host, or `None` when it can.
pub fn cannot_boot() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root (namespaces, overlays and cgroups need it)".into());
    }
    if !Path::new(SYSTEMD).is_file() {
        return Some(format!("{SYSTEMD} is not installed"));
    }
    for (dir, what) in [
        (CGROUP_V1, "the cgroup v1 name=systemd hierarchy"),
        (CGROUP_V2, "the cgroup v2 hierarchy"),
    ] {
        if !Path::new(dir).join("cgroup.procs").is_file() {
            return Some(format!(
                "{what} is not mounted at {dir} (this harness boots systemd on cgroup v1 \
                 plus the unified hierarchy)"
            ));
        }
    }
    for tool in ["unshare", "nsenter", "timeout"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} (util-linux/coreutils) is not installed"));
        }
    }
    None
}

impl Machine {
    /// A freshly booted machine, or `None` (printed) when systemd cannot boot here.
    pub fn boot() -> Option<Machine> {
        if let Some(why) = cannot_boot() {
            assert!(
                std::env::var_os("INSTANCECTL_REQUIRE_SYSTEMD").is_none(),
                "systemd cannot boot here, and INSTANCECTL_REQUIRE_SYSTEMD is set: {why}"
            );
            // Straight to the standard error, past the test harness's capture, so the
            // reason shows in a passing run's log too.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: systemd cannot boot here: {why}"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("systemd-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        remove_stale_cgroups();
        let cgroup = format!(
            "instancectl-test-{}-{}",
            std::process::id(),
            MACHINES.fetch_add(1, Ordering::Relaxed)
        );
        std::fs::write(dir.path().join("boot-systemd.sh"), BOOT_SCRIPT).unwrap();
        let mut machine = Machine {
            dir,
            cgroup,
            boot: None,
            pid: 0,
        };
        // Postfix as the package leaves it, whatever the host's has been through.
        std::fs::write(machine.dir().join("first-boot.sh"), super::FORGET_INSTANCES).unwrap();
        machine.start(Some(&super::pristine_postfix_config()));
        Some(machine)
    }

    /// The machine's directory on the host (overlay upper directories, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn cgroups(&self) -> [PathBuf; 2] {
        [CGROUP_V1, CGROUP_V2].map(|h| Path::new(h).join(&self.cgroup))
    }

    /// Boots systemd on the machine's directory and waits until it is running; on the
    /// first boot, `pristine` replaces /etc/postfix.
    fn start(&mut self, pristine: Option<&Path>) {
        self.pid = 0;
        for cg in self.cgroups() {
            std::fs::create_dir_all(&cg).unwrap();
        }
        let [v1, v2] = self.cgroups().map(|p| p.display().to_string());
        let bin = Path::new(instancectl()).parent().unwrap();
        let dir = self.dir().display().to_string();
        // The shell moves itself into the machine's cgroups, then becomes unshare,
        // whose child execs systemd as pid 1 of the new namespaces.
        let launch = format!(
            "echo $$ > {v1}/cgroup.procs && echo $$ > {v2}/cgroup.procs && \
             exec unshare -m -p -f -n -u -i -C --propagation private \
             bash {dir}/boot-systemd.sh {dir} {} {}",
            bin.display(),
            pristine.map_or(String::new(), |p| p.display().to_string())
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("boot.log"))
            .unwrap();
        let child = Command::new("setsid")
            .args(["sh", "-c", &launch])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("setsid");
        let unshare = child.id();
        self.boot = Some(child);
        let deadline = Instant::now() + BOOT_TIMEOUT;
        self.pid = loop {
            let children =
                std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                    .unwrap_or_default();
            let systemd = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| {
                    std::fs::read_link(format!("/proc/{p}/exe"))
                        .is_ok_and(|exe| exe.ends_with("systemd"))
                });
            if let Some(pid) = systemd {
                break pid;
            }
            if self.boot.as_mut().unwrap().try_wait().unwrap().is_some()
                || Instant::now() > deadline
            {
                panic!("systemd did not start:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        loop {
            let state = self.sh("systemctl is-system-running").stdout;
            match state.trim() {
                "running" => return,
                "degraded" => {
                    let failed = self.sh("systemctl --failed --no-legend --plain").stdout;
                    panic!("systemd came up degraded:\n{failed}\n{}", self.log());
                }
                _ if Instant::now() > deadline => {
                    panic!(
                        "systemd did not come up within {} s (state {state:?}):\n{}",
                        BOOT_TIMEOUT.as_secs(),
                        self.log()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// What the boot script said, what systemd wrote to its console (every boot),
    /// and the end of this boot's journal when the machine still answers.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir().join(f)).unwrap_or_default();
        let journal = if self.pid != 0 && self.boot.is_some() {
            self.sh_within("journalctl -b --no-pager -n 150", Duration::from_secs(20))
                .stdout
        } else {
            String::new()
        };
        format!(
            "--- boot.log ---\n{}\n--- console ---\n{}\n--- journal ---\n{journal}",
            read("boot.log"),
            read("console.log")
        )
    }

    /// Runs a shell script inside the machine (its root, namespaces and PATH, with
    /// instancectl first in PATH), within [`COMMAND_TIMEOUT`].
    pub fn sh(&self, script: &str) -> Run {
        self.sh_within(script, COMMAND_TIMEOUT)
    }

    pub fn sh_within(&self, script: &str, limit: Duration) -> Run {
        let output = Command::new("timeout")
            .args(["-k", "5", &format!("{}", limit.as_secs().max(1))])
            .args(["nsenter", "-t", &self.pid.to_string(), "-a", "--"])
            .args(["env", "-i", "HOME=/root", "LANG=C.UTF-8"])
            .arg(format!("PATH={BIN}:/usr/sbin:/usr/bin:/sbin:/bin"))
            .args(["bash", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("timeout/nsenter");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if run.code == 124 || run.code == 137 {
            eprintln!("timed out after {} s: {script}", limit.as_secs());
        }
        run
    }

    /// Runs instancectl with `args` inside the machine.
    pub fn ctl(&self, args: &str) -> Run {
        self.sh(&format!("instancectl {args}"))
    }

    /// `systemctl show UNIT -p PROP --value`.
    pub fn show(&self, unit: &str, property: &str) -> String {
        self.sh(&format!("systemctl show {unit} -p {property} --value"))
            .stdout
            .trim()
            .to_string()
    }

    /// A clean shutdown (`poweroff.target`, every unit stopped), then a new boot on the
    /// same upper directories.
    pub fn reboot(&mut self) {
        self.poweroff();
        self.start(None);
    }

    /// Shuts the machine down cleanly and waits until systemd has exited.
    pub fn poweroff(&mut self) {
        // `systemctl poweroff` asks logind, which is masked here; starting the target
        // is what it falls back to.
        self.sh("systemctl start poweroff.target --job-mode=replace-irreversibly --no-block");
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let boot = self.boot.as_mut().unwrap();
        while boot.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                panic!("systemd did not power off:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.boot = None;
        self.remove_cgroups();
    }

    fn remove_cgroups(&self) {
        for cg in self.cgroups() {
            // Depth first: a cgroup goes once its children and processes have.
            for _ in 0..50 {
                remove_cgroup(&cg);
                if !cg.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Removes a cgroup and the ones below it, depth first. rmdir refuses a cgroup that
/// still has processes, so nothing that runs is lost.
fn remove_cgroup(path: &Path) {
    let _ = Command::new("find")
        .arg(path)
        .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
        .stderr(Stdio::null())
        .status();
}

/// Removes the cgroups of machines whose test process is gone (killed before it could
/// clean up): `instancectl-test-PID-N` with no process of its own left.
fn remove_stale_cgroups() {
    for hierarchy in [CGROUP_V1, CGROUP_V2] {
        let Ok(entries) = std::fs::read_dir(hierarchy) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("instancectl-test-")
                .and_then(|rest| rest.split('-').next())
            else {
                continue;
            };
            if Path::new("/proc").join(pid).exists() {
                continue;
            }
            remove_cgroup(&entry.path());
        }
    }
}

impl Shell for Machine {
    fn sh(&self, script: &str) -> Run {
        Machine::sh(self, script)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(mut boot) = self.boot.take() {
            // Killing pid 1 of a pid namespace kills everything in it; before systemd
            // is known (a boot that failed early), unshare takes it with it.
            let pid = if self.pid != 0 { self.pid } else { boot.id() };
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = boot.wait();
            self.remove_cgroups();
        }
    }
}

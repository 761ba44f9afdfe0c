//! A throwaway host for end-to-end tests: private mount, network and pid namespaces
//! with overlays on /etc and /var, so the real postmulti can create and start
//! instances without touching the machine's own Postfix, and every process dies with
//! the sandbox. Commands run inside it through nsenter.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn instancectl() -> &'static str {
    env!("CARGO_BIN_EXE_instancectl")
}

pub struct Sandbox {
    root: tempfile::TempDir,
    /// Variables every command in the sandbox gets (e.g. the service manager).
    env: Vec<String>,
    holder: Child,
    /// The sandbox's pid 1, as the host sees it.
    pub init_pid: u32,
}

/// What a command run in the sandbox did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with everything the command said unless it succeeded.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "command failed:\n{self:#?}");
        self
    }
}

impl Sandbox {
    /// A sandbox with `instancectl supervise` running in it, as on a Linux host where
    /// the native manager is the default.
    pub fn new() -> Sandbox {
        let sandbox = Sandbox::bare();
        sandbox.start_supervisor("");
        sandbox
    }

    /// Starts `instancectl supervise ARGS` in the background, logging to
    /// `supervise.log` in the sandbox root, and waits for its control socket.
    pub fn start_supervisor(&self, args: &str) {
        let log = self.root().join("supervise.log");
        self.sh(&format!(
            "rm -f /var/lib/instancectl/supervisor.sock; \
             setsid instancectl supervise --interval 500ms {args} >>{} 2>&1 < /dev/null &",
            log.display()
        ))
        .ok();
        assert!(
            self.wait_for(
                "test -S /var/lib/instancectl/supervisor.sock",
                Duration::from_secs(20)
            ),
            "the supervisor did not come up:\n{}",
            self.supervisor_log()
        );
    }

    pub fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.root().join("supervise.log")).unwrap_or_default()
    }

    /// A sandbox without a supervisor whose instancectl uses Postfix's own scripts
    /// (`--manager postfix`) unless told otherwise.
    pub fn scripted() -> Sandbox {
        let mut sandbox = Sandbox::bare();
        sandbox.env.push("INSTANCECTL_MANAGER=postfix".into());
        sandbox
    }

    /// A sandbox with nothing running in it.
    pub fn bare() -> Sandbox {
        Sandbox::bare_with(Layers::OnDisk)
    }

    /// A sandbox whose /var overlay keeps its upper layer on tmpfs (as many container
    /// runtimes do), with Postfix's own scripts as the manager.
    pub fn scripted_on_tmpfs() -> Sandbox {
        let mut sandbox = Sandbox::bare_with(Layers::VarOnTmpfs);
        sandbox.env.push("INSTANCECTL_MANAGER=postfix".into());
        sandbox
    }

    fn bare_with(layers: Layers) -> Sandbox {
        assert!(
            nix_is_root(),
            "the end-to-end tests need root (namespaces and overlay mounts)"
        );
        // Outside /tmp, which the sandbox gets a private one of.
        let root = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        for d in ["etc/upper", "etc/work", "var/upper", "var/work"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let r = root.path().display();
        // The upper layer on another file system than the lower one: overlayfs then
        // reports the upper layer's device in /proc/locks, not the one stat shows.
        let var_tmpfs = match layers {
            Layers::OnDisk => String::new(),
            Layers::VarOnTmpfs => {
                format!("mount -t tmpfs tmpfs {r}/var\nmkdir {r}/var/upper {r}/var/work\n")
            }
        };
        // pid 1 of the sandbox is a shell that reaps orphans (daemonized masters are
        // reparented to it) until the sandbox is dropped.
        let setup = format!(
            "set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir=/etc,upperdir={r}/etc/upper,workdir={r}/etc/work /etc
{var_tmpfs}mount -t overlay overlay -o lowerdir=/var,upperdir={r}/var/upper,workdir={r}/var/work /var
mount -t tmpfs tmpfs /tmp
ip link set lo up
touch {r}/ready
set +e
while :; do sleep 1 & wait $!; done"
        );
        let holder = Command::new("unshare")
            .args([
                "-m",
                "-n",
                "-p",
                "-u",
                "-f",
                "--mount-proc",
                "bash",
                "-c",
                &setup,
            ])
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(root.path().join("sandbox.log")).unwrap())
            .spawn()
            .expect("unshare (util-linux) must be installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !root.path().join("ready").exists() {
            assert!(Instant::now() < deadline, "sandbox did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.id())).unwrap();
        let init_pid = children.trim().parse().expect("sandbox init pid");
        let sandbox = Sandbox {
            root,
            env: Vec::new(),
            holder,
            init_pid,
        };
        sandbox.sh("hostname sandbox.example.org").ok();
        sandbox
    }

    /// The sandbox's private directory on the host (overlay upper dirs live here).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Runs a shell script inside the sandbox.
    pub fn sh(&self, script: &str) -> Run {
        self.command(script, None)
    }

    /// Runs a shell script inside the sandbox with `input` on its stdin.
    pub fn sh_input(&self, script: &str, input: &str) -> Run {
        self.command(script, Some(input))
    }

    fn command(&self, script: &str, input: Option<&str>) -> Run {
        let bin_dir = Path::new(instancectl())
            .parent()
            .unwrap()
            .display()
            .to_string();
        let path = format!("{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin");
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &self.init_pid.to_string(),
            "-m",
            "-n",
            "-p",
            "-u",
            "--",
        ])
        .args(["env", &format!("PATH={path}")])
        .args(&self.env)
        .args(["bash", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("nsenter");
        if let Some(text) = input {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        Run::from(child.wait_with_output().unwrap())
    }

    /// Runs instancectl with `args` (a shell-quoted string) inside the sandbox.
    pub fn ctl(&self, args: &str) -> Run {
        self.sh(&format!("instancectl {args}"))
    }

    /// Adds a loopback address, so an instance can have port 25 on it.
    pub fn add_addr(&self, addr: &str) {
        self.sh(&format!("ip addr add {addr}/8 dev lo")).ok();
    }

    /// Every file under /etc/postfix*, the secondary instances' queue and data
    /// directories and instancectl's state directory, with checksums of the
    /// configuration files: equal snapshots mean nothing on disk changed. The
    /// primary's queue is left out: its running master makes files there at will.
    pub fn config_snapshot(&self) -> String {
        self.sh(
            "cd / && find etc/postfix* var/spool/postfix-* var/lib/postfix-* var/lib/instancectl \
             -path 'var/spool/postfix*/pid' -prune -o ! -type s -printf '%y %m %p\\n' 2>/dev/null | sort; \
             find etc/postfix* var/lib/instancectl -type f -exec sha256sum {} + 2>/dev/null | sort",
        )
        .stdout
    }

    /// The SMTP greeting at `addr:port` inside the sandbox, or an empty string.
    pub fn banner(&self, addr: &str, port: u16) -> String {
        self.sh(&format!(
            "exec 3<>/dev/tcp/{addr}/{port} && timeout 5 head -1 <&3"
        ))
        .stdout
        .trim()
        .to_string()
    }

    /// Polls `cond` (a shell test run in the sandbox) until it succeeds or time runs out.
    pub fn wait_for(&self, cond: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.sh(cond).code == 0 {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn path_in_upper(&self, path: &str) -> PathBuf {
        let (top, rest) = path.trim_start_matches('/').split_once('/').unwrap();
        self.root.path().join(top).join("upper").join(rest)
    }
}

/// Where the sandbox's overlays keep their upper layers.
#[derive(Clone, Copy)]
enum Layers {
    /// In the sandbox's directory on the host's disk.
    OnDisk,
    /// /var's on a tmpfs of its own (invisible to `path_in_upper`).
    VarOnTmpfs,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Killing pid 1 of a pid namespace kills everything in it.
        let _ = Command::new("kill")
            .args(["-9", &self.init_pid.to_string()])
            .status();
        let _ = self.holder.wait();
    }
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

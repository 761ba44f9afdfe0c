//! A throwaway host for end-to-end tests: private mount, network and pid namespaces
//! with overlays on /etc and /var, so the real postmulti can create and start
//! instances without touching the machine's own Postfix, and every process dies with
//! the sandbox. Commands run inside it through nsenter.

pub mod systemd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    /// Numbers the output files of commands run in the sandbox.
    runs: std::sync::atomic::AtomicU64,
}

/// How long one command in a sandbox may take before the harness kills it: longer
/// than any step of a test (a create on a loaded machine takes 10-20 s), short enough
/// that a hung command fails its test instead of the whole run.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// What a command run in the sandbox did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
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

    /// A sandbox with nothing running in it, whose Postfix is configured as the
    /// package leaves it (see [`pristine_postfix_config`]), whatever the host's own
    /// Postfix has been through: multi-instance on, instances made by the demo, a
    /// supervisor running.
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
        let pristine = pristine_postfix_config();
        let root = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        for d in ["etc/upper", "etc/work", "var/upper", "var/work", "runs"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let r = root.path().display();
        let target = target_dir();
        let setup = format!(
            "set -e
mount --make-rprivate /
{overlays}
{keep_tmp}
{forget}
rm -rf /etc/postfix
cp -a {pristine} /etc/postfix
ip link set lo up
touch {r}/ready
set +e
while :; do sleep 1 & wait $!; done",
            overlays = layers.mounts(root.path()),
            keep_tmp = private_tmp_keeping(&target),
            forget = FORGET_INSTANCES,
            pristine = pristine.display(),
        );
        // pid 1 of the sandbox is a shell that reaps orphans (daemonized masters are
        // reparented to it) until the sandbox is dropped.
        let holder = Command::new("unshare")
            .args(["-m", "-n", "-p", "-u", "-f", "--mount-proc", "bash", "-c"])
            .arg(&setup)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.path().join("sandbox.log")).unwrap())
            .spawn()
            .expect("unshare (util-linux) must be installed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !root.path().join("ready").exists() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(root.path().join("sandbox.log"));
                panic!(
                    "the sandbox did not come up within 30 s; its setup said:\n{}",
                    log.unwrap_or_default()
                );
            }
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
            runs: std::sync::atomic::AtomicU64::new(0),
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
        self.command(script, None, COMMAND_LIMIT)
    }

    /// Runs a shell script inside the sandbox with `input` on its stdin.
    pub fn sh_input(&self, script: &str, input: &str) -> Run {
        self.command(script, Some(input), COMMAND_LIMIT)
    }

    fn command(&self, script: &str, input: Option<&str>, limit: Duration) -> Run {
        let bin_dir = Path::new(instancectl())
            .parent()
            .unwrap()
            .display()
            .to_string();
        let path = format!("{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin");
        // Output goes to files, not pipes, so a background job the script leaves
        // behind cannot keep the test waiting for end-of-file.
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = self.root().join(format!("runs/{n}.out"));
        let err_path = self.root().join(format!("runs/{n}.err"));
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=5", &format!("{}", limit.as_secs().max(1))])
            .args(["nsenter", "-t", &self.init_pid.to_string()])
            .args(["-m", "-n", "-p", "-u", "--"])
            .args(["env", &format!("PATH={path}")])
            .args(&self.env)
            .args(["bash", "-c", script])
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd
            .spawn()
            .expect("timeout and nsenter (coreutils, util-linux)");
        if let Some(text) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(text.as_bytes());
        }
        let status = child.wait().unwrap();
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        let mut run = Run {
            code: status.code().unwrap_or(-1),
            stdout: read(&out_path),
            stderr: read(&err_path),
        };
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        if run.code == 124 || run.code == 137 {
            run.stderr.push_str(&format!(
                "\n[test harness: killed after {} s: {script}]",
                limit.as_secs()
            ));
        }
        run
    }

    /// The sandbox after `instancectl init --null-client`: multi-instance on, the
    /// primary a send-only null client.
    pub fn null_client(self) -> Sandbox {
        self.ctl("init --null-client").ok();
        self
    }

    /// The pid the master's pid file names, if there is one.
    pub fn pid_file_pid(&self, name: &str) -> Option<i32> {
        self.sh(&format!("cat /var/spool/{name}/pid/master.pid"))
            .stdout
            .trim()
            .parse()
            .ok()
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
    /// primary's queue is left out: its running master makes files there at will; so
    /// is the health cache (remembered check results and greetings), which `status`
    /// and every start write, as the supervisor's start of the primary may meanwhile.
    pub fn config_snapshot(&self) -> String {
        self.sh(
            "cd / && find etc/postfix* var/spool/postfix-* var/lib/postfix-* var/lib/instancectl \
             \\( -path 'var/spool/postfix*/pid' -o -path var/lib/instancectl/health \\) -prune \
             -o ! -type s -printf '%y %m %p\\n' 2>/dev/null | sort; \
             find etc/postfix* var/lib/instancectl -path var/lib/instancectl/health -prune \
             -o -type f -exec sha256sum {} + 2>/dev/null | sort",
        )
        .stdout
    }

    /// The SMTP greeting at `addr:port` inside the sandbox, or an empty string.
    pub fn banner(&self, addr: &str, port: u16) -> String {
        Shell::banner(self, addr, port)
    }

    /// Polls `cond` (a shell test run in the sandbox) until it succeeds or time runs out.
    pub fn wait_for(&self, cond: &str, timeout: Duration) -> bool {
        Shell::wait_for(self, cond, timeout)
    }

    pub fn path_in_upper(&self, path: &str) -> PathBuf {
        let (top, rest) = path.trim_start_matches('/').split_once('/').unwrap();
        self.root.path().join(top).join("upper").join(rest)
    }
}

/// Where a test runs shell scripts: a sandbox, or a machine booted with systemd
/// (tests/e2e/common/systemd.rs).
pub trait Shell {
    fn sh(&self, script: &str) -> Run;

    /// The SMTP greeting at `addr:port` inside, or an empty string.
    fn banner(&self, addr: &str, port: u16) -> String {
        self.sh(&format!(
            "exec 3<>/dev/tcp/{addr}/{port} && timeout 5 head -1 <&3"
        ))
        .stdout
        .trim()
        .to_string()
    }

    /// Polls `cond` (a shell test run inside) until it succeeds or time runs out.
    fn wait_for(&self, cond: &str, timeout: Duration) -> bool {
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
}

impl Shell for Sandbox {
    fn sh(&self, script: &str) -> Run {
        Sandbox::sh(self, script)
    }
}

/// A script that keeps 127.0.0.1:`port` bound and listening for an hour in the
/// background, as another program in an instance's way would.
pub fn occupy_port_script(port: u16) -> String {
    format!(
        "python3 -c 'import socket,time; s=socket.socket(); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
         s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(3600)' \
         </dev/null >/dev/null 2>&1 &"
    )
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

/// Where a sandbox's overlays keep their upper layers.
#[derive(Clone, Copy)]
enum Layers {
    /// Under the sandbox's directory, on the same disk file system as the lower ones.
    OnDisk,
    /// /var's on a tmpfs of its own, invisible from the host: overlayfs then reports
    /// the upper layer's device in /proc/locks, not the one stat shows.
    VarOnTmpfs,
}

impl Layers {
    fn mounts(self, root: &Path) -> String {
        let r = root.display();
        match self {
            Layers::OnDisk => overlay_mounts(root),
            Layers::VarOnTmpfs => format!(
                "mount -t tmpfs tmpfs {r}/var\nmkdir {r}/var/upper {r}/var/work\n{}",
                overlay_mounts(root)
            ),
        }
    }
}

/// The overlay mounts that make /etc and /var of a sandbox its own: the host's
/// directories are the lower layers, the upper and work directories live under
/// `root`.
pub fn overlay_mounts(root: &Path) -> String {
    let r = root.display();
    format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={r}/etc/upper,workdir={r}/etc/work /etc
mount -t overlay overlay -o lowerdir=/var,upperdir={r}/var/upper,workdir={r}/var/work /var"
    )
}

/// Shell lines that forget every instance the host's Postfix knows, and what
/// instancectl keeps about them, inside a sandbox's overlays.
pub const FORGET_INSTANCES: &str = r#"for dir in $(postconf -h multi_instance_directories 2>/dev/null) /etc/postfix-*; do
  [ -d "$dir" ] || continue
  rm -rf "$(postconf -c "$dir" -h queue_directory 2>/dev/null)" \
         "$(postconf -c "$dir" -h data_directory 2>/dev/null)" "$dir"
done
rm -rf /var/spool/postfix-* /var/lib/postfix-* /var/lib/instancectl /var/log/postfix-*.log"#;

/// Mounts a private tmpfs on /tmp. When the checkout lives under /tmp, its target
/// directory (the binaries and the sandboxes' own directories) is bound back into
/// the new /tmp at the same path, through the working directory that still names
/// the hidden one.
fn private_tmp_keeping(target: &Path) -> String {
    let t = target.display();
    if target.starts_with("/tmp") {
        format!(
            "cd {t}\nmount -t tmpfs tmpfs /tmp\nmkdir -p {t}\nmount --no-canonicalize --bind . {t}\ncd /"
        )
    } else {
        "mount -t tmpfs tmpfs /tmp".to_string()
    }
}

/// The cargo target directory the tests run from.
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// /etc/postfix as the installed package makes it: built once per package version
/// (in a throwaway namespace, by the package's own `dpkg-reconfigure postfix` on an
/// /etc/postfix without main.cf and master.cf) and kept under the target
/// directory. Sandboxes start from this copy, so what was done to the host's
/// Postfix (the README's demo, say) does not leak into the tests.
pub fn pristine_postfix_config() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_pristine_postfix_config).clone()
}

fn build_pristine_postfix_config() -> PathBuf {
    let version = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "postfix"])
        .output()
        .expect("dpkg-query");
    let version = String::from_utf8_lossy(&version.stdout).replace(['/', ' '], "_");
    assert!(!version.is_empty(), "the postfix package is not installed");
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pristine-postfix-{version}"));
    let done = base.join("etc-postfix");
    std::fs::create_dir_all(&base).unwrap();
    // Test binaries run one after another, but the threads of one binary and a
    // second cargo run may ask at once: one builds, the others wait on the lock.
    let lock = std::fs::File::create(base.join("lock")).unwrap();
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map(|held| {
            if !done.exists() {
                let work = tempfile::tempdir_in(&base).unwrap();
                for d in ["etc/upper", "etc/work", "var/upper", "var/work"] {
                    std::fs::create_dir_all(work.path().join(d)).unwrap();
                }
                let script = format!(
                    "set -e
mount --make-rprivate /
{overlays}
rm -f /etc/postfix/main.cf /etc/postfix/master.cf
DEBIAN_FRONTEND=noninteractive dpkg-reconfigure -fnoninteractive postfix
cp -a /etc/postfix {out}",
                    overlays = overlay_mounts(work.path()),
                    out = work.path().join("result").display(),
                );
                let out = Command::new("timeout")
                    .args(["120", "unshare", "-m", "-p", "-u", "-f", "--mount-proc"])
                    .args(["bash", "-c", &script])
                    .stdin(Stdio::null())
                    .output()
                    .expect("unshare");
                assert!(
                    out.status.success(),
                    "could not rebuild the package's Postfix configuration:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                std::fs::rename(work.path().join("result"), &done).unwrap();
            }
            drop(held);
        })
        .map_err(|(_, e)| e)
        .expect("lock the pristine configuration");
    done
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

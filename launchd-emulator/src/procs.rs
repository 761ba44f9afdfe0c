//! Process mechanics of the emulated launchd: spawning a job the way launchd does, signalling
//! it and its process group, and finding whatever is left below the daemon.
//!
//! launchd makes every job a session leader with a minimal environment and stdio on
//! /dev/null unless told otherwise; jobs such as Postfix's master rely on being session
//! leaders (their own setsid() then fails harmlessly), so the emulator does the same.

use crate::plist_load::JobSpec;
use nix::errno::Errno;
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Group, Pid, User};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

/// The PATH launchd gives jobs (`default environment` in `launchctl print`).
pub const DEFAULT_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// How a job's process ended, as `launchctl print` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastExit {
    Exited(i32),
    Signaled(i32),
}

impl LastExit {
    pub fn from_wait(status: WaitStatus) -> Option<(Pid, LastExit)> {
        match status {
            WaitStatus::Exited(pid, code) => Some((pid, LastExit::Exited(code))),
            WaitStatus::Signaled(pid, sig, _) => Some((pid, LastExit::Signaled(sig as i32))),
            _ => None,
        }
    }

    /// Whether launchd counts this end as a crash (KeepAlive's `Crashed` condition).
    pub fn crashed(self) -> bool {
        use Signal::*;
        match self {
            LastExit::Signaled(s) => [SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGBUS, SIGSEGV, SIGSYS]
                .iter()
                .any(|c| *c as i32 == s),
            LastExit::Exited(_) => false,
        }
    }
}

/// launchd's PATH for jobs, with the directory of this emulator's `launchctl` (built
/// next to the daemon) after it.
fn job_path() -> String {
    match std::env::current_exe() {
        Ok(exe) => match exe.parent() {
            Some(dir) => format!("{DEFAULT_PATH}:{}", dir.display()),
            None => DEFAULT_PATH.to_string(),
        },
        Err(_) => DEFAULT_PATH.to_string(),
    }
}

/// The first argument that makes `launchd-emulator` the xpcproxy trampoline of a held
/// spawn (see [`xpcproxy_exec`]).
pub const XPCPROXY_ARG: &str = "--xpcproxy-exec";

/// Exit status of a trampoline that could not exec the job's program: what launchd
/// records for a program it could not start.
const EX_CONFIG: i32 = 78;

/// Starts the job's process: its own session, launchd's environment, stdio as configured.
/// A job can run launchctl as on a Mac (where /bin/launchctl is on launchd's PATH): this
/// emulator's launchctl is found at the end of its PATH, and `LAUNCHD_EMULATOR_DIR`
/// (`state_dir`) leads it to this daemon. With a `hold`, the process is first the emulator's own xpcproxy trampoline, which
/// waits that long and then execs the program in the same process (same pid), as
/// launchd's xpcproxy does on a slow Mac.
pub fn spawn_job(spec: &JobSpec, hold: Duration, state_dir: &Path) -> io::Result<Pid> {
    let mut cmd = if hold.is_zero() {
        let mut cmd = Command::new(&spec.program);
        cmd.arg0(&spec.arguments[0]).args(&spec.arguments[1..]);
        cmd
    } else {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg0("xpcproxy")
            .arg(XPCPROXY_ARG)
            .arg(hold.as_millis().to_string())
            .arg(&spec.program)
            .args(&spec.arguments);
        cmd
    };
    cmd.env_clear()
        .env("PATH", job_path())
        .env(crate::protocol::ENV_DIR, state_dir)
        .env("XPC_SERVICE_NAME", &spec.label)
        .envs(&spec.environment);
    cmd.current_dir(spec.working_directory.as_deref().unwrap_or("/"));
    cmd.stdin(Stdio::null());
    cmd.stdout(log_file(spec.stdout_path.as_deref())?);
    cmd.stderr(log_file(spec.stderr_path.as_deref())?);
    if let Some(name) = &spec.user_name {
        let user = User::from_name(name)
            .map_err(io::Error::from)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no user {name}")))?;
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    if let Some(name) = &spec.group_name {
        let group = Group::from_name(name)
            .map_err(io::Error::from)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group {name}")))?;
        cmd.gid(group.gid.as_raw());
    }
    // SAFETY: only async-signal-safe calls (sigprocmask, setsid, close_range) run between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // The daemon blocks the signals it waits for; a job must not inherit that.
            signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            nix::unistd::setsid()?;
            // launchd closes stray descriptors. Marking them close-on-exec (rather than
            // closing them) keeps std's exec-error pipe working; failure (old kernel) is
            // harmless.
            nix::libc::syscall(
                nix::libc::SYS_close_range,
                3u32,
                u32::MAX,
                nix::libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // The daemon's reaper collects the exit status; the Child handle is not needed.
    Ok(Pid::from_raw(child.id() as i32))
}

/// The trampoline of a held spawn (`launchd-emulator --xpcproxy-exec MS PROGRAM ARGV0
/// ARGS...`): waits MS milliseconds, then replaces itself with PROGRAM, whose argv[0] is
/// ARGV0. Returns only when that fails: the exit status then is EX_CONFIG, as launchd
/// records a program it could not start.
pub fn xpcproxy_exec(args: &[String]) -> i32 {
    let [ms, program, argv0, rest @ ..] = args else {
        eprintln!("xpcproxy: expected MS PROGRAM ARGV0 [ARGS...]");
        return EX_CONFIG;
    };
    let Ok(ms) = ms.parse::<u64>() else {
        eprintln!("xpcproxy: {ms:?} is not a number of milliseconds");
        return EX_CONFIG;
    };
    // `ps` names it as it names launchd's trampoline until the exec.
    let _ = nix::sys::prctl::set_name(c"xpcproxy");
    std::thread::sleep(Duration::from_millis(ms));
    let err = Command::new(program).arg0(argv0).args(rest).exec();
    eprintln!("xpcproxy: cannot exec {program}: {err}");
    EX_CONFIG
}

/// Opens a StandardOutPath/StandardErrorPath the way launchd does: parents created,
/// appended to, never truncated, mode 0666 before the umask.
fn log_file(path: Option<&str>) -> io::Result<Stdio> {
    let Some(path) = path else {
        return Ok(Stdio::null());
    };
    if let Some(parent) = Path::new(path).parent() {
        fs::create_dir_all(parent)?;
    }
    let file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o666)
        .open(path)?;
    Ok(Stdio::from(file))
}

/// Sends `sig` to the job's process and, unless `pid_only`, to its process group.
pub fn signal_job(pid: Option<Pid>, pgid: Option<Pid>, sig: Signal, pid_only: bool) {
    if let Some(pid) = pid {
        let _ = signal::kill(pid, sig);
    }
    if !pid_only && let Some(pgid) = pgid {
        let _ = signal::killpg(pgid, sig);
    }
}

/// Whether any process is left in the group.
pub fn group_alive(pgid: Pid) -> bool {
    !matches!(signal::killpg(pgid, None), Err(Errno::ESRCH))
}

/// Whether a process with this pid exists (a zombie counts until it is reaped).
pub fn pid_exists(pid: Pid) -> bool {
    !matches!(signal::kill(pid, None), Err(Errno::ESRCH))
}

/// Live (not zombie) processes below `root`, from /proc.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let mut table = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command name: state, ppid, ...
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("");
            let Some(ppid) = fields.next().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            table.push((pid, ppid, state == "Z" || state == "X"));
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root.as_raw()];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, dead) in &table {
            if ppid == parent {
                frontier.push(pid);
                if !dead {
                    found.push(Pid::from_raw(pid));
                }
            }
        }
    }
    found
}

/// Whether /proc describes this process's pid namespace. It does not when the emulator is
/// PID 1 of a new pid namespace that kept the parent's /proc; pids read there would name
/// other processes, so they must not be signalled.
fn proc_is_ours() -> bool {
    fs::read_link("/proc/self")
        .is_ok_and(|p| p.as_os_str() == nix::unistd::getpid().to_string().as_str())
}

/// SIGKILLs everything below this process until nothing is left (bounded), as a reboot or
/// the emulator's own shutdown leaves no process behind.
pub fn kill_all_descendants() {
    if !proc_is_ours() {
        eprintln!(
            "launchd-emulator: /proc belongs to another pid namespace; only job process groups were killed"
        );
        return;
    }
    let me = nix::unistd::getpid();
    for _ in 0..250 {
        let left = descendants(me);
        if left.is_empty() {
            return;
        }
        for pid in left {
            let _ = signal::kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Darwin's strsignal text, as in `last terminating signal = Killed: 9`.
pub fn signal_description(sig: i32) -> &'static str {
    use Signal::*;
    let Ok(s) = Signal::try_from(sig) else {
        return "Unknown signal";
    };
    match s {
        SIGHUP => "Hangup",
        SIGINT => "Interrupt",
        SIGQUIT => "Quit",
        SIGILL => "Illegal instruction",
        SIGTRAP => "Trace/BPT trap",
        SIGABRT => "Abort trap",
        SIGFPE => "Floating point exception",
        SIGKILL => "Killed",
        SIGBUS => "Bus error",
        SIGSEGV => "Segmentation fault",
        SIGSYS => "Bad system call",
        SIGPIPE => "Broken pipe",
        SIGALRM => "Alarm clock",
        SIGTERM => "Terminated",
        SIGURG => "Urgent I/O condition",
        SIGSTOP => "Suspended (signal)",
        SIGTSTP => "Suspended",
        SIGCONT => "Continued",
        SIGCHLD => "Child exited",
        SIGTTIN => "Stopped (tty input)",
        SIGTTOU => "Stopped (tty output)",
        SIGIO => "I/O possible",
        SIGXCPU => "Cputime limit exceeded",
        SIGXFSZ => "Filesize limit exceeded",
        SIGVTALRM => "Virtual timer expired",
        SIGPROF => "Profiling timer expired",
        SIGWINCH => "Window size changes",
        SIGUSR1 => "User defined signal 1",
        SIGUSR2 => "User defined signal 2",
        _ => "Unknown signal",
    }
}

/// Parses launchctl kill's signal argument: `TERM`, `SIGTERM`, `-TERM`, `sigterm` or `15`.
pub fn parse_signal(arg: &str) -> Option<Signal> {
    let s = arg.strip_prefix('-').unwrap_or(arg);
    let s = if s.len() > 3 && s[..3].eq_ignore_ascii_case("sig") {
        &s[3..]
    } else {
        s
    };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    Signal::from_str(&format!("SIG{}", s.to_ascii_uppercase())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_arguments() {
        assert_eq!(parse_signal("SIGTERM"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("term"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("-KILL"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }

    #[test]
    fn crash_classification() {
        assert!(LastExit::Signaled(Signal::SIGSEGV as i32).crashed());
        assert!(!LastExit::Signaled(Signal::SIGKILL as i32).crashed());
        assert!(!LastExit::Exited(1).crashed());
    }
}

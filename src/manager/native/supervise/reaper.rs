//! Collects every child that has exited, ours or an orphan handed to us as PID 1, so
//! no zombie is left and each master's exit is seen the moment SIGCHLD arrives. It
//! also reports children that were stopped (SIGSTOP) or continued: the kernel says so
//! with the same SIGCHLD, so a stopped master is noticed without looking at it.

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {s}"));
                write!(f, "killed by {name}")
            }
        }
    }
}

/// What happened to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Exited(Exit),
    /// Stopped by a signal (SIGSTOP, SIGTSTP): it serves nobody until continued.
    Stopped,
    Continued,
}

/// Reaps every exited child and collects stop and continue reports, without blocking.
pub fn reap_all() -> Vec<(i32, Change)> {
    let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED | WaitPidFlag::WCONTINUED;
    let mut changes = Vec::new();
    loop {
        let change = match waitpid(Pid::from_raw(-1), Some(flags)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, Change::Exited(Exit::Code(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                (pid, Change::Exited(Exit::Signal(sig as i32)))
            }
            Ok(WaitStatus::Stopped(pid, _)) => (pid, Change::Stopped),
            Ok(WaitStatus::Continued(pid)) => (pid, Change::Continued),
            Ok(WaitStatus::StillAlive) | Err(_) => return changes,
            Ok(_) => continue,
        };
        changes.push((change.0.as_raw(), change.1));
    }
}

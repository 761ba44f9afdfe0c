//! Facts about a process by pid: whether it lives (a zombie does not count: it has
//! exited and only waits to be reaped) and whether it is stopped; and the one way a
//! master that will not stop is killed.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The one-letter state from /proc/PID/stat (Linux), e.g. `S`, `T`, `Z`.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may contain spaces.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// What a pid is, from one look at the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// No such process, or it has exited and only waits to be reaped.
    Gone,
    /// Stopped (SIGSTOP) or traced: it handles no signal but SIGKILL.
    Stopped,
    Running,
}

pub fn liveness(pid: i32) -> Liveness {
    if pid <= 0 || kill(Pid::from_raw(pid), None).is_err() {
        return Liveness::Gone;
    }
    match state(pid) {
        Some('Z') => Liveness::Gone,
        Some('T' | 't') => Liveness::Stopped,
        _ => Liveness::Running,
    }
}

/// The process exists and has not exited.
pub fn is_alive(pid: i32) -> bool {
    liveness(pid) != Liveness::Gone
}

/// Kills a master with its daemons: SIGKILL to its process group (the master leads
/// one: it calls setsid) and to the master itself, which a stopped or hung master
/// cannot ignore. A process already gone is no error.
pub fn kill_master(pid: i32) {
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_runs() {
        let me = std::process::id() as i32;
        assert!(is_alive(me));
        assert_eq!(liveness(me), Liveness::Running);
        assert!(!is_alive(0));
    }

    #[test]
    fn an_unreaped_child_is_not_alive() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!is_alive(pid), "a zombie counts as dead");
        drop(child);
    }
}

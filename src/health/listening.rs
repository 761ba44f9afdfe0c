//! Whether a master still holds its listening sockets, read from /proc without
//! connecting to them, and the greetings status remembers between runs.
//!
//! Every SMTP probe makes smtpd write two lines to the mail log (connect from,
//! disconnect from). A status run every minute on a host with many instances would
//! fill the log with its own visits. So status remembers what each listener answered,
//! together with the master that answered, and shows that again instead of
//! connecting, for at most [`GREETING_MAX_AGE`], while all of this holds:
//! - the same master process (pid and start time) runs, and is not stopped;
//! - it holds every listener's socket, in the LISTEN state (/proc/net/tcp and tcp6,
//!   matched to the master's open files by inode): a master that closed a listener on
//!   reload, or another process on the port, is caught;
//! - nothing waits in a socket's accept queue: a master or smtpd that stopped
//!   accepting connections leaves them there, and then the probe runs;
//! - the probe that is remembered succeeded on every listener.
//!
//! Anything else (and `--recheck`) probes again. This needs root (the master's open
//! files); otherwise every run probes, as before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::instance::Instance;
use crate::postfix::master_cf::{BindAddr, Listener};
use crate::probe::ListenerStatus;
use crate::probe::sockets::ListeningSocket;

/// A remembered greeting is shown again for at most this long; then the listener is
/// probed (two lines in the mail log per listener every five minutes at most).
const GREETING_MAX_AGE: Duration = Duration::from_secs(300);

/// Whether process `pid` holds, for every entry of `wanted`, one of its socket
/// inodes (`socket:[INODE]` links in /proc/PID/fd). It stops reading at the last one
/// found: a master holds a hundred descriptors, its listeners among the first.
fn holds_all(pid: i32, wanted: &[Vec<u64>]) -> bool {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let mut found = vec![false; wanted.len()];
    for entry in entries.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok())
        else {
            continue;
        };
        for (k, inodes) in wanted.iter().enumerate() {
            found[k] |= inodes.contains(&inode);
        }
        if found.iter().all(|f| *f) {
            return true;
        }
    }
    false
}

/// Whether a socket bound to `addr` serves `listener` (a wildcard listener binds the
/// unspecified address).
fn serves(listener: &Listener, addr: &SocketAddr) -> bool {
    addr.port() == listener.port
        && match listener.addr {
            BindAddr::Any => addr.ip().is_unspecified(),
            BindAddr::Ip(ip) => addr.ip() == ip,
        }
}

/// The master's start time (field 22 of /proc/PID/stat) and whether it is stopped,
/// traced or a zombie.
fn start_and_stopped(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let stopped = matches!(fields.first(), Some(&("T" | "t" | "Z" | "X")));
    Some((fields.get(19)?.parse().ok()?, stopped))
}

/// What status remembers about an instance's listeners.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    master_pid: i32,
    master_start: u64,
    /// When they were probed, in seconds since the epoch.
    probed_at: u64,
    listeners: Vec<ListenerStatus>,
}

/// Where an instance's greetings are remembered, beside its check result.
pub fn greetings_file(dir: &Path, instance: &Instance) -> PathBuf {
    let name = if instance.is_primary() {
        "primary"
    } else {
        &instance.name
    };
    dir.join(format!("{name}.greetings.json"))
}

/// The remembered listener statuses, when they may stand for a probe now (see the
/// module's doc), marked as remembered.
pub fn recall(
    path: &Path,
    instance: &Instance,
    master_pid: i32,
    sockets: &[ListeningSocket],
) -> Option<Vec<ListenerStatus>> {
    let remembered: Remembered = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let (start, stopped) = start_and_stopped(master_pid)?;
    if stopped
        || remembered.master_pid != master_pid
        || remembered.master_start != start
        || crate::output::unix_now().saturating_sub(remembered.probed_at)
            > GREETING_MAX_AGE.as_secs()
        || remembered.listeners.len() != instance.listeners.len()
    {
        return None;
    }
    let mut wanted = Vec::new();
    let mut out = Vec::new();
    for (listener, seen) in instance.listeners.iter().zip(remembered.listeners) {
        let same =
            seen.ok && seen.address == listener.to_string() && seen.service == listener.service;
        // The idle LISTEN sockets on the listener's address: the master must hold one.
        let inodes: Vec<u64> = sockets
            .iter()
            .filter(|s| s.queued == 0 && serves(listener, &s.addr))
            .map(|s| s.inode)
            .collect();
        if !same || inodes.is_empty() {
            return None;
        }
        wanted.push(inodes);
        out.push(ListenerStatus {
            remembered: true,
            ..seen
        });
    }
    holds_all(master_pid, &wanted).then_some(out)
}

/// Remembers listener statuses that all answered, with the master that served them.
/// A cache file, not a change to the host: it bypasses the runner, and failing to
/// write it only costs the next run a probe.
pub fn remember(path: &Path, master_pid: i32, listeners: &[ListenerStatus]) {
    if listeners.is_empty() || !listeners.iter().all(|l| l.ok) {
        let _ = std::fs::remove_file(path);
        return;
    }
    let Some((master_start, false)) = start_and_stopped(master_pid) else {
        return;
    };
    let entry = Remembered {
        master_pid,
        master_start,
        probed_at: crate::output::unix_now(),
        listeners: listeners.to_vec(),
    };
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        crate::runner::atomic_write(path, &text, 0o644)
    };
    if let Err(e) = write() {
        tracing::debug!(path = %path.display(), error = %e, "cannot remember the greetings");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listener_is_served_by_the_unspecified_address() {
        let listener = |addr: BindAddr| Listener {
            addr,
            port: 25,
            service: "smtp/inet".into(),
            command: "smtpd".into(),
        };
        let any: SocketAddr = "0.0.0.0:25".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:25".parse().unwrap();
        assert!(serves(&listener(BindAddr::Any), &any));
        assert!(!serves(&listener(BindAddr::Any), &lo));
        let ip = BindAddr::Ip("127.0.0.1".parse().unwrap());
        assert!(serves(&listener(ip), &lo));
        assert!(!serves(&listener(ip), &"127.0.0.1:26".parse().unwrap()));
    }
}

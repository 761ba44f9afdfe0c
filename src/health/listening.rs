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

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::instance::Instance;
use crate::postfix::master_cf::{BindAddr, Listener};
use crate::probe::ListenerStatus;

/// A remembered greeting is shown again for at most this long; then the listener is
/// probed (two lines in the mail log per listener every five minutes at most).
pub const GREETING_MAX_AGE: Duration = Duration::from_secs(300);

/// One TCP socket in the LISTEN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSocket {
    pub addr: SocketAddr,
    /// Connections the kernel accepted that no process has taken yet.
    pub accept_queue: u64,
}

/// Every listening TCP socket of this network namespace, by inode.
pub fn listening_sockets() -> HashMap<u64, ListenSocket> {
    let mut out = HashMap::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            out.extend(parse_proc_net_tcp(&text));
        }
    }
    out
}

/// The LISTEN sockets of a /proc/net/tcp or tcp6 table. For a listening socket the
/// kernel shows the accept queue's length as rx_queue.
fn parse_proc_net_tcp(text: &str) -> Vec<(u64, ListenSocket)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                return None;
            }
            let addr = parse_addr(fields[1])?;
            let accept_queue = u64::from_str_radix(fields[4].split_once(':')?.1, 16).ok()?;
            let inode = fields[9].parse().ok()?;
            Some((inode, ListenSocket { addr, accept_queue }))
        })
        .collect()
}

/// `0100007F:4E21` (IPv4) or 32 hex digits and a port (IPv6): the address is printed
/// as the kernel holds it, 32-bit words in the machine's byte order.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<[u8; 4]> = (0..ip.len() / 8)
        .map(|k| {
            u32::from_str_radix(ip.get(k * 8..k * 8 + 8)?, 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [w] => IpAddr::V4(Ipv4Addr::from(*w)),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (k, w) in [a, b, c, d].iter().enumerate() {
                bytes[k * 4..k * 4 + 4].copy_from_slice(*w);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
    sockets: &HashMap<u64, ListenSocket>,
) -> Option<Vec<ListenerStatus>> {
    let remembered: Remembered = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let (start, stopped) = start_and_stopped(master_pid)?;
    if stopped
        || remembered.master_pid != master_pid
        || remembered.master_start != start
        || now_secs().saturating_sub(remembered.probed_at) > GREETING_MAX_AGE.as_secs()
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
            .filter(|(_, s)| s.accept_queue == 0 && serves(listener, &s.addr))
            .map(|(inode, _)| *inode)
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
        probed_at: now_secs(),
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

    // /proc/net/tcp and tcp6 of a sandbox with postfix-a on 127.0.0.1:2501 (one
    // connection waiting in its accept queue), a master on *:25 over IPv6, and an
    // established connection (Linux 6.1, x86_64).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:09C5 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 41807 1 0000000000000000 100 0 0 10 0
   1: 0100007F:09C5 0100007F:B1A4 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41900 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0A29 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41901 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_sockets_with_their_accept_queues() {
        let v4 = parse_proc_net_tcp(TCP);
        assert_eq!(
            v4,
            vec![(
                41807,
                ListenSocket {
                    addr: "127.0.0.1:2501".parse().unwrap(),
                    accept_queue: 1
                }
            )]
        );
        let v6 = parse_proc_net_tcp(TCP6);
        assert_eq!(v6[0].1.addr, "[::]:25".parse().unwrap());
        assert_eq!(v6[1].1.addr, "[::1]:2601".parse().unwrap());
        assert_eq!(v6[1].1.accept_queue, 0);
    }

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

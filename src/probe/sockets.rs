//! Who else listens on an instance's address and port. With SO_REUSEPORT another
//! program can listen on the very address and port an instance's master listens on,
//! and the kernel then hands it some of the instance's connections: the SMTP probes
//! may still see the instance's greeting while mail goes elsewhere. The host's
//! listening TCP sockets come from /proc/net/tcp and /proc/net/tcp6 (Linux), their
//! owners from the socket links in /proc/PID/fd; a socket that no process of the
//! master's process group holds is foreign. Elsewhere nothing is found.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::postfix::master_cf::{BindAddr, Listener};

/// The `st` value of a listening socket in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";

/// A listening TCP socket of this network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListeningSocket {
    pub addr: SocketAddr,
    pub inode: u64,
    /// Connections waiting in its accept queue (`rx_queue` of a listening socket).
    pub queued: u32,
}

/// The listening sockets of this network namespace (empty where there is no /proc).
pub fn listening() -> Vec<ListeningSocket> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(text) = std::fs::read_to_string(file) {
            out.extend(parse(&text, v6));
        }
    }
    out
}

/// Parses /proc/net/tcp (or tcp6, `v6`): `sl local_address rem_address st
/// tx_queue:rx_queue ... inode`, addresses in hex as the kernel holds them (each
/// 32-bit word in host byte order), the port and the queues in hex.
pub fn parse(text: &str, v6: bool) -> Vec<ListeningSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.get(3) != Some(&TCP_LISTEN) {
                return None;
            }
            let (ip, port) = words.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = parse_ip(ip, v6)?;
            let inode = words.get(9)?.parse().ok()?;
            let queued = u32::from_str_radix(words.get(4)?.split_once(':')?.1, 16).ok()?;
            Some(ListeningSocket {
                addr: SocketAddr::new(ip, port),
                inode,
                queued,
            })
        })
        .collect()
}

fn parse_ip(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Vec<[u8; 4]> = (0..hex.len() / 8)
        .map(|i| {
            u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect::<Option<_>>()?;
    match (v6, words.as_slice()) {
        (false, [a]) => Some(IpAddr::V4(Ipv4Addr::from(*a))),
        (true, [a, b, c, d]) => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(w);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// A process that holds a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub pgid: Option<i32>,
    pub name: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} `{}`", self.pid, self.name)
    }
}

/// The processes that hold each of `inodes`, from the `socket:[INODE]` links in
/// /proc/PID/fd (root sees every process's).
pub fn holders(inodes: &BTreeSet<u64>) -> BTreeMap<u64, Vec<Holder>> {
    let mut out: BTreeMap<u64, Vec<Holder>> = BTreeMap::new();
    if inodes.is_empty() {
        return out;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let held: BTreeSet<u64> = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|target| socket_inode(&target.to_string_lossy()))
            .filter(|inode| inodes.contains(inode))
            .collect();
        if held.is_empty() {
            continue;
        }
        let holder = Holder {
            pid,
            pgid: nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
                .ok()
                .map(|p| p.as_raw()),
            name: std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default(),
        };
        for inode in held {
            out.entry(inode).or_default().push(holder.clone());
        }
    }
    out
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The sockets listening where `listener` listens: the same address and port, or any
/// address on its port for a wildcard listener.
fn on(listener: &Listener, sockets: &[ListeningSocket]) -> Vec<ListeningSocket> {
    sockets
        .iter()
        .filter(|s| {
            s.addr.port() == listener.port
                && match listener.addr {
                    BindAddr::Any => true,
                    BindAddr::Ip(ip) => s.addr.ip() == ip,
                }
        })
        .copied()
        .collect()
}

/// Another program listening on one of an instance's listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// The instance's listener, e.g. `127.0.0.1:2525`.
    pub listener: String,
    pub socket: SocketAddr,
    /// Who holds the socket (empty when no process of this pid namespace does).
    pub holders: Vec<Holder>,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match self.holders.as_slice() {
            [] => "a program in another pid namespace".to_string(),
            holders => holders
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        write!(f, "{} is also listened on by {who}", self.listener)?;
        if self.socket.to_string() != self.listener {
            write!(f, " (on {})", self.socket)?;
        }
        Ok(())
    }
}

/// The sockets on `listeners` that the master `master_pid` (with its process group:
/// the master calls setsid, so its children share its pid as their group) does not
/// hold. `None` for the master: the instance does not run, and every socket on its
/// listeners is someone else's.
pub fn foreign(
    listeners: &[Listener],
    master_pid: Option<i32>,
    sockets: &[ListeningSocket],
) -> Vec<Foreign> {
    let matches: Vec<(&Listener, Vec<ListeningSocket>)> = listeners
        .iter()
        .map(|l| (l, on(l, sockets)))
        .filter(|(_, found)| !found.is_empty())
        .collect();
    // A running master binds each listener itself (and fails when it cannot), so
    // one socket on a listener is its own: only a second one needs its owner looked
    // up, which costs a walk through /proc.
    let suspects: BTreeSet<u64> = matches
        .iter()
        .filter(|(_, found)| master_pid.is_none() || found.len() > 1)
        .flat_map(|(_, found)| found.iter().map(|s| s.inode))
        .collect();
    let owners = holders(&suspects);
    let ours = |h: &Holder| Some(h.pid) == master_pid || (h.pgid.is_some() && h.pgid == master_pid);
    let mut out = Vec::new();
    for (listener, found) in matches {
        for socket in found.iter().filter(|s| suspects.contains(&s.inode)) {
            let holders = owners.get(&socket.inode).cloned().unwrap_or_default();
            if !holders.iter().any(ours) {
                out.push(Foreign {
                    listener: listener.to_string(),
                    socket: socket.addr,
                    holders,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = include_str!("../../tests/data/proc-net-tcp.txt");
    const TCP6: &str = include_str!("../../tests/data/proc-net-tcp6.txt");

    #[test]
    fn parses_the_recorded_tables() {
        let v4 = parse(TCP, false);
        assert_eq!(
            v4,
            [
                ListeningSocket {
                    addr: "127.0.0.1:2525".parse().unwrap(),
                    inode: 765987,
                    queued: 1,
                },
                ListeningSocket {
                    addr: "127.0.0.1:2525".parse().unwrap(),
                    inode: 765734,
                    queued: 0,
                },
            ],
            "connections (st 01) are not listeners"
        );
        let v6 = parse(TCP6, true);
        assert_eq!(v6[0].addr, "[::]:2527".parse().unwrap());
        assert_eq!(v6[1].addr, "[::1]:2526".parse().unwrap());
        assert_eq!(v6[1].inode, 765830);
    }

    fn listener(text: &str) -> Listener {
        let entries = crate::postfix::master_cf::parse(&format!("{text} inet n - y - - smtpd\n"));
        crate::postfix::master_cf::listeners(&entries, &Default::default())
            .into_iter()
            .next()
            .unwrap()
    }

    #[test]
    fn a_socket_this_process_holds_is_foreign_to_a_master_it_is_not() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let l = listener(&addr.to_string());
        let sockets = listening();
        let mine = on(&l, &sockets);
        assert_eq!(mine.len(), 1, "{sockets:?}");
        // Not running: every socket there is someone else's, and we are named.
        let found = foreign(std::slice::from_ref(&l), None, &sockets);
        assert_eq!(found.len(), 1, "{found:?}");
        let me = std::process::id() as i32;
        assert!(found[0].holders.iter().any(|h| h.pid == me), "{found:?}");
        assert!(found[0].to_string().contains(&format!("pid {me}")));
        // Held by the master itself: not foreign.
        assert!(foreign(std::slice::from_ref(&l), Some(me), &sockets).is_empty());
        // A master that runs and has the only socket there is not checked further.
        assert!(foreign(std::slice::from_ref(&l), Some(1), &mine).is_empty());
        // Two sockets on a running master's listener: the one it does not hold is foreign.
        let twice = [
            mine[0],
            ListeningSocket {
                inode: u64::MAX,
                ..mine[0]
            },
        ];
        let found = foreign(std::slice::from_ref(&l), Some(me), &twice);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].socket, addr);
        assert!(found[0].holders.is_empty());
    }
}

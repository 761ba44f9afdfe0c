//! The listening TCP sockets of this network namespace, from /proc/net/tcp and
//! /proc/net/tcp6: whether a listener is bound, and how many connections wait in its
//! accept queue. Reading them says nothing on the wire, so Postfix logs nothing: the
//! supervisor looks here every interval and speaks SMTP only when something looks
//! wrong (a listener gone, connections that nobody accepts).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::postfix::master_cf::{BindAddr, Listener};

/// The kernel's state number for LISTEN (include/net/tcp_states.h).
const LISTEN: &str = "0A";

/// Listening sockets, each with the length of its accept queue.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    listening: HashMap<SocketAddr, u32>,
}

impl Table {
    /// Reads both files; a missing file (no IPv6 in the kernel) is an empty one.
    pub fn read() -> std::io::Result<Table> {
        let v4 = std::fs::read_to_string("/proc/net/tcp")?;
        let v6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
        Ok(Table::parse(&v4, &v6))
    }

    pub fn parse(tcp: &str, tcp6: &str) -> Table {
        let mut listening = HashMap::new();
        for line in tcp.lines().chain(tcp6.lines()) {
            if let Some((addr, queued)) = parse_line(line) {
                listening.insert(addr, queued);
            }
        }
        Table { listening }
    }

    /// The accept queue of the socket `listener` binds, or None when nothing listens
    /// there. A wildcard listener is bound on 0.0.0.0 or [::].
    pub fn accept_queue(&self, listener: &Listener) -> Option<u32> {
        let candidates: Vec<IpAddr> = match listener.addr {
            BindAddr::Any => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
            BindAddr::Ip(ip) => vec![ip],
        };
        candidates
            .into_iter()
            .filter_map(|ip| self.listening.get(&SocketAddr::new(ip, listener.port)))
            .copied()
            .max()
    }
}

/// One line: `sl local_address rem_address st tx_queue:rx_queue ...`, kept when its
/// state is LISTEN. For a listening socket, rx_queue is its accept queue's length.
fn parse_line(line: &str) -> Option<(SocketAddr, u32)> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    let state = fields.nth(1)?;
    if state != LISTEN {
        return None;
    }
    let queued = fields.next()?.split_once(':')?.1;
    let (ip, port) = local.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some((
        SocketAddr::new(parse_ip(ip)?, port),
        u32::from_str_radix(queued, 16).ok()?,
    ))
}

/// The kernel prints an address as 32-bit words in host byte order, each `%08X`.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<[u8; 4]>> = (0..hex.len() / 8)
        .map(|i| {
            let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(word.to_ne_bytes())
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Table {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/proc_net/");
        Table::parse(
            &std::fs::read_to_string(format!("{dir}tcp")).unwrap(),
            &std::fs::read_to_string(format!("{dir}tcp6")).unwrap(),
        )
    }

    fn listener(addr: BindAddr, port: u16) -> Listener {
        Listener {
            addr,
            port,
            service: "smtp/inet".into(),
            command: "smtpd".into(),
        }
    }

    #[test]
    fn recorded_listeners_and_their_accept_queues() {
        let table = recorded();
        let ip = |s: &str| BindAddr::Ip(s.parse().unwrap());
        assert_eq!(
            table.accept_queue(&listener(ip("127.0.0.1"), 2525)),
            Some(2)
        );
        assert_eq!(table.accept_queue(&listener(ip("::1"), 2526)), Some(0));
        assert_eq!(table.accept_queue(&listener(BindAddr::Any, 25)), Some(0));
        // Connected sockets are not listeners, and nothing listens on these.
        // Only the wildcard listens on port 25: 127.0.0.1:25 of its own is not bound.
        assert_eq!(table.accept_queue(&listener(ip("127.0.0.1"), 25)), None);
        assert_eq!(table.accept_queue(&listener(ip("127.0.0.1"), 2526)), None);
        assert_eq!(table.accept_queue(&listener(ip("127.0.0.1"), 60228)), None);
        assert_eq!(table.listening.len(), 3, "{table:?}");
    }
}

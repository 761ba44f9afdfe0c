//! The listening TCP sockets of this network namespace: whether a listener is bound,
//! and how many connections wait in its accept queue. Asking says nothing on the wire,
//! so Postfix logs nothing: the supervisor looks here every interval and speaks SMTP
//! only when something looks wrong (a listener gone, connections nobody accepts).
//!
//! It asks the kernel over netlink (sock_diag, the interface `ss` uses) for listening
//! sockets only, which walks the listening table alone. /proc/net/tcp and tcp6 give
//! the same facts but walk the whole established-connection table on every read
//! (about 3 ms for the pair here, even in an empty namespace): they are the fallback
//! when netlink is refused.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use crate::postfix::master_cf::{BindAddr, Listener};
use crate::probe::sockets;

/// Listening sockets, each with the length of its accept queue.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    listening: HashMap<SocketAddr, u32>,
}

impl Table {
    /// Asks netlink once; reads /proc/net/tcp and tcp6 when netlink fails.
    pub fn read() -> std::io::Result<Table> {
        let mut table = Table::default();
        Reader::default().read(&mut table)?;
        Ok(table)
    }

    /// Reads both files; a missing tcp6 (no IPv6 in the kernel) is an empty one.
    fn read_proc() -> std::io::Result<Table> {
        let v4 = std::fs::read_to_string("/proc/net/tcp")?;
        let v6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
        Ok(Table::parse(&v4, &v6))
    }

    pub fn parse(tcp: &str, tcp6: &str) -> Table {
        let listening = sockets::parse(tcp, false)
            .into_iter()
            .chain(sockets::parse(tcp6, true))
            .map(|s| (s.addr, s.queued))
            .collect();
        Table { listening }
    }

    /// The accept queue of the socket `listener` binds, or None when nothing listens
    /// there. A wildcard listener is bound on 0.0.0.0 or [::].
    pub fn accept_queue(&self, listener: &Listener) -> Option<u32> {
        let queue = |ip: IpAddr| {
            self.listening
                .get(&SocketAddr::new(ip, listener.port))
                .copied()
        };
        match listener.addr {
            // None < Some: either family's socket will do, the longer queue counts.
            BindAddr::Any => {
                queue(Ipv4Addr::UNSPECIFIED.into()).max(queue(Ipv6Addr::UNSPECIFIED.into()))
            }
            BindAddr::Ip(ip) => queue(ip),
        }
    }
}

/// Reads the table again and again on one netlink socket into one buffer: the prober
/// reads it every interval, and a socket and a 32 KiB buffer each time were most of
/// what an idle interval cost. It keeps the last answer's bytes, so that an answer
/// that did not change (the usual one: the same sockets, nothing waiting) is known
/// as such without being parsed or looked at instance by instance.
#[derive(Default)]
pub struct Reader {
    /// Only the IPv4 listening sockets are asked for (each family's dump walks the
    /// kernel's whole listening hash table, busy or not).
    ipv4_only: bool,
    socket: Option<OwnedFd>,
    datagram: Vec<u8>,
    /// The datagrams of the last answer, back to back, and where each ends.
    last: Vec<u8>,
    last_ends: Vec<usize>,
    answer: Vec<u8>,
    answer_ends: Vec<usize>,
}

/// Whether a read found the table as the read before it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Changed,
    Unchanged,
}

impl Reader {
    /// A reader that asks only for the address families `listeners` can be bound
    /// in: IPv4 alone when each has an IPv4 address of its own (a wildcard listener
    /// may be bound on [::]).
    pub fn for_listeners<'a>(listeners: impl IntoIterator<Item = &'a Listener>) -> Reader {
        Reader {
            ipv4_only: listeners
                .into_iter()
                .all(|l| matches!(l.addr, BindAddr::Ip(IpAddr::V4(_)))),
            ..Reader::default()
        }
    }

    /// Brings `table` up to date: from netlink, or from /proc/net/tcp and tcp6 when
    /// netlink fails (the socket is opened again on the next read). `Unchanged` only
    /// when netlink gave the very bytes of the read before, which `table` holds.
    pub fn read(&mut self, table: &mut Table) -> std::io::Result<Read> {
        match self.netlink() {
            Ok(()) if self.answer == self.last && !self.last_ends.is_empty() => {
                return Ok(Read::Unchanged);
            }
            Ok(()) => {
                let mut listening = HashMap::new();
                let mut start = 0;
                let parsed = self.answer_ends.iter().try_for_each(|&end| {
                    netlink::parse(&self.answer[start..end], &mut listening).map(|_| start = end)
                });
                if parsed.is_ok() {
                    std::mem::swap(&mut self.answer, &mut self.last);
                    std::mem::swap(&mut self.answer_ends, &mut self.last_ends);
                    table.listening = listening;
                    return Ok(Read::Changed);
                }
            }
            Err(_) => {}
        }
        self.socket = None;
        self.last.clear();
        self.last_ends.clear();
        *table = Table::read_proc()?;
        Ok(Read::Changed)
    }

    /// Asks for both families' listening sockets; the datagrams land in `answer`.
    fn netlink(&mut self) -> std::io::Result<()> {
        let fd = match &self.socket {
            Some(fd) => fd.as_raw_fd(),
            None => self.socket.insert(netlink::open()?).as_raw_fd(),
        };
        if self.datagram.is_empty() {
            self.datagram = vec![0u8; 32 * 1024];
        }
        self.answer.clear();
        self.answer_ends.clear();
        let families: &[u8] = if self.ipv4_only {
            &[netlink::AF_INET]
        } else {
            &[netlink::AF_INET, netlink::AF_INET6]
        };
        netlink::listening(fd, &mut self.datagram, families, |datagram| {
            self.answer.extend_from_slice(datagram);
            self.answer_ends.push(self.answer.len());
        })
    }
}

/// sock_diag over netlink (linux/inet_diag.h, linux/sock_diag.h, linux/netlink.h).
mod netlink {
    use super::*;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;
    const IPPROTO_TCP: u8 = 6;
    const TCP_LISTEN: u32 = 10;
    /// struct nlmsghdr.
    const HEADER: usize = 16;
    /// struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid.
    const REQUEST: usize = 8 + 48;
    /// struct inet_diag_msg: family, state, timer, retrans, inet_diag_sockid (sport,
    /// dport, src[16], dst[16], if, cookie[2]), expires, rqueue, ...
    const MSG_SPORT: usize = 4;
    const MSG_SRC: usize = 8;
    const MSG_RQUEUE: usize = 56;
    const MSG_LEN: usize = 72;

    /// A dump request for the listening TCP sockets of one address family.
    pub fn request(family: u8) -> [u8; HEADER + REQUEST] {
        let mut m = [0u8; HEADER + REQUEST];
        m[0..4].copy_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        // Sequence number and port id 0; then the request: family, protocol, no
        // extensions, states; any socket id.
        m[HEADER] = family;
        m[HEADER + 1] = IPPROTO_TCP;
        m[HEADER + 4..HEADER + 8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
        m
    }

    /// Whether a datagram ended the dump.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Parsed {
        More,
        Done,
    }

    /// Adds the sockets of one datagram of the dump to `into`.
    pub fn parse(datagram: &[u8], into: &mut HashMap<SocketAddr, u32>) -> std::io::Result<Parsed> {
        let bad = || std::io::Error::other("malformed sock_diag answer");
        let mut rest = datagram;
        while rest.len() >= HEADER {
            let len = u32::from_ne_bytes(rest[0..4].try_into().map_err(|_| bad())?) as usize;
            let kind = u16::from_ne_bytes(rest[4..6].try_into().map_err(|_| bad())?);
            if len < HEADER || len > rest.len() {
                return Err(bad());
            }
            let body = &rest[HEADER..len];
            match kind {
                NLMSG_DONE => return Ok(Parsed::Done),
                NLMSG_ERROR => {
                    let code = i32::from_ne_bytes(
                        body.get(0..4)
                            .ok_or_else(bad)?
                            .try_into()
                            .map_err(|_| bad())?,
                    );
                    return Err(std::io::Error::from_raw_os_error(-code));
                }
                SOCK_DIAG_BY_FAMILY if body.len() >= MSG_LEN => {
                    let port = u16::from_be_bytes([body[MSG_SPORT], body[MSG_SPORT + 1]]);
                    let src = &body[MSG_SRC..MSG_SRC + 16];
                    let ip = match body[0] {
                        AF_INET => IpAddr::from(<[u8; 4]>::try_from(&src[..4]).map_err(|_| bad())?),
                        AF_INET6 => IpAddr::from(<[u8; 16]>::try_from(src).map_err(|_| bad())?),
                        _ => return Err(bad()),
                    };
                    let queued = u32::from_ne_bytes(
                        body[MSG_RQUEUE..MSG_RQUEUE + 4]
                            .try_into()
                            .map_err(|_| bad())?,
                    );
                    into.insert(SocketAddr::new(ip, port), queued);
                }
                _ => return Err(bad()),
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        Ok(Parsed::More)
    }

    pub fn open() -> std::io::Result<OwnedFd> {
        Ok(socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?)
    }

    /// Dumps the listening sockets of `families`, handing each datagram of the
    /// answers to `each` (the last of each family holds its NLMSG_DONE).
    pub fn listening(
        fd: std::os::fd::RawFd,
        datagram: &mut [u8],
        families: &[u8],
        mut each: impl FnMut(&[u8]),
    ) -> std::io::Result<()> {
        let kernel = NetlinkAddr::new(0, 0);
        for &family in families {
            sendto(fd, &request(family), &kernel, MsgFlags::empty())?;
            loop {
                let n = recv(fd, datagram, MsgFlags::empty())?;
                let done = is_done(&datagram[..n]);
                each(&datagram[..n]);
                if done {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether a datagram ends a dump: it holds NLMSG_DONE or NLMSG_ERROR (an error
    /// ends it too, and parsing it reports the error).
    fn is_done(datagram: &[u8]) -> bool {
        let mut rest = datagram;
        while rest.len() >= HEADER {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if kind == NLMSG_DONE || kind == NLMSG_ERROR || len < HEADER {
                return true;
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        datagram.is_empty()
    }
}

/// One line: `sl local_address rem_address st tx_queue:rx_queue ...`, kept when its
/// state is LISTEN. For a listening socket, rx_queue is its accept queue's length.
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

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

    fn recorded_netlink() -> Table {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/proc_net/");
        let mut listening = HashMap::new();
        for family in ["inet", "inet6"] {
            let text = std::fs::read_to_string(format!("{dir}sock_diag_{family}.hex")).unwrap();
            let mut done = false;
            for line in text.lines() {
                let bytes: Vec<u8> = (0..line.len() / 2)
                    .map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                done = netlink::parse(&bytes, &mut listening).unwrap() == netlink::Parsed::Done;
            }
            assert!(done, "the {family} dump did not end");
        }
        Table { listening }
    }

    /// The request is what the recording sent (see tests/data/proc_net/README.md).
    #[test]
    fn the_netlink_request_asks_for_listening_tcp_sockets() {
        let request = netlink::request(2);
        assert_eq!(request.len(), 72);
        assert_eq!(&request[4..8], &[20, 0, 0x01, 0x03]);
        assert_eq!(&request[16..24], &[2, 6, 0, 0, 0x00, 0x04, 0, 0]);
    }

    /// One reader, read again and again as the prober does, follows a listener of
    /// this test's own: bound, a connection waiting, gone.
    #[test]
    fn a_reused_reader_sees_each_change() {
        let mut table = Table::default();
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let ours = listener(BindAddr::Ip("127.0.0.1".parse().unwrap()), port);
        let mut reader = Reader::for_listeners([&ours]);
        assert!(reader.ipv4_only);
        // Other tests may open sockets meanwhile, but each of these reads follows a
        // change of this test's own: none can find the answer unchanged.
        assert_eq!(reader.read(&mut table).unwrap(), Read::Changed);
        assert_eq!(table.accept_queue(&ours), Some(0));
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(reader.read(&mut table).unwrap(), Read::Changed);
        assert_eq!(table.accept_queue(&ours), Some(1));
        // Not drop(server): a test running beside this one may fork meanwhile, and
        // its child holds the listener open until it execs. shutdown(2) on a
        // listening socket stops it listening at once, whoever holds it.
        nix::sys::socket::shutdown(server.as_raw_fd(), nix::sys::socket::Shutdown::Both).unwrap();
        assert_eq!(reader.read(&mut table).unwrap(), Read::Changed);
        assert_eq!(table.accept_queue(&ours), None);
        // Whatever the next read says, the table it leaves is right.
        reader.read(&mut table).unwrap();
        assert_eq!(table.accept_queue(&ours), None);
    }

    #[test]
    fn ipv6_is_asked_for_only_when_a_listener_may_be_bound_there() {
        let v4 = listener(BindAddr::Ip("127.0.0.1".parse().unwrap()), 25);
        let v6 = listener(BindAddr::Ip("::1".parse().unwrap()), 25);
        let any = listener(BindAddr::Any, 25);
        assert!(Reader::for_listeners([&v4, &v4]).ipv4_only);
        assert!(!Reader::for_listeners([&v4, &v6]).ipv4_only);
        assert!(!Reader::for_listeners([&any]).ipv4_only);
        assert!(!Reader::default().ipv4_only);
    }

    #[test]
    fn netlink_and_proc_agree_on_the_recorded_sockets() {
        assert_eq!(recorded_netlink(), recorded());
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

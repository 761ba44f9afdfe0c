//! master.cf entries, and the network listeners an instance serves: which addresses
//! and ports its inet services bind, once inet_interfaces and master_service_disable
//! are taken into account.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

/// One service line of master.cf (continuation lines joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterEntry {
    pub service: String,
    pub kind: String,
    pub command: String,
    pub args: Vec<String>,
}

impl MasterEntry {
    pub fn id(&self) -> String {
        format!("{}/{}", self.service, self.kind)
    }
}

/// Parses master.cf text, or `postconf -M` output, which has the same form.
pub fn parse(text: &str) -> Vec<MasterEntry> {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => lines.push(line.to_string()),
        }
    }
    lines
        .iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            Some(MasterEntry {
                service: fields[0].to_string(),
                kind: fields[1].to_string(),
                command: fields[7].to_string(),
                args: fields[8..].iter().map(|s| s.to_string()).collect(),
            })
        })
        .collect()
}

pub fn read(config_dir: &Path) -> std::io::Result<Vec<MasterEntry>> {
    Ok(parse(&std::fs::read_to_string(
        config_dir.join("master.cf"),
    )?))
}

/// Where a listener binds: one address, or every address of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BindAddr {
    Any,
    Ip(IpAddr),
}

impl BindAddr {
    /// Every address of the host (`*`), or every IPv6 one (`[::]`).
    fn is_wildcard(&self) -> bool {
        match self {
            BindAddr::Any => true,
            BindAddr::Ip(ip) => ip.is_unspecified(),
        }
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Any => write!(f, "*"),
            BindAddr::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            BindAddr::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// An inet service that accepts connections on an address and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Listener {
    pub addr: BindAddr,
    pub port: u16,
    /// The master.cf entry, e.g. `smtp/inet`.
    pub service: String,
    /// The daemon behind it, e.g. `smtpd` or `postscreen`.
    pub command: String,
}

impl Listener {
    /// Two listeners collide when they bind the same port on an overlapping address.
    pub fn collides_with(&self, other: &Listener) -> bool {
        self.port == other.port
            && (self.addr == other.addr || self.addr.is_wildcard() || other.addr.is_wildcard())
    }

    /// The address to connect to for a probe: a wildcard is probed on loopback, an
    /// IPv6-only wildcard on IPv6's.
    pub fn probe_addr(&self) -> std::net::SocketAddr {
        let ip = match self.addr {
            BindAddr::Any => IpAddr::from([127, 0, 0, 1]),
            BindAddr::Ip(IpAddr::V6(ip)) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
            BindAddr::Ip(ip) => ip,
        };
        std::net::SocketAddr::new(ip, self.port)
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addr, self.port)
    }
}

/// The main.cf settings that decide listeners, expanded.
#[derive(Debug, Clone, Default)]
pub struct ListenSettings {
    pub inet_interfaces: String,
    pub inet_protocols: String,
    pub master_service_disable: String,
}

/// The listeners of an instance: its enabled inet entries bound on inet_interfaces,
/// or on the host named in the service field.
pub fn listeners(entries: &[MasterEntry], settings: &ListenSettings) -> Vec<Listener> {
    let disabled: Vec<&str> = settings
        .master_service_disable
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .collect();
    let interfaces = interface_addrs(&settings.inet_interfaces, &settings.inet_protocols);
    let mut out = Vec::new();
    for entry in entries.iter().filter(|e| e.kind == "inet") {
        if disabled.iter().any(|d| *d == "inet" || *d == entry.id()) {
            continue;
        }
        let (host, port_name) = split_service(&entry.service);
        let Some(port) = port_number(port_name) else {
            continue;
        };
        let addrs = match host {
            Some(h) => vec![parse_bind(h)],
            None => interfaces.clone(),
        };
        for addr in addrs {
            out.push(Listener {
                addr,
                port,
                service: entry.id(),
                command: entry.command.clone(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

fn split_service(service: &str) -> (Option<&str>, &str) {
    match service.rsplit_once(':') {
        Some((host, port)) => (Some(host), port),
        None => (None, service),
    }
}

fn parse_bind(host: &str) -> BindAddr {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => BindAddr::Ip(ip),
        Err(_) if host == "localhost" => BindAddr::Ip(IpAddr::from([127, 0, 0, 1])),
        Err(_) => BindAddr::Any,
    }
}

fn interface_addrs(inet_interfaces: &str, protocols: &str) -> Vec<BindAddr> {
    let ipv6 = protocols.contains("all") || protocols.contains("ipv6");
    let ipv4 = protocols.is_empty() || protocols.contains("all") || protocols.contains("ipv4");
    // With IPv6 alone the master binds [::] only, where 127.0.0.1 does not answer.
    let every_address = if ipv6 && !ipv4 {
        BindAddr::Ip(Ipv6Addr::UNSPECIFIED.into())
    } else {
        BindAddr::Any
    };
    let mut out = Vec::new();
    for word in inet_interfaces
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
    {
        match word {
            "all" => return vec![every_address],
            "loopback-only" | "localhost" => {
                if ipv4 {
                    out.push(BindAddr::Ip(IpAddr::from([127, 0, 0, 1])));
                }
                if ipv6 {
                    out.push(BindAddr::Ip("::1".parse().unwrap()));
                }
            }
            other => out.push(parse_bind(other)),
        }
    }
    if out.is_empty() {
        out.push(every_address);
    }
    out
}

/// A master.cf port field: a number or a service name from /etc/services.
fn port_number(name: &str) -> Option<u16> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    match name {
        "smtp" => Some(25),
        "submission" => Some(587),
        "smtps" | "submissions" => Some(465),
        _ => services_file_port(name),
    }
}

fn services_file_port(name: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split('#').next()?.split_whitespace();
        let service = words.next()?;
        let (port, proto) = words.next()?.split_once('/')?;
        let aliases: Vec<&str> = words.collect();
        (proto == "tcp" && (service == name || aliases.contains(&name)))
            .then(|| port.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "\
# comment
smtp      inet  n       -       y       -       -       smtpd
#submission inet n       -       y       -       -       smtpd
127.0.0.1:10026 inet n  -       n       -       -       smtpd
  -o smtpd_client_restrictions=
pickup    unix  n       -       y       60      1       pickup
[::1]:2525 inet n - n - - smtpd
";

    #[test]
    fn entries_with_continuations() {
        let entries = parse(MASTER);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1].id(), "127.0.0.1:10026/inet");
        assert_eq!(entries[1].args, vec!["-o", "smtpd_client_restrictions="]);
        assert_eq!(entries[2].command, "pickup");
    }

    fn settings(interfaces: &str, disable: &str) -> ListenSettings {
        ListenSettings {
            inet_interfaces: interfaces.into(),
            inet_protocols: "ipv4".into(),
            master_service_disable: disable.into(),
        }
    }

    #[test]
    fn listeners_follow_interfaces_and_hosts() {
        let entries = parse(MASTER);
        let found = listeners(&entries, &settings("127.0.1.1, 127.0.1.2", ""));
        let shown: Vec<String> = found.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "127.0.0.1:10026",
                "127.0.1.1:25",
                "127.0.1.2:25",
                "[::1]:2525"
            ]
        );
    }

    #[test]
    fn disabled_inet_has_no_listeners() {
        let entries = parse(MASTER);
        assert!(listeners(&entries, &settings("all", "inet")).is_empty());
        let some = listeners(&entries, &settings("all", "smtp/inet"));
        assert_eq!(some.len(), 2);
    }

    #[test]
    fn ipv6_only_wildcard_is_probed_on_ipv6_loopback() {
        let settings = |protocols: &str| ListenSettings {
            inet_interfaces: "all".into(),
            inet_protocols: protocols.into(),
            master_service_disable: String::new(),
        };
        let entries = parse("smtp inet n - n - - smtpd\n");
        let v6 = listeners(&entries, &settings("ipv6"));
        assert_eq!(v6[0].to_string(), "[::]:25");
        assert_eq!(v6[0].probe_addr().to_string(), "[::1]:25");
        assert!(v6[0].addr.is_wildcard());
        let both = listeners(&entries, &settings("all"));
        assert_eq!(both[0].probe_addr().to_string(), "127.0.0.1:25");
        assert!(v6[0].collides_with(&both[0]));
    }

    #[test]
    fn wildcard_collides_with_specific_address() {
        let entries = parse("smtp inet n - y - - smtpd\n");
        let any = listeners(&entries, &settings("all", ""));
        let one = listeners(&entries, &settings("127.0.1.1", ""));
        let other_port = listeners(&parse("2525 inet n - y - - smtpd\n"), &settings("all", ""));
        assert!(any[0].collides_with(&one[0]));
        assert!(!one[0].collides_with(&other_port[0]));
        assert_eq!(any[0].to_string(), "*:25");
    }
}

//! Checks on what the user typed, done before anything on the host is touched. Each
//! error says what was wrong and how to write it instead.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::Result;
use crate::error::{AddressProblem, InputError};
use crate::roles::Role;

const NAME_MAX: usize = 40;

/// An instance name as postmulti requires it (`postfix-` prefix) and as file names,
/// launchd labels and shells can carry it safely.
pub fn instance_name(name: &str) -> Result<()> {
    let Some(suffix) = name.strip_prefix("postfix-") else {
        return Err(InputError::NameWithoutPrefix {
            name: name.into(),
            suggestion: sanitized(name),
        }
        .into());
    };
    let length = name.chars().count();
    if length > NAME_MAX {
        return Err(InputError::NameTooLong {
            name: name.into(),
            length,
            max: NAME_MAX,
        }
        .into());
    }
    // The part after "postfix-" becomes the first label of the instance's myhostname
    // (postfix-in: in.<host>), and Postfix refuses a label that ends with '-'
    // ("valid_hostname: misplaced hyphen"), although postmulti takes the name.
    if !is_safe_word(suffix) || suffix.ends_with('-') {
        return Err(InputError::NameCharacters {
            name: name.into(),
            suggestion: sanitized(suffix),
        }
        .into());
    }
    Ok(())
}

/// A postmulti group name.
pub fn group_name(group: &str) -> Result<()> {
    if group.len() > 32 || !is_safe_word(group) {
        return Err(InputError::GroupName {
            group: group.into(),
        }
        .into());
    }
    Ok(())
}

fn is_safe_word(word: &str) -> bool {
    let mut chars = word.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn sanitized(word: &str) -> String {
    let cleaned: String = word
        .trim_start_matches("postfix")
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    if cleaned.is_empty() {
        "in".to_string()
    } else {
        cleaned.to_string()
    }
}

/// An address and port an instance listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenSpec {
    pub ip: IpAddr,
    pub port: u16,
}

impl ListenSpec {
    /// The master.cf service name for this address and port.
    pub fn service_name(&self) -> String {
        match self.ip {
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
            IpAddr::V4(ip) => format!("{ip}:{}", self.port),
        }
    }
}

impl From<ListenSpec> for std::net::SocketAddr {
    fn from(spec: ListenSpec) -> Self {
        std::net::SocketAddr::new(spec.ip, spec.port)
    }
}

impl std::fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.service_name())
    }
}

/// An address as typed, `HOST[:PORT]` or `[HOST]:PORT`, split but not yet judged.
pub struct HostPort<'a> {
    pub host: &'a str,
    /// The port, when one was given: already checked to be 1 to 65535.
    pub port: Option<u16>,
    /// Whether the host was written in brackets, the only way an IPv6 address can
    /// be followed by a port.
    pub bracketed: bool,
}

/// Splits `HOST[:PORT]` or `[HOST]:PORT`. Text with more than one `:` and no
/// brackets is taken whole as the host (a bare IPv6 address); the caller decides
/// whether it accepts one.
pub fn host_and_port(text: &str) -> std::result::Result<HostPort<'_>, AddressProblem> {
    let (host, port, bracketed) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(AddressProblem::MissingBracket)?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(AddressProblem::NoPortAfterBracket)?,
            ),
        };
        (host, port, true)
    } else if text.matches(':').count() > 1 {
        (text, None, false)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p), false),
            None => (text, None, false),
        }
    };
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(AddressProblem::Port(p.into())),
        })
        .transpose()?;
    Ok(HostPort {
        host,
        port,
        bracketed,
    })
}

/// `ADDR[:PORT]`: an IPv4 address, or an IPv6 address in brackets when a port
/// follows; the port defaults to 25.
pub fn listen(text: &str) -> Result<ListenSpec> {
    let bad = |problem| InputError::Listen {
        text: text.into(),
        problem,
    };
    let HostPort { host, port, .. } = host_and_port(text).map_err(bad)?;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| bad(AddressProblem::NotAnIp(host.into())))?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(bad(AddressProblem::NotListenable(ip)).into());
    }
    Ok(ListenSpec {
        ip,
        port: port.unwrap_or(25),
    })
}

/// The listen addresses of an instance: each checked, the role's default when there
/// are none, none twice.
pub fn listen_list(words: &[String], role: Role) -> Result<Vec<ListenSpec>> {
    let mut specs = words
        .iter()
        .map(|w| listen(w))
        .collect::<Result<Vec<_>>>()?;
    if specs.is_empty() {
        specs.extend(role.default_listen().map(listen).transpose()?);
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = specs.iter().find(|l| !seen.insert(**l)) {
        return Err(InputError::ListenTwice {
            listen: (*dup).into(),
        }
        .into());
    }
    Ok(specs)
}

/// Parameters that `--set` must not change: they tie the instance to its
/// directories, to postmulti's bookkeeping, or have an option of their own.
const RESERVED: [(&str, &str); 14] = [
    (
        "config_directory",
        "it is fixed by postmulti when the instance is created",
    ),
    (
        "queue_directory",
        "it is fixed by postmulti when the instance is created",
    ),
    (
        "data_directory",
        "it is fixed by postmulti when the instance is created",
    ),
    ("command_directory", "it must match the installed Postfix"),
    ("daemon_directory", "it must match the installed Postfix"),
    ("meta_directory", "it must match the installed Postfix"),
    ("shlib_directory", "it must match the installed Postfix"),
    ("mail_owner", "it must match the owner of the queue files"),
    (
        "setgid_group",
        "it must match the group of the postdrop binaries",
    ),
    (
        "multi_instance_name",
        "use `instancectl create` with another name",
    ),
    ("multi_instance_group", "use --group"),
    (
        "multi_instance_enable",
        "use `instancectl enable` or `instancectl disable`",
    ),
    ("multi_instance_directories", "postmulti maintains it"),
    ("inet_interfaces", "use --listen ADDR[:PORT]"),
];

/// `PARAM=VALUE`: a parameter this Postfix knows (`defaults` is `postconf -d`), a
/// value on one line.
pub fn setting(text: &str, defaults: &BTreeMap<String, String>) -> Result<(String, String)> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| InputError::SetWithoutValue { text: text.into() })?;
    let (name, value) = (name.trim(), value.trim());
    parameter(name, defaults)?;
    if value.contains(['\n', '\r', '\0']) {
        return Err(InputError::SetMultiline { name: name.into() }.into());
    }
    Ok((name.to_string(), value.to_string()))
}

/// A parameter that may be set or removed: spelled as Postfix spells parameters, one
/// of `known` (`postconf -d`, perhaps with what main.cf defines), and not one that
/// ties the instance to its directories or has a command of its own.
pub fn parameter(name: &str, known: &BTreeMap<String, String>) -> Result<()> {
    if let Some((_, why)) = RESERVED.iter().find(|(n, _)| *n == name) {
        return Err(InputError::ReservedParameter {
            name: name.into(),
            why,
        }
        .into());
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(InputError::ParameterSpelling { name: name.into() }.into());
    }
    if !known.contains_key(name) {
        return Err(InputError::UnknownParameter { name: name.into() }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(instance_name("postfix-in").is_ok());
        assert!(instance_name("postfix-out2").is_ok());
        for bad in [
            "in",
            "postfix.in",
            "postfix-",
            "postfix-In",
            "postfix-a/b",
            "postfix--x",
            "postfix-a b",
            "postfix-a;rm",
            "postfix-x-",
            "postfix-in-",
        ] {
            let err = instance_name(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let long = format!("postfix-{}", "a".repeat(40));
        assert!(
            instance_name(&long)
                .unwrap_err()
                .to_string()
                .contains("48 characters long; use at most 40")
        );
        // Lengths are counted in characters, as the message says, not in bytes.
        let accented = format!("postfix-{}", "é".repeat(20));
        let err = instance_name(&accented).unwrap_err().to_string();
        assert!(!err.contains("characters long"), "{err}");
        let long_accented = format!("postfix-{}", "é".repeat(33));
        let err = instance_name(&long_accented).unwrap_err().to_string();
        assert!(err.contains("41 characters long"), "{err}");
        assert!(instance_name("postfix-a-b").is_ok());
        assert!(
            instance_name("postfix.in")
                .unwrap_err()
                .to_string()
                .contains("postfix-in")
        );
    }

    #[test]
    fn each_mistake_is_its_own_variant_holding_what_was_typed() {
        let input = |r: Result<_>| r.map(|_| ()).unwrap_err().into_input();
        assert!(matches!(
            input(instance_name("in")),
            InputError::NameWithoutPrefix { name, suggestion } if name == "in" && suggestion == "in"
        ));
        assert!(matches!(
            input(instance_name("postfix-x-")),
            InputError::NameCharacters { .. }
        ));
        assert!(matches!(
            input(listen("127.0.0.1:x").map(drop)),
            InputError::Listen { text, problem: AddressProblem::Port(port) }
                if text == "127.0.0.1:x" && port == "x"
        ));
        assert!(matches!(
            input(listen("[::1").map(drop)),
            InputError::Listen {
                problem: AddressProblem::MissingBracket,
                ..
            }
        ));
        assert!(matches!(
            input(listen("0.0.0.0").map(drop)),
            InputError::Listen { problem: AddressProblem::NotListenable(ip), .. } if ip.is_unspecified()
        ));
        let twice = ["127.0.0.1:2525".to_string(), "127.0.0.1:2525".to_string()];
        assert!(matches!(
            input(listen_list(&twice, Role::Plain).map(drop)),
            InputError::ListenTwice { listen } if listen.port() == 2525
        ));
        let defaults: BTreeMap<String, String> =
            [("message_size_limit".to_string(), "10240000".to_string())].into();
        assert!(matches!(
            input(setting("queue_directory=/tmp", &defaults).map(drop)),
            InputError::ReservedParameter { name, .. } if name == "queue_directory"
        ));
        assert!(matches!(
            input(setting("message_size_limt=5", &defaults).map(drop)),
            InputError::UnknownParameter { name } if name == "message_size_limt"
        ));
        assert!(matches!(
            input(setting("noequals", &defaults).map(drop)),
            InputError::SetWithoutValue { text } if text == "noequals"
        ));
    }

    #[test]
    fn groups() {
        assert!(group_name("mta").is_ok());
        assert!(group_name("-").is_err());
        assert!(group_name("MTA").is_err());
        assert!(group_name("").is_err());
    }

    #[test]
    fn listen_forms() {
        let spec = listen("127.0.1.1").unwrap();
        assert_eq!((spec.ip.to_string(), spec.port), ("127.0.1.1".into(), 25));
        assert_eq!(listen("127.0.0.1:10026").unwrap().port, 10026);
        assert_eq!(listen("[::1]:2525").unwrap().service_name(), "[::1]:2525");
        assert_eq!(listen("::1").unwrap().port, 25);
        for bad in [
            "localhost",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "127.0.0.1:x",
            "0.0.0.0",
            "[::1",
            "[::1]2525",
            "300.1.1.1",
            "",
        ] {
            assert!(listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings() {
        let defaults: BTreeMap<String, String> =
            [("message_size_limit".to_string(), "10240000".to_string())].into();
        assert_eq!(
            setting("message_size_limit = 5", &defaults).unwrap(),
            ("message_size_limit".into(), "5".into())
        );
        assert!(setting("message_size_limt=5", &defaults).is_err());
        assert!(setting("queue_directory=/tmp", &defaults).is_err());
        assert!(setting("message_size_limit=5\nrelayhost=x", &defaults).is_err());
        assert!(setting("noequals", &defaults).is_err());
    }
}

//! Checks on what the user typed, done before anything on the host is touched. Each
//! error says what was wrong and how to write it instead.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::roles::Role;

const NAME_MAX: usize = 40;

/// An instance name as postmulti requires it (`postfix-` prefix) and as file names,
/// launchd labels and shells can carry it safely.
pub fn instance_name(name: &str) -> Result<()> {
    let Some(suffix) = name.strip_prefix("postfix-") else {
        return Err(Error::bad_input(format!(
            "instance name {name:?} must start with \"postfix-\" (postmulti requires it), \
             for example postfix-{}",
            sanitized(name)
        )));
    };
    let length = name.chars().count();
    if length > NAME_MAX {
        return Err(Error::bad_input(format!(
            "instance name {name:?} is {length} characters long; use at most {NAME_MAX}"
        )));
    }
    // The part after "postfix-" becomes the first label of the instance's myhostname
    // (postfix-in: in.<host>), and Postfix refuses a label that ends with '-'
    // ("valid_hostname: misplaced hyphen"), although postmulti takes the name.
    if !is_safe_word(suffix) || suffix.ends_with('-') {
        return Err(Error::bad_input(format!(
            "instance name {name:?} may only use lower-case letters, digits and '-' after \
             \"postfix-\", starting and ending with a letter or digit, for example \
             postfix-{}",
            sanitized(suffix)
        )));
    }
    Ok(())
}

/// A postmulti group name.
pub fn group_name(group: &str) -> Result<()> {
    if group.len() > 32 || !is_safe_word(group) {
        return Err(Error::bad_input(format!(
            "group {group:?} must be 1 to 32 lower-case letters, digits or '-', starting \
             with a letter or digit (for example mta)"
        )));
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

impl std::fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.service_name())
    }
}

/// `ADDR[:PORT]`: an IPv4 address, or an IPv6 address in brackets when a port
/// follows; the port defaults to 25.
pub fn listen(text: &str) -> Result<ListenSpec> {
    let hint =
        "write --listen ADDR[:PORT], for example 127.0.1.1 or 192.0.2.10:25 or [2001:db8::1]:2525";
    let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| Error::bad_input(format!("--listen {text:?}: missing ']'; {hint}")))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                Error::bad_input(format!(
                    "--listen {text:?}: expected ':PORT' after ']'; {hint}"
                ))
            })?),
        };
        (addr, port)
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        }
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        Error::bad_input(format!(
            "--listen {text:?}: {addr:?} is not an IP address (host names are not accepted, \
             since Postfix binds addresses); {hint}"
        ))
    })?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(Error::bad_input(format!(
            "--listen {text:?}: {ip} cannot be listened on; name one address of this host"
        )));
    }
    let port = match port {
        None => 25,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Error::bad_input(format!(
                    "--listen {text:?}: port {p:?} must be a number from 1 to 65535"
                )));
            }
        },
    };
    Ok(ListenSpec { ip, port })
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
        return Err(Error::bad_input(format!("--listen {dup} is given twice")));
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
    let (name, value) = text.split_once('=').ok_or_else(|| {
        Error::bad_input(format!(
            "--set {text:?}: expected PARAM=VALUE, for example --set message_size_limit=20480000"
        ))
    })?;
    let (name, value) = (name.trim(), value.trim());
    parameter(name, defaults)?;
    if value.contains(['\n', '\r', '\0']) {
        return Err(Error::bad_input(format!(
            "--set {name}: the value contains a line break or NUL character; main.cf values \
             are one line (separate list items with commas or spaces)"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

/// A parameter that may be set or removed: spelled as Postfix spells parameters, one
/// of `known` (`postconf -d`, perhaps with what main.cf defines), and not one that
/// ties the instance to its directories or has a command of its own.
pub fn parameter(name: &str, known: &BTreeMap<String, String>) -> Result<()> {
    if let Some((_, why)) = RESERVED.iter().find(|(n, _)| *n == name) {
        return Err(Error::bad_input(format!(
            "{name}: this parameter cannot be set this way: {why}"
        )));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::bad_input(format!(
            "{name:?} is not a Postfix parameter name (lower-case letters, digits and '_')"
        )));
    }
    if !known.contains_key(name) {
        return Err(Error::bad_input(format!(
            "{name}: this Postfix does not know a parameter named {name:?} \
             (see `postconf -d` for the list; check the spelling)"
        )));
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

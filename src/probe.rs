//! Is an instance serving? Probes of its inet listeners, each as its service speaks
//! (an SMTP greeting, a TLS handshake, a bare connection), for create and start
//! (wait until serving), the supervisor and status. The wire protocols are in
//! [`smtp`].

pub mod smtp;
pub mod sockets;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::PostfixError;
use crate::error::Result;
use crate::instance::Instance;
use crate::postfix::master_cf::{self, Listener};

/// Waits until the instance's master runs and every listener greets with 220.
/// On timeout the error lists what was still missing. Another program listening on
/// one of its addresses and ports beside the master (SO_REUSEPORT) is an error too:
/// the greetings may be the instance's while some connections go to that program.
pub fn wait_until_serving(instance: &Instance, timeout: Duration) -> Result<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = not_serving(instance);
        match (instance.running_master(), missing.is_empty()) {
            (Some(pid), true) => {
                let others =
                    sockets::foreign(&instance.listeners, Some(pid), &sockets::listening());
                if others.is_empty() {
                    return Ok(pid);
                }
                return Err(PostfixError::ForeignListener {
                    instance: instance.display_name().to_string(),
                    others: others.iter().map(|f| f.to_string()).collect(),
                }
                .into());
            }
            (pid, _) if Instant::now() >= deadline => {
                let mut reasons = missing;
                if pid.is_none() {
                    let file = instance.pid_file().unwrap_or_default();
                    reasons.insert(
                        0,
                        format!("no master process ({} names none alive)", file.display()),
                    );
                }
                return Err(PostfixError::NotServing {
                    instance: instance.display_name().to_string(),
                    name: instance.name.clone(),
                    seconds: timeout.as_secs(),
                    reasons,
                }
                .into());
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The listeners that do not answer, each with its error.
pub fn not_serving(instance: &Instance) -> Vec<String> {
    probe_listeners(instance, Duration::from_millis(500))
        .into_iter()
        .filter(|l| !l.ok)
        .map(|l| format!("{}: {}", l.address, l.error.unwrap_or_default()))
        .collect()
}

/// Probes every listener of an instance at once, each as its service speaks (a
/// greeting from smtpd and postscreen, a connection from TLS-wrapped smtpd and other
/// services), each giving up after `timeout`. What the supervisor asks to decide that
/// a running master hangs.
pub fn probe_listeners(instance: &Instance, timeout: Duration) -> Vec<ListenerStatus> {
    let kinds = probe_kinds(instance);
    std::thread::scope(|s| {
        let probes: Vec<_> = instance
            .listeners
            .iter()
            .zip(kinds)
            .map(|(l, kind)| s.spawn(move || probe_listener(l, kind, timeout)))
            .collect();
        probes
            .into_iter()
            .map(|p| p.join().expect("listener probe panicked"))
            .collect()
    })
}

/// How each of an instance's listeners is probed, from its master.cf entry.
pub fn probe_kinds(instance: &Instance) -> Vec<ProbeKind> {
    let args: BTreeMap<String, Vec<String>> = master_cf::read(&instance.config_directory)
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.id(), e.args))
        .collect();
    instance
        .listeners
        .iter()
        .map(|l| probe_kind(l, args.get(&l.service).map(Vec::as_slice)))
        .collect()
}

/// How a listener is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    /// Connect and read the 220 greeting (smtpd, postscreen).
    Smtp,
    /// smtpd with `smtpd_tls_wrappermode = yes` (port 465): the greeting comes only
    /// after a TLS handshake, so the probe sends a ClientHello and waits for the
    /// server's handshake record.
    TlsWrapper,
    /// Another inet service (qmqpd, a spawn(8) policy server, ...): connect only.
    Connect,
}

/// One inet listener and how it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerStatus {
    /// As configured: `127.0.0.1:25`, `[::1]:25`, `*:25` for every address.
    pub address: String,
    /// The address connected to (a wildcard is probed on 127.0.0.1).
    pub probed: String,
    /// The master.cf service, e.g. `smtp/inet`.
    pub service: String,
    /// Its daemon, e.g. `smtpd`.
    pub command: String,
    pub probe: ProbeKind,
    pub ok: bool,
    /// The greeting's last line, e.g. `220 in.example.org ESMTP Postfix`.
    pub banner: Option<String>,
    /// Connect to greeting (to the server's first TLS record for a TLS-wrapped
    /// service, to the connection for others), in milliseconds.
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// Not probed this time: what the same master answered in an earlier run, shown
    /// again while it still holds the listener (see health::listening).
    #[serde(default)]
    pub remembered: bool,
}

fn probe_kind(listener: &Listener, args: Option<&[String]>) -> ProbeKind {
    let wrapper = args.is_some_and(|a| {
        a.concat()
            .replace([' ', '{', '}'], "")
            .contains("smtpd_tls_wrappermode=yes")
    });
    match listener.command.as_str() {
        "smtpd" if wrapper => ProbeKind::TlsWrapper,
        "smtpd" | "postscreen" => ProbeKind::Smtp,
        _ => ProbeKind::Connect,
    }
}

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Probes one listener, giving up after `timeout`.
pub fn probe_listener(listener: &Listener, kind: ProbeKind, timeout: Duration) -> ListenerStatus {
    let addr = listener.probe_addr();
    let mut status = ListenerStatus {
        address: listener.to_string(),
        probed: addr.to_string(),
        service: listener.service.clone(),
        command: listener.command.clone(),
        probe: kind,
        ok: false,
        banner: None,
        latency_ms: None,
        error: None,
        remembered: false,
    };
    match kind {
        ProbeKind::Smtp => {
            // postscreen's pregreet test sends "220-" and holds the rest back for
            // seconds; its first line already proves it serves.
            let first_line = listener.command == "postscreen";
            match smtp::probe_until(addr, timeout, first_line) {
                Ok(banner) => {
                    status.ok = true;
                    status.latency_ms = Some(millis(banner.latency));
                    status.banner = Some(banner.text);
                }
                Err(e) => status.error = Some(e),
            }
        }
        ProbeKind::TlsWrapper => match smtp::probe_tls(addr, timeout) {
            Ok(latency) => {
                status.ok = true;
                status.latency_ms = Some(millis(latency));
            }
            Err(e) => status.error = Some(e),
        },
        ProbeKind::Connect => {
            let started = Instant::now();
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => {
                    status.ok = true;
                    status.latency_ms = Some(millis(started.elapsed()));
                }
                Err(e) => status.error = Some(e.to_string()),
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str, port: u16, command: &str) -> Listener {
        let entries = master_cf::parse(&format!("{addr}:{port} inet n - y - - {command}\n"));
        master_cf::listeners(&entries, &Default::default())
            .into_iter()
            .next()
            .unwrap()
    }

    #[test]
    fn an_instance_that_never_comes_up_is_named_with_where_to_look() {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance {
            name: "postfix-in".into(),
            group: None,
            enabled: true,
            config_directory: dir.path().join("etc"),
            queue_directory: Some(dir.path().join("spool")),
            data_directory: Some(dir.path().join("lib")),
            myhostname: None,
            listeners: Vec::new(),
            record: None,
            broken: None,
        };
        let err = wait_until_serving(&instance, Duration::ZERO).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("postfix-in did not come up within 0 s: no master process"));
        assert!(text.contains("`instancectl logs postfix-in`"), "{text}");
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn wrapper_mode_and_other_services_are_not_asked_for_a_greeting() {
        let l = listener("127.0.0.1", 465, "smtpd");
        let args: Vec<String> = ["-o", "smtpd_tls_wrappermode=yes"]
            .map(String::from)
            .to_vec();
        assert_eq!(probe_kind(&l, Some(&args)), ProbeKind::TlsWrapper);
        let braces: Vec<String> = ["{", "-o", "smtpd_tls_wrappermode", "=", "yes", "}"]
            .map(String::from)
            .to_vec();
        assert_eq!(probe_kind(&l, Some(&braces)), ProbeKind::TlsWrapper);
        assert_eq!(probe_kind(&l, None), ProbeKind::Smtp);
        let q = listener("127.0.0.1", 628, "qmqpd");
        assert_eq!(probe_kind(&q, None), ProbeKind::Connect);
    }

    #[test]
    fn probe_reports_refusal() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        drop(socket);
        let l = listener("127.0.0.1", port, "smtpd");
        let status = probe_listener(&l, ProbeKind::Smtp, Duration::from_secs(1));
        assert!(!status.ok);
        assert!(status.error.unwrap().contains("refused"));
    }
}

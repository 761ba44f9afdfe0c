//! What `status` and `relay show` say about an instance's relay: the relay host, TLS,
//! the SASL user, whether credentials are present, and the last delivery problem.
//! Files only, no processes, so it is cheap enough to run for every instance. The
//! password is never read into the summary.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::{MapFiles, Provider, RelayHost, TlsLevel, map_sources};
use crate::instance::Instance;
use crate::postfix::main_cf::MainCf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelaySummary {
    /// relayhost as main.cf has it, e.g. `[smtp.gmail.com]:587`; `None`: no relay.
    pub relay_host: Option<String>,
    /// The provider preset whose host this is (`custom` for any other).
    pub provider: Option<String>,
    /// How TLS is used, e.g. "STARTTLS, certificate verified (secure)".
    pub tls: Option<String>,
    /// The SASL user the password map holds for the relay host (root only).
    pub sasl_user: Option<String>,
    /// SASL is on and the password map has an entry for the relay host.
    pub credentials_present: bool,
    /// Why the credentials may not work although present, or could not be checked.
    pub credentials_note: Option<String>,
    /// How many sender rewrites (smtp_generic_maps entries) apply.
    pub sender_rewrites: usize,
    /// The newest deferral reason in the queue, with Postfix's and the server's words
    /// (e.g. "SASL authentication failed; server ... said: 535 5.7.8 ...").
    pub last_delivery_problem: Option<String>,
    /// How many seconds ago that deferral happened.
    pub last_delivery_problem_age_secs: Option<u64>,
    /// How many messages wait in the deferred queue (each has a defer log).
    pub deferred_messages: u64,
}

impl RelaySummary {
    /// Lines for people, as `relay show` prints them.
    pub fn lines(&self) -> Vec<String> {
        let Some(host) = &self.relay_host else {
            return vec!["relay host: none (mail is delivered directly)".into()];
        };
        let mut lines = vec![format!(
            "relay host: {host} ({})",
            self.provider.as_deref().unwrap_or("custom")
        )];
        if let Some(tls) = &self.tls {
            lines.push(format!("TLS: {tls}"));
        }
        let creds = match (self.credentials_present, &self.sasl_user) {
            (true, Some(user)) => format!("present (user {user})"),
            (true, None) => "present".to_string(),
            (false, _) => "MISSING".to_string(),
        };
        lines.push(format!("credentials: {creds}"));
        if let Some(note) = &self.credentials_note {
            lines.push(format!("  note: {note}"));
        }
        lines.push(format!("sender rewrites: {}", self.sender_rewrites));
        if let Some(problem) = &self.last_delivery_problem {
            let age = self
                .last_delivery_problem_age_secs
                .map(|s| format!("{s} s ago, "))
                .unwrap_or_default();
            lines.push(format!(
                "last delivery problem ({age}{} message(s) deferred): {problem}",
                self.deferred_messages
            ));
        }
        lines
    }
}

/// The relay summary of one instance.
pub fn summary(instance: &Instance) -> RelaySummary {
    let main_cf = MainCf::read(&instance.config_directory).unwrap_or_default();
    let get = |k: &str| main_cf.get(k).unwrap_or("").trim().to_string();
    let relayhost = get("relayhost");
    if relayhost.is_empty() {
        return RelaySummary::default();
    }
    let parsed = RelayHost::from_relayhost(&relayhost);
    let mut out = RelaySummary {
        relay_host: Some(relayhost.clone()),
        provider: Some(
            parsed
                .as_ref()
                .map(Provider::recognize)
                .unwrap_or(Provider::Custom)
                .name(),
        ),
        tls: Some(tls_description(
            &get("smtp_tls_security_level"),
            &get("smtp_tls_wrappermode"),
        )),
        ..RelaySummary::default()
    };
    let deferrals = instance
        .queue_directory
        .as_deref()
        .map(defer_logs)
        .unwrap_or_default();
    out.deferred_messages = deferrals.count;
    if let Some((time, reason)) = deferrals.newest {
        out.last_delivery_problem = Some(reason);
        out.last_delivery_problem_age_secs = SystemTime::now()
            .duration_since(time)
            .ok()
            .map(|d| d.as_secs());
    }
    out.sender_rewrites = map_sources(&get("smtp_generic_maps"))
        .iter()
        .map(|p| super::read_generic(p).len())
        .sum();

    if get("smtp_sasl_auth_enable") != "yes" {
        out.credentials_note = Some("SASL authentication is off (smtp_sasl_auth_enable)".into());
        return out;
    }
    let maps_value = get("smtp_sasl_password_maps");
    let sources = map_sources(&maps_value);
    let Some(source) = sources.first() else {
        out.credentials_note = Some(format!(
            "smtp_sasl_password_maps names no password file ({maps_value:?})"
        ));
        return out;
    };
    let db_type = maps_value
        .rsplit_once(':')
        .map(|(t, _)| t.rsplit(':').next().unwrap_or(t).to_string())
        .unwrap_or_default();
    let key = parsed.map(|h| h.relayhost()).unwrap_or(relayhost);
    let index = MapFiles::new(Path::new("/"), &db_type).index_files(source);
    // Opened only to learn whether it can be read: credentials_user reads it into a
    // buffer that is wiped.
    match std::fs::File::open(source) {
        Ok(_) => {
            out.sasl_user = super::credentials_user(source, &key);
            out.credentials_present = out.sasl_user.is_some();
            if !out.credentials_present {
                out.credentials_note = Some(format!(
                    "{} has no entry for {key}: Postfix would send without authenticating",
                    source.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            out.credentials_present = file_len(source) > 0;
            out.credentials_note = Some(format!(
                "only root can read {} (as it should be); run as root to check its entry",
                source.display()
            ));
        }
        Err(e) => {
            out.credentials_note = Some(format!("{}: {e}", source.display()));
            return out;
        }
    }
    if let Some(note) = index_problem(source, &index) {
        out.credentials_present = false;
        out.credentials_note = Some(note);
    } else if let Some(loose) = [source.clone()]
        .iter()
        .chain(index.iter())
        .find(|p| mode_of(p).is_some_and(|m| m & 0o077 != 0))
    {
        out.credentials_note = Some(format!(
            "{} is readable by others than its owner (mode {:04o}); chmod 600 it",
            loose.display(),
            mode_of(loose).unwrap_or(0)
        ));
    }
    out
}

fn tls_description(level: &str, wrapper: &str) -> String {
    let start = if wrapper == "yes" {
        "TLS from the first byte"
    } else {
        "STARTTLS"
    };
    match TlsLevel::parse(level) {
        Some(TlsLevel::Secure) => format!("{start}, certificate verified ({level})"),
        Some(TlsLevel::Encrypt) => format!("{start}, certificate NOT verified (encrypt)"),
        None if level.is_empty() || level == "may" || level == "none" => format!(
            "not required (smtp_tls_security_level = {}): the password may travel in clear",
            if level.is_empty() { "default" } else { level }
        ),
        None => format!("smtp_tls_security_level = {level}"),
    }
}

/// A missing index, or one older than its source (postmap not run since the change).
pub(super) fn index_problem(source: &Path, index: &[PathBuf]) -> Option<String> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let source_time = modified(source)?;
    if index.is_empty() {
        return None;
    }
    match index
        .iter()
        .map(|p| modified(p))
        .collect::<Option<Vec<SystemTime>>>()
    {
        None => Some(format!(
            "{} is not indexed (no {}): run postmap",
            source.display(),
            index[0].display()
        )),
        Some(times) if times.iter().any(|t| *t < source_time) => Some(format!(
            "{} changed after it was indexed: run postmap {}",
            source.display(),
            source.display()
        )),
        Some(_) => None,
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[derive(Default)]
struct Deferrals {
    count: u64,
    /// When the newest deferral happened, and its reason.
    newest: Option<(SystemTime, String)>,
}

/// Postfix keeps one "defer" log per deferred message in the queue directory, with
/// `reason=` lines (readable by root): how many there are, and the newest reason.
fn defer_logs(queue_directory: &Path) -> Deferrals {
    let mut count = 0;
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![queue_directory.join("defer")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            count += 1;
            if let Ok(time) = meta.modified()
                && newest.as_ref().is_none_or(|(t, _)| time > *t)
            {
                newest = Some((time, entry.path()));
            }
        }
    }
    let newest = newest.and_then(|(time, path)| {
        let text = std::fs::read_to_string(path).ok()?;
        Some((time, defer_reason(&text)?))
    });
    Deferrals { count, newest }
}

/// The last `reason=` of a defer log, with its `status=` (the DSN code) in front.
fn defer_reason(text: &str) -> Option<String> {
    let mut status = None;
    let mut reason = None;
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("status=") {
            status = Some(s.trim().to_string());
        } else if let Some(r) = line.strip_prefix("reason=") {
            reason = Some(r.trim().to_string());
        }
    }
    let reason = reason?;
    Some(match status {
        Some(s) if !reason.starts_with(&s) => format!("{s} {reason}"),
        _ => reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defer_log_reason() {
        let text = "<rcpt@dest.example>: TLS is required\nrecipient=rcpt@dest.example\n\
                    offset=243\nstatus=4.7.4\naction=delayed\n\
                    reason=TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]\n";
        assert_eq!(
            defer_reason(text).unwrap(),
            "4.7.4 TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]"
        );
        assert_eq!(defer_reason("recipient=x\n"), None);
    }

    #[test]
    fn tls_words() {
        assert!(tls_description("secure", "no").starts_with("STARTTLS, certificate verified"));
        assert!(tls_description("encrypt", "yes").contains("NOT verified"));
        assert!(tls_description("may", "no").contains("in clear"));
    }

    #[test]
    fn no_relay_host_is_no_relay() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cf"), "myhostname = x\n").unwrap();
        let instance = Instance {
            name: "postfix-x".into(),
            group: None,
            enabled: true,
            config_directory: dir.path().into(),
            queue_directory: Some(dir.path().join("q")),
            data_directory: Some(dir.path().join("d")),
            myhostname: None,
            listeners: vec![],
            record: None,
            broken: None,
        };
        assert!(summary(&instance).relay_host.is_none());
        std::fs::write(
            dir.path().join("main.cf"),
            format!(
                "relayhost = [smtp.gmail.com]:587\nsmtp_sasl_auth_enable = yes\n\
                 smtp_sasl_password_maps = hash:{}/sasl_passwd\nsmtp_tls_security_level = secure\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let s = summary(&instance);
        assert_eq!(s.provider.as_deref(), Some("gmail"));
        assert!(!s.credentials_present);
        std::fs::write(
            dir.path().join("sasl_passwd"),
            "[smtp.gmail.com]:587 me@gmail.com:topsecret\n",
        )
        .unwrap();
        let s = summary(&instance);
        assert_eq!(s.sasl_user.as_deref(), Some("me@gmail.com"));
        // Present in the source, but postmap has not indexed it.
        assert!(!s.credentials_present);
        assert!(s.credentials_note.unwrap().contains("not indexed"));
        std::fs::write(dir.path().join("sasl_passwd.db"), "").unwrap();
        let s = summary(&instance);
        assert!(s.credentials_present, "{s:?}");
        assert!(!format!("{s:?}{:?}", s.lines()).contains("topsecret"));
    }
}

//! Relaying through a provider's smart host (seeds 000 and 004): the main.cf settings,
//! the SASL password map and the sender rewriting map, planned from the command line
//! (everything checked before anything changes) and written so that the password is
//! never readable by anyone but root, never on a command line and never printed.

pub mod cli;
pub mod provider;
pub mod secret;
mod summary;

use std::path::{Path, PathBuf};

use crate::error::InputError;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::runner::Command;

pub use cli::RelayOpts;
pub use provider::{Provider, RelayHost};
pub use secret::Secret;
pub use summary::{RelaySummary, summary};
use zeroize::Zeroizing;

/// The first line of every map instancectl writes; a file without it is the user's
/// and is never overwritten.
const MARKER: &str = "# Written by instancectl";

/// How sure the smtp client must be of the relay before it sends the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsLevel {
    /// Mandatory TLS, the certificate verified against the relay's host name.
    Secure,
    /// Mandatory TLS, the certificate not verified.
    Encrypt,
}

impl TlsLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsLevel::Secure => "secure",
            TlsLevel::Encrypt => "encrypt",
        }
    }

    fn parse(value: &str) -> Option<TlsLevel> {
        match value.trim() {
            "secure" | "verify" | "dane-only" => Some(TlsLevel::Secure),
            "encrypt" => Some(TlsLevel::Encrypt),
            _ => None,
        }
    }
}

/// Where the CA bundle is on common systems: Debian and Ubuntu, RHEL and Fedora,
/// macOS (and Alpine, the BSDs), SUSE.
const CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The host's CA bundle, the first of [`CA_BUNDLES`] that exists.
fn detect_ca_bundle() -> Option<PathBuf> {
    CA_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// One sender rewrite: an smtp_generic_maps entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The lookup key: user@domain or @domain.
    pub local: String,
    /// The result: user@domain, or @domain (same user, other domain).
    pub address: String,
}

impl Rewrite {
    /// `LOCAL=ADDRESS`; a bare user name means that user at `myorigin`.
    pub fn parse(text: &str, myorigin: &str) -> Result<Rewrite> {
        let (local, address) = text
            .split_once('=')
            .ok_or_else(|| InputError::RewriteWithoutAddress { text: text.into() })?;
        let (local, address) = (local.trim(), address.trim());
        let bad = |expected: &'static str, value: &str| -> Error {
            InputError::Rewrite {
                text: text.into(),
                value: value.into(),
                expected,
            }
            .into()
        };
        if !address_chars(local) || local.is_empty() {
            return Err(bad("a user name or address", local));
        }
        let local = match local.split_once('@') {
            None => format!("{local}@{myorigin}"),
            Some((_, "")) => return Err(bad("a user name or address", local)),
            Some((user, domain)) if user.contains('@') || domain.contains('@') => {
                return Err(bad("a user name or address", local));
            }
            Some(_) => local.to_string(),
        };
        let address_ok = match address.split_once('@') {
            Some((user, domain)) => {
                address_chars(address)
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && (!user.is_empty() || local.starts_with('@'))
            }
            None => false,
        };
        if !address_ok {
            return Err(bad(
                "an address (user@domain, or @domain when LOCAL is @domain)",
                address,
            ));
        }
        Ok(Rewrite {
            local: local.to_ascii_lowercase(),
            address: address.to_string(),
        })
    }
}

fn address_chars(text: &str) -> bool {
    !text.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"' | '(' | ')' | '#')
    })
}

/// The domain a main.cf myorigin value names: Debian's `myorigin = /etc/mailname`
/// means the first line of that file.
pub fn resolve_myorigin(value: &str) -> String {
    let value = value.trim();
    if value.starts_with('/') {
        return std::fs::read_to_string(value)
            .ok()
            .and_then(|t| t.lines().next().map(|l| l.trim().to_ascii_lowercase()))
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
    }
    value.to_ascii_lowercase()
}

/// The map files of an instance, in its configuration directory as seed 000 has them
/// (/etc/postfix/sasl_passwd for the primary), indexed in the host's
/// default_database_type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFiles {
    pub db_type: String,
    pub passwd: PathBuf,
    pub generic: PathBuf,
}

impl MapFiles {
    pub fn new(config_dir: &Path, db_type: &str) -> MapFiles {
        MapFiles {
            db_type: db_type.to_string(),
            passwd: config_dir.join("sasl_passwd"),
            generic: config_dir.join("generic"),
        }
    }

    /// `type:path` as main.cf names a map.
    fn map_name(&self, source: &Path) -> String {
        format!("{}:{}", self.db_type, source.display())
    }

    /// The files postmap makes from `source`.
    pub fn index_files(&self, source: &Path) -> Vec<PathBuf> {
        index_suffixes(&self.db_type)
            .iter()
            .map(|s| PathBuf::from(format!("{}{s}", source.display())))
            .collect()
    }

    /// The temporary files a failed postmap may leave beside the index: Berkeley DB
    /// (hash, btree) builds `__db.NAME.db` and renames it into place, so on a full
    /// disk an empty `__db.sasl_passwd.db` stays behind.
    fn index_temporaries(&self, source: &Path) -> Vec<PathBuf> {
        if !matches!(self.db_type.as_str(), "hash" | "btree") {
            return Vec::new();
        }
        self.index_files(source)
            .into_iter()
            .filter_map(|index| {
                let name = index.file_name()?.to_string_lossy().into_owned();
                Some(index.with_file_name(format!("__db.{name}")))
            })
            .collect()
    }
}

/// The file name suffixes of each indexed table type.
fn index_suffixes(db_type: &str) -> &'static [&'static str] {
    match db_type {
        "hash" | "btree" => &[".db"],
        "lmdb" => &[".lmdb"],
        "cdb" => &[".cdb"],
        "dbm" | "sdbm" => &[".dir", ".pag"],
        _ => &[],
    }
}

/// A relay configuration that passed every check, ready to apply.
#[derive(Debug)]
pub struct RelayPlan {
    pub provider: Provider,
    pub host: RelayHost,
    pub user: String,
    /// `None`: the password map stays as it is (relay set without a new password).
    pub password: Option<Secret>,
    pub rewrites: Vec<Rewrite>,
    pub ca_file: PathBuf,
    pub level: TlsLevel,
    pub files: MapFiles,
    /// Extra main.cf settings (myorigin, maillog_file for a new relay instance).
    pub extra: Vec<(String, String)>,
}

/// main.cf parameters a relay may have set and a new plan may no longer want.
const OPTIONAL_PARAMS: [&str; 4] = [
    "smtp_generic_maps",
    "smtp_sasl_mechanism_filter",
    "smtp_destination_rate_delay",
    "smtp_destination_recipient_limit",
];

impl RelayPlan {
    /// The main.cf settings of this relay.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut s: Vec<(String, String)> = vec![
            ("relayhost".into(), self.host.relayhost()),
            ("smtp_sasl_auth_enable".into(), "yes".into()),
            (
                "smtp_sasl_password_maps".into(),
                self.files.map_name(&self.files.passwd),
            ),
            ("smtp_sasl_security_options".into(), "noanonymous".into()),
            (
                "smtp_sasl_tls_security_options".into(),
                "noanonymous".into(),
            ),
            ("smtp_tls_security_level".into(), self.level.as_str().into()),
            ("smtp_tls_CAfile".into(), self.ca_file.display().to_string()),
            (
                "smtp_tls_wrappermode".into(),
                if self.host.implicit_tls() {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
            // One line per connection ("Verified TLS connection established to ..."),
            // which test-mail and the administrator read.
            ("smtp_tls_loglevel".into(), "1".into()),
        ];
        if !self.rewrites.is_empty() {
            s.push((
                "smtp_generic_maps".into(),
                self.files.map_name(&self.files.generic),
            ));
        }
        if self.provider != Provider::Custom {
            // The providers take the password with PLAIN or LOGIN over TLS; an OAuth
            // plugin installed on the host (XOAUTH2, OAUTHBEARER, also offered by
            // Gmail and Microsoft) must not be chosen with a password.
            s.push(("smtp_sasl_mechanism_filter".into(), "plain, login".into()));
        }
        if let Some(limits) = self.provider.rate_limits() {
            s.push((
                "smtp_destination_rate_delay".into(),
                limits.rate_delay.into(),
            ));
            s.push((
                "smtp_destination_recipient_limit".into(),
                limits.recipient_limit.into(),
            ));
        }
        s.extend(self.extra.iter().cloned());
        s
    }

    /// Parameters to remove from main.cf: those this relay does not set.
    pub fn removed(&self) -> Vec<String> {
        let set = self.settings();
        OPTIONAL_PARAMS
            .iter()
            .filter(|p| !set.iter().any(|(k, _)| k == *p))
            .map(|p| p.to_string())
            .collect()
    }

    /// The password map's text, in a buffer allocated once at its full size (a
    /// growing String would leave copies of the password in freed memory) and wiped
    /// when dropped.
    fn passwd_contents(&self, password: &Secret) -> Zeroizing<String> {
        let host = self.host.relayhost();
        let header = format!(
            "{MARKER}: the SASL credentials for the relay host (smtp_sasl_password_maps).\n\
             # Mode 0600, owner root. Change them with `instancectl relay set`.\n"
        );
        let pieces = [
            header.as_str(),
            &host,
            " ",
            &self.user,
            ":",
            password.expose(),
            "\n",
        ];
        let mut text = Zeroizing::new(String::with_capacity(pieces.iter().map(|p| p.len()).sum()));
        for piece in pieces {
            text.push_str(piece);
        }
        text
    }

    fn generic_contents(&self) -> String {
        let mut text = format!(
            "{MARKER}: sender rewriting for mail leaving through the relay \
             (smtp_generic_maps).\n# Change it with `instancectl relay set --rewrite-from`.\n"
        );
        for r in &self.rewrites {
            text.push_str(&format!("{} {}\n", r.local, r.address));
        }
        text
    }

    /// One line for people: where mail goes and how.
    pub fn describe(&self) -> String {
        format!(
            "relay {} ({}), {} with {}, SASL user {}",
            self.host.relayhost(),
            self.provider,
            if self.host.implicit_tls() {
                "TLS from the first byte"
            } else {
                "STARTTLS"
            },
            match self.level {
                TlsLevel::Secure => "the certificate verified",
                TlsLevel::Encrypt => "the certificate NOT verified",
            },
            self.user
        )
    }
}

/// What an instance's relay is now, read from its main.cf and map files (never the
/// password).
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// main.cf's relayhost as written (empty: none).
    pub relayhost: String,
    pub host: Option<RelayHost>,
    pub user: Option<String>,
    pub rewrites: Vec<Rewrite>,
    pub ca_file: Option<PathBuf>,
    pub level: Option<TlsLevel>,
}

impl Current {
    pub fn read(config_dir: &Path) -> Current {
        let main_cf = crate::postfix::main_cf::MainCf::read(config_dir).unwrap_or_default();
        let get = |k: &str| main_cf.get(k).map(str::to_string).unwrap_or_default();
        let host = RelayHost::from_relayhost(&get("relayhost"));
        let user = host.as_ref().and_then(|h| {
            map_sources(&get("smtp_sasl_password_maps"))
                .iter()
                .find_map(|p| credentials_user(p, &h.relayhost()))
        });
        let rewrites = map_sources(&get("smtp_generic_maps"))
            .iter()
            .filter(|p| is_ours(p))
            .flat_map(|p| read_generic(p))
            .collect();
        Current {
            relayhost: get("relayhost"),
            host,
            user,
            rewrites,
            ca_file: Some(get("smtp_tls_CAfile"))
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            level: TlsLevel::parse(&get("smtp_tls_security_level")),
        }
    }
}

/// The files behind a main.cf map list such as `hash:/etc/postfix/sasl_passwd`.
pub fn map_sources(value: &str) -> Vec<PathBuf> {
    value
        .split([',', ' ', '\t'])
        .filter_map(|m| m.rsplit_once(':'))
        .filter(|(_, path)| path.starts_with('/'))
        .map(|(_, path)| PathBuf::from(path))
        .collect()
}

/// Reads `key user:password` lines and returns the user for `key`, dropping the
/// password at once.
fn credentials_user(path: &Path, key: &str) -> Option<String> {
    // Read into a buffer of the file's size, so that it is not reallocated (leaving
    // copies behind), and wiped when dropped.
    let mut file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len() as usize;
    let mut text = Zeroizing::new(String::with_capacity(size + 1));
    std::io::Read::read_to_string(&mut file, &mut text).ok()?;
    text.lines().find_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let (k, value) = line.split_once(char::is_whitespace)?;
        if !k.eq_ignore_ascii_case(key) {
            return None;
        }
        let (user, password) = value.trim().split_once(':')?;
        (!user.is_empty() && !password.is_empty()).then(|| user.to_string())
    })
}

fn read_generic(path: &Path) -> Vec<Rewrite> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            Some(Rewrite {
                local: k.to_string(),
                address: v.trim().to_string(),
            })
        })
        .collect()
}

/// Whether instancectl wrote `path` (or it does not exist), so it may be replaced.
pub fn is_ours(path: &Path) -> bool {
    match std::fs::File::open(path) {
        Err(_) => true,
        Ok(file) => {
            use std::io::Read;
            let mut head = vec![0u8; MARKER.len()];
            let mut reader = file;
            reader.read_exact(&mut head).is_ok() && head == MARKER.as_bytes()
        }
    }
}

/// The instance-specific facts a plan needs.
pub struct Target<'a> {
    /// Shown in messages: the instance name, or "the primary instance".
    pub label: &'a str,
    pub config_dir: &'a Path,
    pub db_type: &'a str,
    /// Where a bare user name in --rewrite-from points.
    pub myorigin: &'a str,
    /// What the instance relays through now (empty for a new instance).
    pub current: Current,
}

/// Checks the relay options against the target and builds the plan. `creating`: all
/// of provider, user and password are required.
pub fn plan(
    opts: &RelayOpts,
    clear_rewrites: bool,
    target: Target<'_>,
    creating: bool,
) -> Result<RelayPlan> {
    let current = &target.current;
    let provider = match (&opts.provider, &opts.relay_host) {
        (Some(p), _) => Provider::parse(p)?,
        (None, Some(text)) if !creating && current.host.is_some() => {
            Provider::recognize(&RelayHost::parse(text)?)
        }
        (None, _) => match &current.host {
            Some(host) if !creating => Provider::recognize(host),
            _ => {
                let now = if creating || current.relayhost.is_empty() {
                    "has no relay host yet".to_string()
                } else {
                    format!(
                        "relays through relayhost = {}, which is not one [host]:port \
                         instancectl can keep",
                        current.relayhost
                    )
                };
                return Err(InputError::NoRelayHost {
                    instance: target.label.to_string(),
                    now,
                    known: provider::PROVIDER_NAMES,
                }
                .into());
            }
        },
    };
    let host = match (&opts.relay_host, provider.endpoint(), &opts.provider) {
        (Some(text), _, _) => RelayHost::parse(text)?,
        (None, Some(endpoint), Some(_)) => endpoint,
        (None, None, Some(_)) => {
            return Err(InputError::CustomWithoutHost.into());
        }
        (None, _, None) => current
            .host
            .clone()
            .expect("a relay host is known when no provider is given"),
    };
    let user = match (&opts.sasl_user, provider.fixed_user()) {
        (Some(user), Some(fixed)) if user != fixed => {
            return Err(InputError::ProviderFixesUser {
                provider: provider.to_string(),
                fixed,
            }
            .into());
        }
        (Some(user), _) => user.clone(),
        (None, Some(fixed)) => fixed.to_string(),
        (None, None) => match (&current.user, creating) {
            (Some(user), false) => user.clone(),
            _ => {
                return Err(InputError::NoSaslUser {
                    provider: provider.to_string(),
                }
                .into());
            }
        },
    };
    check_user(&user)?;
    let password = match (&opts.sasl_password_file, opts.sasl_password_stdin) {
        (Some(file), _) => Some(Secret::from_file(file)?),
        (None, true) => Some(Secret::from_stdin()?),
        (None, false) => None,
    };
    let same_account =
        current.host.as_ref() == Some(&host) && current.user.as_deref() == Some(user.as_str());
    if password.is_none() && (creating || !same_account) {
        let why = if creating {
            "a relay needs the SASL password".to_string()
        } else {
            format!(
                "the relay host or user changes ({} as {}), so the password must be given again",
                host.relayhost(),
                user
            )
        };
        return Err(InputError::NoPassword { why }.into());
    }
    let rewrites = if clear_rewrites {
        Vec::new()
    } else if opts.rewrite_from.is_empty() {
        current.rewrites.clone()
    } else {
        let list = opts
            .rewrite_from
            .iter()
            .map(|r| Rewrite::parse(r, target.myorigin))
            .collect::<Result<Vec<_>>>()?;
        if let Some(dup) = list
            .iter()
            .enumerate()
            .find(|(i, r)| list[..*i].iter().any(|o| o.local == r.local))
        {
            return Err(InputError::RewriteTwice {
                local: dup.1.local.clone(),
            }
            .into());
        }
        list
    };
    let ca_file = match (&opts.tls_ca_file, &current.ca_file) {
        (Some(file), _) => check_ca_file(file)?,
        (None, Some(file)) if !creating && opts.provider.is_none() => file.clone(),
        _ => detect_ca_bundle().ok_or_else(|| InputError::NoCaBundle {
            searched: CA_BUNDLES.to_vec(),
        })?,
    };
    // A new provider or host starts from the safe default.
    let keep_level = !creating && opts.provider.is_none() && opts.relay_host.is_none();
    let level = opts
        .tls_security_level
        .or(if keep_level { current.level } else { None })
        .unwrap_or(TlsLevel::Secure);
    if level == TlsLevel::Secure
        && let provider::Host::Ip(ip) = &host.host
    {
        return Err(InputError::RelayHostIsIp { ip: *ip }.into());
    }
    let files = MapFiles::new(target.config_dir, target.db_type);
    for path in [&files.passwd, &files.generic] {
        if !is_ours(path) {
            return Err(InputError::MapNotOurs { path: path.clone() }.into());
        }
    }
    Ok(RelayPlan {
        provider,
        host,
        user,
        password,
        rewrites,
        ca_file,
        level,
        files,
        extra: Vec::new(),
    })
}

fn check_user(user: &str) -> Result<()> {
    if user.is_empty()
        || user.contains(':')
        || user.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(InputError::SaslUser { user: user.into() }.into());
    }
    Ok(())
}

fn check_ca_file(path: &Path) -> Result<PathBuf> {
    let bad = |problem: String| InputError::CaFile {
        path: path.into(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()).into());
    }
    Ok(std::path::absolute(path).map_err(|e| bad(e.to_string()))?)
}

/// Writes the password map (mode 0600 from its creation; the secret never exists in
/// a file anyone else can read) and the sender map, and indexes both with postmap.
/// A sender map no longer wanted is removed with its index.
pub fn write_maps(host: &Host, plan: &RelayPlan) -> Result<()> {
    let files = &plan.files;
    let index_passwd = if let Some(password) = &plan.password {
        host.runner
            .write_secret(&files.passwd, plan.passwd_contents(password).as_bytes())?;
        true
    } else if files.passwd.exists()
        && summary::index_problem(&files.passwd, &files.index_files(&files.passwd)).is_some()
    {
        // Edited by hand since it was indexed, or its index lost: what Postfix reads
        // is not what the file says, so index it again.
        host.runner.restrict_mode(&files.passwd, 0o600)?;
        true
    } else {
        false
    };
    if index_passwd {
        postmap(host, files, &files.passwd)?;
        for index in files.index_files(&files.passwd) {
            host.runner.restrict_mode(&index, 0o600)?;
        }
    }
    if plan.rewrites.is_empty() {
        if files.generic.exists() && is_ours(&files.generic) {
            host.runner.remove_file(&files.generic)?;
            for index in files.index_files(&files.generic) {
                host.runner.remove_file(&index)?;
            }
        }
    } else {
        host.runner
            .write_file(&files.generic, plan.generic_contents().as_bytes(), 0o644)?;
        postmap(host, files, &files.generic)?;
    }
    Ok(())
}

/// `postmap type:path`. postmap gives the index the source file's permissions (it sets
/// its umask from them), so a 0600 source yields a 0600 index from the start. When it
/// fails, the temporary file it was building is removed.
fn postmap(host: &Host, files: &MapFiles, source: &Path) -> Result<()> {
    let cmd: Command = host.postfix.command("postmap").arg(files.map_name(source));
    let indexed = host
        .runner
        .change(&cmd)
        .map(drop)
        .map_err(|e| e.context(format!("indexing {}", source.display())));
    if indexed.is_err() {
        for leftover in files.index_temporaries(source) {
            if leftover.exists()
                && let Err(e) = host.runner.remove_file(&leftover)
            {
                tracing::warn!(path = %leftover.display(), error = %e, "cannot remove postmap's leftover");
            }
        }
    }
    indexed
}

/// Applies the plan's main.cf settings and removes the parameters it no longer sets.
pub fn write_settings(host: &Host, config_dir: &Path, plan: &RelayPlan) -> Result<()> {
    host.postfix.set(config_dir, &plan.settings())?;
    let current = crate::postfix::main_cf::MainCf::read(config_dir).unwrap_or_default();
    let removed: Vec<String> = plan
        .removed()
        .into_iter()
        .filter(|p| host.runner.dry_run() || current.get(p).is_some())
        .collect();
    host.postfix.unset(config_dir, &removed)
}

/// On Debian the smtp client runs chrooted in the queue directory, where a secondary
/// instance has no resolv.conf or hosts file (Debian's own service copies them only
/// for the instances it starts), so the relay's name would not resolve. The relay's
/// smtp client runs outside the chroot, as upstream Postfix ships it.
pub fn unchroot_smtp(host: &Host, config_dir: &Path) -> Result<()> {
    if config_dir.exists() {
        let out = host.runner.query(
            &host
                .postfix
                .postconf_in(config_dir)
                .args(["-F", "smtp/unix/chroot"]),
        )?;
        if out.stdout.trim().ends_with("= n") {
            return Ok(());
        }
    }
    host.postfix
        .set_master_field(config_dir, "smtp/unix/chroot = n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &Path) -> Target<'_> {
        Target {
            label: "postfix-relay",
            config_dir: dir,
            db_type: "hash",
            myorigin: "host.example",
            current: Current::default(),
        }
    }

    fn opts(provider: &str, user: Option<&str>, pw_file: Option<&Path>) -> RelayOpts {
        RelayOpts {
            provider: Some(provider.into()),
            sasl_user: user.map(str::to_string),
            sasl_password_file: pw_file.map(Path::to_path_buf),
            tls_ca_file: None,
            ..RelayOpts::default()
        }
    }

    fn ca(dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        path
    }

    #[test]
    fn berkeley_db_temporaries_are_named_after_the_index() {
        let dir = Path::new("/etc/postfix-r");
        let hash = MapFiles::new(dir, "hash");
        assert_eq!(
            hash.index_temporaries(&hash.passwd),
            [PathBuf::from("/etc/postfix-r/__db.sasl_passwd.db")]
        );
        assert!(
            MapFiles::new(dir, "lmdb")
                .index_temporaries(&hash.passwd)
                .is_empty()
        );
    }

    #[test]
    fn rewrites() {
        let r = Rewrite::parse("root=me@gmail.com", "host.example").unwrap();
        assert_eq!(r.local, "root@host.example");
        let r = Rewrite::parse("@Host.Example=me@gmail.com", "x").unwrap();
        assert_eq!(
            (r.local.as_str(), r.address.as_str()),
            ("@host.example", "me@gmail.com")
        );
        let r = Rewrite::parse("@old.example=@new.example", "x").unwrap();
        assert_eq!(r.address, "@new.example");
        for bad in [
            "root",
            "root=",
            "=me@x",
            "root=me",
            "root=@new.example",
            "a b=me@x",
            "root=me@x\nrelayhost",
            "root@=me@x",
            "root=<me@x>",
            "a@b@c=me@x",
        ] {
            assert_eq!(
                Rewrite::parse(bad, "h").unwrap_err().exit_code(),
                2,
                "{bad}"
            );
        }
    }

    #[test]
    fn gmail_plan_settings() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "app-password\n").unwrap();
        let mut o = opts("gmail", Some("me@gmail.com"), Some(&pw));
        o.tls_ca_file = Some(ca(dir.path()));
        o.rewrite_from = vec!["root=me@gmail.com".into()];
        let plan = plan(&o, false, target(dir.path()), true).unwrap();
        let s = plan.settings();
        let get = |k: &str| s.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("relayhost"), Some("[smtp.gmail.com]:587"));
        assert_eq!(get("smtp_tls_security_level"), Some("secure"));
        assert_eq!(get("smtp_tls_wrappermode"), Some("no"));
        assert_eq!(get("smtp_sasl_security_options"), Some("noanonymous"));
        assert_eq!(get("smtp_destination_rate_delay"), Some("2s"));
        assert_eq!(
            get("smtp_sasl_password_maps").unwrap(),
            format!("hash:{}/sasl_passwd", dir.path().display())
        );
        assert!(get("smtp_generic_maps").unwrap().ends_with("/generic"));
        assert!(plan.removed().is_empty());
        let map = plan.passwd_contents(plan.password.as_ref().unwrap());
        assert!(
            map.ends_with("\n[smtp.gmail.com]:587 me@gmail.com:app-password\n"),
            "{}",
            map.as_str()
        );
        assert!(
            map.capacity() == map.len(),
            "the map's text was reallocated"
        );
        assert!(
            plan.generic_contents()
                .contains("\nroot@host.example me@gmail.com\n")
        );
        assert!(!format!("{plan:?}").contains("app-password"));
    }

    #[test]
    fn fastmail_is_implicit_tls_and_sendgrid_uses_apikey() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "SG.key").unwrap();
        let mut o = opts("fastmail", Some("me@fastmail.com"), Some(&pw));
        o.tls_ca_file = Some(ca(dir.path()));
        let p = plan(&o, false, target(dir.path()), true).unwrap();
        assert!(
            p.settings()
                .contains(&("smtp_tls_wrappermode".into(), "yes".into()))
        );
        assert_eq!(p.removed().len(), 3);

        let mut o = opts("sendgrid", None, Some(&pw));
        o.tls_ca_file = Some(ca(dir.path()));
        assert_eq!(
            plan(&o, false, target(dir.path()), true).unwrap().user,
            "apikey"
        );
        o.sasl_user = Some("me".into());
        let err = plan(&o, false, target(dir.path()), true).unwrap_err();
        assert!(err.to_string().contains("\"apikey\""), "{err}");
    }

    #[test]
    fn refusals() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "pw").unwrap();
        let cafile = ca(dir.path());
        let try_plan = |o: RelayOpts| plan(&o, false, target(dir.path()), true).map(drop);
        let mut no_password = opts("gmail", Some("me"), None);
        no_password.tls_ca_file = Some(cafile.clone());
        assert!(
            try_plan(no_password)
                .unwrap_err()
                .to_string()
                .contains("--sasl-password-file")
        );
        let mut custom = opts("custom", Some("me"), Some(&pw));
        custom.tls_ca_file = Some(cafile.clone());
        assert!(
            try_plan(custom.clone())
                .unwrap_err()
                .to_string()
                .contains("--relay-host")
        );
        custom.relay_host = Some("[127.0.0.1]:2587".into());
        assert!(
            try_plan(custom.clone())
                .unwrap_err()
                .to_string()
                .contains("encrypt")
        );
        custom.tls_security_level = Some(TlsLevel::Encrypt);
        assert!(try_plan(custom.clone()).is_ok());
        let mut bad_user = opts("gmail", Some("a:b"), Some(&pw));
        bad_user.tls_ca_file = Some(cafile.clone());
        assert!(try_plan(bad_user).is_err());
        let mut bad_ca = opts("gmail", Some("me"), Some(&pw));
        bad_ca.tls_ca_file = Some(pw.clone());
        assert!(try_plan(bad_ca).unwrap_err().to_string().contains("PEM"));
        std::fs::write(dir.path().join("sasl_passwd"), "[x]:587 a:b\n").unwrap();
        let mut o = opts("gmail", Some("me"), Some(&pw));
        o.tls_ca_file = Some(cafile);
        assert!(
            try_plan(o)
                .unwrap_err()
                .to_string()
                .contains("not written by instancectl")
        );
    }

    #[test]
    fn an_unmanaged_relayhost_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = target(dir.path());
        t.current.relayhost = "mail.example.com".into();
        let o = RelayOpts {
            sasl_user: Some("me".into()),
            ..RelayOpts::default()
        };
        let err = plan(&o, false, t, false).unwrap_err().to_string();
        assert!(err.contains("relayhost = mail.example.com"), "{err}");
        assert!(err.contains("--provider"), "{err}");
    }

    #[test]
    fn current_config_is_read_back_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("main.cf"),
            format!(
                "relayhost = [smtp.gmail.com]:587\nsmtp_sasl_password_maps = hash:{0}/sasl_passwd\n\
                 smtp_generic_maps = hash:{0}/generic\nsmtp_tls_security_level = encrypt\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("sasl_passwd"),
            format!("{MARKER}\n[smtp.gmail.com]:587 me@gmail.com:pw:with:colons\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("generic"),
            format!("{MARKER}\nroot@h me@gmail.com\n"),
        )
        .unwrap();
        let current = Current::read(d);
        assert_eq!(current.user.as_deref(), Some("me@gmail.com"));
        assert_eq!(current.level, Some(TlsLevel::Encrypt));
        assert_eq!(current.rewrites.len(), 1);
        assert_eq!(current.host.unwrap().relayhost(), "[smtp.gmail.com]:587");
    }
}

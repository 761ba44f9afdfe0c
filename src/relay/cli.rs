//! The relay options `create --role relay` and `relay set` share, which
//! [`super::plan`] checks. Parsing only; the commands' own arguments are in
//! the command line module (`cli/relay.rs`).

use std::path::PathBuf;

use clap::Args;

use super::TlsLevel;

/// How an instance relays its mail through a provider's smart host.
#[derive(Debug, Clone, Default, Args)]
pub struct RelayOpts {
    /// The provider whose smart host relays all mail: gmail, icloud, fastmail, outlook,
    /// office365, sendgrid, ses:REGION (e.g. ses:eu-west-1) or custom.
    #[arg(long, value_name = "PROVIDER", help_heading = "Relay")]
    pub provider: Option<String>,

    /// The smart host and port (587 when left out); needed with --provider custom, and
    /// overrides a provider's preset (e.g. smtp-relay.gmail.com:587). Port 465 means
    /// TLS from the first byte; other ports use STARTTLS.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = "Relay")]
    pub relay_host: Option<String>,

    /// The SASL user name at the provider (SendGrid's is always `apikey`).
    #[arg(long, value_name = "USER", help_heading = "Relay")]
    pub sasl_user: Option<String>,

    /// Read the SASL password (or API key) from the first line of FILE.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "sasl_password_stdin",
        help_heading = "Relay"
    )]
    pub sasl_password_file: Option<PathBuf>,

    /// Read the SASL password (or API key) from standard input; typed at a terminal,
    /// it is not echoed.
    #[arg(long, help_heading = "Relay")]
    pub sasl_password_stdin: bool,

    /// Rewrite a local sender as it leaves (smtp_generic_maps), so the provider accepts
    /// the From address: LOCAL is user, user@domain or @domain; repeat for several.
    #[arg(long, value_name = "LOCAL=ADDRESS", help_heading = "Relay")]
    pub rewrite_from: Vec<String>,

    /// The CA certificates that sign the relay's certificate (default: the host's
    /// bundle, e.g. /etc/ssl/certs/ca-certificates.crt or /etc/ssl/cert.pem).
    #[arg(long, value_name = "FILE", help_heading = "Relay")]
    pub tls_ca_file: Option<PathBuf>,

    /// secure (default): TLS with the certificate verified against the relay's host
    /// name, so the password only ever goes to the real server. encrypt: TLS without
    /// verification, for a relay known only by IP address or with a mismatched name.
    #[arg(long, value_enum, value_name = "LEVEL", help_heading = "Relay")]
    pub tls_security_level: Option<TlsLevel>,
}

impl RelayOpts {
    /// Whether any relay option was given.
    pub fn any(&self) -> bool {
        self.provider.is_some()
            || self.relay_host.is_some()
            || self.sasl_user.is_some()
            || self.sasl_password_file.is_some()
            || self.sasl_password_stdin
            || !self.rewrite_from.is_empty()
            || self.tls_ca_file.is_some()
            || self.tls_security_level.is_some()
    }
}

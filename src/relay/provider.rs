//! Provider presets (seeds 000 and 004): each provider's smart host and port, how TLS
//! starts there, the SASL user it insists on, and the rate limits seed 004 recommends.

use std::fmt;
use std::net::IpAddr;

use crate::error::Result;
use crate::error::{AddressProblem, InputError};
use crate::validate::{HostPort, host_and_port};

/// Where a relay sends mail, as the user names it on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    Gmail,
    Icloud,
    Fastmail,
    Outlook,
    Office365,
    Sendgrid,
    /// Amazon SES in one region (its SMTP credentials belong to that region).
    Ses {
        region: String,
    },
    /// Any other smart host; `--relay-host` says which.
    Custom,
}

/// The providers `--provider` accepts, for help texts and errors.
pub const PROVIDER_NAMES: &str =
    "gmail, icloud, fastmail, outlook, office365, sendgrid, ses:REGION, custom";

/// Rate limits for the smtp transport, from seed 004.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// smtp_destination_rate_delay: the pause between two deliveries to the relay.
    pub rate_delay: &'static str,
    /// smtp_destination_recipient_limit: recipients per delivery.
    pub recipient_limit: &'static str,
}

impl Provider {
    pub fn parse(text: &str) -> Result<Provider> {
        let lower = text.trim().to_ascii_lowercase();
        let provider = match lower.as_str() {
            "gmail" | "google" => Provider::Gmail,
            "icloud" => Provider::Icloud,
            "fastmail" => Provider::Fastmail,
            "outlook" => Provider::Outlook,
            "office365" | "o365" | "microsoft365" => Provider::Office365,
            "sendgrid" => Provider::Sendgrid,
            "custom" => Provider::Custom,
            "ses" => {
                return Err(InputError::SesWithoutRegion.into());
            }
            other => match other.strip_prefix("ses:") {
                Some(region) => {
                    ses_region(region)?;
                    Provider::Ses {
                        region: region.to_string(),
                    }
                }
                None => {
                    return Err(InputError::UnknownProvider {
                        text: text.into(),
                        known: PROVIDER_NAMES,
                    }
                    .into());
                }
            },
        };
        Ok(provider)
    }

    pub fn name(&self) -> String {
        match self {
            Provider::Gmail => "gmail".into(),
            Provider::Icloud => "icloud".into(),
            Provider::Fastmail => "fastmail".into(),
            Provider::Outlook => "outlook".into(),
            Provider::Office365 => "office365".into(),
            Provider::Sendgrid => "sendgrid".into(),
            Provider::Ses { region } => format!("ses:{region}"),
            Provider::Custom => "custom".into(),
        }
    }

    /// The preset smart host, `None` for custom.
    pub fn endpoint(&self) -> Option<RelayHost> {
        let (host, port) = match self {
            Provider::Gmail => ("smtp.gmail.com".to_string(), 587),
            Provider::Icloud => ("smtp.mail.me.com".to_string(), 587),
            Provider::Fastmail => ("smtp.fastmail.com".to_string(), 465),
            Provider::Outlook => ("smtp-mail.outlook.com".to_string(), 587),
            Provider::Office365 => ("smtp.office365.com".to_string(), 587),
            Provider::Sendgrid => ("smtp.sendgrid.net".to_string(), 587),
            Provider::Ses { region } => (format!("email-smtp.{region}.amazonaws.com"), 587),
            Provider::Custom => return None,
        };
        Some(RelayHost {
            host: Host::Name(host),
            port,
        })
    }

    /// The SASL user the provider insists on: SendGrid's is literally `apikey`, with
    /// the API key as the password.
    pub fn fixed_user(&self) -> Option<&'static str> {
        match self {
            Provider::Sendgrid => Some("apikey"),
            _ => None,
        }
    }

    /// Seed 004's recommendations: Office 365 takes 30 messages a minute per
    /// connection (one delivery every 2 s, 5 recipients each), Gmail the same pace with
    /// 10 recipients, SES (14 a second in production) one every 100 ms with 50. The
    /// seeds give no figures for the others, so Postfix's defaults stay.
    pub fn rate_limits(&self) -> Option<RateLimits> {
        match self {
            Provider::Office365 => Some(RateLimits {
                rate_delay: "2s",
                recipient_limit: "5",
            }),
            Provider::Gmail => Some(RateLimits {
                rate_delay: "2s",
                recipient_limit: "10",
            }),
            Provider::Ses { .. } => Some(RateLimits {
                rate_delay: "100ms",
                recipient_limit: "50",
            }),
            _ => None,
        }
    }

    /// The preset whose smart host is `host`, for describing an existing relay.
    pub fn recognize(host: &RelayHost) -> Provider {
        let Host::Name(name) = &host.host else {
            return Provider::Custom;
        };
        let name = name.to_ascii_lowercase();
        if let Some(region) = name
            .strip_prefix("email-smtp.")
            .and_then(|r| r.strip_suffix(".amazonaws.com"))
            && ses_region(region).is_ok()
        {
            return Provider::Ses {
                region: region.to_string(),
            };
        }
        [
            Provider::Gmail,
            Provider::Icloud,
            Provider::Fastmail,
            Provider::Outlook,
            Provider::Office365,
            Provider::Sendgrid,
        ]
        .into_iter()
        .find(|p| p.endpoint().as_ref() == Some(host))
        .unwrap_or(Provider::Custom)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An AWS region name such as us-east-1, eu-central-1 or us-gov-west-1.
fn ses_region(region: &str) -> Result<()> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(InputError::SesRegion {
            region: region.into(),
        }
        .into())
    }
}

/// The smart host's name or address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

/// A smart host and port, written as Postfix's relayhost wants it: in brackets, so
/// Postfix does not look up MX records for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayHost {
    pub host: Host,
    pub port: u16,
}

impl RelayHost {
    /// `HOST[:PORT]`, `[HOST]:PORT`, `IPV4[:PORT]` or `[IPV6]:PORT` (also
    /// `[ipv6:ADDR]:PORT` as Postfix writes it); the port defaults to 587.
    pub fn parse(text: &str) -> Result<RelayHost> {
        let bad = |problem| InputError::RelayHost {
            text: text.into(),
            problem,
        };
        let text = text.trim();
        let HostPort {
            host,
            port,
            bracketed,
        } = host_and_port(text).map_err(bad)?;
        let host = if bracketed {
            host.strip_prefix("ipv6:")
                .or_else(|| host.strip_prefix("IPv6:"))
                .unwrap_or(host)
        } else if host.contains(':') {
            return Err(bad(AddressProblem::Ipv6WithoutBrackets).into());
        } else {
            host
        };
        let port = port.unwrap_or(587);
        let host = match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                return Err(bad(AddressProblem::NotAServer(ip)).into());
            }
            Ok(ip) => Host::Ip(ip),
            Err(_) => {
                if !is_host_name(host) {
                    return Err(bad(AddressProblem::NotAHostName(host.into())).into());
                }
                Host::Name(host.to_ascii_lowercase())
            }
        };
        Ok(RelayHost { host, port })
    }

    /// The relayhost value, which is also the password map's lookup key.
    pub fn relayhost(&self) -> String {
        match &self.host {
            Host::Name(name) => format!("[{name}]:{}", self.port),
            Host::Ip(IpAddr::V4(ip)) => format!("[{ip}]:{}", self.port),
            Host::Ip(IpAddr::V6(ip)) => format!("[ipv6:{ip}]:{}", self.port),
        }
    }

    /// Reads a relayhost value back: only the bracketed `[host]:port` form names
    /// one server (without brackets Postfix looks up MX records).
    pub fn from_relayhost(value: &str) -> Option<RelayHost> {
        let value = value.trim();
        if !value.starts_with('[') {
            return None;
        }
        let (inside, after) = value[1..].split_once(']')?;
        let port = match after {
            "" => 25,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        let inside = inside.strip_prefix("ipv6:").unwrap_or(inside);
        let host = match inside.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(inside.to_ascii_lowercase()),
        };
        Some(RelayHost { host, port })
    }

    /// Port 465 is SMTP over TLS from the first byte (submissions, RFC 8314);
    /// other ports speak plain SMTP and upgrade with STARTTLS.
    pub fn implicit_tls(&self) -> bool {
        self.port == 465
    }
}

impl fmt::Display for RelayHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.relayhost())
    }
}

fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_host_and_provider_mistakes_are_variants_holding_what_was_typed() {
        let problem = |text: &str| match RelayHost::parse(text).unwrap_err().into_input() {
            InputError::RelayHost {
                text: typed,
                problem,
            } => {
                assert_eq!(typed, text.trim());
                problem
            }
            other => panic!("{text}: {other:?}"),
        };
        assert!(matches!(problem("[::1"), AddressProblem::MissingBracket));
        assert!(matches!(
            problem("2001:db8::25:587"),
            AddressProblem::Ipv6WithoutBrackets
        ));
        assert!(matches!(problem("smtp.example.com:0"), AddressProblem::Port(p) if p == "0"));
        assert!(matches!(
            problem("0.0.0.0:587"),
            AddressProblem::NotAServer(_)
        ));
        assert!(matches!(
            Provider::parse("ses").unwrap_err().into_input(),
            InputError::SesWithoutRegion
        ));
        assert!(matches!(
            Provider::parse("ses:mars-1").unwrap_err().into_input(),
            InputError::SesRegion { region } if region == "mars-1"
        ));
    }

    #[test]
    fn presets() {
        let gmail = Provider::parse("gmail").unwrap();
        assert_eq!(
            gmail.endpoint().unwrap().relayhost(),
            "[smtp.gmail.com]:587"
        );
        let fastmail = Provider::parse("Fastmail").unwrap().endpoint().unwrap();
        assert_eq!(fastmail.relayhost(), "[smtp.fastmail.com]:465");
        assert!(fastmail.implicit_tls());
        let ses = Provider::parse("ses:eu-central-1").unwrap();
        assert_eq!(
            ses.endpoint().unwrap().relayhost(),
            "[email-smtp.eu-central-1.amazonaws.com]:587"
        );
        assert_eq!(ses.rate_limits().unwrap().rate_delay, "100ms");
        assert_eq!(Provider::Sendgrid.fixed_user(), Some("apikey"));
        assert_eq!(
            Provider::Office365.rate_limits().unwrap().recipient_limit,
            "5"
        );
        assert_eq!(Provider::Icloud.rate_limits(), None);
        assert!(Provider::Custom.endpoint().is_none());
    }

    #[test]
    fn bad_providers() {
        for bad in [
            "ses",
            "ses:",
            "ses:mars",
            "ses:us-east",
            "ses:us_east-1",
            "yahoo",
            "",
        ] {
            let err = Provider::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(
            Provider::parse("ses")
                .unwrap_err()
                .to_string()
                .contains("ses:us-east-1")
        );
        assert!(Provider::parse("ses:us-gov-west-1").is_ok());
    }

    #[test]
    fn recognizes_presets() {
        for p in [
            "gmail",
            "office365",
            "sendgrid",
            "ses:ap-southeast-2",
            "fastmail",
        ] {
            let provider = Provider::parse(p).unwrap();
            assert_eq!(Provider::recognize(&provider.endpoint().unwrap()), provider);
        }
        let other = RelayHost::parse("mail.example.net:587").unwrap();
        assert_eq!(Provider::recognize(&other), Provider::Custom);
    }

    #[test]
    fn relay_host_forms() {
        let cases = [
            ("smtp.example.com", "[smtp.example.com]:587"),
            ("smtp.example.com:2525", "[smtp.example.com]:2525"),
            ("[smtp.example.com]:465", "[smtp.example.com]:465"),
            ("SMTP.Example.COM:25", "[smtp.example.com]:25"),
            ("[127.0.0.1]:2587", "[127.0.0.1]:2587"),
            ("192.0.2.1", "[192.0.2.1]:587"),
            ("[2001:db8::1]:587", "[ipv6:2001:db8::1]:587"),
            ("[ipv6:2001:db8::1]:587", "[ipv6:2001:db8::1]:587"),
        ];
        for (text, want) in cases {
            let parsed = RelayHost::parse(text).unwrap();
            assert_eq!(parsed.relayhost(), want, "{text}");
            assert_eq!(RelayHost::from_relayhost(want), Some(parsed), "{text}");
        }
        for bad in [
            "",
            "smtp.example.com:0",
            "smtp.example.com:x",
            "2001:db8::1",
            "[::1",
            "bad_host:587",
            "-x.example:587",
            "0.0.0.0:587",
            "a b:587",
            "host;rm:587",
        ] {
            assert_eq!(RelayHost::parse(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
        assert_eq!(RelayHost::from_relayhost("smtp.example.com:587"), None);
    }
}

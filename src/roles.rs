//! Role presets: the main.cf settings that make an instance a null client, a
//! pre-filter input, a post-filter output (MULTI_INSTANCE_README's walk-through), or a
//! plain instance that only has its inet services turned on.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Receives mail from the network and hands it to a content filter (pre-filter).
    Input,
    /// Re-injection service behind the content filter that delivers (post-filter).
    Output,
    /// Local submission only, everything forwarded to a relay host.
    NullClient,
    /// Postfix's stock settings with the inet services turned on.
    Plain,
    /// Accepts mail from this host only and sends all of it through a provider's smart
    /// host with SASL over TLS (seeds 000 and 004; see `relay` options).
    Relay,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "output",
            Role::NullClient => "null-client",
            Role::Plain => "plain",
            Role::Relay => "relay",
        }
    }

    /// The settings of the role, before `--set` overrides and the listen addresses.
    pub fn preset(self) -> Vec<(&'static str, &'static str)> {
        // Every role serves: postmulti creates instances with inet disabled and local
        // submission closed.
        let mut settings = vec![
            ("master_service_disable", ""),
            ("authorized_submit_users", "root"),
        ];
        let no_local_delivery = [
            ("mydestination", ""),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("local_recipient_maps", ""),
            ("local_transport", "error:5.1.1 Mailbox unavailable"),
        ];
        match self {
            Role::Plain => {}
            // A relay is a null client whose relayhost is the provider (set by
            // relay::RelayPlan), so bounces and mail for root leave through it too.
            Role::NullClient | Role::Relay => {
                settings.extend(no_local_delivery);
                settings.push(("inet_interfaces", "loopback-only"));
            }
            Role::Output => {
                settings.extend(no_local_delivery);
                settings.extend([
                    ("inet_interfaces", "loopback-only"),
                    ("mynetworks_style", "host"),
                    ("smtpd_authorized_xforward_hosts", "$mynetworks"),
                    ("smtpd_client_connection_count_limit", "0"),
                    ("smtpd_client_event_limit_exceptions", "$mynetworks"),
                    ("smtp_bind_address", "0.0.0.0"),
                    ("local_header_rewrite_clients", ""),
                    ("recipient_delimiter", "+"),
                    ("smtpd_relay_restrictions", ""),
                    ("smtpd_recipient_restrictions", "permit_mynetworks, reject"),
                    ("smtpd_timeout", "1200s"),
                    ("parent_domain_matches_subdomains", ""),
                    ("smtpd_client_port_logging", "no"),
                ]);
            }
            Role::Input => {
                settings.extend(no_local_delivery);
                settings.extend([
                    ("local_header_rewrite_clients", ""),
                    ("default_transport", "smtp:[127.0.0.1]:10025"),
                    ("relay_transport", "$default_transport"),
                    ("virtual_transport", "$default_transport"),
                    ("transport_maps", ""),
                    ("smtp_send_xforward_command", "yes"),
                    ("smtp_destination_recipient_limit", "1000"),
                    ("smtp_data_done_timeout", "1200s"),
                    ("smtpd_client_port_logging", "no"),
                ]);
            }
        }
        settings
    }

    /// Where the role listens when `--listen` is not given, as MULTI_INSTANCE_README
    /// suggests: the output instance takes the content filter's re-injection port.
    pub fn default_listen(self) -> Option<&'static str> {
        match self {
            Role::Output => Some("127.0.0.1:10026"),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_serves() {
        for role in [
            Role::Input,
            Role::Output,
            Role::NullClient,
            Role::Plain,
            Role::Relay,
        ] {
            let preset = role.preset();
            assert!(preset.contains(&("master_service_disable", "")), "{role}");
            assert!(
                preset.contains(&("authorized_submit_users", "root")),
                "{role}"
            );
        }
    }

    #[test]
    fn input_hands_mail_to_the_filter() {
        let preset = Role::Input.preset();
        assert!(preset.contains(&("default_transport", "smtp:[127.0.0.1]:10025")));
        assert_eq!(Role::Output.default_listen(), Some("127.0.0.1:10026"));
    }
}

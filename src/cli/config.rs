//! The command line of `instancectl config`: show, set or unset main.cf parameters.
//! The work is in `commands::config`.

use clap::{Args, Subcommand};

use super::InstanceArgs;

#[derive(Debug, Args)]
#[command(
    override_usage = "instancectl config (NAME | -i NAME | -g GROUP | -a) [--json] [show|set|unset] ...",
    after_long_help = "Examples:
  instancectl config postfix-out                        # what main.cf sets (postconf -n)
  instancectl config postfix-out show relayhost message_size_limit
  instancectl config postfix-out set relayhost=[mx.example]:587 message_size_limit=20480000
  instancectl config postfix-out unset relayhost
  instancectl --dry-run config -g mta set smtpd_tls_security_level=may   # the diff only"
)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// Print the settings (show) or the changes made (set, unset) as a JSON document.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub action: Option<ConfigAction>,
}

impl ConfigArgs {
    /// `show` (the default) changes nothing, so it needs neither root nor the lock.
    pub fn only_reads(&self) -> bool {
        matches!(self.action, None | Some(ConfigAction::Show(_)))
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// The settings main.cf makes (postconf -n), or the values of the given parameters
    /// (the default).
    #[command(
        override_usage = "instancectl config (NAME | -i NAME | -g GROUP | -a) show \
                                [-n] [PARAM]..."
    )]
    Show(ShowArgs),
    /// Set main.cf parameters, check, reload; undone when that fails.
    #[command(
        override_usage = "instancectl config (NAME | -i NAME | -g GROUP | -a) set \
                                PARAM=VALUE..."
    )]
    Set {
        /// A parameter and its value, as in main.cf (quote values with spaces or `$`
        /// for the shell); a running instance is reloaded and must greet again.
        #[arg(value_name = "PARAM=VALUE", required = true)]
        settings: Vec<String>,
    },
    /// Remove main.cf parameters so that their defaults apply; check, reload; undone
    /// when that fails.
    #[command(
        override_usage = "instancectl config (NAME | -i NAME | -g GROUP | -a) unset \
                                PARAM..."
    )]
    Unset {
        /// A parameter main.cf sets; `postconf -d PARAM` shows the default it falls
        /// back to.
        #[arg(value_name = "PARAM", required = true)]
        params: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Only parameters that main.cf sets (with PARAM: those of them it sets).
    #[arg(short = 'n')]
    pub non_default: bool,

    /// Parameters to show; all those main.cf sets when left out.
    #[arg(value_name = "PARAM")]
    pub params: Vec<String>,
}

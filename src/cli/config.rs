//! The command line of `instancectl config`: show, set or unset main.cf parameters.
//! The work is in `commands::config`.

use clap::{Args, Subcommand};

use super::InstanceArgs;

#[derive(Debug, Args)]
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
    Show(ShowArgs),
    /// Set main.cf parameters, check, reload; undone when that fails.
    Set {
        #[arg(value_name = "PARAM=VALUE", required = true)]
        settings: Vec<String>,
    },
    /// Remove main.cf parameters so that their defaults apply; check, reload; undone
    /// when that fails.
    Unset {
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

//! The command line of `instancectl relay set|show` and `instancectl test-mail`. The
//! relay options they share with `create --role relay` are [`RelayOpts`], beside the
//! plan that checks them; the work is in `commands::relay` and `commands::test_mail`.

use clap::{Args, Subcommand};

use crate::relay::RelayOpts;

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Change how an instance (`-` for the primary) relays through a smart host;
    /// options left out keep their current value.
    Set(RelaySetArgs),
    /// Show an instance's relay host, TLS, SASL user, whether credentials are present
    /// and the last delivery problem (never the password).
    Show(RelayShowArgs),
}

#[derive(Debug, Args)]
pub struct RelaySetArgs {
    /// The instance (`-` for the primary).
    pub name: String,

    #[command(flatten)]
    pub opts: RelayOpts,

    /// Remove every sender rewrite.
    #[arg(long, conflicts_with = "rewrite_from", help_heading = "Relay")]
    pub no_rewrite_from: bool,

    /// Print what changed as a JSON document (never the password).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RelayShowArgs {
    /// The instance (`-` for the primary).
    pub name: String,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestMailArgs {
    /// The instance to send through (`-` for the primary).
    pub name: String,

    /// The recipient.
    #[arg(long, value_name = "ADDRESS")]
    pub to: String,

    /// The envelope sender and From address (default: root at the instance's
    /// myorigin, as sendmail gives it).
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,

    /// How long to follow the message before giving up, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,

    /// Print what became of the message as a JSON document.
    #[arg(long)]
    pub json: bool,
}

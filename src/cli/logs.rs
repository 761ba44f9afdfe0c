//! The command line of `instancectl logs`: the instance, how many lines, since when,
//! following or not. The work is in `commands::logs`.

use clap::Args;

use super::InstanceArgs;

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// Keep printing lines as they are written, until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Show the last N lines (10 unless --since is given: then all since).
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,

    /// Only lines written since TIME: a duration ago (`10m`, `2h`, `1day`) or a local
    /// date and time (`2026-11-29 14:00`, `2026-11-29 14:00:05`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

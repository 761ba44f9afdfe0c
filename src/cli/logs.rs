//! The command line of `instancectl logs`: the instance, how many lines, since when,
//! following or not. The work is in `commands::logs`.

use clap::Args;

use super::OneInstanceArgs;

#[derive(Debug, Args)]
#[command(after_long_help = "Where the lines are read, the first that applies:
  1. the instance's maillog_file (Postfix 3.4 and later), when it names a file
  2. on macOS, the unified log (log show; log stream with -f)
  3. systemd's journal while journald runs (journalctl, the mail facility)
  4. the syslog daemon's file: /var/log/mail.log, /var/log/maillog or /var/log/mail
The lines shown are those tagged with the instance's syslog_name
(postfix-out/smtp[812]: ...); other instances' lines in the same place are left out.

Examples:
  instancectl logs postfix-out                 # the last 10 lines
  instancectl logs postfix-out -n 100 --since 2h
  instancectl logs postfix-out -f              # follow, until interrupted
  instancectl logs - --since '2026-11-29 14:00'")]
pub struct LogsArgs {
    #[command(flatten)]
    pub instance: OneInstanceArgs,

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

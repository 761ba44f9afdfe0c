//! The command line: what each command and option means. Parsing only; the work is in
//! `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::host::Selection;
use crate::manager::ManagerKind;
use crate::roles::Role;

#[derive(Debug, Parser)]
#[command(
    name = "instancectl",
    version,
    about = "Run several Postfix instances on one host and keep them running",
    long_about = "Run several Postfix instances on one host (postmulti's multi-instance \
                  setup: a send-only primary plus input, output and relay instances) and \
                  keep them running under the host's service manager."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// Print the commands and file writes a change would perform, and change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// The service manager that starts and stops instances.
    #[arg(long, global = true, value_enum, env = "INSTANCECTL_MANAGER")]
    pub manager: Option<ManagerKind>,

    /// More detail on stderr (-v: each command run; -vv: everything).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn on multi-instance management (postmulti -e init).
    Init(InitArgs),
    /// Create an instance, configure its role, enable and start it.
    Create(CreateArgs),
    /// Start instances, in start order.
    Start(TargetArgs),
    /// Stop instances, in reverse start order.
    Stop(TargetArgs),
    /// Stop then start instances.
    Restart(TargetArgs),
    /// Make running instances re-read their configuration.
    Reload(TargetArgs),
    /// Enable an instance (it starts now and at boot).
    Enable(NameArg),
    /// Disable an instance (it stops now and stays down at boot).
    Disable(NameArg),
    /// Stop, disable and remove an instance with its queue and data directories.
    Destroy(DestroyArgs),
    /// List the instances in start order.
    List(ListArgs),
    /// Health of each instance with the reasons behind it; exits 1 when any is
    /// degraded or down.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Also make the primary instance a send-only null client that listens on no
    /// network address, so that secondary instances can take port 25.
    #[arg(long)]
    pub null_client: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The instance name; postmulti requires the prefix "postfix-" (e.g. postfix-in).
    pub name: String,

    /// The instance group (e.g. mta); a group starts and stops together.
    #[arg(short = 'g', long)]
    pub group: Option<String>,

    /// The role preset whose main.cf settings the instance gets.
    #[arg(long, value_enum, default_value_t = Role::Plain)]
    pub role: Role,

    /// An address (and port, 25 when left out) the instance's SMTP service listens
    /// on; repeat for several.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub listen: Vec<String>,

    /// A main.cf parameter to set after the role preset; repeat for several.
    #[arg(long, value_name = "PARAM=VALUE")]
    pub set: Vec<String>,

    /// Create and enable the instance but do not start it.
    #[arg(long)]
    pub no_start: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// One instance (`-` for the primary).
    pub name: Option<String>,

    /// Every instance of a group.
    #[arg(short = 'g', long)]
    pub group: Option<String>,

    /// Every instance.
    #[arg(long)]
    pub all: bool,
}

impl TargetArgs {
    pub fn selection(&self) -> Selection {
        match (&self.name, &self.group) {
            (Some(name), _) => Selection::One(name.clone()),
            (_, Some(group)) => Selection::Group(group.clone()),
            _ => Selection::All,
        }
    }
}

#[derive(Debug, Args)]
pub struct NameArg {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    pub name: String,

    /// Destroy even when mail is queued; the queued messages are lost.
    #[arg(long)]
    pub force_discard_queue: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How `status` writes its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// An aligned table for people (details with -v).
    Table,
    /// JSON for scripts and monitors (documented in the README).
    Json,
    /// Prometheus text exposition, for node_exporter's textfile collector.
    Prometheus,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One instance (`-` for the primary); every instance when left out.
    #[arg(conflicts_with = "group")]
    pub name: Option<String>,

    /// Every instance of a group.
    #[arg(short = 'g', long)]
    pub group: Option<String>,

    /// JSON instead of a table (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// The report's format.
    #[arg(long, value_enum)]
    pub format: Option<StatusFormat>,

    /// Report again every SECONDS (2 when left out), redrawing in place on a
    /// terminal, until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,

    /// Give up on a listener that has not greeted within SECONDS.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    pub timeout: f64,

    /// Run `postfix check` now, even where a recent result is remembered.
    #[arg(long, conflicts_with = "no_check")]
    pub recheck: bool,

    /// Leave `postfix check` out of the report.
    #[arg(long)]
    pub no_check: bool,

    /// Write the report to FILE (atomically: a temporary file renamed into place, as
    /// node_exporter's textfile collector needs) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

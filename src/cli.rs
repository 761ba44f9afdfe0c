//! The command line: what each command and option means. Parsing only; the work is in
//! `commands`, which takes these types (the command line never reaches into `commands`).

pub mod config;
pub mod exec;
pub mod logs;
pub mod queue;
pub mod relay;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::host::Selection;
use crate::manager::launchd::job::JobNaming;
use crate::manager::{LaunchdConfig, ManagerKind};
use crate::relay::RelayOpts;
use crate::roles::Role;
use relay::{RelayCommand, TestMailArgs};

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

    /// How log lines on stderr look.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub launchd: LaunchdOpts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Options of the launchd manager (and of `instancectl plist`).
#[derive(Debug, Args)]
pub struct LaunchdOpts {
    /// launchd: the directory of LaunchDaemon plists.
    #[arg(
        long,
        global = true,
        hide = launchd_hidden(),
        value_name = "DIR",
        env = "INSTANCECTL_LAUNCHD_DIR",
        default_value = "/Library/LaunchDaemons"
    )]
    pub launchd_dir: PathBuf,

    /// launchd: the job label is this prefix followed by the instance name.
    #[arg(
        long,
        global = true,
        hide = launchd_hidden(),
        value_name = "PREFIX",
        env = "INSTANCECTL_LABEL_PREFIX",
        default_value = crate::manager::launchd::job::DEFAULT_LABEL_PREFIX
    )]
    pub label_prefix: String,

    /// launchd: the job's stdout and stderr go to DIR/LABEL.log.
    #[arg(
        long,
        global = true,
        hide = launchd_hidden(),
        value_name = "DIR",
        env = "INSTANCECTL_LOG_DIR",
        default_value = "/var/log"
    )]
    pub log_dir: PathBuf,
}

/// The launchd manager's options clutter the help where launchd is not the manager:
/// they show on macOS, or with INSTANCECTL_MANAGER=launchd (they work everywhere).
fn launchd_hidden() -> bool {
    !(cfg!(target_os = "macos")
        || std::env::var("INSTANCECTL_MANAGER").is_ok_and(|m| m == "launchd"))
}

/// `--json` and `-o table|wide|json`, for every command that reports something. Both
/// may follow a subcommand (`queue NAME list -o json`).
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Print a JSON document (with a "schema" field) instead of text; the same as -o json.
    #[arg(long, global = true, conflicts_with = "output")]
    pub json: bool,

    /// How to print: table, wide (every column, nothing wrapped) or json.
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<crate::output::Format>,
}

impl OutputArgs {
    pub fn format(&self) -> crate::output::Format {
        match (self.json, self.output) {
            (true, _) => crate::output::Format::Json,
            (_, Some(format)) => format,
            _ => crate::output::Format::Table,
        }
    }
}

impl LaunchdOpts {
    pub fn config(&self) -> LaunchdConfig {
        LaunchdConfig {
            daemons_dir: self.launchd_dir.clone(),
            naming: JobNaming {
                label_prefix: self.label_prefix.clone(),
                log_dir: self.log_dir.clone(),
            },
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn on multi-instance management (postmulti -e init).
    Init(InitArgs),
    /// Create an instance, configure its role, enable and start it.
    Create(CreateArgs),
    /// Start instances, in start order.
    #[command(override_usage = "instancectl start (NAME | -i NAME | -g GROUP | -a) [--json]")]
    Start(LifecycleArgs),
    /// Stop instances, in reverse start order.
    #[command(override_usage = "instancectl stop (NAME | -i NAME | -g GROUP | -a) [--json]")]
    Stop(LifecycleArgs),
    /// Stop then start instances.
    #[command(override_usage = "instancectl restart (NAME | -i NAME | -g GROUP | -a) [--json]")]
    Restart(LifecycleArgs),
    /// Make running instances re-read their configuration.
    #[command(override_usage = "instancectl reload (NAME | -i NAME | -g GROUP | -a) [--json]")]
    Reload(LifecycleArgs),
    /// Enable instances (they start now and at boot).
    #[command(override_usage = "instancectl enable (NAME | -i NAME | -g GROUP | -a) [--json]")]
    Enable(LifecycleArgs),
    /// Disable instances (they stop now and stay down at boot).
    #[command(override_usage = "instancectl disable (NAME | -i NAME | -g GROUP | -a) [--json]")]
    Disable(LifecycleArgs),
    /// Stop, disable and remove instances with their queue and data directories.
    Destroy(DestroyArgs),
    /// List the instances in start order.
    List(ListArgs),
    /// Run the enabled instances and keep them running: restart what dies or hangs.
    Supervise(SuperviseArgs),
    /// Bring the host to the desired state, once: find drift, print the plan, repair.
    Reconcile(ReconcileArgs),
    /// Create, change and remove instances to match a manifest (instances.toml).
    Apply(ApplyArgs),
    /// Print the LaunchDaemon plist of an instance, or check LaunchDaemon plists.
    Plist(PlistArgs),
    /// Print the systemd unit the systemd manager writes for an instance.
    Unit(UnitArgs),
    /// Relay an instance's mail through a provider's smart host (set, show).
    #[command(subcommand)]
    Relay(RelayCommand),
    /// Send a test message through an instance and follow it until it is delivered or
    /// deferred; prints the outcome and the server's reply.
    TestMail(TestMailArgs),
    /// Health of each instance with the problems behind it and the command that fixes
    /// them; exits 1 when any is degraded or down (or stopped, with --strict).
    Status(StatusArgs),
    /// List an instance's queued mail, or flush, delete, hold, release or requeue it.
    Queue(queue::QueueArgs),
    /// Show an instance's main.cf settings, or change them: checked, reloaded, and
    /// undone when the check or the reload fails.
    Config(config::ConfigArgs),
    /// Run a command in an instance's environment (postmulti -x): MAIL_CONFIG and
    /// its directories are set.
    Exec(exec::ExecArgs),
    /// Show one instance's log lines (from its maillog_file, the journal, the syslog
    /// file or macOS's unified log).
    Logs(logs::LogsArgs),
    /// Print a shell's completion script (bash, zsh, fish) on standard output.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on standard output: `instancectl man | man -l -`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Also make the primary instance a send-only null client that listens on no
    /// network address, so that secondary instances can take port 25.
    #[arg(long)]
    pub null_client: bool,

    /// Print the result as a JSON document.
    #[arg(long)]
    pub json: bool,
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

    /// With --role relay: the provider, credentials and sender rewriting.
    #[command(flatten)]
    pub relay: RelayOpts,

    /// Print the result as a JSON document (steps still show on standard error).
    #[arg(long)]
    pub json: bool,
}

/// Which instances a command acts on, chosen as postmulti chooses them: a name
/// (positional or `-i`), a group, or all of them. Commands that need a choice ask for
/// it with [`InstanceArgs::selection`]; `list` and `status` take every instance when
/// none is given.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "instances", multiple = false)]
pub struct InstanceArgs {
    /// One instance (`-` for the primary).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// One instance, as postmulti's -i names it (the same as NAME).
    #[arg(short = 'i', long = "instance", value_name = "NAME")]
    pub instance: Option<String>,

    /// Every instance of a group.
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Every instance, the primary included.
    #[arg(short = 'a', long)]
    pub all: bool,
}

impl InstanceArgs {
    /// What was chosen, if anything.
    pub fn given(&self) -> Option<Selection> {
        match (&self.name, &self.instance, &self.group, self.all) {
            (Some(name), ..) | (_, Some(name), ..) => Some(Selection::One(name.clone())),
            (_, _, Some(group), _) => Some(Selection::Group(group.clone())),
            (.., true) => Some(Selection::All),
            _ => None,
        }
    }

    /// The choice of a command that needs one; none is bad input.
    pub fn selection(&self) -> crate::error::Result<Selection> {
        self.given()
            .ok_or_else(|| crate::error::InputError::NoSelection.into())
    }

    /// The choice, every instance when none was made.
    pub fn selection_or_all(&self) -> Selection {
        self.given().unwrap_or(Selection::All)
    }
}

/// One instance, named as postmulti names it, for a command that works on one at a
/// time (`logs`): a name, positional or `-i`.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "one_instance", multiple = false, required = true)]
pub struct OneInstanceArgs {
    /// The instance (`-` for the primary).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// The instance, as postmulti's -i names it (the same as NAME).
    #[arg(short = 'i', long = "instance", value_name = "NAME")]
    pub instance: Option<String>,
}

impl OneInstanceArgs {
    pub fn selection(&self) -> Selection {
        let name = self.name.as_ref().or(self.instance.as_ref());
        // clap requires one of the two.
        Selection::One(name.cloned().unwrap_or_default())
    }
}

/// The instances of start, stop, restart, reload, enable and disable.
#[derive(Debug, Clone, Default, Args)]
pub struct LifecycleArgs {
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// Print what became of each instance as a JSON document (progress still shows on
    /// standard error).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// Destroy even when mail is queued; the queued messages are lost.
    #[arg(long)]
    pub force_discard_queue: bool,

    /// Destroy a group or every instance without asking (needed when not at a terminal).
    #[arg(long)]
    pub yes: bool,

    /// Print the result as a JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Which instances; every instance when left out.
    #[command(flatten)]
    pub instances: InstanceArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// How often every master is looked at. Native manager: a silent look (the
    /// process, its listening sockets and their accept queues); other managers: a
    /// reconcile pass.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,

    /// Failed looks in a row after which a master counts as hung and is restarted.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub hung_after: u32,

    /// Native manager: the least time between two SMTP probes of an instance whose
    /// probes pass. Probes happen only when the silent look goes wrong (a listener
    /// not bound, connections nobody accepts), so a healthy instance gets none.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub smtp_probe_every: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// How long a running instance may fail SMTP probes before it is restarted.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,

    /// Print the drift found and the repairs made as a JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The manifest: a TOML file with one [[instance]] table per instance.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: std::path::PathBuf,

    /// Remove instances the manifest drops even when mail is queued; it is lost.
    #[arg(long)]
    pub force_discard_queue: bool,

    /// Print the changes planned and made as a JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlistArgs {
    /// The instance whose plist to print (what the launchd manager writes for it).
    #[arg(
        required_unless_present_any = ["check", "supervisor"],
        conflicts_with_all = ["check", "supervisor"]
    )]
    pub name: Option<String>,

    /// Print the LaunchDaemon that runs `instancectl supervise` with the launchd
    /// manager (install it as /Library/LaunchDaemons/LABEL.plist).
    #[arg(long, conflicts_with = "check")]
    pub supervisor: bool,

    /// With --supervisor: where instancectl is installed.
    #[arg(long, value_name = "PATH", default_value = crate::manager::launchd::job::DEFAULT_PROGRAM, requires = "supervisor")]
    pub program: PathBuf,

    /// With --supervisor: how often the supervisor looks for drift.
    #[arg(long, default_value = "10s", requires = "supervisor", value_parser = parse_interval)]
    pub interval: String,

    /// Check LaunchDaemon plists and report each problem with its fix; a directory
    /// stands for every *.plist in it; without FILE, every plist in the LaunchDaemons
    /// directory that runs Postfix. Exits 1 when a problem is found.
    #[arg(long, value_name = "FILE", num_args = 0..)]
    pub check: Option<Vec<PathBuf>>,

    /// With --check: the problems as a JSON document.
    #[arg(long, requires = "check")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnitArgs {
    /// The instance whose unit to print.
    pub name: String,
}

/// A duration as humantime reads it, kept as typed (it goes into a plist).
fn parse_interval(text: &str) -> Result<String, String> {
    humantime::parse_duration(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// How `status` writes its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// An aligned table for people that fits 80 columns (details with -v).
    Table,
    /// The table with every column (master pid, processes, memory, postfix check).
    Wide,
    /// JSON for scripts and monitors (documented in the README).
    Json,
    /// Prometheus text exposition.
    Prometheus,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Which instances; every instance when left out.
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// JSON instead of a table (the same as -o json).
    #[arg(long, conflicts_with = "output")]
    pub json: bool,

    /// The report's format.
    #[arg(
        short = 'o',
        long,
        visible_alias = "format",
        value_enum,
        value_name = "FORMAT"
    )]
    pub output: Option<StatusFormat>,

    /// Also write the Prometheus metrics to PATH, atomically (a temporary file renamed
    /// into place), for node_exporter's textfile collector; a relative PATH is taken
    /// from the working directory. Nothing else is printed unless --json or -o asks.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,

    /// An instance stopped on purpose (`instancectl stop`) fails the status too.
    #[arg(long)]
    pub strict: bool,

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
}

//! instancectl: run several Postfix instances on one host (postmulti's multi-instance
//! setup) and keep them running under the host's service manager.

pub mod check;
pub mod cli;
pub(crate) mod commands;
pub(crate) mod error;
pub(crate) mod health;
pub(crate) mod host;
pub(crate) mod instance;
pub(crate) mod lock;
pub mod manager;
pub(crate) mod manifest;
pub(crate) mod outcome;
pub(crate) mod output;
pub(crate) mod parallel;
pub(crate) mod postfix;
pub(crate) mod probe;
pub(crate) mod process;
pub(crate) mod progress;
pub(crate) mod reconcile;
pub(crate) mod relay;
pub(crate) mod roles;
pub(crate) mod runner;

pub(crate) mod state;
pub(crate) mod status;

pub(crate) mod transaction;
pub(crate) mod validate;

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: cli::Cli) -> i32 {
    let supervising = matches!(cli.command, cli::Command::Supervise(_));
    init_logging(cli.global.verbose, cli.global.log_format, supervising);
    progress::init(cli.global.verbose > 0, cli.global.dry_run);
    commands::begin_output(&cli);
    let outcome = commands::dispatch(&cli);
    output::finish(&outcome);
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("instancectl: {err}");
            err.exit_code()
        }
    }
}

/// One line per event on stderr. The supervisor logs its events (started, exited,
/// restarted, gave up) at info level, so it shows them without -v.
fn init_logging(verbose: u8, format: cli::LogFormat, supervising: bool) {
    let level = match (verbose, supervising) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("INSTANCECTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && output::colour_allowed())
        .with_writer(std::io::stderr);
    let _ = match format {
        cli::LogFormat::Json => builder.json().flatten_event(true).try_init(),
        cli::LogFormat::Text => builder.try_init(),
    };
}

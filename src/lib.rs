//! instancectl: run several Postfix instances on one host (postmulti's multi-instance
//! setup) and keep them running under the host's service manager.

pub mod cli;
pub mod commands;
pub mod error;
pub mod health;
pub mod host;
pub mod instance;
pub mod lock;
pub mod manager;
pub mod postfix;
pub mod roles;
pub mod runner;
pub mod smtp;
pub mod state;
pub mod status;
pub mod transaction;
pub mod validate;

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: cli::Cli) -> i32 {
    init_logging(cli.global.verbose);
    match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("instancectl: {err}");
            err.exit_code()
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("INSTANCECTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

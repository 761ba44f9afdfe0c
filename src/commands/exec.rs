//! `instancectl exec`: postmulti's `-x`, run a command in an instance's environment,
//! so that Postfix commands (`postqueue -p`, `postsuper`, `postcat`, `postconf`)
//! work on that instance without `-c DIR`. It exports what `postmulti -x` exports
//! (postmulti(1), and checked against `postmulti -x env` on Postfix 3.7): MAIL_CONFIG,
//! command_directory, daemon_directory, config_directory, queue_directory,
//! data_directory, multi_instance_name, multi_instance_group, multi_instance_enable,
//! and command_directory first in PATH.

use crate::cli::exec::ExecArgs;
use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;
use crate::output::{self, Schema};
use crate::runner::Command;

/// One instance's run, an entry of the `instancectl.exec/v1` document.
#[derive(serde::Serialize)]
struct Ran<'a> {
    name: &'a str,
    /// null when a signal killed the command.
    exit_status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the command once per selected instance, in start order. With one instance
/// the exit status is the command's; with several, each failure is reported and the
/// status is that of the first command that failed. With `--json` the command's
/// output is captured into the document instead of shown.
pub fn run(host: &Host, args: &ExecArgs) -> Result<i32> {
    let instances = host.select(&args.instances.selection()?)?;
    output::field(Schema::EXEC, "command", &args.command);
    let several = instances.len() > 1;
    let mut first_failure = None;
    for instance in &instances {
        let cmd = in_environment(host, instance, &args.command)?;
        let code = if args.json && !host.runner.dry_run() {
            let ran = host.runner.probe(&cmd)?;
            output::record(
                Schema::EXEC,
                "instances",
                Ran {
                    name: &instance.name,
                    exit_status: ran.code,
                    stdout: ran.stdout,
                    stderr: ran.diagnostics,
                },
            );
            // Killed by a signal: the captured run does not say which one.
            ran.code.unwrap_or(1)
        } else {
            if several {
                // Which instance the output that follows is from, as `config show` and
                // `tail` with several files say it.
                use std::io::Write;
                output::line(format_args!(
                    "# {} ({})",
                    instance.display_name(),
                    instance.config_directory.display()
                ));
                let _ = std::io::stdout().flush();
            }
            host.runner.interactive(&cmd)?
        };
        if code != 0 {
            if several {
                eprintln!(
                    "instancectl: {}: `{}` exited with status {code}",
                    instance.display_name(),
                    args.command.join(" ")
                );
            }
            first_failure.get_or_insert(code);
        }
    }
    Ok(first_failure.unwrap_or(0))
}

/// The command with the instance's environment, as `postmulti -x` sets it up.
fn in_environment(host: &Host, instance: &Instance, argv: &[String]) -> Result<Command> {
    let (queue_directory, data_directory) = instance.directories()?;
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let search = std::env::var("PATH").unwrap_or_default();
    let command_directory = path(&host.postfix.command_directory);
    // postmulti gives the primary an empty name and group.
    let name = if instance.is_primary() {
        String::new()
    } else {
        instance.name.clone()
    };
    Ok(Command::new(&argv[0])
        .args(&argv[1..])
        .env("MAIL_CONFIG", path(&instance.config_directory))
        .env("command_directory", &command_directory)
        .env("daemon_directory", path(&host.postfix.daemon_directory))
        .env("config_directory", path(&instance.config_directory))
        .env("queue_directory", path(queue_directory))
        .env("data_directory", path(data_directory))
        .env("multi_instance_name", name)
        .env(
            "multi_instance_group",
            instance.group.clone().unwrap_or_default(),
        )
        .env(
            "multi_instance_enable",
            if instance.enabled { "yes" } else { "no" },
        )
        .env(
            "PATH",
            if search.is_empty() {
                command_directory
            } else {
                format!("{command_directory}:{search}")
            },
        ))
}

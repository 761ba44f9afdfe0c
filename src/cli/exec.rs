//! The command line of `instancectl exec`: the instances and the command to run in
//! their environment. The work is in `commands::exec`.

use clap::Args;

use super::InstanceArgs;

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// Capture the command's output and print the exit status and output of each
    /// instance's run as a JSON document.
    #[arg(long)]
    pub json: bool,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

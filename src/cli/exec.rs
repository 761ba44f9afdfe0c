//! The command line of `instancectl exec`: the instances and the command to run in
//! their environment. The work is in `commands::exec`.

use clap::Args;

use super::InstanceArgs;

#[derive(Debug, Args)]
#[command(
    override_usage = "instancectl exec (NAME | -i NAME | -g GROUP | -a) [--json] -- CMD [ARG]...",
    after_long_help = "With several instances, each one's output follows a line
`# NAME (CONFIG_DIRECTORY)`.

Examples:
  instancectl exec postfix-out -- postqueue -p          # mailq of postfix-out
  instancectl exec postfix-out -- postsuper -d ALL deferred
  instancectl exec -g mta -- postconf -h queue_directory
  instancectl exec postfix-out -- sh -c 'postcat -q \"$1\" | head' sh E370454E0F2"
)]
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

//! The command line of `instancectl queue`: which instances, which queue, and what to
//! do to which messages. The work is in `commands::queue`.

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::InstanceArgs;

/// The usage lines are written out: the instance comes before the action, and clap's
/// own usage line of an action would leave it out.
#[derive(Debug, Args)]
#[command(
    override_usage = "instancectl queue [NAME | -i NAME | -g GROUP | -a] [ACTION] [OPTIONS]",
    after_long_help = "Examples:
  instancectl queue                                  # every instance's mail
  instancectl queue postfix-out --queue deferred     # and why they wait
  instancectl queue postfix-out flush                # retry the deferred mail now
  instancectl queue postfix-out flush E370454E0F2    # only that message
  instancectl queue postfix-out hold E370454E0F2     # keep it, do not deliver
  instancectl queue postfix-out release --all
  instancectl queue postfix-out requeue --all        # after a rewriting change
  instancectl queue -g mta delete --all --queue deferred --yes"
)]
pub struct QueueArgs {
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// Only the messages of this queue.
    #[arg(long, value_enum, global = true)]
    pub queue: Option<QueueName>,

    /// `--json`, `-o table|wide|json`.
    #[command(flatten)]
    pub output: super::OutputArgs,

    #[command(subcommand)]
    pub action: Option<QueueAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueName {
    Maildrop,
    Incoming,
    Active,
    Deferred,
    Hold,
    Corrupt,
}

impl QueueName {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Maildrop => "maildrop",
            QueueName::Incoming => "incoming",
            QueueName::Active => "active",
            QueueName::Deferred => "deferred",
            QueueName::Hold => "hold",
            QueueName::Corrupt => "corrupt",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// List the messages: id, queue, size, arrival, sender, recipients, and why each
    /// waits (the default; every instance when none is named).
    #[command(
        override_usage = "instancectl queue [NAME | -i NAME | -g GROUP | -a] [list] \
                                [--queue QUEUE] [--json | -o FORMAT]"
    )]
    List,
    /// Try to deliver the deferred mail now (postqueue -f), or only the messages
    /// named (postqueue -i); the instance must run.
    #[command(
        override_usage = "instancectl queue (NAME | -i NAME | -g GROUP | -a) flush \
                                [ID]..."
    )]
    Flush(FlushArgs),
    /// Delete messages (postsuper -d). --all: every queue, maildrop included (or the
    /// one --queue names), only with --yes or a yes at the terminal.
    #[command(
        override_usage = "instancectl queue (NAME | -i NAME | -g GROUP | -a) delete \
                                (ID... | --all [--yes]) [--queue QUEUE]"
    )]
    Delete(DeleteArgs),
    /// Put messages on hold: kept, not delivered, and not expired (postsuper -h).
    /// --all: the incoming, active and deferred queues.
    #[command(
        override_usage = "instancectl queue (NAME | -i NAME | -g GROUP | -a) hold \
                                (ID... | --all) [--queue QUEUE]"
    )]
    Hold(Pick),
    /// Release held messages to the deferred queue (postsuper -H).
    #[command(
        override_usage = "instancectl queue (NAME | -i NAME | -g GROUP | -a) release \
                                (ID... | --all)"
    )]
    Release(Pick),
    /// Run messages through cleanup again (postsuper -r), e.g. after a change of
    /// address rewriting or content_filter; they get new queue IDs. --all: the
    /// incoming, active and deferred queues, so held mail stays on hold (--queue hold
    /// requeues it); a held message named by its ID leaves hold.
    #[command(
        override_usage = "instancectl queue (NAME | -i NAME | -g GROUP | -a) requeue \
                                (ID... | --all) [--queue QUEUE]"
    )]
    Requeue(Pick),
}

#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Deferred messages to retry, by queue ID; all deferred mail when none is given.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
}

/// The messages an action applies to.
#[derive(Debug, Args)]
pub struct Pick {
    /// Queue IDs, as `instancectl queue` lists them.
    #[arg(value_name = "ID", required_unless_present = "all")]
    pub ids: Vec<String>,

    /// Every message (of the queue given with --queue; see the action for which
    /// queues otherwise).
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub pick: Pick,

    /// Delete all messages without asking (needed when not at a terminal).
    #[arg(long)]
    pub yes: bool,
}

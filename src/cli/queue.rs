//! The command line of `instancectl queue`: which instances, which queue, and what to
//! do to which messages. The work is in `commands::queue`.

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::InstanceArgs;

#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub instances: InstanceArgs,

    /// Only the messages of this queue.
    #[arg(long, value_enum, global = true)]
    pub queue: Option<QueueName>,

    /// JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

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
    /// List the messages: id, queue, size, arrival, sender, recipients, delay reason
    /// (the default).
    List,
    /// Try to deliver deferred mail now (postqueue -f).
    Flush,
    /// Delete messages (postsuper -d); all of them only with --yes or at a terminal.
    Delete(DeleteArgs),
    /// Put messages on hold: kept, but not delivered (postsuper -h).
    Hold(Pick),
    /// Release held messages (postsuper -H).
    Release(Pick),
    /// Run messages through the cleanup service again, e.g. after a change of address
    /// rewriting (postsuper -r).
    Requeue(Pick),
}

/// The messages an action applies to.
#[derive(Debug, Args)]
pub struct Pick {
    /// Queue IDs, as `instancectl queue` lists them.
    #[arg(value_name = "ID", required_unless_present = "all")]
    pub ids: Vec<String>,

    /// Every message (of the queue given with --queue).
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

//! The queues of an instance: their sizes, counted from the queue directory's files
//! (each message is one file, possibly under hashed subdirectories) so that status
//! needs no postqueue process; the messages themselves as `postqueue -j` lists them;
//! and what postsuper says it did.

use std::path::Path;

use crate::error::PostfixError;
use crate::error::Result;
use crate::postfix::Postfix;

pub const QUEUES: [&str; 6] = [
    "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounts {
    pub maildrop: u64,
    pub incoming: u64,
    pub active: u64,
    pub deferred: u64,
    pub hold: u64,
    pub corrupt: u64,
}

impl QueueCounts {
    pub fn read(queue_directory: &Path) -> QueueCounts {
        QueueCounts::counted(queue_directory, |q| count_queue(q).unwrap_or(0))
    }

    /// Like [`QueueCounts::read`], but a queue directory that exists and cannot be
    /// read is an error instead of a zero: the queues belong to the mail owner, so
    /// only root (or that user) can count them. Each directory is read once.
    pub fn read_checked(queue_directory: &Path) -> Result<QueueCounts, String> {
        let mut unreadable = None;
        let counts = QueueCounts::counted(queue_directory, |dir| match count_queue(dir) {
            Ok(n) => n,
            Err(e) => {
                unreadable.get_or_insert(format!("cannot read {}: {e}", dir.display()));
                0
            }
        });
        unreadable.map_or(Ok(counts), Err)
    }

    fn counted(queue_directory: &Path, mut count: impl FnMut(&Path) -> u64) -> QueueCounts {
        let mut of = |q: &str| count(&queue_directory.join(q));
        QueueCounts {
            maildrop: of("maildrop"),
            incoming: of("incoming"),
            active: of("active"),
            deferred: of("deferred"),
            hold: of("hold"),
            corrupt: of("corrupt"),
        }
    }

    pub fn by_name(&self) -> [(&'static str, u64); 6] {
        [
            ("maildrop", self.maildrop),
            ("incoming", self.incoming),
            ("active", self.active),
            ("deferred", self.deferred),
            ("hold", self.hold),
            ("corrupt", self.corrupt),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_name().iter().map(|(_, n)| n).sum()
    }
}

/// One message as `postqueue -j` describes it (Postfix 3.1 and later): one JSON object
/// per line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct QueuedMessage {
    pub queue_name: String,
    pub queue_id: String,
    /// Seconds since the epoch.
    #[serde(default)]
    pub arrival_time: u64,
    #[serde(default)]
    pub message_size: u64,
    #[serde(default)]
    pub forced_expire: bool,
    #[serde(default)]
    pub sender: String,
    #[serde(default)]
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct QueuedRecipient {
    pub address: String,
    /// Why delivery to this recipient was deferred (absent before the first attempt).
    #[serde(default)]
    pub delay_reason: Option<String>,
}

/// Parses `postqueue -j` output.
pub fn parse_listing(text: &str) -> Result<Vec<QueuedMessage>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| {
                format!(
                    "line {} of postqueue -j is not a message ({e}): {line}",
                    n + 1
                )
            })
        })
        .collect()
}

/// The messages of an instance, from `postqueue -c DIR -j`. It reads the queue even
/// when the instance is stopped (as root, postqueue then reads the files itself).
pub fn list(postfix: &Postfix, config_dir: &Path) -> Result<Vec<QueuedMessage>> {
    let cmd = postfix
        .command("postqueue")
        .args(["-c", &config_dir.to_string_lossy(), "-j"]);
    let out = postfix.runner.query(&cmd)?;
    parse_listing(&out.stdout).map_err(|problem| {
        PostfixError::QueueListing {
            problem,
            config_dir: config_dir.into(),
        }
        .into()
    })
}

/// How many messages postsuper says it touched: `postsuper: Deleted: 3 messages`,
/// `Placed on hold: 1 message`, `Released from hold: ...`, `Requeued: ...`. Postfix
/// writes this to the mail log, and to stderr when that is a terminal; the counts of
/// several lines (one per operation) are added up.
pub fn postsuper_count(diagnostics: &str) -> Option<u64> {
    let counts: Vec<u64> = diagnostics
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.trim().rsplit_once(": ")?;
            let number = rest
                .strip_suffix(" messages")
                .or_else(|| rest.strip_suffix(" message"))?;
            number.parse().ok()
        })
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// postsuper's line for each message it was given by ID (`postsuper: E370454E0F2:
/// placed on hold`, `released from hold`, `requeued`, `removed`): what the count
/// already says, one message at a time.
pub fn postsuper_per_message(line: &str) -> bool {
    let Some(rest) = line.trim().strip_prefix("postsuper: ") else {
        return false;
    };
    rest.split_once(": ").is_some_and(|(id, what)| {
        !id.is_empty()
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && [
                "placed on hold",
                "released from hold",
                "requeued",
                "removed",
            ]
            .contains(&what)
    })
}

/// The messages under one queue directory and its hashed subdirectories; a queue
/// that does not exist holds none, one that cannot be read (at any depth) is an error.
fn count_queue(dir: &Path) -> std::io::Result<u64> {
    match std::fs::read_dir(dir) {
        Ok(entries) => count_entries(entries),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

fn count_entries(entries: std::fs::ReadDir) -> std::io::Result<u64> {
    let mut count = 0;
    for entry in entries {
        // A message that moved on between the listing and this look (qmgr moves
        // files between queues) is counted where it went, or not at all.
        let (entry, kind) = match entry.and_then(|e| e.file_type().map(|k| (e, k))) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            count += count_queue(&entry.path())?;
        } else if kind.is_file() {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from Postfix 3.7.11 (Debian 12) on this project's test machine: three
    /// messages deferred by a relay that refuses connections, then put on hold.
    const DEFERRED: &str = include_str!("../../tests/data/postqueue-j-deferred.jsonl");
    const HELD: &str = include_str!("../../tests/data/postqueue-j-hold.jsonl");
    const STOPPED: &str = include_str!("../../tests/data/postqueue-j-stopped.jsonl");
    const POSTSUPER: &str = include_str!("../../tests/data/postsuper-pty.txt");

    #[test]
    fn postqueue_json_recorded() {
        let messages = parse_listing(DEFERRED).unwrap();
        assert_eq!(messages.len(), 3);
        let first = &messages[0];
        assert_eq!(first.queue_name, "deferred");
        assert_eq!(first.queue_id, "E370454E0F2");
        assert_eq!(first.arrival_time, 1795963139);
        assert_eq!(first.message_size, 238);
        assert_eq!(first.sender, "root@q.vm");
        assert_eq!(first.recipients.len(), 2);
        assert_eq!(first.recipients[1].address, "someone3@example.org");
        assert_eq!(
            first.recipients[0].delay_reason.as_deref(),
            Some("connect to 127.0.0.1[127.0.0.1]:9: Connection refused")
        );
        let held = parse_listing(HELD).unwrap();
        assert!(held.iter().all(|m| m.queue_name == "hold"));
        // A stopped instance: a message still in maildrop has no delay reason yet.
        let stopped = parse_listing(STOPPED).unwrap();
        assert_eq!(stopped[0].queue_name, "maildrop");
        assert_eq!(stopped[0].sender, "root");
        assert_eq!(stopped[0].recipients[0].delay_reason, None);
        assert_eq!(parse_listing("").unwrap(), vec![]);
        assert!(parse_listing("{\"queue_name\": 1}").is_err());
    }

    #[test]
    fn postsuper_counts_recorded() {
        // Each block of the recording is one postsuper run's terminal output.
        let runs: Vec<&str> = POSTSUPER.split("\n\n").collect();
        let counts: Vec<Option<u64>> = runs.iter().map(|r| postsuper_count(r)).collect();
        assert_eq!(
            counts,
            [
                Some(3),
                Some(3),
                Some(3),
                Some(3),
                Some(1),
                Some(0),
                Some(1),
                None,
                Some(1),
                Some(1),
                Some(1),
                Some(1)
            ]
        );
        let per_message: Vec<&str> = POSTSUPER
            .lines()
            .filter(|l| postsuper_per_message(l))
            .collect();
        assert_eq!(
            per_message,
            [
                "postsuper: C7502598122: placed on hold",
                "postsuper: C7502598122: released from hold",
                "postsuper: C7502598122: requeued",
                "postsuper: C886D598124: removed"
            ]
        );
    }

    #[test]
    fn counts_hashed_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path();
        std::fs::create_dir_all(q.join("deferred/A")).unwrap();
        std::fs::create_dir_all(q.join("hold")).unwrap();
        std::fs::write(q.join("deferred/A/ABC123"), "").unwrap();
        std::fs::write(q.join("deferred/A/ABC124"), "").unwrap();
        std::fs::write(q.join("hold/DEF"), "").unwrap();
        let counts = QueueCounts::read(q);
        assert_eq!(counts.deferred, 2);
        assert_eq!(counts.hold, 1);
        assert_eq!(counts.active, 0);
        assert_eq!(counts.total(), 3);
    }
}

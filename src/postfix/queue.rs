//! Queue sizes, counted from the queue directory's files (each message is one file,
//! possibly under hashed subdirectories), so no postqueue process is needed.

use std::path::Path;

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
        let count = |q: &str| count_files(&queue_directory.join(q));
        QueueCounts {
            maildrop: count("maildrop"),
            incoming: count("incoming"),
            active: count("active"),
            deferred: count("deferred"),
            hold: count("hold"),
            corrupt: count("corrupt"),
        }
    }

    /// Like [`QueueCounts::read`], but a queue directory that exists and cannot be
    /// read is an error instead of a zero: the queues belong to the mail owner, so
    /// only root (or that user) can count them.
    pub fn read_checked(queue_directory: &Path) -> Result<QueueCounts, String> {
        for q in QUEUES {
            let dir = queue_directory.join(q);
            if let Err(e) = std::fs::read_dir(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(format!("cannot read {}: {e}", dir.display()));
            }
        }
        Ok(QueueCounts::read(queue_directory))
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

fn count_files(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! What instancectl remembers about the instances it made and Postfix does not record
//! itself (the role, the listen addresses asked for), one TOML file per instance in a
//! directory beside Postfix's own data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::roles::Role;
use crate::runner::Runner;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub role: Role,
    #[serde(default)]
    pub listen: Vec<String>,
    /// The `--set` overrides on top of the role's preset, so that apply knows which
    /// parameters it put there and may take back.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// The directory of instance records.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// `INSTANCECTL_STATE_DIR`, or `instancectl` beside Postfix's data directory
    /// (/var/lib/instancectl on Debian).
    pub fn locate(data_directory: &Path) -> StateStore {
        let dir = std::env::var_os("INSTANCECTL_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                data_directory
                    .parent()
                    .unwrap_or(Path::new("/var/lib"))
                    .join("instancectl")
            });
        StateStore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn records_dir(&self) -> PathBuf {
        self.dir.join("instances")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.records_dir().join(format!("{name}.toml"))
    }

    /// Creates the directories up front, so that saving a record later adds a file
    /// and nothing else (a rolled-back run leaves no trace).
    pub fn prepare(&self) -> Result<()> {
        for dir in [self.records_dir(), self.dir.join("stopped")] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }

    fn held_down_path(&self, name: &str) -> PathBuf {
        let file = if name == "-" { "primary" } else { name };
        self.dir.join("stopped").join(file)
    }

    /// Whether `instancectl stop` asked for the instance to stay down (until `start`),
    /// even though it is enabled.
    pub fn is_held_down(&self, name: &str) -> bool {
        self.held_down_path(name).exists()
    }

    pub fn hold_down(&self, runner: &Runner, name: &str, down: bool) -> Result<()> {
        let path = self.held_down_path(name);
        if down == path.exists() {
            return Ok(());
        }
        if down {
            runner.write_file(&path, b"", 0o644)
        } else {
            runner.remove_file(&path)
        }
    }

    pub fn load(&self, name: &str) -> Option<InstanceRecord> {
        let text = std::fs::read_to_string(self.path(name)).ok()?;
        match toml::from_str(&text) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(path = %self.path(name).display(), error = %e, "ignoring unreadable instance record");
                None
            }
        }
    }

    pub fn save(&self, runner: &Runner, name: &str, record: &InstanceRecord) -> Result<()> {
        let path = self.path(name);
        let text = toml::to_string(record)
            .map_err(|e| Error::failed(format!("cannot encode instance record: {e}")))?;
        runner.write_file(&path, text.as_bytes(), 0o644)
    }

    pub fn remove(&self, runner: &Runner, name: &str) -> Result<()> {
        runner.remove_file(&self.path(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore {
            dir: dir.path().into(),
        };
        let record = InstanceRecord {
            role: Role::Output,
            listen: vec!["127.0.0.1:10026".into()],
            settings: [("relayhost".to_string(), "[mx]".to_string())].into(),
        };
        let runner = Runner::new(false);
        store.prepare().unwrap();
        store.save(&runner, "postfix-out", &record).unwrap();
        assert_eq!(store.load("postfix-out"), Some(record));
        store.remove(&runner, "postfix-out").unwrap();
        assert_eq!(store.load("postfix-out"), None);
    }
}

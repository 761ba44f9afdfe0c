//! What instancectl remembers about the instances it made and Postfix does not record
//! itself (the role, the listen addresses asked for), one TOML file per instance in a
//! directory beside Postfix's own data directory; and the changes under way (intent
//! records), so that a run killed halfway is finished or undone by the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, StateError};
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

/// What a changing run set out to do to an instance, written before its first change
/// and removed after its last (or after it was undone). A record left behind means
/// the run was killed halfway: the next changing command, or reconcile, finishes a
/// destroy and undoes a create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub action: IntentAction,
    pub name: String,
    /// The instancectl process that wrote it.
    pub pid: u32,
    /// Seconds since the epoch.
    pub started: u64,
    /// The instance's own directories (configuration, queue, data): what to remove.
    pub directories: Vec<PathBuf>,
    /// A destroy that may discard queued mail (`--force-discard-queue`).
    #[serde(default)]
    pub discard_queue: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntentAction {
    Create,
    Destroy,
}

impl IntentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentAction::Create => "create",
            IntentAction::Destroy => "destroy",
        }
    }
}

impl Intent {
    pub fn new(action: IntentAction, name: &str, directories: Vec<PathBuf>) -> Intent {
        Intent {
            action,
            name: name.to_string(),
            pid: std::process::id(),
            started: crate::output::unix_now(),
            directories,
            discard_queue: false,
        }
    }

    /// Whether this process wrote it (the change is under way here).
    pub fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Whether the run that wrote it is gone, leaving the change half done.
    pub fn is_interrupted(&self) -> bool {
        crate::process::liveness(self.pid as i32) == crate::process::Liveness::Gone
    }

    /// What it means for the instance, for status and list: someone is at it now, or
    /// a killed run left it half done.
    pub fn describe(&self) -> String {
        let what = format!("`instancectl {} {}`", self.action.as_str(), self.name);
        if !self.is_interrupted() {
            format!("{what} is under way (pid {})", self.pid)
        } else {
            let next = match self.action {
                IntentAction::Create => "undoes it",
                IntentAction::Destroy => "finishes it",
            };
            format!(
                "{what} was interrupted halfway (pid {} is gone); the next changing \
                 instancectl command or `instancectl reconcile` {next}",
                self.pid
            )
        }
    }
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

    fn intents_dir(&self) -> PathBuf {
        self.dir.join("intents")
    }

    pub fn intent_path(&self, name: &str) -> PathBuf {
        self.intents_dir().join(format!("{name}.toml"))
    }

    /// Records a change before it starts (nothing in a dry run, which changes nothing).
    pub fn begin(&self, runner: &Runner, intent: &Intent) -> Result<()> {
        if runner.dry_run() {
            return Ok(());
        }
        let path = self.intent_path(&intent.name);
        let text = toml::to_string(intent).map_err(|error| StateError::Encode {
            record: "intent",
            error,
        })?;
        std::fs::create_dir_all(self.intents_dir())
            .map_err(|e| Error::io(self.intents_dir(), e))?;
        runner.write_file(&path, text.as_bytes(), 0o644)
    }

    /// Marks a recorded change as done (or undone).
    pub fn end(&self, runner: &Runner, name: &str) -> Result<()> {
        if runner.dry_run() {
            return Ok(());
        }
        runner.remove_file(&self.intent_path(name))
    }

    /// The recorded change to an instance, if one is under way or was interrupted.
    pub fn intent(&self, name: &str) -> Option<Intent> {
        let text = std::fs::read_to_string(self.intent_path(name)).ok()?;
        toml::from_str(&text).ok()
    }

    /// Every recorded change, by instance name.
    pub fn intents(&self) -> Vec<Intent> {
        let Ok(entries) = std::fs::read_dir(self.intents_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<Intent> = entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|text| toml::from_str(&text).ok())
            .collect();
        out.sort_by(|a: &Intent, b: &Intent| a.name.cmp(&b.name));
        out
    }

    fn path(&self, name: &str) -> PathBuf {
        self.records_dir().join(format!("{name}.toml"))
    }

    /// Creates the directories up front, so that saving a record later adds a file
    /// and nothing else (a rolled-back run leaves no trace).
    pub fn prepare(&self) -> Result<()> {
        for dir in [
            self.records_dir(),
            self.dir.join("stopped"),
            self.intents_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|error| StateError::Directory {
                dir: dir.clone(),
                error,
            })?;
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
        let text = toml::to_string(record).map_err(|error| StateError::Encode {
            record: "instance",
            error,
        })?;
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

    #[test]
    fn intents_round_trip_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore {
            dir: dir.path().into(),
        };
        let runner = Runner::new(false);
        let mut intent = Intent::new(
            IntentAction::Destroy,
            "postfix-x",
            vec!["/etc/postfix-x".into()],
        );
        intent.discard_queue = true;
        store.begin(&Runner::new(true), &intent).unwrap();
        assert_eq!(store.intent("postfix-x"), None, "a dry run records nothing");
        store.begin(&runner, &intent).unwrap();
        assert_eq!(store.intent("postfix-x"), Some(intent.clone()));
        assert_eq!(store.intents(), [intent.clone()]);
        assert!(intent.is_ours());
        assert!(intent.describe().contains("is under way"));
        let dead = Intent {
            pid: i32::MAX as u32,
            ..intent
        };
        assert!(
            dead.describe().contains("was interrupted halfway"),
            "{}",
            dead.describe()
        );
        assert!(dead.describe().contains("finishes it"));
        store.end(&runner, "postfix-x").unwrap();
        assert!(store.intents().is_empty());
    }
}

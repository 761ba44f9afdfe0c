//! The persistent enable/disable overrides of the system domain.
//!
//! Real launchd keeps them in `/var/db/com.apple.xpc.launchd/disabled.plist`, outside any
//! job's plist, which is why a `disable` survives reboots and deleting and re-creating the
//! plist. The emulator keeps the same kind of file (`disabled.plist`, label => true when
//! disabled) in its state directory, so it also survives restarting the emulator.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "disabled.plist";

#[derive(Debug)]
pub struct Overrides {
    path: PathBuf,
    disabled: BTreeMap<String, bool>,
}

impl Overrides {
    /// Reads the overrides file in `state_dir`; a missing file means no overrides.
    pub fn load(state_dir: &Path) -> io::Result<Self> {
        let path = state_dir.join(FILE_NAME);
        let disabled = match fs::read(&path) {
            Ok(bytes) => {
                let value = plist::Value::from_reader(io::Cursor::new(bytes))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                value
                    .as_dictionary()
                    .map(|d| {
                        d.iter()
                            .filter_map(|(k, v)| v.as_boolean().map(|b| (k.clone(), b)))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path, disabled })
    }

    /// `Some(true)` if disabled by override, `Some(false)` if enabled, `None` if no override.
    pub fn get(&self, label: &str) -> Option<bool> {
        self.disabled.get(label).copied()
    }

    /// Records an override and writes the file before returning, so it is never lost.
    pub fn set(&mut self, label: &str, disabled: bool) -> io::Result<()> {
        self.disabled.insert(label.to_string(), disabled);
        self.save()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, bool)> {
        self.disabled.iter().map(|(k, v)| (k.as_str(), *v))
    }

    fn save(&self) -> io::Result<()> {
        let dict: plist::Dictionary = self
            .disabled
            .iter()
            .map(|(k, v)| (k.clone(), plist::Value::Boolean(*v)))
            .collect();
        let tmp = self.path.with_extension("plist.tmp");
        plist::Value::Dictionary(dict)
            .to_file_xml(&tmp)
            .map_err(io::Error::other)?;
        fs::rename(&tmp, &self.path)
    }
}

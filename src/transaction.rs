//! A change made of several steps that is undone as a whole when one step fails: each
//! step that succeeds registers how to take it back, and a failure runs those undo
//! actions in reverse order.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::host::Host;

type UndoAction<'h> = Box<dyn FnOnce(&Host) -> Result<()> + 'h>;

pub struct Transaction<'h> {
    host: &'h Host,
    undo: Vec<(String, UndoAction<'h>)>,
    /// Which instance the steps are for, in their progress lines.
    label: Option<String>,
}

/// Which step failed, and why.
pub struct StepFailed {
    step: String,
    error: Error,
}

impl<'h> Transaction<'h> {
    /// Runs `body`; if it fails, undoes what it registered and reports the failed step.
    pub fn run<T>(
        host: &'h Host,
        body: impl FnOnce(&mut Transaction<'h>) -> Result<T, StepFailed>,
    ) -> Result<T> {
        let mut tx = Transaction {
            host,
            undo: Vec::new(),
            label: None,
        };
        match body(&mut tx) {
            Ok(value) => Ok(value),
            Err(failed) => Err(tx.roll_back(failed)),
        }
    }

    /// From now on, names each step `LABEL: STEP` (which instance, when one run
    /// makes several).
    pub fn label_steps(&mut self, label: &str) {
        self.label = Some(label.to_string());
    }

    /// Runs one named step, shown as it happens (see `progress`).
    pub fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&Host) -> Result<T>,
    ) -> Result<T, StepFailed> {
        let shown = match &self.label {
            Some(label) => format!("{label}: {name}"),
            None => name.to_string(),
        };
        crate::progress::run(&shown, || f(self.host)).map_err(|error| StepFailed {
            step: name.to_string(),
            error,
        })
    }

    /// Registers how to take back what has just been done.
    pub fn on_undo(&mut self, what: &str, f: impl FnOnce(&Host) -> Result<()> + 'h) {
        self.undo.push((what.to_string(), Box::new(f)));
    }

    /// Remembers a file as it is now, or that it does not exist, and registers putting
    /// it back exactly (see [`FileSnapshot`]). Nothing is remembered in a dry run,
    /// which changes nothing.
    pub fn guard_file(&mut self, path: &Path) -> Result<(), StepFailed> {
        if self.host.runner.dry_run() {
            return Ok(());
        }
        let what = format!("restore {}", path.display());
        let saved = FileSnapshot::take(path).map_err(|error| StepFailed {
            step: what.clone(),
            error,
        })?;
        self.on_undo(&what, move |h| saved.restore(h));
        Ok(())
    }

    fn roll_back(self, failed: StepFailed) -> Error {
        let mut problems = Vec::new();
        for (what, action) in self.undo.into_iter().rev() {
            if let Err(e) = action(self.host) {
                problems.push(format!("{what}: {e}"));
            }
        }
        if problems.is_empty() {
            Error::RolledBack {
                step: failed.step,
                cause: Box::new(failed.error),
            }
        } else {
            Error::RollbackFailed {
                step: failed.step,
                cause: Box::new(failed.error),
                undo: problems.join("\n"),
            }
        }
    }
}

/// A file's bytes and mode as they were, or that it did not exist. The bytes are
/// wiped when dropped: the file may be a password map (`relay set` guards it).
pub struct FileSnapshot {
    path: PathBuf,
    saved: Option<(Zeroizing<Vec<u8>>, u32)>,
}

impl FileSnapshot {
    pub fn take(path: &Path) -> Result<FileSnapshot> {
        let saved = match std::fs::read(path).map(Zeroizing::new) {
            Ok(bytes) => {
                let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
                Some((bytes, meta.permissions().mode() & 0o7777))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(path, e)),
        };
        Ok(FileSnapshot {
            path: path.to_path_buf(),
            saved,
        })
    }

    pub fn mode(&self) -> Option<u32> {
        self.saved.as_ref().map(|(_, m)| *m)
    }

    /// Puts the file back exactly: the same bytes and mode (written with that mode from
    /// the start, so a secret file is never readable by others), or no file. A file
    /// that is already as it was is left alone.
    pub fn restore(&self, host: &Host) -> Result<()> {
        match &self.saved {
            Some((bytes, mode)) => {
                let now = std::fs::read(&self.path).ok().map(Zeroizing::new);
                if now.as_deref() == Some(bytes) {
                    Ok(())
                } else {
                    host.runner.write_file(&self.path, bytes, *mode)
                }
            }
            None => host.runner.remove_file(&self.path),
        }
    }
}

//! A change made of several steps that is undone as a whole when one step fails: each
//! step that succeeds registers how to take it back, and a failure runs those undo
//! actions in reverse order.

use crate::error::{Error, Result};
use crate::host::Host;

type UndoAction<'h> = Box<dyn FnOnce(&Host) -> Result<()> + 'h>;

pub struct Transaction<'h> {
    host: &'h Host,
    undo: Vec<(String, UndoAction<'h>)>,
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
        };
        match body(&mut tx) {
            Ok(value) => Ok(value),
            Err(failed) => Err(tx.roll_back(failed)),
        }
    }

    /// Runs one named step.
    pub fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&Host) -> Result<T>,
    ) -> Result<T, StepFailed> {
        f(self.host).map_err(|error| StepFailed {
            step: name.to_string(),
            error,
        })
    }

    /// Registers how to take back what has just been done.
    pub fn on_undo(&mut self, what: &str, f: impl FnOnce(&Host) -> Result<()> + 'h) {
        self.undo.push((what.to_string(), Box::new(f)));
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

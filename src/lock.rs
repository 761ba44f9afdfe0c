//! Locks in instancectl's state directory. One instancectl at a time changes the host
//! (postmulti edits the primary main.cf in place, so two concurrent runs could lose
//! each other's edits), and one supervisor at a time runs masters.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::StateError;
use crate::error::{Error, Result};

/// Held while it lives; released on drop (or when the process dies).
pub struct HostLock {
    _lock: Flock<std::fs::File>,
}

fn open(state_dir: &Path, name: &str) -> Result<(PathBuf, std::fs::File)> {
    std::fs::create_dir_all(state_dir).map_err(|error| StateError::Directory {
        dir: state_dir.into(),
        error,
    })?;
    let path = state_dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    Ok((path, file))
}

impl HostLock {
    /// Waits for the host lock: the one every changing command holds.
    pub fn acquire(state_dir: &Path) -> Result<HostLock> {
        let (path, file) = open(state_dir, "lock")?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((file, _)) => {
                eprintln!(
                    "waiting for another instancectl to finish ({})",
                    path.display()
                );
                Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| StateError::Lock {
                    lock: path.clone(),
                    error: e.into(),
                })?
            }
        };
        Ok(HostLock { _lock: lock })
    }

    /// The supervisor lock, without waiting: a second supervisor would start second
    /// masters, so it must refuse instead.
    pub fn supervisor(state_dir: &Path) -> Result<HostLock> {
        let (path, file) = open(state_dir, "supervisor.lock")?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| StateError::SupervisorRunning { lock: path })?;
        Ok(HostLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_supervisor_is_refused_and_told_which_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let first = HostLock::supervisor(dir.path()).unwrap();
        let err = HostLock::supervisor(dir.path()).err().unwrap();
        assert_eq!(err.exit_code(), 1);
        assert!(matches!(
            err.into_state(),
            StateError::SupervisorRunning { lock } if lock == dir.path().join("supervisor.lock")
        ));
        drop(first);
        assert!(HostLock::supervisor(dir.path()).is_ok());
    }

    #[test]
    fn a_state_directory_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"").unwrap();
        let state_dir = file.join("state");
        assert!(matches!(
            HostLock::acquire(&state_dir).err().unwrap().into_state(),
            StateError::Directory { dir, .. } if dir == state_dir
        ));
    }
}

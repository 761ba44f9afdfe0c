//! One instancectl at a time changes the host: postmulti edits the primary main.cf in
//! place, so two concurrent runs could lose each other's edits.

use std::fs::OpenOptions;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// Held for as long as a changing command runs; released on drop.
pub struct HostLock {
    _lock: Flock<std::fs::File>,
}

impl HostLock {
    /// Waits for the lock file in `state_dir`.
    pub fn acquire(state_dir: &Path) -> Result<HostLock> {
        std::fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
        let path = state_dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((file, _)) => {
                eprintln!(
                    "waiting for another instancectl to finish ({})",
                    path.display()
                );
                Flock::lock(file, FlockArg::LockExclusive)
                    .map_err(|(_, e)| Error::io(&path, e.into()))?
            }
        };
        Ok(HostLock { _lock: lock })
    }
}

//! What can go wrong with instancectl's own records and locks: another supervisor
//! holding its lock, a state directory that cannot be made, a record that cannot be
//! written or an interrupted change whose record is incomplete.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "another instancectl supervisor is already running ({} is locked); use that one \
         (`instancectl status` asks it), or stop it first",
        .lock.display()
    )]
    SupervisorRunning { lock: PathBuf },

    #[error(
        "cannot lock {}: {error}; instancectl's state directory must be one root can \
         write, on a file system with flock(2) (INSTANCECTL_STATE_DIR moves it)",
        .lock.display()
    )]
    Lock {
        lock: PathBuf,
        error: std::io::Error,
    },

    #[error(
        "cannot create instancectl's state directory {}: {error}; it must be a directory \
         root can write",
        .dir.display()
    )]
    Directory { dir: PathBuf, error: std::io::Error },

    #[error("cannot encode the {record} record: {error} (a bug in instancectl; please report it)")]
    Encode {
        record: &'static str,
        error: toml::ser::Error,
    },

    #[error(
        "the intent record of {name} does not name its three directories; look at {name} \
         by hand (`instancectl status {name}`), then remove {}",
        .path.display()
    )]
    IntentIncomplete { name: String, path: PathBuf },
}

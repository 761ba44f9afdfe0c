//! The wire protocol between `launchctl` and `launchd-emulator`.
//!
//! Real launchctl sends an XPC message and launchd answers with an errno-style code (plus
//! text for `print`), and launchctl turns the code into the message and exit status. The
//! emulator keeps that split, so the daemon decides and the client words it, over one JSON
//! line each way on a Unix socket.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variable through which `launchctl` finds the daemon's state directory.
pub const ENV_DIR: &str = "LAUNCHD_EMULATOR_DIR";

/// Name of the daemon's listening socket inside the state directory.
pub const SOCKET_NAME: &str = "launchd.sock";

/// Where the daemon listens, given its state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// One launchctl operation, already parsed and checked for usage errors by the client.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    Enable { label: String },
    Disable { label: String },
    Bootstrap { path: String },
    BootoutLabel { label: String },
    BootoutPath { path: String },
    Kickstart { label: String, kill: bool },
    Kill { label: String, signal: i32 },
    Print { label: String },
    PrintDisabled,
    Reboot,
}

/// The daemon's answer: `error` is 0 or an errno-style code as launchd returns it.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Response {
    pub error: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// launchd is macOS 13 or later (launchctl words some failures differently).
    #[serde(default)]
    pub macos13: bool,
}

impl Response {
    pub fn ok() -> Self {
        Self::default()
    }

    pub fn err(error: i32) -> Self {
        Self {
            error,
            ..Self::default()
        }
    }
}

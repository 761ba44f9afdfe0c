//! A test-only emulator of launchd's `system` domain and of the `launchctl` commands
//! instancectl drives.
//!
//! launchd cannot run on Linux, so instancectl's tests talk to this instead. It exists to be
//! faithful where the product depends on launchd (arguments, outputs, exit codes, and really
//! spawning, supervising and stopping jobs), so tests catch the same mistakes real launchd
//! would punish. It is never shipped.
//!
//! Two binaries share this library: `launchd-emulator` (the daemon, parent of every job) and
//! `launchctl` (the client, which finds the daemon through `LAUNCHD_EMULATOR_DIR`).

pub mod client;
pub mod corpus;
pub mod errors;
pub mod macos;
pub mod overrides;
pub mod plist_load;
pub mod plist_strict;
pub mod print;
pub mod procs;
pub mod protocol;
pub mod server;
pub mod supervisor;

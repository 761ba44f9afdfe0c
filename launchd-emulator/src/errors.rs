//! The error numbers launchd answers with and the words launchctl prints for them.
//!
//! The numbers are Darwin's errno values plus launchd's own (112 and up), because callers
//! branch on launchctl's exit status, which is that number.

pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const EIO: i32 = 5;
pub const EINPROGRESS: i32 = 36;
pub const EALREADY: i32 = 37;
/// Usage error: launchctl exits with this after printing the subcommand's usage.
pub const EX_USAGE: i32 = 64;
pub const ENODOMAIN: i32 = 112;
pub const ENOSERVICE: i32 = 113;
pub const E2BIMPL: i32 = 116;

/// Darwin's `strerror`/`xpc_strerror` text for the codes the emulator produces.
pub fn strerror(code: i32) -> &'static str {
    match code {
        1 => "Operation not permitted",
        ENOENT => "No such file or directory",
        ESRCH => "No such process",
        EIO => "Input/output error",
        13 => "Permission denied",
        17 => "File exists",
        22 => "Invalid argument",
        EINPROGRESS => "Operation now in progress",
        EALREADY => "Operation already in progress",
        ENODOMAIN => "Could not find specified domain",
        ENOSERVICE => "Could not find specified service",
        E2BIMPL => "Function not implemented",
        _ => "Unknown error",
    }
}

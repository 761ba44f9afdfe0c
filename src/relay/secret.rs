//! The SASL password: read from a file or standard input, checked, and kept out of
//! every message, log line, Debug output and command line. It leaves the process in
//! one place only: the password map, written by the runner with mode 0600 from its
//! creation.

use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// A password. Debug and Display print a placeholder; the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Checks a password for what the password map can hold: one line, no leading or
    /// trailing white space (postmap trims it), UTF-8 text.
    pub fn new(text: String, source: &str) -> Result<Secret> {
        let secret = Secret(text);
        let text = secret.expose();
        if text.is_empty() {
            return Err(Error::bad_input(format!("{source}: the password is empty")));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(Error::bad_input(format!(
                "{source}: the password contains a line break or another control character, \
                 which a Postfix lookup table cannot hold (is there more than one line?)"
            )));
        }
        if text.trim() != text {
            return Err(Error::bad_input(format!(
                "{source}: the password begins or ends with white space, which postmap would \
                 strip; the relay would then reject it"
            )));
        }
        Ok(secret)
    }

    /// The password itself, for the one place that writes it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads the first line of `path`. The file is the user's; it is only read.
    pub fn from_file(path: &Path) -> Result<Secret> {
        let source = format!("--sasl-password-file {}", path.display());
        let bytes = std::fs::read(path)
            .map_err(|e| Error::bad_input(format!("{source}: cannot read it: {e}")))?;
        let secret = Secret::from_bytes(bytes, &source)?;
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "instancectl: warning: {} is readable by other users (mode {:04o}); instancectl \
                 keeps its own copy mode 0600, so delete this file or chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
        Ok(secret)
    }

    /// Reads the password from standard input: piped, or typed at a terminal with
    /// echo turned off.
    pub fn from_stdin() -> Result<Secret> {
        let source = "--sasl-password-stdin";
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return read_from_terminal(source);
        }
        let mut bytes = Vec::new();
        stdin
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::bad_input(format!("{source}: cannot read standard input: {e}")))?;
        Secret::from_bytes(bytes, source)
    }

    fn from_bytes(mut bytes: Vec<u8>, source: &str) -> Result<Secret> {
        // One trailing line break (echo, an editor) is not part of the password.
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let mut bytes = e.into_bytes();
            wipe_bytes(&mut bytes);
            Error::bad_input(format!("{source}: the password is not UTF-8 text"))
        })?;
        Secret::new(text, source)
    }
}

fn read_from_terminal(source: &str) -> Result<Secret> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin)
        .map_err(|e| Error::bad_input(format!("{source}: cannot use the terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    eprint!("SASL password (not shown): ");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)
        .map_err(|e| Error::bad_input(format!("{source}: cannot turn off echo: {e}")))?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read.map_err(|e| Error::bad_input(format!("{source}: cannot read the terminal: {e}")))?;
    Secret::from_bytes(line.into_bytes(), source)
}

/// Wipes a string that may hold a password (a password map read back).
pub(crate) fn forget(text: String) {
    let mut bytes = text.into_bytes();
    wipe_bytes(&mut bytes);
}

fn wipe_bytes(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // A volatile write is not optimized away although the buffer dies next.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        wipe_bytes(&mut bytes);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_in_debug_and_display() {
        let s = Secret::new("hunter2:#x y".into(), "t").unwrap();
        assert_eq!(format!("{s:?} {s}"), "Secret(<hidden>) <hidden>");
        assert_eq!(s.expose(), "hunter2:#x y");
    }

    #[test]
    fn one_trailing_newline_is_dropped() {
        let s = Secret::from_bytes(b"pw\r\n".to_vec(), "t").unwrap();
        assert_eq!(s.expose(), "pw");
        let s = Secret::from_bytes(b"pw\n".to_vec(), "t").unwrap();
        assert_eq!(s.expose(), "pw");
    }

    #[test]
    fn unusable_passwords_are_refused_without_showing_them() {
        for bad in [
            &b""[..],
            b"\n",
            b"two\nlines\n",
            b" lead",
            b"trail ",
            b"tab\tx",
            b"\xff\xfe",
        ] {
            let err = Secret::from_bytes(bad.to_vec(), "src").unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            assert!(!text.contains("lead") && !text.contains("lines"), "{text}");
        }
    }

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "s3cret");
        let missing = Secret::from_file(&dir.path().join("none")).unwrap_err();
        assert_eq!(missing.exit_code(), 2);
    }
}

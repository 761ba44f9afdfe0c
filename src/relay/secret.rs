//! The SASL password: read from a file or standard input, checked, and kept out of
//! every message, log line, Debug output and command line. It leaves the process in
//! one place only: the password map, written by the runner with mode 0600 from its
//! creation.

use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::error::{InputError, PasswordProblem};

/// The most a password source may hold. Passwords and API keys are far shorter; the
/// limit keeps `--sasl-password-file /dev/zero` or an endless pipe from filling memory.
const MAX_LEN: usize = 4096;

/// A password. Debug and Display print a placeholder; the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Checks a password for what the password map can hold: one line, no leading or
    /// trailing white space (postmap trims it), UTF-8 text.
    pub fn new(text: String, source: &str) -> Result<Secret> {
        let secret = Secret(Zeroizing::new(text));
        let text = secret.expose();
        if text.is_empty() {
            return Err(password(source, PasswordProblem::Empty));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(password(source, PasswordProblem::ControlCharacter));
        }
        if text.trim() != text {
            return Err(password(source, PasswordProblem::SurroundingSpace));
        }
        Ok(secret)
    }

    /// The password itself, for the one place that writes it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads the password from `path`, a regular file of at most 4 KiB. The file is
    /// the user's; it is only read. A FIFO or a device is refused without waiting for
    /// it (it is opened non-blocking and looked at before anything is read).
    pub fn from_file(path: &Path) -> Result<Secret> {
        let source = format!("--sasl-password-file {}", path.display());
        let cannot = |e| unreadable(&source, "cannot read it", e);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            return Err(password(&source, PasswordProblem::NotARegularFile));
        }
        if meta.len() > MAX_LEN as u64 {
            return Err(too_long(&source));
        }
        let secret = Secret::from_bytes(read_bounded(file, &source)?, &source)?;
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
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
        Secret::from_bytes(read_bounded(stdin.lock(), source)?, source)
    }

    fn from_bytes(mut bytes: Zeroizing<Vec<u8>>, source: &str) -> Result<Secret> {
        // One trailing line break (echo, an editor) is not part of the password.
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        // The buffer moves into the String (no copy); on error it comes back, wrapped
        // again so that it is wiped.
        let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
            drop(Zeroizing::new(e.into_bytes()));
            password(source, PasswordProblem::NotUtf8)
        })?;
        Secret::new(text, source)
    }
}

/// Reads at most [`MAX_LEN`] bytes into a buffer allocated once (growing a buffer
/// would leave copies of the password behind in freed memory) and wiped on drop.
fn read_bounded(reader: impl Read, source: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_LEN + 1));
    reader
        .take(MAX_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(source, "cannot read it", e))?;
    if bytes.len() > MAX_LEN {
        return Err(too_long(source));
    }
    Ok(bytes)
}

fn too_long(source: &str) -> Error {
    password(source, PasswordProblem::TooLong(MAX_LEN))
}

fn password(source: &str, problem: PasswordProblem) -> Error {
    InputError::Password {
        from: source.into(),
        problem,
    }
    .into()
}

fn unreadable(source: &str, doing: &'static str, error: impl Into<std::io::Error>) -> Error {
    InputError::PasswordUnreadable {
        from: source.into(),
        doing,
        error: error.into(),
    }
    .into()
}

fn read_from_terminal(source: &str) -> Result<Secret> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| unreadable(source, "cannot use the terminal", e))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    eprint!("SASL password (not shown): ");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)
        .map_err(|e| unreadable(source, "cannot turn off echo", e))?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_LEN + 1));
    let read = std::io::BufRead::read_until(
        &mut stdin.lock().take(MAX_LEN as u64 + 1),
        b'\n',
        &mut bytes,
    );
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read.map_err(|e| unreadable(source, "cannot read the terminal", e))?;
    if bytes.len() > MAX_LEN {
        return Err(too_long(source));
    }
    Secret::from_bytes(bytes, source)
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
        let s = Secret::from_bytes(Zeroizing::new(b"pw\r\n".to_vec()), "t").unwrap();
        assert_eq!(s.expose(), "pw");
        let s = Secret::from_bytes(Zeroizing::new(b"pw\n".to_vec()), "t").unwrap();
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
            let err = Secret::from_bytes(Zeroizing::new(bad.to_vec()), "src").unwrap_err();
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

    #[test]
    fn only_a_small_regular_file_is_read() {
        // /dev/zero would be read until memory runs out.
        let err = Secret::from_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // A FIFO without a writer would block for ever.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(Secret::from_file(&path).map(drop)).unwrap());
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a FIFO blocked");
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        let big = dir.path().join("big");
        std::fs::write(&big, "x".repeat(MAX_LEN + 1)).unwrap();
        let err = Secret::from_file(&big).unwrap_err();
        assert!(err.to_string().contains("more than 4096 bytes"), "{err}");
        // An endless stream on standard input is cut off, not read to the end.
        let endless = std::fs::File::open("/dev/zero").unwrap();
        let err = read_bounded(endless, "--sasl-password-stdin").unwrap_err();
        assert!(err.to_string().contains("more than 4096 bytes"), "{err}");
    }
}

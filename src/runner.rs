//! The one place where instancectl runs other programs and writes files.
//!
//! Every command goes through [`Runner`], which records its argv, exit status and
//! output. That gives `--dry-run` (changes are printed instead of performed) and error
//! messages that quote what was run and what it said. Postfix 3.7 and older write their
//! warnings and fatal errors to stderr only when stderr is a terminal, so stderr is a
//! pseudo-terminal whose text is captured: users see Postfix's own words, never a bare
//! exit code.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::outcome::Outcome;

/// A program and its arguments, not yet run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    /// Fed to the command's standard input (never a secret: it is shown in messages).
    input: Option<Vec<u8>>,
}

impl Command {
    pub fn new(program: impl AsRef<str>) -> Self {
        Command {
            argv: vec![program.as_ref().to_string()],
            env: Vec::new(),
            input: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<str>) -> Self {
        self.argv.push(arg.as_ref().to_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.argv
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.env
            .push((name.to_string(), value.as_ref().to_string()));
        self
    }

    /// Gives the command `input` on its standard input (otherwise /dev/null).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = Some(input.into());
        self
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The command as a shell would need it typed, for messages and `--dry-run`.
    pub fn display(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", quote(v)));
        let argv = self.argv.iter().map(|a| quote(a));
        let mut text = env.chain(argv).collect::<Vec<_>>().join(" ");
        if let Some(input) = &self.input {
            text.push_str(&format!(" < ({} bytes on standard input)", input.len()));
        }
        text
    }
}

fn quote(word: &str) -> String {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("{word:?}"))
}

/// Runs commands and writes files, or in dry-run mode prints the changes instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct Runner {
    dry_run: bool,
}

impl Runner {
    pub fn new(dry_run: bool) -> Self {
        Runner { dry_run }
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Runs a command that only reads state; it runs even in dry-run mode.
    /// A non-zero exit is an error that quotes the command's output.
    pub fn query(&self, cmd: &Command) -> Result<Outcome> {
        checked(execute(cmd)?)
    }

    /// Runs a command that only reads state and returns its outcome whatever its exit.
    pub fn probe(&self, cmd: &Command) -> Result<Outcome> {
        execute(cmd)
    }

    /// Like [`Runner::probe`], but gives up after `timeout`: the command runs in a
    /// process group of its own, and the whole group is killed when time runs out
    /// (a shell script's children too). `None` means it was killed.
    pub fn probe_within(&self, cmd: &Command, timeout: Duration) -> Result<Option<Outcome>> {
        execute_within(cmd, Some(timeout))
    }

    /// Runs a command that changes the host; in dry-run mode it is only printed.
    pub fn change(&self, cmd: &Command) -> Result<Outcome> {
        if self.dry_run {
            crate::output::line(format_args!("would run: {}", cmd.display()));
            return Ok(Outcome {
                command: cmd.display(),
                code: Some(0),
                stdout: String::new(),
                diagnostics: String::new(),
            });
        }
        tracing::info!(command = %cmd.display(), "run");
        checked(execute(cmd)?)
    }

    /// Starts a command that only reads state and hands over its standard output as it
    /// comes (`journalctl -f`); it runs even in dry-run mode, and is killed when the
    /// reader is dropped.
    pub fn stream(&self, cmd: &Command) -> Result<std::io::BufReader<duct::ReaderHandle>> {
        tracing::info!(command = %cmd.display(), "read");
        let mut expr = duct::cmd(&cmd.argv[0], &cmd.argv[1..]).stdin_null();
        for (k, v) in &cmd.env {
            expr = expr.env(k, v);
        }
        let reader = expr.reader().map_err(|source| Error::Spawn {
            program: cmd.argv[0].clone(),
            source,
        })?;
        Ok(std::io::BufReader::new(reader))
    }

    /// Runs a command the user asked for (`instancectl exec`) with this process's
    /// standard input, output and error, so it can be interactive; in dry-run mode it
    /// is only printed. Returns its exit status (128 + the signal's number for a
    /// command killed by one, as shells report it).
    pub fn interactive(&self, cmd: &Command) -> Result<i32> {
        if self.dry_run {
            crate::output::line(format_args!("would run: {}", cmd.display()));
            return Ok(0);
        }
        tracing::info!(command = %cmd.display(), "run");
        let status = std::process::Command::new(&cmd.argv[0])
            .args(&cmd.argv[1..])
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .status()
            .map_err(|source| Error::Spawn {
                program: cmd.argv[0].clone(),
                source,
            })?;
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1);
        tracing::debug!(command = %cmd.display(), code, "ran");
        Ok(code)
    }

    /// Starts a long-running program (a Postfix master) as a child of this process.
    /// Its stdout and stderr are a pseudo-terminal, so that Postfix says why it
    /// stops; the returned file is the terminal's other side, to read that from. Its
    /// exit is collected by the supervisor's reaper, which waits for any child, so no
    /// handle is kept here.
    pub fn spawn_child(&self, cmd: &Command) -> Result<(u32, File)> {
        tracing::info!(command = %cmd.display(), "spawn");
        let spawn_error = |source| Error::Spawn {
            program: cmd.argv[0].clone(),
            source,
        };
        let pty = Pty::open().map_err(spawn_error)?;
        let terminal = pty.slave;
        let mut child = std::process::Command::new(&cmd.argv[0]);
        child
            .args(&cmd.argv[1..])
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(terminal.try_clone().map_err(spawn_error)?)
            .stderr(terminal);
        let pid = child.spawn().map_err(spawn_error)?.id();
        // `child` still holds the terminal; dropping it lets EOF reach the reader.
        drop(child);
        Ok((pid, pty.master))
    }

    /// Writes a whole file atomically (temporary file, fsync, rename) with `mode`.
    /// The temporary file is created with `mode` from the start, so a secret is never
    /// readable by others, not even for a moment.
    pub fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        if self.dry_run {
            crate::output::line(format_args!(
                "would write: {} (mode {mode:04o}, {} bytes)",
                path.display(),
                contents.len()
            ));
            return Ok(());
        }
        tracing::info!(path = %path.display(), mode = format!("{mode:04o}"), "write");
        atomic_write(path, contents, mode).map_err(|e| Error::io(path, e))
    }

    /// Like [`Runner::write_file`], and the file belongs to `owner` (uid, gid) before
    /// it appears under its name.
    pub fn write_file_owned(
        &self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> Result<()> {
        if self.dry_run {
            crate::output::line(format_args!(
                "would write: {} (mode {mode:04o}, owner {}:{}, {} bytes)",
                path.display(),
                owner.0,
                owner.1,
                contents.len()
            ));
            return Ok(());
        }
        tracing::info!(path = %path.display(), mode = format!("{mode:04o}"), uid = owner.0, gid = owner.1, "write");
        atomic_write_owned(path, contents, mode, Some(owner)).map_err(|e| Error::io(path, e))
    }

    /// Writes a file that holds a secret: like [`Runner::write_file`] with mode 0600
    /// from the file's creation, but neither `--dry-run` nor the log says anything of
    /// its contents, not even their length.
    pub fn write_secret(&self, path: &Path, contents: &[u8]) -> Result<()> {
        if self.dry_run {
            crate::output::line(format_args!(
                "would write: {} (mode 0600, owner root; contents not shown: they hold a password)",
                path.display()
            ));
            return Ok(());
        }
        tracing::info!(path = %path.display(), mode = "0600", "write secret");
        atomic_write(path, contents, 0o600).map_err(|e| Error::io(path, e))
    }

    /// Takes permissions away from an existing file until it has at most `mode`
    /// (e.g. 0600: nobody but the owner). A missing file is left missing.
    pub fn restrict_mode(&self, path: &Path, mode: u32) -> Result<()> {
        if self.dry_run {
            crate::output::line(format_args!(
                "would make {} mode {mode:04o} at most",
                path.display()
            ));
            return Ok(());
        }
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let now = meta.permissions().mode() & 0o7777;
        if now & !mode == 0 {
            return Ok(());
        }
        tracing::info!(path = %path.display(), mode = format!("{:04o}", now & mode), "chmod");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(now & mode))
            .map_err(|e| Error::io(path, e))
    }

    pub fn remove_file(&self, path: &Path) -> Result<()> {
        if self.dry_run {
            crate::output::line(format_args!("would remove: {}", path.display()));
            return Ok(());
        }
        tracing::info!(path = %path.display(), "remove");
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }

    /// Removes a directory and everything in it.
    pub fn remove_tree(&self, path: &Path) -> Result<()> {
        if self.dry_run {
            crate::output::line(format_args!(
                "would remove: {}/ (and everything in it)",
                path.display()
            ));
            return Ok(());
        }
        tracing::info!(path = %path.display(), "remove tree");
        std::fs::remove_dir_all(path).map_err(|e| Error::io(path, e))
    }
}

fn checked(outcome: Outcome) -> Result<Outcome> {
    if outcome.success() {
        Ok(outcome)
    } else {
        Err(Error::CommandFailed {
            context: "a command failed".into(),
            outcome: Box::new(outcome),
        })
    }
}

/// Writes `contents` to `path` through a temporary file in the same directory.
pub fn atomic_write(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    atomic_write_owned(path, contents, mode, None)
}

/// [`atomic_write`], and the temporary file is given to `owner` (uid, gid) before the
/// rename, so the file never appears with another owner.
fn atomic_write_owned(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let dir = directory_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".instancectl-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    // The umask may have narrowed the mode the file was created with.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// The directory a file is in. A bare file name's parent is "", which names no
/// directory to open and sync: it is the working directory.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn execute(cmd: &Command) -> Result<Outcome> {
    execute_within(cmd, None).map(|o| o.expect("no time limit"))
}

/// Runs a command; `None` when it was killed because `timeout` ran out.
fn execute_within(cmd: &Command, timeout: Option<Duration>) -> Result<Option<Outcome>> {
    let program = &cmd.argv[0];
    let spawn_error = |source| Error::Spawn {
        program: program.clone(),
        source,
    };
    let pty = Pty::open().map_err(spawn_error)?;
    let mut expr = match &cmd.input {
        Some(input) => duct::cmd(program, &cmd.argv[1..]).stdin_bytes(input.clone()),
        None => duct::cmd(program, &cmd.argv[1..]).stdin_null(),
    }
    .stdout_capture()
    .stderr_file(pty.slave)
    .unchecked();
    for (k, v) in &cmd.env {
        expr = expr.env(k, v);
    }
    if timeout.is_some() {
        expr = expr.before_spawn(|c| {
            std::os::unix::process::CommandExt::process_group(c, 0);
            Ok(())
        });
    }
    let reader = spawn_pty_reader(pty.master);
    let handle = expr.start().map_err(spawn_error)?;
    let output = match timeout {
        None => handle.wait().map_err(spawn_error)?.clone(),
        Some(limit) => match handle
            .wait_deadline(std::time::Instant::now() + limit)
            .map_err(spawn_error)?
        {
            Some(output) => output.clone(),
            None => {
                for pid in handle.pids() {
                    let group = nix::unistd::Pid::from_raw(pid as i32);
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                }
                let _ = handle.wait();
                tracing::debug!(command = %cmd.display(), "killed: out of time");
                return Ok(None);
            }
        },
    };
    // Close our copies of the terminal so the reader sees its end.
    drop(handle);
    drop(expr);
    let diagnostics = reader.collect();
    let outcome = Outcome {
        command: cmd.display(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        diagnostics,
    };
    tracing::debug!(command = %outcome.command, code = ?outcome.code, "ran");
    Ok(Some(outcome))
}

/// A pseudo-terminal pair whose descriptors are close-on-exec from the moment they
/// exist. nix's openpty opens them inheritable, so every program started while one
/// is open (by any thread: status probes run in parallel) would hold it, and a
/// master that `postfix start` leaves running would keep it for ever. The slave side
/// still reaches the child that needs it: dup2 onto its stderr clears the flag.
struct Pty {
    master: File,
    slave: File,
}

impl Pty {
    fn open() -> std::io::Result<Pty> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let master = nix::pty::posix_openpt(flags)?;
        nix::pty::grantpt(&master)?;
        nix::pty::unlockpt(&master)?;
        let slave_path = nix::pty::ptsname_r(&master)?;
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            // Not instancectl's controlling terminal; std adds O_CLOEXEC itself.
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(slave_path)?;
        let master = File::from(std::os::fd::OwnedFd::from(master));
        Ok(Pty { master, slave })
    }
}

/// Reads a pseudo-terminal's master side on a thread until every writer has gone.
struct PtyReader {
    chunks: mpsc::Receiver<Vec<u8>>,
}

fn spawn_pty_reader(mut master: File) -> PtyReader {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO marks the end: no process holds the terminal open any more.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    PtyReader { chunks: rx }
}

impl PtyReader {
    /// Collects the text. A daemon started by the command may keep the terminal open
    /// for ever, so stop waiting once it has been quiet for a moment.
    fn collect(self) -> String {
        let mut bytes = Vec::new();
        while let Ok(chunk) = self.chunks.recv_timeout(Duration::from_millis(300)) {
            bytes.extend(chunk);
        }
        String::from_utf8_lossy(&bytes).replace('\r', "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_on_a_terminal_is_captured() {
        let cmd = Command::new("sh").args(["-c", "test -t 2 && echo on-a-tty >&2; exit 3"]);
        let outcome = Runner::new(false).probe(&cmd).unwrap();
        assert_eq!(outcome.code, Some(3));
        assert_eq!(outcome.diagnostics.trim(), "on-a-tty");
    }

    #[test]
    fn terminal_descriptors_do_not_leak_into_children() {
        // The child sees its stderr on the terminal and no other descriptor of a
        // terminal: not the master side, not a second copy of the slave.
        let script = "for fd in /proc/$$/fd/*; do n=${fd##*/}; [ $n -gt 2 ] || continue; \
                      t=$(readlink $fd); case $t in /dev/pts/*|/dev/ptmx) echo leak $n $t;; esac; \
                      done; test -t 2 && echo tty >&2";
        let cmd = Command::new("sh").args(["-c", script]);
        let outcome = Runner::new(false).probe(&cmd).unwrap();
        assert_eq!(outcome.stdout, "", "{outcome:?}");
        assert_eq!(outcome.diagnostics.trim(), "tty");
        let (pid, master) = Runner::new(false)
            .spawn_child(&Command::new("sh").args(["-c", script]))
            .unwrap();
        let mut text = String::new();
        let mut master = master;
        let _ = master.read_to_string(&mut text);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
        assert!(!text.contains("leak"), "{text}");
        assert!(text.contains("tty"), "{text}");
    }

    #[test]
    fn failed_query_quotes_command_and_words() {
        let cmd = Command::new("sh").args(["-c", "echo 'fatal: no good' >&2; exit 1"]);
        let err = Runner::new(false).query(&cmd).unwrap_err().to_string();
        assert!(err.contains("exited with status 1"), "{err}");
        assert!(err.contains("fatal: no good"), "{err}");
        assert!(err.contains("sh -c"), "{err}");
    }

    #[test]
    fn probe_within_kills_the_whole_group_on_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        // The grandchild would create the marker after the deadline if it survived.
        let script = format!("(sleep 1; touch {}) & sleep 5", marker.display());
        let started = std::time::Instant::now();
        let outcome = Runner::new(false)
            .probe_within(
                &Command::new("sh").args(["-c", &script]),
                Duration::from_millis(200),
            )
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(outcome.is_none(), "{outcome:?}");
        std::thread::sleep(Duration::from_millis(1200));
        assert!(
            !marker.exists(),
            "a child of the timed-out command lived on"
        );
    }

    #[test]
    fn probe_within_returns_the_outcome_in_time() {
        let cmd = Command::new("sh").args(["-c", "echo out; echo warn >&2; exit 4"]);
        let outcome = Runner::new(false)
            .probe_within(&cmd, Duration::from_secs(5))
            .unwrap()
            .expect("in time");
        assert_eq!(outcome.code, Some(4));
        assert_eq!(outcome.stdout.trim(), "out");
        assert_eq!(outcome.diagnostics.trim(), "warn");
    }

    #[test]
    fn dry_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let runner = Runner::new(true);
        runner
            .change(&Command::new("touch").arg(path.to_str().unwrap()))
            .unwrap();
        runner.write_file(&path, b"x", 0o600).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn input_reaches_stdin() {
        let cmd = Command::new("sh")
            .args(["-c", "tr a-z A-Z"])
            .stdin("hello\n");
        assert!(cmd.display().ends_with("< (6 bytes on standard input)"));
        let outcome = Runner::new(false).query(&cmd).unwrap();
        assert_eq!(outcome.stdout, "HELLO\n");
    }

    #[test]
    fn secret_files_are_private_and_dry_run_does_not_write_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sasl_passwd");
        Runner::new(true).write_secret(&path, b"pw").unwrap();
        assert!(!path.exists());
        Runner::new(false).write_secret(&path, b"pw").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Runner::new(false).restrict_mode(&path, 0o600).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        Runner::new(false)
            .restrict_mode(&dir.path().join("none"), 0o600)
            .unwrap();
    }

    #[test]
    fn a_bare_file_name_is_in_the_working_directory() {
        assert_eq!(directory_of(Path::new("instancectl.prom")), Path::new("."));
        assert_eq!(directory_of(Path::new("a/b.prom")), Path::new("a"));
        assert_eq!(directory_of(Path::new("/b.prom")), Path::new("/"));
    }

    #[test]
    fn atomic_write_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        Runner::new(false)
            .write_file(&path, b"s3cret", 0o600)
            .unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

//! Does an instance's master run? The answer Postfix itself uses: the master writes its
//! pid to `$queue_directory/pid/master.pid` and holds an exclusive lock on that file for
//! as long as it lives (`master -t` and `postfix status` test the lock). A pid file
//! whose lock nobody holds is stale: the master was killed with SIGKILL, or the host
//! crashed, and its pid may now belong to an unrelated process.
//!
//! Postfix takes that lock with myflock(INTERNAL_LOCK), and INTERNAL_LOCK is flock(2)
//! on Linux, macOS and the BSDs (sys_defs.h; fcntl only on Solaris, AIX and other
//! System V systems). On Linux flock and fcntl locks are independent, so the test must
//! be a flock. Whether the lock is held is decided the way `master -t` decides it: the
//! file is opened (a description of its own, so even a lock this process held would
//! conflict) and a non-blocking exclusive flock is tried and released at once.
//! /proc/locks names the holder, and decides only when the file cannot be opened (a
//! user other than root): its device numbers are not always those stat(2) reports (on
//! an overlay whose upper layer is on another file system, as in many containers,
//! /proc/locks shows the upper layer's device).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde::Serialize;

/// Whether the pid file is locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockState {
    /// A live process holds the lock: the master runs.
    Held,
    /// Nobody holds the lock.
    Free,
    /// The lock could not be tested (the reason is in `MasterState::error`).
    Unknown,
    /// There is no pid file to lock.
    NoFile,
}

/// What the pid file and its lock say about the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MasterState {
    pub pid_file: PathBuf,
    /// The pid written in the file, whether or not that process lives.
    pub pid_file_pid: Option<i32>,
    /// Whether a process with the file's pid exists (it may be an unrelated process
    /// that reused the pid of a dead master).
    pub alive: Option<bool>,
    pub lock: LockState,
    /// The pid that holds the file's lock, where the system tells (Linux: /proc/locks,
    /// when its device numbers match stat's; 0 or less when it is outside this pid
    /// namespace).
    pub lock_holder: Option<i32>,
    /// Whether the file's pid is the process that holds the lock: known where the
    /// holder is; with the lock held and the holder unknown, assumed for a live pid.
    pub holds_lock: Option<bool>,
    /// The pid of the running master: the lock holder (Linux tells who it is), else
    /// the pid in the file while the lock is held.
    pub pid: Option<i32>,
    /// The master runs: a live process holds the pid file's lock.
    pub running: bool,
    /// A pid file that no live master holds. Postfix leaves its pid file behind
    /// whenever the master ends, so a stopped instance has one.
    pub stale: bool,
    /// Why something could not be read.
    pub error: Option<String>,
}

impl MasterState {
    /// The state of a master whose pid file is not known (a broken instance).
    pub fn not_known(why: &str) -> MasterState {
        MasterState {
            error: Some(why.to_string()),
            ..MasterState::new(Path::new(""))
        }
    }

    fn new(pid_file: &Path) -> MasterState {
        MasterState {
            pid_file: pid_file.to_path_buf(),
            pid_file_pid: None,
            alive: None,
            lock: LockState::Unknown,
            lock_holder: None,
            holds_lock: None,
            pid: None,
            running: false,
            stale: false,
            error: None,
        }
    }
}

/// The flock locks of the host, from /proc/locks (Linux). Read once per status run.
#[derive(Debug, Clone, Default)]
pub struct LockTable {
    /// (device major, device minor, inode, holder pid) of each FLOCK lock.
    flocks: Vec<(u64, u64, u64, i32)>,
}

impl LockTable {
    /// The host's lock table, or `None` where there is no /proc/locks.
    pub fn read() -> Option<LockTable> {
        std::fs::read_to_string("/proc/locks")
            .ok()
            .map(|text| LockTable::parse(&text))
    }

    /// Parses /proc/locks lines such as
    /// `3: FLOCK  ADVISORY  WRITE 318 00:33:10011619 0 EOF`. Waiters (`1: -> FLOCK ...`)
    /// do not hold the lock and are skipped.
    pub fn parse(text: &str) -> LockTable {
        let flocks = text
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.get(1) != Some(&"FLOCK") {
                    return None;
                }
                let pid: i32 = words.get(4)?.parse().ok()?;
                let mut id = words.get(5)?.split(':');
                let major = u64::from_str_radix(id.next()?, 16).ok()?;
                let minor = u64::from_str_radix(id.next()?, 16).ok()?;
                let inode = id.next()?.parse().ok()?;
                Some((major, minor, inode, pid))
            })
            .collect();
        LockTable { flocks }
    }

    /// The pid holding a flock lock on the file with this device and inode. The pid is
    /// 0 or negative when the holder is outside this pid namespace.
    pub fn holder(&self, dev: u64, inode: u64) -> Option<i32> {
        let (major, minor) = (dev_major(dev), dev_minor(dev));
        self.flocks
            .iter()
            .find(|(ma, mi, ino, _)| *ma == major && *mi == minor && *ino == inode)
            .map(|(_, _, _, pid)| *pid)
    }
}

/// Linux's encoding of a device number (glibc's gnu_dev_major / gnu_dev_minor).
fn dev_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}

fn dev_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}

/// Whether a process with this pid exists (EPERM: it exists, it is not ours).
fn pid_exists(pid: i32) -> bool {
    pid > 0 && !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// Reads the pid file and tests its lock with a non-blocking flock. `locks` is the
/// host's lock table where there is one, to name the holder.
pub fn probe(pid_file: &Path, locks: Option<&LockTable>) -> MasterState {
    let mut state = MasterState::new(pid_file);
    let meta = match std::fs::metadata(pid_file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            state.lock = LockState::NoFile;
            return state;
        }
        Err(e) => {
            state.error = Some(format!("cannot look at {}: {e}", pid_file.display()));
            return state;
        }
    };
    // Postfix writes the pid right-aligned in a field of spaces.
    let file = match File::open(pid_file) {
        Ok(mut file) => {
            let mut text = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut file, &mut text) {
                state.error = Some(format!("cannot read {}: {e}", pid_file.display()));
            }
            state.pid_file_pid = text.trim().parse().ok().filter(|p: &i32| *p > 0);
            Some(file)
        }
        Err(e) => {
            state.error = Some(format!("cannot read {}: {e}", pid_file.display()));
            None
        }
    };
    let listed_holder = locks.and_then(|table| table.holder(meta.dev(), meta.ino()));
    state.lock = match (file, locks) {
        (Some(file), _) => try_lock(file),
        // A file this user may not open (root's, mode 0600): the lock table is all
        // there is to go by.
        (None, Some(_)) if listed_holder.is_some() => LockState::Held,
        (None, Some(_)) => LockState::Free,
        (None, None) => LockState::Unknown,
    };
    let holder = listed_holder.filter(|_| state.lock == LockState::Held);
    state.alive = state.pid_file_pid.map(pid_exists);
    state.lock_holder = holder;
    let known_holder = holder.filter(|p| *p > 0);
    match state.lock {
        LockState::Held => {
            state.running = true;
            state.pid = known_holder.or(state.pid_file_pid);
            state.holds_lock = match (state.pid_file_pid, known_holder) {
                (Some(file), Some(holder)) => Some(file == holder),
                (Some(_), None) => state.alive,
                (None, _) => None,
            };
        }
        LockState::Free => {
            state.stale = true;
            state.holds_lock = state.pid_file_pid.map(|_| false);
        }
        // Without the lock, a live pid is the best evidence there is.
        LockState::Unknown => {
            if let Some(pid) = state.pid_file_pid.filter(|p| pid_exists(*p)) {
                state.running = true;
                state.pid = Some(pid);
            }
        }
        LockState::NoFile => {}
    }
    state
}

/// Tries the master's own lock without waiting, and releases it at once when it was
/// free. This is what `master -t` does.
fn try_lock(file: File) -> LockState {
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            drop(lock);
            LockState::Free
        }
        Err((_, Errno::EWOULDBLOCK)) => LockState::Held,
        Err(_) => LockState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKS: &str = "\
1: POSIX  ADVISORY  WRITE 700 00:19:1234 0 EOF
3: FLOCK  ADVISORY  WRITE 318 00:33:10011619 0 EOF
4: FLOCK  ADVISORY  WRITE 315 fd:01:10010674 0 EOF
4: -> FLOCK  ADVISORY  WRITE 999 fd:01:10010674 0 EOF
";

    #[test]
    fn parses_flock_lines_only() {
        let table = LockTable::parse(LOCKS);
        // fd:01 is major 253, minor 1; glibc packs that as (253 << 8) | 1.
        assert_eq!(table.holder((253 << 8) | 1, 10010674), Some(315));
        assert_eq!(table.holder(0x33, 10011619), Some(318));
        assert_eq!(
            table.holder(0x19, 1234),
            None,
            "POSIX locks are not Postfix's"
        );
        assert_eq!(table.holder(0x33, 1), None);
    }

    fn write_pid_file(dir: &Path, pid: u32) -> PathBuf {
        let path = dir.join("master.pid");
        std::fs::write(&path, format!("{pid:>33}\n")).unwrap();
        path
    }

    #[test]
    fn held_lock_means_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_pid_file(dir.path(), std::process::id());
        let _held = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusive).unwrap();
        for locks in [LockTable::read(), None] {
            let state = probe(&path, locks.as_ref());
            assert_eq!(state.lock, LockState::Held, "{state:?}");
            assert!(state.running && !state.stale);
            assert_eq!(state.pid, Some(std::process::id() as i32));
            assert_eq!(state.alive, Some(true));
            assert_eq!(state.holds_lock, Some(true));
        }
    }

    #[test]
    fn unlocked_file_of_a_live_pid_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        // Our own pid is alive, but we do not hold the lock: a reused pid.
        let path = write_pid_file(dir.path(), std::process::id());
        for locks in [LockTable::read(), None] {
            let state = probe(&path, locks.as_ref());
            assert_eq!(state.lock, LockState::Free, "{state:?}");
            assert!(!state.running && state.stale);
            assert_eq!(state.pid_file_pid, Some(std::process::id() as i32));
            assert_eq!(state.alive, Some(true));
            assert_eq!(state.holds_lock, Some(false));
        }
        // The fallback probe released the lock it took.
        let again = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock);
        assert!(again.is_ok());
    }

    #[test]
    fn a_lock_table_that_does_not_list_the_file_does_not_hide_the_lock() {
        // On an overlay with its upper layer on tmpfs, /proc/locks names the upper
        // layer's device, which is not the one stat reports: the table misses the lock.
        let dir = tempfile::tempdir().unwrap();
        let path = write_pid_file(dir.path(), std::process::id());
        let _held = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusive).unwrap();
        let elsewhere = LockTable::parse("3: FLOCK  ADVISORY  WRITE 318 00:33:9 0 EOF\n");
        let state = probe(&path, Some(&elsewhere));
        assert_eq!(state.lock, LockState::Held, "{state:?}");
        assert!(state.running && !state.stale);
        assert_eq!(state.pid, Some(std::process::id() as i32));
        assert_eq!(state.lock_holder, None);
        assert_eq!(state.holds_lock, Some(true));
    }

    #[test]
    fn missing_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let state = probe(&dir.path().join("master.pid"), LockTable::read().as_ref());
        assert_eq!(state.lock, LockState::NoFile);
        assert!(!state.running && !state.stale);
    }
}

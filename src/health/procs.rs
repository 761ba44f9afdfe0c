//! The host's processes, read once per status run, so that every instance's master
//! and its children can be found without reading /proc again per instance. Only
//! /proc/PID/stat is read, which holds all of it (name, state, parent, start time,
//! resident pages): /proc/PID/status, which process libraries also read, costs the
//! kernel several times more, and a status run reads every process of the host.

use std::collections::HashMap;

use serde::Serialize;

/// One process of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: Option<i32>,
    pub name: String,
    /// Resident set size. Pages shared between processes count in each of them.
    pub rss_bytes: u64,
    /// Seconds since the epoch.
    #[serde(skip)]
    pub start_time: u64,
    #[serde(skip)]
    pub zombie: bool,
}

/// A snapshot of the process table.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    procs: HashMap<i32, ProcInfo>,
    children: HashMap<i32, Vec<i32>>,
}

/// What converts /proc/PID/stat's units: the boot time (seconds since the epoch, the
/// `btime` line of /proc/stat), clock ticks per second and the page size.
#[derive(Debug, Clone, Copy)]
struct Units {
    boot_time: u64,
    ticks_per_second: u64,
    page_size: u64,
}

impl Units {
    fn of_this_host() -> Units {
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        let sysconf = |var| {
            nix::unistd::sysconf(var)
                .ok()
                .flatten()
                .and_then(|v| u64::try_from(v).ok())
        };
        Units {
            boot_time,
            ticks_per_second: sysconf(nix::unistd::SysconfVar::CLK_TCK)
                .unwrap_or(100)
                .max(1),
            page_size: sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096),
        }
    }
}

/// One line of /proc/PID/stat (proc(5)): `PID (COMM) STATE PPID ...`, the start time
/// in field 22 and the resident pages in field 24. The name may hold spaces and
/// parentheses, so the fields are counted from its last `)`.
fn parse_stat(text: &str, units: Units) -> Option<ProcInfo> {
    let (head, rest) = text.rsplit_once(") ")?;
    let (pid, name) = head.split_once(" (")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid: i32 = fields.get(1)?.parse().ok()?;
    let start_ticks: u64 = fields.get(19)?.parse().ok()?;
    let rss_pages: i64 = fields.get(21)?.parse().ok()?;
    Some(ProcInfo {
        pid: pid.trim().parse().ok()?,
        ppid: (ppid > 0).then_some(ppid),
        name: name.to_string(),
        rss_bytes: u64::try_from(rss_pages).unwrap_or(0) * units.page_size,
        start_time: units.boot_time + start_ticks / units.ticks_per_second,
        zombie: matches!(fields.first(), Some(&("Z" | "X"))),
    })
}

/// /proc/PID/stat in one read: the kernel writes the whole line at once, and it fits
/// in a page (a name of at most 15 bytes and 52 numbers). read_to_string would read
/// it in four or five pieces, not knowing its size, and status reads a thousand.
fn read_stat(pid: &str) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 4096];
    let n = file.read(&mut buf).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

impl ProcessTable {
    /// Reads every process once (threads are not listed in /proc itself).
    pub fn snapshot() -> ProcessTable {
        let units = Units::of_this_host();
        let Ok(proc) = std::fs::read_dir("/proc") else {
            return ProcessTable::default();
        };
        ProcessTable::from_procs(proc.flatten().filter_map(|entry| {
            let name = entry.file_name();
            let pid = name.to_str()?;
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // A process that exits meanwhile is simply not there.
            parse_stat(&read_stat(pid)?, units)
        }))
    }

    fn from_procs(procs: impl IntoIterator<Item = ProcInfo>) -> ProcessTable {
        let procs: HashMap<i32, ProcInfo> = procs.into_iter().map(|p| (p.pid, p)).collect();
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in procs.values() {
            if let Some(ppid) = p.ppid {
                children.entry(ppid).or_default().push(p.pid);
            }
        }
        for list in children.values_mut() {
            list.sort_unstable();
        }
        ProcessTable { procs, children }
    }

    pub fn get(&self, pid: i32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    /// The process and all its descendants that are not zombies, the root first.
    /// A Postfix master's children are its daemons; their own children (pipe and
    /// local delivery commands) belong to the instance too.
    pub fn tree(&self, root: i32) -> Vec<ProcInfo> {
        let mut out = Vec::new();
        let mut todo = vec![root];
        while let Some(pid) = todo.pop() {
            let Some(p) = self.procs.get(&pid) else {
                continue;
            };
            if !p.zombie {
                out.push(p.clone());
            }
            if let Some(kids) = self.children.get(&pid) {
                todo.extend(kids.iter().rev());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: i32, ppid: i32, name: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid: Some(ppid),
            name: name.into(),
            rss_bytes: 1000,
            start_time: 0,
            zombie: false,
        }
    }

    #[test]
    fn tree_follows_children_and_grandchildren() {
        let table = ProcessTable::from_procs([
            proc(1, 0, "init"),
            proc(315, 1, "master"),
            proc(316, 315, "pickup"),
            proc(317, 315, "qmgr"),
            proc(400, 317, "pipe-cmd"),
            proc(620, 1, "master"),
            ProcInfo {
                zombie: true,
                ..proc(318, 315, "smtpd")
            },
        ]);
        let names: Vec<String> = table.tree(315).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["master", "pickup", "qmgr", "pipe-cmd"]);
        assert!(table.tree(9999).is_empty());
    }

    #[test]
    fn stat_lines_with_odd_names() {
        let units = Units {
            boot_time: 1_700_000_000,
            ticks_per_second: 100,
            page_size: 4096,
        };
        // proc(5)'s fields; the name holds a space and a parenthesis.
        let line = "4242 (smtpd (x) y) S 315 315 315 0 -1 4194560 180 0 0 0 1 0 0 0 20 0 1 0 \
                    12345 9428992 321 18446744073709551615 1 1 0 0 0 0 0 16781312 17475 0 0 0 \
                    17 1 0 0 0 0 0";
        let p = parse_stat(line, units).unwrap();
        assert_eq!(p.pid, 4242);
        assert_eq!(p.name, "smtpd (x) y");
        assert_eq!(p.ppid, Some(315));
        assert_eq!(p.rss_bytes, 321 * 4096);
        assert_eq!(p.start_time, 1_700_000_000 + 123);
        assert!(!p.zombie);
        let zombie = line.replace(") S 315", ") Z 315");
        assert!(parse_stat(&zombie, units).unwrap().zombie);
        assert_eq!(parse_stat("garbage", units), None);
    }

    #[test]
    fn snapshot_sees_this_process() {
        let table = ProcessTable::snapshot();
        let me = table.get(std::process::id() as i32).expect("own process");
        assert!(me.rss_bytes > 0);
        assert!(!me.name.is_empty());
        assert!(me.start_time > 1_600_000_000);
        assert_eq!(me.ppid, Some(nix::unistd::getppid().as_raw()));
    }
}

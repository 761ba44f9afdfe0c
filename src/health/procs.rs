//! The host's processes, read once per status run (sysinfo, processes only, with
//! memory), so that every instance's master and its children can be found without
//! reading /proc again per instance.

use std::collections::HashMap;

use serde::Serialize;
use sysinfo::{ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

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

impl ProcessTable {
    /// Reads every process once: name, parent, memory and start time, nothing else.
    pub fn snapshot() -> ProcessTable {
        let Ok(mut system) = System::new() else {
            return ProcessTable::default();
        };
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        ProcessTable::from_procs(system.processes().values().filter_map(|p| {
            // Threads are listed as processes on Linux when tasks are refreshed; they
            // are not here, but be sure.
            if p.thread_kind().is_some() {
                return None;
            }
            Some(ProcInfo {
                pid: p.pid().as_u32() as i32,
                ppid: p.parent().map(|pp| pp.as_u32() as i32),
                name: p.name().to_string_lossy().into_owned(),
                rss_bytes: p.memory(),
                start_time: p.start_time(),
                zombie: p.status() == ProcessStatus::Zombie,
            })
        }))
    }

    pub fn from_procs(procs: impl IntoIterator<Item = ProcInfo>) -> ProcessTable {
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
    fn snapshot_sees_this_process() {
        let table = ProcessTable::snapshot();
        let me = table.get(std::process::id() as i32).expect("own process");
        assert!(me.rss_bytes > 0);
        assert!(!me.name.is_empty());
        assert!(me.start_time > 1_600_000_000);
    }
}

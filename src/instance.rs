//! The model of the host's instances: postmulti's list (start order, group, enabled)
//! joined with each instance's own main.cf and master.cf and instancectl's record.
//! Files are read directly, so listing costs one postmulti call, not one postconf per
//! instance.

use std::path::{Path, PathBuf};

use crate::error::PostfixError;
use crate::error::Result;
use crate::postfix::Postfix;
use crate::postfix::main_cf::MainCf;
use crate::postfix::master_cf::{self, ListenSettings, Listener};
use crate::postfix::pid_file;
use crate::postfix::postmulti::Listed;
use crate::roles::Role;
use crate::state::{InstanceRecord, StateStore};

#[derive(Debug, Clone)]
pub struct Instance {
    /// `-` for the primary instance.
    pub name: String,
    pub group: Option<String>,
    pub enabled: bool,
    pub config_directory: PathBuf,
    /// `None` for a broken instance: its own is not known, and the primary's must
    /// never stand in for it.
    pub queue_directory: Option<PathBuf>,
    pub data_directory: Option<PathBuf>,
    pub myhostname: Option<String>,
    pub listeners: Vec<Listener>,
    pub record: Option<InstanceRecord>,
    /// Why a secondary instance cannot be managed, and how to mend it: its main.cf
    /// is gone or does not name directories of its own, so Postfix would run it on
    /// the primary's; or a create or destroy of it was interrupted (its intent record
    /// says which, and the next changing command finishes it). Nothing starts, stops
    /// or destroys a broken instance.
    pub broken: Option<String>,
}

impl Instance {
    pub fn is_primary(&self) -> bool {
        self.name == "-"
    }

    pub fn role(&self) -> Option<Role> {
        self.record.as_ref().map(|r| r.role)
    }

    /// The role to show: instancectl's record, `primary` for the primary, or none.
    pub fn role_name(&self) -> Option<String> {
        self.role()
            .map(|r| r.to_string())
            .or_else(|| self.is_primary().then(|| "primary".to_string()))
    }

    /// The name to show people: the primary has none of its own.
    pub fn display_name(&self) -> &str {
        if self.is_primary() {
            "(primary)"
        } else {
            &self.name
        }
    }

    /// The master's pid file; none for a broken instance.
    pub fn pid_file(&self) -> Option<PathBuf> {
        self.queue_directory
            .as_ref()
            .map(|q| q.join("pid/master.pid"))
    }

    /// The pid in the master's pid file, whether or not that process lives.
    pub fn pid_file_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.pid_file()?).ok()?;
        text.trim().parse().ok().filter(|pid| *pid > 0)
    }

    /// The running master's pid: a live process holds the pid file's lock, as
    /// `postfix status` tests it. A pid file left behind by a killed master is stale
    /// even when its pid now belongs to another process.
    pub fn running_master(&self) -> Option<i32> {
        self.running_master_in(pid_file::LockTable::read().as_ref())
    }

    /// [`Instance::running_master`] against a lock table read once for many
    /// instances (/proc/locks lists every lock of the host).
    pub fn running_master_in(&self, locks: Option<&pid_file::LockTable>) -> Option<i32> {
        let state = pid_file::probe(&self.pid_file()?, locks);
        state.pid.filter(|_| state.running)
    }

    /// Refuses to act on a broken instance, saying why and how to mend it.
    pub fn require_sound(&self) -> Result<()> {
        self.directories().map(drop)
    }

    /// The instance's own queue and data directories, or, for a broken instance, an
    /// error saying why it is broken and how to mend it.
    pub fn directories(&self) -> Result<(&Path, &Path)> {
        match (&self.broken, &self.queue_directory, &self.data_directory) {
            (None, Some(queue), Some(data)) => Ok((queue, data)),
            (why, _, _) => Err(PostfixError::InstanceBroken {
                instance: self.display_name().to_string(),
                why: why
                    .clone()
                    .unwrap_or_else(|| "its directories are not known".into()),
            }
            .into()),
        }
    }
}

/// Postfix's compiled-in defaults for the few parameters read from main.cf files.
fn builtin_default(postfix: &Postfix, name: &str) -> Option<String> {
    let value = match name {
        "inet_interfaces" => "all".into(),
        "inet_protocols" => "all".into(),
        "master_service_disable" => String::new(),
        "queue_directory" => postfix.queue_directory.to_string_lossy().into_owned(),
        "data_directory" => postfix.data_directory.to_string_lossy().into_owned(),
        "config_directory" => postfix.config_directory.to_string_lossy().into_owned(),
        _ => return None,
    };
    Some(value)
}

/// Builds the model of one listed instance from its files.
pub fn load(postfix: &Postfix, state: &StateStore, listed: &Listed) -> Instance {
    load_with(
        postfix,
        state,
        listed,
        MainCf::read(&listed.config_directory).as_ref(),
    )
}

/// [`load`] with the instance's main.cf already read.
fn load_with(
    postfix: &Postfix,
    state: &StateStore,
    listed: &Listed,
    read: std::result::Result<&MainCf, &std::io::Error>,
) -> Instance {
    let dir = &listed.config_directory;
    let empty = MainCf::default();
    let main_cf = read.unwrap_or(&empty);
    let defaults = |name: &str| builtin_default(postfix, name);
    let get = |name: &str| main_cf.expanded(name, &defaults).unwrap_or_default();
    let settings = ListenSettings {
        inet_interfaces: get("inet_interfaces"),
        inet_protocols: get("inet_protocols"),
        master_service_disable: get("master_service_disable"),
    };
    let entries = master_cf::read(dir).unwrap_or_default();
    let mut instance = Instance {
        name: listed.name.clone(),
        group: listed.group.clone(),
        enabled: listed.enabled,
        config_directory: dir.clone(),
        queue_directory: Some(get("queue_directory").into()),
        data_directory: Some(get("data_directory").into()),
        myhostname: main_cf.expanded("myhostname", &defaults),
        listeners: master_cf::listeners(&entries, &settings),
        record: (!listed.is_primary())
            .then(|| state.load(&listed.name))
            .flatten(),
        broken: None,
    };
    if listed.is_primary() {
        return instance;
    }
    instance.broken = match read {
        Err(e) => Some(format!(
            "{} cannot be read ({e}); restore the instance's configuration directory, or take \
             {} off multi_instance_directories in {}",
            dir.join("main.cf").display(),
            dir.display(),
            postfix.config_directory.join("main.cf").display()
        )),
        Ok(cf) => own_directories_problem(postfix, dir, cf),
    };
    if instance.broken.is_some() {
        instance.queue_directory = None;
        instance.data_directory = None;
        instance.listeners.clear();
    } else if let Some(intent) = state.intent(&listed.name).filter(|i| i.is_interrupted()) {
        // Half made or half destroyed by a run that is gone: left alone until the next
        // changing command finishes the change. A change under way is not broken: the
        // run making it asks the supervisor to start what it made.
        instance.broken = Some(intent.describe());
    }
    instance
}

/// A secondary instance must name its own queue and data directories (postmulti
/// writes both into its main.cf); without them Postfix would use the primary's.
fn own_directories_problem(postfix: &Postfix, dir: &Path, cf: &MainCf) -> Option<String> {
    let primary = [
        ("queue_directory", &postfix.queue_directory),
        ("data_directory", &postfix.data_directory),
    ];
    let mut problems = Vec::new();
    for (name, primary_dir) in primary {
        match cf.expanded(name, &|_| None) {
            None => problems.push(format!("sets no {name}")),
            Some(value) if Path::new(&value) == primary_dir.as_path() => {
                problems.push(format!("sets {name} to the primary's {value}"))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        return None;
    }
    let main_cf = dir.join("main.cf");
    Some(format!(
        "{} {}, so Postfix would run it on the primary instance's directories; restore \
         its main.cf from a backup, or set its own with `postconf -c {} -e \
         queue_directory=... data_directory=...`",
        main_cf.display(),
        problems.join(" and "),
        dir.display()
    ))
}

/// Every instance on the host, the primary first, in postmulti's start order.
/// Independent chains of `items` in start order: one per group (postmulti's start
/// order within it: output before input), and one for each item outside a group.
/// Chains do not depend on each other and may start at the same time.
pub fn start_chains<'a, 'g, T>(
    items: &'a [T],
    group_of: impl Fn(&'a T) -> Option<&'g str>,
) -> Vec<Vec<&'a T>> {
    let mut out: Vec<Vec<&T>> = Vec::new();
    let mut by_group: std::collections::BTreeMap<&'g str, usize> = Default::default();
    for item in items {
        match group_of(item) {
            Some(group) => match by_group.get(group) {
                Some(&k) => out[k].push(item),
                None => {
                    by_group.insert(group, out.len());
                    out.push(vec![item]);
                }
            },
            None => out.push(vec![item]),
        }
    }
    out
}

pub fn load_all(postfix: &Postfix, state: &StateStore) -> Result<Vec<Instance>> {
    let listed = postfix.postmulti().list_with_files()?;
    // Each instance's files are read on their own (master.cf, the state records), a
    // few at a time: two hundred instances are read in the time of a few dozen.
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
    Ok(crate::parallel::map(&listed, workers, |(l, main_cf)| {
        load_with(postfix, state, l, main_cf.as_ref())
    }))
}

#[cfg(test)]
mod tests {
    use super::start_chains;

    /// postmulti's start order of a host with two groups and instances outside any.
    #[test]
    fn a_chain_per_group_in_start_order_and_one_per_ungrouped_instance() {
        let order = [
            ("-", None),
            ("postfix-out", Some("mta")),
            ("postfix-b1", None),
            ("postfix-in", Some("mta")),
            ("postfix-relay", Some("relay")),
            ("postfix-b2", None),
            ("postfix-last", Some("mta")),
        ];
        let chains: Vec<Vec<&str>> = start_chains(&order, |(_, group)| *group)
            .into_iter()
            .map(|chain| chain.into_iter().map(|(name, _)| *name).collect())
            .collect();
        assert_eq!(
            chains,
            [
                vec!["-"],
                vec!["postfix-out", "postfix-in", "postfix-last"],
                vec!["postfix-b1"],
                vec!["postfix-relay"],
                vec!["postfix-b2"],
            ]
        );
        assert!(start_chains(&[] as &[(&str, Option<&str>)], |(_, g)| *g).is_empty());
    }
}

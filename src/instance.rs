//! The model of the host's instances: postmulti's list (start order, group, enabled)
//! joined with each instance's own main.cf and master.cf and instancectl's record.
//! Files are read directly, so listing costs one postmulti call, not one postconf per
//! instance.

use std::path::PathBuf;

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
    pub queue_directory: PathBuf,
    pub data_directory: PathBuf,
    pub myhostname: Option<String>,
    pub listeners: Vec<Listener>,
    pub record: Option<InstanceRecord>,
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

    pub fn pid_file(&self) -> PathBuf {
        self.queue_directory.join("pid/master.pid")
    }

    /// The pid in the master's pid file, whether or not that process lives.
    pub fn pid_file_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.pid_file()).ok()?;
        text.trim().parse().ok().filter(|pid| *pid > 0)
    }

    /// The running master's pid: a live process holds the pid file's lock, as
    /// `postfix status` tests it. A pid file left behind by a killed master is stale
    /// even when its pid now belongs to another process.
    pub fn running_master(&self) -> Option<i32> {
        let state = pid_file::probe(&self.pid_file(), pid_file::LockTable::read().as_ref());
        state.pid.filter(|_| state.running)
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
    let dir = &listed.config_directory;
    let main_cf = MainCf::read(dir).unwrap_or_default();
    let defaults = |name: &str| builtin_default(postfix, name);
    let get = |name: &str| main_cf.expanded(name, &defaults).unwrap_or_default();
    let settings = ListenSettings {
        inet_interfaces: get("inet_interfaces"),
        inet_protocols: get("inet_protocols"),
        master_service_disable: get("master_service_disable"),
    };
    let entries = master_cf::read(dir).unwrap_or_default();
    Instance {
        name: listed.name.clone(),
        group: listed.group.clone(),
        enabled: listed.enabled,
        config_directory: dir.clone(),
        queue_directory: get("queue_directory").into(),
        data_directory: get("data_directory").into(),
        myhostname: main_cf.expanded("myhostname", &defaults),
        listeners: master_cf::listeners(&entries, &settings),
        record: (!listed.is_primary())
            .then(|| state.load(&listed.name))
            .flatten(),
    }
}

/// Every instance on the host, the primary first, in postmulti's start order.
pub fn load_all(postfix: &Postfix, state: &StateStore) -> Result<Vec<Instance>> {
    let listed = postfix.postmulti().list()?;
    Ok(listed.iter().map(|l| load(postfix, state, l)).collect())
}

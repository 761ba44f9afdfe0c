//! The host being managed: its Postfix, instancectl's records, and the runner every
//! change goes through. Which service manager starts the instances is not the
//! host's business: commands hold the host and a manager side by side, and managers
//! act on the host they are given.

use crate::error::InputError;
use crate::error::{Error, Result};
use crate::instance::{self, Instance};
use crate::lock::HostLock;
use crate::postfix::Postfix;
use crate::runner::Runner;
use crate::state::StateStore;

pub struct Host {
    pub runner: Runner,
    pub postfix: Postfix,
    pub state: StateStore,
}

/// Which instances a command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    One(String),
    Group(String),
    All,
}

impl Host {
    pub fn open(dry_run: bool) -> Result<Host> {
        let runner = Runner::new(dry_run);
        let postfix = Postfix::discover(runner)?;
        let state = StateStore::locate(&postfix.data_directory);
        Ok(Host {
            runner,
            postfix,
            state,
        })
    }

    /// Commands that change the host need root; a dry run changes nothing, so anyone
    /// may review one.
    pub fn require_root(&self) -> Result<()> {
        if self.runner.dry_run() || nix::unistd::geteuid().is_root() {
            Ok(())
        } else {
            Err(Error::NotRoot)
        }
    }

    /// Takes the host lock for a changing command (none is needed for a dry run).
    pub fn lock(&self) -> Result<Option<HostLock>> {
        if self.runner.dry_run() {
            return Ok(None);
        }
        let lock = HostLock::acquire(self.state.dir())?;
        self.state.prepare()?;
        Ok(Some(lock))
    }

    pub fn instances(&self) -> Result<Vec<Instance>> {
        instance::load_all(&self.postfix, &self.state)
    }

    /// One instance by name (`-` is the primary).
    pub fn instance(&self, name: &str) -> Result<Instance> {
        let all = self.instances()?;
        find(all, name)
    }

    /// The selected instances in start order.
    pub fn select(&self, selection: &Selection) -> Result<Vec<Instance>> {
        select_in(self.instances()?, selection)
    }
}

/// The instances of `all` that `selection` names, in the order of `all`.
pub fn select_in(all: Vec<Instance>, selection: &Selection) -> Result<Vec<Instance>> {
    match selection {
        Selection::One(name) => find(all, name).map(|i| vec![i]),
        Selection::All => Ok(all),
        Selection::Group(group) => {
            let members: Vec<Instance> = all
                .into_iter()
                .filter(|i| i.group.as_deref() == Some(group))
                .collect();
            if members.is_empty() {
                Err(InputError::NoSuchGroup {
                    group: group.clone(),
                }
                .into())
            } else {
                Ok(members)
            }
        }
    }
}

fn find(all: Vec<Instance>, name: &str) -> Result<Instance> {
    let names: Vec<String> = all
        .iter()
        .filter(|i| !i.is_primary())
        .map(|i| i.name.clone())
        .collect();
    all.into_iter().find(|i| i.name == name).ok_or_else(|| {
        InputError::NoSuchInstance {
            name: name.into(),
            known: names,
        }
        .into()
    })
}

//! Drift: one difference between what should be (postmulti's list and enable flags,
//! the stop marks, the jobs a manager should keep) and what is, with its repair. The
//! generic checks are in reconcile; each manager reports the drift of what it keeps
//! itself and makes those repairs. Repairs are data, so a plan can be printed,
//! compared in tests and carried out later by whichever manager is in use.

/// One difference between desired and actual state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub problem: String,
    pub repair: Repair,
}

impl Drift {
    pub fn new(problem: impl Into<String>, repair: Repair) -> Drift {
        Drift {
            problem: problem.into(),
            repair,
        }
    }
}

/// How a drift is repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    Start,
    Stop,
    Restart,
    /// Nothing instancectl can do safely; a person must look.
    Report,
    /// A repair of what the manager keeps, made by the manager that found it
    /// (`ServiceManager::repair`); `what` says it in the manager's own terms.
    Manager {
        what: String,
        action: ManagerRepair,
    },
}

/// Repairs of what a service manager keeps for an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerRepair {
    /// Write the instance's job (plist, unit) again, and reload a loaded job.
    RewriteJob,
    /// Make the manager's boot-time switch match postmulti's enable flag.
    SetEnabled(bool),
    /// Stop a master the manager did not start and start it under the manager.
    Adopt,
}

impl Repair {
    pub fn describe(&self) -> &str {
        match self {
            Repair::Start => "start it",
            Repair::Stop => "stop it",
            Repair::Restart => "restart it",
            Repair::Report => "report only (fix it by hand)",
            Repair::Manager { what, .. } => what,
        }
    }
}

//! Errors that reach the user: each says what went wrong and what to do about it,
//! and maps to the process exit status (2 for bad input, 1 for everything else).

use std::path::PathBuf;

use crate::outcome::Outcome;

mod input;
mod postfix;
mod state;

pub use input::{AddressProblem, InputError, PasswordProblem};
pub use postfix::PostfixError;
pub use state::StateError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something that cannot be done as asked; nothing was changed.
    #[error(transparent)]
    Input(Box<InputError>),

    /// A command that instancectl ran failed; the outcome carries Postfix's own words.
    #[error("{context}: {outcome}")]
    CommandFailed {
        context: String,
        outcome: Box<Outcome>,
    },

    #[error("could not run {program}: {source}{}", spawn_hint(.source))]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Postfix is missing, broken, or did not do what was asked.
    #[error(transparent)]
    Postfix(Box<PostfixError>),

    #[error("this command changes the host and must run as root (try again with sudo)")]
    NotRoot,

    /// launchd, systemd or the supervisor refused, or did not bring a master up.
    #[error("{0}")]
    Manager(Box<dyn ManagerFailure>),

    /// instancectl's own records or locks: another supervisor, an unwritable state
    /// directory, an incomplete record of an interrupted change.
    #[error(transparent)]
    State(Box<StateError>),

    /// The operating system refused something that is neither a file nor a command
    /// (standard output, signals, a thread, the terminal).
    #[error("{doing}: {source}")]
    System {
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// A multi-step change failed and was undone; `step` names the step that failed.
    #[error("{step} failed, so everything this change did was undone.\n{cause}")]
    RolledBack { step: String, cause: Box<Error> },

    /// A multi-step change failed and undoing it failed too: the host needs attention.
    #[error("{step} failed: {cause}\nUndoing the change also failed: {undo}")]
    RollbackFailed {
        step: String,
        cause: Box<Error>,
        undo: String,
    },

    /// What instancectl was doing when `source` happened.
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
}

/// What to do about a program that could not be started.
fn spawn_hint(source: &std::io::Error) -> &'static str {
    match source.kind() {
        std::io::ErrorKind::NotFound => " (is it installed, and in PATH?)",
        std::io::ErrorKind::PermissionDenied => " (is it executable, and are you root?)",
        _ => "",
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(Box::new(e))
    }
}

impl From<PostfixError> for Error {
    fn from(e: PostfixError) -> Self {
        Error::Postfix(Box::new(e))
    }
}

impl From<StateError> for Error {
    fn from(e: StateError) -> Self {
        Error::State(Box::new(e))
    }
}

/// The service managers' errors, typed in the manager layer above this one (which
/// is why they are held behind a trait here, not named).
pub trait ManagerFailure: std::error::Error + Send + Sync + 'static {
    /// 2 for a refusal found before anything changed, like bad input; 1 otherwise.
    fn exit_code(&self) -> i32;

    /// For tests that match on the manager's variants.
    #[cfg(test)]
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

impl Error {
    pub fn system(doing: &'static str, source: std::io::Error) -> Self {
        Error::System { doing, source }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Names what instancectl was doing when the error happened. A failed command
    /// takes it in place of the generic "running COMMAND"; every other error keeps
    /// its own words after it (and its exit status).
    pub fn context(self, context: impl Into<String>) -> Error {
        match self {
            Error::CommandFailed { outcome, .. } => Error::CommandFailed {
                context: context.into(),
                outcome,
            },
            other => Error::Context {
                context: context.into(),
                source: Box::new(other),
            },
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::NotRoot => 2,
            Error::Manager(e) => e.exit_code(),
            Error::Context { source, .. } => source.exit_code(),
            // As env(1), nohup(1) and the shells say it: not found, or not executable.
            Error::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            Error::Spawn { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                126
            }
            _ => 1,
        }
    }
}

/// For tests that match on variants: the domain error behind this one, through any
/// context; panics (failing the test) when it is of another domain.
#[cfg(test)]
impl Error {
    pub fn into_input(self) -> InputError {
        match self {
            Error::Input(e) => *e,
            Error::Context { source, .. } => source.into_input(),
            other => panic!("not an input error: {other:?}"),
        }
    }

    pub fn into_state(self) -> StateError {
        match self {
            Error::State(e) => *e,
            Error::Context { source, .. } => source.into_state(),
            other => panic!("not a state error: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_says_what_to_check() {
        let err = crate::runner::Runner::new(false)
            .probe(&crate::runner::Command::new("/nonexistent/postconf"))
            .unwrap_err();
        assert_eq!(err.exit_code(), 127);
        assert!(
            err.to_string().ends_with("(is it installed, and in PATH?)"),
            "{err}"
        );
    }

    #[test]
    fn context_keeps_the_cause_and_its_exit_status() {
        let bad = Error::from(InputError::NoSuchGroup {
            group: "mta".into(),
        })
        .context("stopping mta");
        assert_eq!(
            bad.to_string(),
            "stopping mta: no instance is in group \"mta\"; `instancectl list` shows the groups"
        );
        assert_eq!(bad.exit_code(), 2);
        assert!(matches!(
            bad.into_input(),
            InputError::NoSuchGroup { group } if group == "mta"
        ));
        let io = Error::io(
            "/etc/postfix-x/main.cf",
            std::io::ErrorKind::NotFound.into(),
        )
        .context("reading postfix-x");
        assert!(
            io.to_string()
                .starts_with("reading postfix-x: /etc/postfix-x/main.cf: ")
        );
        assert_eq!(io.exit_code(), 1);
    }
}

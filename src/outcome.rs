//! What a finished command did: its command line, exit status and words. The runner
//! makes these, and an error carries one when a command failed, so this sits below
//! both.

use std::fmt;

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub command: String,
    /// Exit status, or `None` when the command was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    /// What the command wrote to stderr (a terminal, so Postfix speaks up).
    pub diagnostics: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The most useful text for a person: diagnostics first, else stdout.
    pub fn message(&self) -> &str {
        let diag = self.diagnostics.trim();
        if diag.is_empty() {
            self.stdout.trim()
        } else {
            diag
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "`{}` exited with status {code}", self.command)?,
            None => write!(f, "`{}` was killed by a signal", self.command)?,
        }
        match self.message() {
            "" => write!(f, " and printed nothing"),
            text => write!(f, ":\n{}", indent(text)),
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

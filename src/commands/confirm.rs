//! Asking before a change that cannot be undone (deleting queued mail, destroying
//! several instances): `--yes` says yes; at a terminal the person is asked; anywhere
//! else the command refuses, so a script never destroys by accident.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::InputError;
use crate::error::{Error, Result};

/// Goes ahead when `yes` was given or a person at the terminal answers "y"; a dry run
/// changes nothing and needs no answer.
pub fn confirm(question: &str, yes: bool, dry_run: bool) -> Result<()> {
    if yes || dry_run {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(InputError::NoTerminalToConfirm {
            question: question.into(),
        }
        .into());
    }
    eprint!("{question}? This cannot be undone. [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::system("cannot read the answer", e))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(InputError::NotConfirmed.into()),
    }
}

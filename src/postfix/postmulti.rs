//! postmulti, Postfix's own instance manager: the instance list (in start order) and
//! the life-cycle operations. postmulti always works on the primary instance's
//! main.cf, so every change to the instance list goes through here.

use std::path::PathBuf;

use super::Postfix;
use crate::error::{Error, Result};
use crate::runner::Command;

/// One line of `postmulti -l`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// `-` for the primary instance.
    pub name: String,
    pub group: Option<String>,
    pub enabled: bool,
    pub config_directory: PathBuf,
}

impl Listed {
    pub fn is_primary(&self) -> bool {
        self.name == "-"
    }
}

/// Parses `postmulti -l` output: name, group, enabled (y/n), config directory.
pub fn parse_list(text: &str) -> Result<Vec<Listed>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, group, enabled, dir] = fields[..] else {
                return Err(Error::failed(format!(
                    "cannot understand this line of `postmulti -l`: {line:?}"
                )));
            };
            Ok(Listed {
                name: name.to_string(),
                group: (group != "-").then(|| group.to_string()),
                enabled: enabled == "y",
                config_directory: dir.into(),
            })
        })
        .collect()
}

/// Where `postmulti -e create` puts a new instance in the start order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Append,
    Before(String),
}

pub struct Postmulti<'a> {
    postfix: &'a Postfix,
}

impl<'a> Postmulti<'a> {
    pub fn new(postfix: &'a Postfix) -> Self {
        Postmulti { postfix }
    }

    fn cmd(&self) -> Command {
        self.postfix.command("postmulti")
    }

    /// Every instance, the primary first, in start order.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let out = self.postfix.runner.query(&self.cmd().arg("-l").arg("-a"))?;
        parse_list(&out.stdout)
    }

    pub fn init(&self) -> Result<()> {
        self.run(&["-e", "init"])
    }

    pub fn create(&self, name: &str, group: Option<&str>, placement: &Placement) -> Result<()> {
        let mut args = vec!["-I", name];
        if let Some(g) = group {
            args.extend(["-G", g]);
        }
        if let Placement::Before(other) = placement {
            args.extend(["-i", other]);
        }
        args.extend(["-e", "create"]);
        self.run(&args)
    }

    pub fn enable(&self, name: &str) -> Result<()> {
        self.run(&["-i", name, "-e", "enable"])
    }

    pub fn disable(&self, name: &str) -> Result<()> {
        self.run(&["-i", name, "-e", "disable"])
    }

    pub fn destroy(&self, name: &str) -> Result<()> {
        self.run(&["-i", name, "-e", "destroy"])
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        self.postfix.runner.change(&self.cmd().args(args)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines() {
        let text = "-               -               y         /etc/postfix\n\
                    postfix-out     mta             n         /etc/postfix-out\n\
                    postfix-in      mta             y         /etc/postfix-in\n";
        let list = parse_list(text).unwrap();
        assert_eq!(list.len(), 3);
        assert!(list[0].is_primary());
        assert_eq!(list[0].group, None);
        assert_eq!(list[1].name, "postfix-out");
        assert_eq!(list[1].group.as_deref(), Some("mta"));
        assert!(!list[1].enabled);
        assert!(list[2].enabled);
        assert_eq!(list[2].config_directory, PathBuf::from("/etc/postfix-in"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_list("postfix-in mta y\n").is_err());
    }
}

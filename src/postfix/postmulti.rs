//! postmulti, Postfix's own instance manager: the instance list (in start order) and
//! the life-cycle operations. postmulti always works on the primary instance's
//! main.cf, so every change to the instance list goes through here.

use std::path::{Path, PathBuf};

use super::Postfix;
use super::main_cf::MainCf;
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

/// What `postmulti -l -a` prints, read from the files postmulti reads, without
/// running it: the primary first, then each directory of the primary's
/// `multi_instance_directories` in order, each with its own main.cf's
/// `multi_instance_name`, `multi_instance_group` and `multi_instance_enable`.
/// For the hot path (status); commands that change the host ask postmulti itself.
pub fn list_from_files(primary_config: &Path) -> Result<Vec<Listed>> {
    let read = |dir: &Path| {
        MainCf::read(dir).map_err(|e| {
            Error::failed(format!(
                "cannot read {}: {e}{}",
                dir.join("main.cf").display(),
                if dir == primary_config {
                    String::new()
                } else {
                    format!(
                        " ({} lists it in multi_instance_directories; postmulti fails the \
                         same way)",
                        primary_config.join("main.cf").display()
                    )
                }
            ))
        })
    };
    let entry = |dir: &Path, cf: &MainCf| {
        let value = |name: &str| cf.expanded(name, &|_| None).unwrap_or_default();
        let word = |name: &str| Some(value(name)).filter(|v| !v.is_empty());
        Listed {
            name: word("multi_instance_name").unwrap_or_else(|| "-".into()),
            group: word("multi_instance_group"),
            enabled: matches!(
                value("multi_instance_enable").to_ascii_lowercase().as_str(),
                "yes" | "true" | "1"
            ),
            config_directory: dir.to_path_buf(),
        }
    };
    let primary = read(primary_config)?;
    // In the primary, multi_instance_enable turns multi-instance management on; the
    // primary itself is always enabled (postmulti lists it with "y" either way).
    let mut out = vec![Listed {
        enabled: true,
        ..entry(primary_config, &primary)
    }];
    let dirs = primary
        .expanded("multi_instance_directories", &|name| {
            (name == "config_directory").then(|| primary_config.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    for dir in dirs.split([',', ' ', '\t']).filter(|d| !d.is_empty()) {
        let dir = Path::new(dir);
        out.push(entry(dir, &read(dir)?));
    }
    Ok(out)
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
    fn list_from_files_reads_what_postmulti_reads() {
        let root = tempfile::tempdir().unwrap();
        let dir = |name: &str, main_cf: &str| {
            let d = root.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("main.cf"), main_cf).unwrap();
            d
        };
        let out = dir(
            "postfix-out",
            "multi_instance_name = postfix-out\nmulti_instance_group = mta\nmulti_instance_enable = no\n",
        );
        let inn = dir(
            "postfix-in",
            "multi_instance_name = postfix-in\nmulti_instance_group = mta\nmulti_instance_enable = yes\n",
        );
        let primary = dir(
            "postfix",
            &format!(
                "multi_instance_enable = no\nmulti_instance_directories = {},\n    {}\n",
                out.display(),
                inn.display()
            ),
        );
        let list = list_from_files(&primary).unwrap();
        let shown: Vec<(String, Option<String>, bool)> = list
            .iter()
            .map(|l| (l.name.clone(), l.group.clone(), l.enabled))
            .collect();
        assert_eq!(
            shown,
            [
                ("-".into(), None, true),
                ("postfix-out".into(), Some("mta".into()), false),
                ("postfix-in".into(), Some("mta".into()), true),
            ]
        );
        assert_eq!(list[2].config_directory, inn);

        std::fs::remove_file(inn.join("main.cf")).unwrap();
        let err = list_from_files(&primary).unwrap_err().to_string();
        assert!(err.contains("multi_instance_directories"), "{err}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_list("postfix-in mta y\n").is_err());
    }
}

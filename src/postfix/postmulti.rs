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

/// The instances postmulti manages, read the way postmulti reads them, without
/// running it: the primary first, then each directory of the primary's
/// multi_instance_directories in order, named, grouped and enabled by that
/// directory's main.cf. Reading the files, rather than running `postmulti -l`, is
/// fast and keeps one instance with a broken configuration from hiding all the
/// others: postmulti stops at the first configuration it cannot parse. A listed
/// directory without a readable main.cf is still listed (disabled, named after the
/// directory), so that status can report it.
fn read_list(primary_config: &Path) -> Result<Vec<Listed>> {
    Ok(read_list_with_files(primary_config)?
        .into_iter()
        .map(|(listed, _)| listed)
        .collect())
}

/// [`read_list`], each instance with its main.cf as read for the list, so that who
/// needs the file next does not read and parse it again.
fn read_list_with_files(primary_config: &Path) -> Result<Vec<(Listed, std::io::Result<MainCf>)>> {
    let dir_name = |dir: &Path| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    };
    // A listed directory whose main.cf names no instance is called after the
    // directory: only the primary is `-`.
    let entry = |dir: &Path, cf: &MainCf| {
        let value = |name: &str| cf.expanded(name, &|_| None).unwrap_or_default();
        let word = |name: &str| Some(value(name)).filter(|v| !v.is_empty());
        Listed {
            name: word("multi_instance_name").unwrap_or_else(|| dir_name(dir)),
            group: word("multi_instance_group"),
            enabled: matches!(
                value("multi_instance_enable").to_ascii_lowercase().as_str(),
                "yes" | "true" | "1"
            ),
            config_directory: dir.to_path_buf(),
        }
    };
    let primary =
        MainCf::read(primary_config).map_err(|e| Error::io(primary_config.join("main.cf"), e))?;
    // In the primary, multi_instance_enable turns multi-instance management on; the
    // primary itself is always enabled (postmulti lists it with "y" either way).
    let mut first = Listed {
        enabled: true,
        ..entry(primary_config, &primary)
    };
    first.name = "-".into();
    first.group = None;
    let mut out = vec![(first, Ok(primary.clone()))];
    let dirs = primary
        .expanded("multi_instance_directories", &|name| {
            (name == "config_directory").then(|| primary_config.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    for dir in dirs.split([',', ' ', '\t']).filter(|d| !d.is_empty()) {
        let dir = Path::new(dir);
        let read = MainCf::read(dir);
        let listed = match &read {
            Ok(cf) => entry(dir, cf),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "listed instance without a readable main.cf");
                Listed {
                    name: dir_name(dir),
                    group: None,
                    enabled: false,
                    config_directory: dir.to_path_buf(),
                }
            }
        };
        out.push((listed, read));
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
        read_list(&self.postfix.config_directory)
    }

    /// [`Postmulti::list`] with each instance's main.cf (see [`read_list_with_files`]).
    pub fn list_with_files(&self) -> Result<Vec<(Listed, std::io::Result<MainCf>)>> {
        read_list_with_files(&self.postfix.config_directory)
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

    /// Moves an instance to another group (`-e assign`).
    pub fn assign_group(&self, name: &str, group: Option<&str>) -> Result<()> {
        self.run(&["-i", name, "-G", group.unwrap_or("-"), "-e", "assign"])
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
    fn list_follows_the_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = |n: &str| root.path().join(n);
        for n in ["postfix", "postfix-out", "postfix-in"] {
            std::fs::create_dir(dir(n)).unwrap();
        }
        std::fs::write(
            dir("postfix/main.cf"),
            format!(
                "multi_instance_enable = yes\nmulti_instance_directories = {},\n    {}\n",
                dir("postfix-out").display(),
                dir("postfix-in").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir("postfix-out/main.cf"),
            "multi_instance_name = postfix-out\nmulti_instance_group = mta\nmulti_instance_enable = no\n",
        )
        .unwrap();
        std::fs::write(
            dir("postfix-in/main.cf"),
            "multi_instance_name = postfix-in\nmulti_instance_group = mta\nmulti_instance_enable = yes\n",
        )
        .unwrap();
        let list = read_list(&dir("postfix")).unwrap();
        let names: Vec<&str> = list.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["-", "postfix-out", "postfix-in"]);
        assert!(list[0].is_primary() && list[0].enabled);
        assert_eq!(list[1].group.as_deref(), Some("mta"));
        assert!(!list[1].enabled);
        assert!(list[2].enabled);
        assert_eq!(list[2].config_directory, dir("postfix-in"));
    }

    #[test]
    fn no_multi_instance_lists_the_primary_alone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("main.cf"), "myhostname = a.example\n").unwrap();
        let list = read_list(root.path()).unwrap();
        assert_eq!(list.len(), 1);
        assert!(list[0].is_primary());
    }

    #[test]
    fn a_listed_directory_without_main_cf_is_still_listed() {
        let root = tempfile::tempdir().unwrap();
        let gone = root.path().join("postfix-gone");
        std::fs::write(
            root.path().join("main.cf"),
            format!(
                "multi_instance_directories = $config_directory-x {}\n",
                gone.display()
            ),
        )
        .unwrap();
        let list = read_list(root.path()).unwrap();
        let names: Vec<&str> = list.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names[2], "postfix-gone");
        // An empty main.cf names no instance: not a second primary.
        std::fs::create_dir(&gone).unwrap();
        std::fs::write(gone.join("main.cf"), "").unwrap();
        let list = read_list(root.path()).unwrap();
        assert_eq!(list[2].name, "postfix-gone");
        assert!(!list[2].enabled);
        assert_eq!(
            list[1].config_directory,
            PathBuf::from(format!("{}-x", root.path().display()))
        );
    }
}

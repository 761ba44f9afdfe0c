//! `instancectl plist NAME` prints the LaunchDaemon the launchd manager writes for an
//! instance; `instancectl plist --check [FILE]...` lints LaunchDaemon plists (exit 1 when
//! it finds a problem).

use std::path::{Path, PathBuf};

use crate::cli::{GlobalOpts, PlistArgs};
use crate::error::InputError;
use crate::error::Result;
use crate::host::Host;
use crate::manager::launchd::job::DaemonJob;
use crate::manager::launchd::{launchctl, lint, strict};
use crate::manager::{Launchd, LaunchdConfig};
use crate::postfix::Postfix;
use crate::runner::Runner;
use crate::validate;

pub fn run(global: &GlobalOpts, args: &PlistArgs) -> Result<i32> {
    let config = global.launchd.config();
    config.naming.validate()?;
    if args.supervisor {
        let job = DaemonJob::supervisor(
            &args.program,
            &args.interval,
            &config.daemons_dir,
            &config.naming,
        );
        crate::output::text(String::from_utf8_lossy(&job.to_xml()));
        return Ok(0);
    }
    match (&args.check, &args.name) {
        (Some(files), _) => check(&config, files, args.json),
        (None, Some(name)) => print(global, &config, name),
        (None, None) => Err(InputError::PlistNeedsInstance.into()),
    }
}

fn print(global: &GlobalOpts, config: &LaunchdConfig, name: &str) -> Result<i32> {
    if name == "-" {
        return Err(crate::manager::launchd::primary_refusal());
    }
    validate::instance_name(name)?;
    let host = Host::open(global.dry_run)?;
    let existing = host.instances()?.into_iter().find(|i| i.name == name);
    let config_directory = match existing {
        Some(instance) => instance.config_directory,
        None => {
            eprintln!(
                "{name} does not exist yet; this is the plist `instancectl create {name}` \
                 would write for it"
            );
            let [config_directory, ..] = host.postfix.new_instance_directories(name);
            config_directory
        }
    };
    let job = Launchd::new(config.clone()).job(&host, name, &config_directory);
    crate::output::text(String::from_utf8_lossy(&job.to_xml()));
    Ok(0)
}

/// The files named, a directory standing for every `*.plist` in it (sorted), as an
/// administrator checks /Library/LaunchDaemons as a whole.
fn with_directories_listed(named: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in named {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut plists: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| crate::error::Error::io(path, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "plist"))
            .collect();
        plists.sort();
        files.extend(plists);
    }
    Ok(files)
}

/// One file's problems, for `--check --json`.
#[derive(serde::Serialize)]
struct Checked {
    file: PathBuf,
    problems: Vec<CheckedProblem>,
}

#[derive(serde::Serialize)]
struct CheckedProblem {
    /// As printed in `error[KIND]`.
    kind: &'static str,
    line: Option<usize>,
    message: String,
    fix: String,
}

fn check(config: &LaunchdConfig, files: &[PathBuf], json: bool) -> Result<i32> {
    let postfix = Postfix::discover(Runner::new(false)).ok();
    let ctx = lint::Context {
        instances: postfix.as_ref().and_then(|p| p.postmulti().list().ok()),
        version: postfix.as_ref().map(|p| p.version),
        daemons_dir: config.daemons_dir.clone(),
        wheel_gid: launchctl::wheel_gid(),
    };
    let files = if files.is_empty() {
        let found = postfix_jobs(&config.daemons_dir)?;
        if found.is_empty() && !json {
            crate::output::line(format_args!(
                "no LaunchDaemon in {} runs Postfix",
                config.daemons_dir.display()
            ));
            return Ok(0);
        }
        found
    } else {
        with_directories_listed(files)?
    };
    let mut unreadable = Vec::new();
    let mut problems = 0;
    let mut checked = Vec::new();
    for file in &files {
        match lint::check_file(file, &ctx) {
            Ok(report) if json => {
                problems += report.problems.len();
                checked.push(Checked {
                    file: report.path,
                    problems: report
                        .problems
                        .into_iter()
                        .map(|p| CheckedProblem {
                            kind: p.kind.code(),
                            line: p.line,
                            message: p.message,
                            fix: p.fix,
                        })
                        .collect(),
                });
            }
            Ok(report) => {
                problems += report.problems.len();
                crate::output::text(report.render());
            }
            Err(e) => unreadable.push(format!("{}: {e}", file.display())),
        }
    }
    if !unreadable.is_empty() {
        return Err(InputError::PlistsUnreadable { unreadable }.into());
    }
    if json {
        #[derive(serde::Serialize)]
        struct Lint {
            problems: usize,
            files: Vec<Checked>,
        }
        crate::output::print_json(
            crate::output::Schema::PLIST_CHECK,
            &Lint {
                problems,
                files: checked,
            },
        )?;
    }
    Ok(if problems > 0 { 1 } else { 0 })
}

/// The plists in `dir` whose job runs a Postfix program (or whose label says Postfix).
fn postfix_jobs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| InputError::LaunchDaemonsUnreadable {
        dir: dir.into(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "plist"))
        .filter(|p| {
            let Ok(bytes) = std::fs::read(p) else {
                return false;
            };
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            let parsed = strict::parse(&bytes);
            let argv = parsed.dict().map(lint::job_argv).unwrap_or_default();
            name.contains("postfix")
                || argv.iter().any(|a| {
                    let base = a.rsplit('/').next().unwrap_or(a);
                    matches!(base, "master" | "postfix" | "postmulti")
                })
        })
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_stands_for_its_plists() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.plist", "a.plist", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let single = PathBuf::from("/elsewhere/x.plist");
        let files = with_directories_listed(&[single.clone(), dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            files,
            vec![
                single,
                dir.path().join("a.plist"),
                dir.path().join("b.plist")
            ]
        );
    }
}

//! Strict loading of a LaunchDaemon plist into a job description.
//!
//! launchd refuses a plist that is not a well-formed property list, lacks a Label or a
//! program, has the wrong type for a key it uses, or is not owned by root or is writable by
//! group or others. The product must get all of that right, so the emulator refuses the same
//! files instead of guessing what was meant.

use plist::{Dictionary, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// launchd's default for `ThrottleInterval`.
pub const DEFAULT_THROTTLE_INTERVAL: u64 = 10;
/// The `ExitTimeOut` in force when the plist sets none (`exit timeout = 5` in recorded output).
pub const DEFAULT_EXIT_TIMEOUT: u64 = 5;

/// The `KeepAlive` key: a bool, or a dictionary of conditions that are OR-ed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepAlive {
    Never,
    Always,
    /// Each `Some(want)` restarts the job when the condition's truth equals `want`.
    Conditions {
        successful_exit: Option<bool>,
        crashed: Option<bool>,
        /// Whether the dictionary had any key at all (it still prints as `keepalive`).
        nonempty: bool,
    },
}

/// What launchd takes from a LaunchDaemon plist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub label: String,
    /// The executable: `Program`, or else `ProgramArguments[0]` (searched in PATH).
    pub program: String,
    /// Whether `Program` was absent, so the executable was inferred from the arguments.
    pub inferred_program: bool,
    /// argv, including argv[0].
    pub arguments: Vec<String>,
    pub run_at_load: bool,
    pub keep_alive: KeepAlive,
    pub throttle_interval: u64,
    /// 0 means wait for ever, as launchd.plist(5) says.
    pub exit_timeout: u64,
    pub abandon_process_group: bool,
    pub stdout_path: Option<String>,
    pub stderr_path: Option<String>,
    pub working_directory: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub user_name: Option<String>,
    pub group_name: Option<String>,
    /// The plist's own `Disabled` default, which an enable/disable override replaces.
    pub disabled: bool,
}

impl JobSpec {
    /// Whether loading the job starts it: RunAtLoad, an unconditional KeepAlive, or a
    /// SuccessfulExit condition (which launchd.plist(5) says implies RunAtLoad).
    pub fn starts_at_load(&self) -> bool {
        self.run_at_load
            || match &self.keep_alive {
                KeepAlive::Never => false,
                KeepAlive::Always => true,
                KeepAlive::Conditions {
                    successful_exit, ..
                } => successful_exit.is_some(),
            }
    }

    pub fn has_keepalive(&self) -> bool {
        match &self.keep_alive {
            KeepAlive::Never => false,
            KeepAlive::Always => true,
            KeepAlive::Conditions { nonempty, .. } => *nonempty,
        }
    }
}

/// Why a plist was refused. launchctl reports all of these as `5: Input/output error`; the
/// daemon logs the precise reason to its stderr.
#[derive(Debug)]
pub enum LoadError {
    Unreadable(std::io::Error),
    NotAFile,
    BadOwnership { uid: u32, mode: u32 },
    Invalid(String),
    NotADictionary,
    MissingLabel,
    BadType { key: String, expected: &'static str },
    NoProgram,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(e) => write!(f, "cannot read: {e}"),
            Self::NotAFile => write!(f, "not a regular file"),
            Self::BadOwnership { uid, mode } => write!(
                f,
                "bad ownership/permissions (owner uid {uid}, mode {:04o}): must be owned by root and not writable by group or others",
                mode & 0o7777
            ),
            Self::Invalid(e) => write!(f, "invalid property list: {e}"),
            Self::NotADictionary => write!(f, "property list is not a dictionary"),
            Self::MissingLabel => write!(f, "missing Label"),
            Self::BadType { key, expected } => write!(f, "key {key} must be {expected}"),
            Self::NoProgram => write!(f, "neither Program nor ProgramArguments given"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Apple's own on-demand Postfix job, read from the plist Apple ships for the release
/// (recorded in tests/data/plists from apple-oss-distributions/postfix): `master -e 60`,
/// started by launchd when mail lands in the maildrop queue directory, which the
/// emulator does not watch, so the job stays loaded and not running, as on an idle Mac.
/// Its label depends on the release; its path is where macOS keeps it.
pub fn apple_postfix_job(macos: crate::macos::Macos) -> (JobSpec, std::path::PathBuf) {
    let label = macos.apple_postfix_label();
    let shipped: &[u8] = if label == "org.postfix.master" {
        include_bytes!("../../tests/data/plists/apple-postfix-197/org.postfix.master.plist")
    } else {
        include_bytes!("../../tests/data/plists/apple-postfix-265/com.apple.postfix.master.plist")
    };
    let spec = parse_job(shipped).expect("Apple's shipped plist loads");
    let path = Path::new("/System/Library/LaunchDaemons").join(format!("{label}.plist"));
    (spec, path)
}

/// Checks owner and mode, then parses strictly.
pub fn load_daemon_plist(path: &Path) -> Result<JobSpec, LoadError> {
    let meta = fs::metadata(path).map_err(LoadError::Unreadable)?;
    if !meta.is_file() {
        return Err(LoadError::NotAFile);
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(LoadError::BadOwnership {
            uid: meta.uid(),
            mode: meta.mode(),
        });
    }
    let bytes = fs::read(path).map_err(LoadError::Unreadable)?;
    parse_job(&bytes)
}

/// Reads only the Label, as `bootout system PATH` needs; ownership does not matter there.
pub fn read_label(path: &Path) -> Result<String, LoadError> {
    let bytes = fs::read(path).map_err(LoadError::Unreadable)?;
    let dict = parse_dict(&bytes)?;
    label_of(&dict)
}

fn parse_dict(bytes: &[u8]) -> Result<Dictionary, LoadError> {
    crate::plist_strict::check(bytes).map_err(LoadError::Invalid)?;
    let value = Value::from_reader(std::io::Cursor::new(bytes))
        .map_err(|e| LoadError::Invalid(e.to_string()))?;
    match value {
        Value::Dictionary(d) => Ok(d),
        _ => Err(LoadError::NotADictionary),
    }
}

fn label_of(dict: &Dictionary) -> Result<String, LoadError> {
    match dict.get("Label") {
        None => Err(LoadError::MissingLabel),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(LoadError::MissingLabel),
        Some(_) => Err(bad("Label", "a string")),
    }
}

fn bad(key: &str, expected: &'static str) -> LoadError {
    LoadError::BadType {
        key: key.to_string(),
        expected,
    }
}

fn get_bool(dict: &Dictionary, key: &str) -> Result<Option<bool>, LoadError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(key, "a boolean")),
    }
}

fn get_string(dict: &Dictionary, key: &str) -> Result<Option<String>, LoadError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(key, "a string")),
    }
}

fn get_seconds(dict: &Dictionary, key: &str) -> Result<Option<u64>, LoadError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::Integer(i)) => i
            .as_unsigned()
            .map(Some)
            .ok_or_else(|| bad(key, "a non-negative integer")),
        Some(_) => Err(bad(key, "an integer")),
    }
}

/// Parses plist bytes (XML or binary) into a job description.
pub fn parse_job(bytes: &[u8]) -> Result<JobSpec, LoadError> {
    let dict = parse_dict(bytes)?;
    let label = label_of(&dict)?;

    let program = get_string(&dict, "Program")?;
    let arguments = match dict.get("ProgramArguments") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad("ProgramArguments", "an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => Err(bad("ProgramArguments", "an array of strings"))?,
    };
    let (program, inferred_program, arguments) = match (program, arguments) {
        (Some(p), Some(a)) if !a.is_empty() => (p, false, a),
        (Some(p), _) => (p.clone(), false, vec![p]),
        (None, Some(a)) if !a.is_empty() => (a[0].clone(), true, a),
        (None, _) => return Err(LoadError::NoProgram),
    };

    let keep_alive = match dict.get("KeepAlive") {
        None | Some(Value::Boolean(false)) => KeepAlive::Never,
        Some(Value::Boolean(true)) => KeepAlive::Always,
        Some(Value::Dictionary(d)) => KeepAlive::Conditions {
            successful_exit: get_bool(d, "SuccessfulExit")?,
            crashed: get_bool(d, "Crashed")?,
            nonempty: !d.is_empty(),
        },
        Some(_) => return Err(bad("KeepAlive", "a boolean or a dictionary")),
    };

    let environment = match dict.get("EnvironmentVariables") {
        None => BTreeMap::new(),
        // launchd.plist(5): "Values other than strings will be ignored."
        Some(Value::Dictionary(d)) => d
            .iter()
            .filter_map(|(k, v)| v.as_string().map(|s| (k.clone(), s.to_string())))
            .collect(),
        Some(_) => return Err(bad("EnvironmentVariables", "a dictionary")),
    };

    Ok(JobSpec {
        label,
        program,
        inferred_program,
        arguments,
        run_at_load: get_bool(&dict, "RunAtLoad")?.unwrap_or(false),
        keep_alive,
        throttle_interval: get_seconds(&dict, "ThrottleInterval")?
            .unwrap_or(DEFAULT_THROTTLE_INTERVAL),
        exit_timeout: get_seconds(&dict, "ExitTimeOut")?.unwrap_or(DEFAULT_EXIT_TIMEOUT),
        abandon_process_group: get_bool(&dict, "AbandonProcessGroup")?.unwrap_or(false),
        stdout_path: get_string(&dict, "StandardOutPath")?,
        stderr_path: get_string(&dict, "StandardErrorPath")?,
        working_directory: get_string(&dict, "WorkingDirectory")?,
        environment,
        user_name: get_string(&dict, "UserName")?,
        group_name: get_string(&dict, "GroupName")?,
        disabled: get_bool(&dict, "Disabled")?.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apples_postfix_job_is_the_shipped_plist_under_each_releases_label() {
        use crate::macos::Macos;
        for (release, label) in [
            ("13", "com.apple.postfix.master"),
            ("10.12", "com.apple.postfix.master"),
            ("10.11", "org.postfix.master"),
        ] {
            let (job, path) = apple_postfix_job(Macos::parse(release).unwrap());
            assert_eq!(job.label, label);
            assert_eq!(job.program, "/usr/libexec/postfix/master");
            assert_eq!(job.arguments, ["master", "-e", "60"]);
            assert!(!job.starts_at_load() && job.abandon_process_group);
            assert_eq!(
                path,
                Path::new(&format!("/System/Library/LaunchDaemons/{label}.plist"))
            );
        }
    }

    fn xml(body: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
{body}
</dict>
</plist>"#
        )
        .into_bytes()
    }

    #[test]
    fn key_followed_by_key_is_invalid() {
        let e = parse_job(&xml(
            "<key>Label</key><string>a</string><key>Program</key><string>/bin/true</string>\
             <key>RunAtLoad</key>\n<key>KeepAlive</key>",
        ))
        .unwrap_err();
        assert!(matches!(e, LoadError::Invalid(_)), "{e:?}");
    }

    #[test]
    fn program_is_executable_and_arguments_are_argv() {
        let j = parse_job(&xml(
            "<key>Label</key><string>a</string><key>Program</key><string>/usr/libexec/postfix/master</string>\
             <key>ProgramArguments</key><array><string>postmulti</string><string>-i</string></array>",
        ))
        .unwrap();
        assert_eq!(j.program, "/usr/libexec/postfix/master");
        assert_eq!(j.arguments, ["postmulti", "-i"]);
        assert!(!j.inferred_program);
        assert_eq!(j.throttle_interval, 10);
        assert_eq!(j.exit_timeout, 5);
    }

    #[test]
    fn missing_label_and_wrong_types_are_refused() {
        assert!(matches!(
            parse_job(&xml("<key>Program</key><string>/bin/true</string>")),
            Err(LoadError::MissingLabel)
        ));
        assert!(matches!(
            parse_job(&xml(
                "<key>Label</key><string>a</string><key>Program</key><string>/bin/true</string>\
                 <key>RunAtLoad</key><string>yes</string>"
            )),
            Err(LoadError::BadType { .. })
        ));
        assert!(matches!(
            parse_job(&xml("<key>Label</key><string>a</string>")),
            Err(LoadError::NoProgram)
        ));
    }

    #[test]
    fn keepalive_dict_and_successful_exit_implies_run_at_load() {
        let j = parse_job(&xml(
            "<key>Label</key><string>a</string><key>ProgramArguments</key><array><string>sleep</string></array>\
             <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>",
        ))
        .unwrap();
        assert!(j.inferred_program);
        assert!(j.starts_at_load());
        assert!(j.has_keepalive());
        assert!(!j.run_at_load);
    }
}

//! The launchctl driver: the `system`-domain subcommands instancectl uses, run through
//! the [`Runner`] (so `--dry-run` prints them), with their output parsed and their
//! failures turned into precise causes.
//!
//! launchctl's exit statuses are errno-style numbers. Most are unambiguous (3 "No such
//! process" from bootout: the job was not loaded; 113 from print or kickstart: no such
//! service; 36 "Operation now in progress" from bootout: a bootout is still stopping the
//! job), but `Bootstrap failed: 5: Input/output error` covers a job that is already
//! loaded, a label disabled by a persistent override, a bootout that has not finished,
//! bad ownership or permissions and an invalid plist alike. So [`Launchctl::bootstrap`]
//! reads the state before (loaded? disabled? still stopping?) and, when launchd refuses
//! anyway, after (the same, plus the file's owner and mode and a strict parse) and names
//! the cause. It never decides by matching the message text.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::lint;
use super::strict;
use crate::error::{Error, Result};
use crate::manager::{ManagerError, Override};
use crate::runner::{Command, Outcome, Runner};

/// launchd's errno-style exit statuses that the driver tells apart.
pub mod status {
    /// bootout: the service is not loaded ("No such process").
    pub const ESRCH: i32 = 3;
    /// bootstrap: one of several causes ("Input/output error"), among them a bootout
    /// of the label still in progress (recorded on macOS 26).
    pub const EIO: i32 = 5;
    /// bootout/kickstart: a bootout of the job is still in progress.
    pub const EINPROGRESS: i32 = 36;
    /// bootstrap: a bootout of the label is still in progress (recorded on macOS 13.4).
    pub const EALREADY: i32 = 37;
    /// print/kickstart/kill: no such service in the domain.
    pub const ENOSERVICE: i32 = 113;
}

/// How often a bootstrap refused because a bootout was still finishing is tried.
const BOOTSTRAP_ATTEMPTS: u32 = 3;

/// The longest pause between two tries of a bootstrap launchd refuses while nothing is
/// loaded under the label.
const BOOTSTRAP_MAX_PAUSE: Duration = Duration::from_secs(2);

/// The `state` property of `launchctl print`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "text")]
pub enum JobState {
    Running,
    NotRunning,
    SpawnScheduled,
    Waiting,
    /// `xpcproxy`: launchd is spawning the job (the pid is xpcproxy about to exec it).
    Xpcproxy,
    /// Any other word launchd prints (kept, never an error), such as `SIGTERMed`.
    Other(String),
}

impl JobState {
    pub fn parse(text: &str) -> JobState {
        match text {
            "running" => JobState::Running,
            "not running" => JobState::NotRunning,
            "spawn scheduled" => JobState::SpawnScheduled,
            "waiting" => JobState::Waiting,
            "xpcproxy" => JobState::Xpcproxy,
            other => JobState::Other(other.to_string()),
        }
    }

    /// Whether launchd is in the middle of stopping the job (a bootout or `kickstart
    /// -k`): it has sent SIGTERM or SIGKILL and waits for the process to go. On macOS
    /// 13 and later a bootout returns at once and the job shows `SIGTERMed` until then.
    pub fn is_stopping(&self) -> bool {
        matches!(self, JobState::Other(s)
            if s.contains("SIGTERM") || s.contains("SIGKILL") || s.contains("stopping"))
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Running => "running",
            JobState::NotRunning => "not running",
            JobState::SpawnScheduled => "spawn scheduled",
            JobState::Waiting => "waiting",
            JobState::Xpcproxy => "xpcproxy",
            JobState::Other(s) => s,
        })
    }
}

/// How the job's last process ended: `last exit code`, `last terminating signal` or
/// `last exit reason` (launchd prints one of them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LastExit {
    /// `(never exited)`
    Never,
    /// `1`, or `78: EX_CONFIG`.
    Code { code: i32, name: Option<String> },
    /// `Killed: 9`, `Terminated: 15`.
    Signal {
        number: Option<i32>,
        description: String,
    },
    /// `OS_REASON_CODESIGNING`, `OS_REASON_JETSAM`, `OS_REASON_EXEC`: the kernel or
    /// launchd ended (or refused) the process.
    Reason { reason: String },
    /// Anything else, as printed.
    Other { text: String },
}

impl LastExit {
    fn parse_code(text: &str) -> LastExit {
        if text == "(never exited)" {
            return LastExit::Never;
        }
        let (num, name) = match text.split_once(':') {
            Some((n, rest)) => (n.trim(), Some(rest.trim().to_string())),
            None => (text, None),
        };
        match integer(num).filter(|_| !num.contains(char::is_whitespace)) {
            Some(code) => LastExit::Code { code, name },
            None => LastExit::Other { text: text.into() },
        }
    }

    fn parse_signal(text: &str) -> LastExit {
        let (description, number) = match text.rsplit_once(':') {
            Some((d, n)) => (d.trim().to_string(), integer(n)),
            None => (
                text.to_string(),
                integer(text).filter(|_| !text.contains(' ')),
            ),
        };
        LastExit::Signal {
            number,
            description,
        }
    }

    /// Whether this is an end at all (`(never exited)` is not).
    pub fn is_end(&self) -> bool {
        *self != LastExit::Never
    }

    /// How a process ended, as the predicate of a sentence about it ("the master ...").
    pub fn how_it_ended(&self) -> String {
        match self {
            LastExit::Never => "has not exited".into(),
            LastExit::Signal { .. } | LastExit::Reason { .. } => format!("was {self}"),
            LastExit::Code { .. } | LastExit::Other { .. } => format!("ended with {self}"),
        }
    }
}

impl std::fmt::Display for LastExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LastExit::Never => write!(f, "never exited"),
            LastExit::Code { code, name: None } => write!(f, "exit status {code}"),
            LastExit::Code {
                code,
                name: Some(n),
            } => write!(f, "exit status {code} ({n})"),
            LastExit::Signal {
                number: Some(n),
                description,
            } => write!(f, "killed by signal {n} ({description})"),
            LastExit::Signal { description, .. } => write!(f, "killed by {description}"),
            LastExit::Reason { reason } => write!(f, "ended by the system ({reason})"),
            LastExit::Other { text } => f.write_str(text),
        }
    }
}

/// A loaded job, as `launchctl print system/LABEL` describes it. Only the job's own
/// properties are read; nested blocks are not the job's (a nested `state = active` is a
/// coalition's state).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobInfo {
    pub state: Option<JobState>,
    pub pid: Option<i32>,
    pub runs: Option<u64>,
    pub last_exit: Option<LastExit>,
    /// `job state` (`running`, `exited`, `spawn failed`), printed by newer releases.
    pub job_state: Option<String>,
    pub path: Option<PathBuf>,
    pub program: Option<String>,
    pub arguments: Vec<String>,
    /// Every job-level `name = value` property as printed, including those not above.
    pub properties: BTreeMap<String, String>,
}

impl JobInfo {
    pub fn is_running(&self) -> bool {
        self.state == Some(JobState::Running) && self.pid.is_some()
    }

    pub fn is_stopping(&self) -> bool {
        self.state.as_ref().is_some_and(JobState::is_stopping)
    }

    /// Whether launchd is spawning the job right now (`state = xpcproxy`): the pid is
    /// the trampoline that execs the program, and the run is counted in `runs` already.
    pub fn is_spawning(&self) -> bool {
        self.state == Some(JobState::Xpcproxy)
    }

    /// Whether launchd loaded the job from `file`. Both sides are compared resolved
    /// too, so that a path launchd prints through or without a symlink (macOS's `/var`
    /// and `/etc` are links into `/private`) still names the same file.
    pub fn is_loaded_from(&self, file: &Path) -> bool {
        let resolved = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        self.path
            .as_deref()
            .is_some_and(|loaded| loaded == file || resolved(loaded) == resolved(file))
    }

    /// Whether the job's latest run has ended, by launchd's own account: it recorded how
    /// (exit code, signal, or a `last exit reason`), or it could not spawn the job at
    /// all (`job state = spawn failed`). A job that runs, is being spawned (`xpcproxy`)
    /// or is still being stopped has not: the end launchd shows then is the previous
    /// run's (recorded: `state = xpcproxy` and `state = running` with the `last
    /// terminating signal` of the run before). A job starting up has not; one that ended
    /// is not waited for.
    pub fn has_ended(&self) -> bool {
        let live = self.is_running() || self.is_spawning() || self.is_stopping();
        let ran_and_ended =
            self.runs.unwrap_or(0) > 0 && self.last_exit.as_ref().is_some_and(LastExit::is_end);
        !live && (ran_and_ended || self.job_state.as_deref() == Some("spawn failed"))
    }
}

/// The name and value of a `name = value` property line (`properties = ` may be empty).
fn property(content: &str) -> Option<(&str, &str)> {
    match content.split_once(" = ") {
        Some((name, value)) => Some((name.trim(), value.trim())),
        None => content.strip_suffix(" =").map(|name| (name.trim(), "")),
    }
}

/// An integer as launchd prints it, or as a paste or another release may: its first
/// word, decimal or `0x` hexadecimal, signed or not (`16090`, `-9`, `0x4e`, `3 (pid)`).
fn integer<T: TryFrom<i64>>(text: &str) -> Option<T> {
    let word = text.split_whitespace().next()?;
    let (negative, digits) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i64>().ok()?,
    };
    T::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// The line that opens the job's block in `print` output: the first `NAME = {` line when
/// NAME is a target (`system/LABEL`, `gui/501/LABEL`) or a label (older releases printed
/// the label alone), or when everything after it is inside it (a paste that left the
/// domain out of the target). A fragment (`arguments = {` followed by
/// job lines) has none.
fn header_line(lines: &[&str]) -> Option<usize> {
    let first = lines.iter().position(|l| l.trim_end().ends_with(" = {"))?;
    if lines[..first].iter().any(|l| property(l.trim()).is_some()) {
        return None;
    }
    let name = lines[first].trim().trim_end_matches(" = {");
    // A target, or a bare label as OS X 10.10 to 10.15 printed it (`dev.mysql = {`):
    // dotted, one word, not a quoted endpoint name.
    let label = name.contains('.') && !name.contains(char::is_whitespace) && !name.starts_with('"');
    if name.contains('/') || label {
        return Some(first);
    }
    // Without a target: the header when every later line is deeper than it, up to its
    // own `}` (or the end of a cut excerpt), and nothing follows that `}`.
    let indent = indentation(lines[first]);
    let mut closed = false;
    for line in lines[first + 1..].iter().filter(|l| !l.trim().is_empty()) {
        let deeper = indentation(line).len() > indent.len() && line.starts_with(indent);
        if closed || !(deeper || line.trim() == "}" && indentation(line) == indent) {
            return None;
        }
        closed = !deeper;
    }
    Some(first)
}

/// The indentation of a fragment's own lines: the commonest among its properties outside
/// nested blocks (the shallower on a tie). An excerpt filtered through grep or sed keeps
/// members of nested blocks (a coalition's `state = active`, two tabs deep) without
/// their opening lines; they are not the job's.
fn fragment_indent<'a>(body: &[&'a str]) -> &'a str {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut depth = 0usize;
    for line in body {
        let content = line.trim();
        if content == "}" {
            depth = depth.saturating_sub(1);
            continue;
        }
        if depth == 0 && property(content).is_some() {
            *counts.entry(indentation(line)).or_default() += 1;
        }
        if content.ends_with('{') {
            depth += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.len().cmp(&a.0.len())))
        .map_or("", |(indent, _)| indent)
}

/// Parses what `launchctl print system/LABEL` prints. Real output is indented with
/// tabs, pastes with spaces; nested blocks (`arguments`, `resource coalition`,
/// `endpoints`, `event triggers`, `LWCR`, ...) are told apart by their braces: a block
/// closes at the `}` with its opening line's indentation (or a shallower one, when the
/// block has no `}` of its own indentation: a cut excerpt). `arguments` closes only at
/// its own `}` when there is one, because launchctl prints an argument's embedded
/// newlines raw, so a shell script's `}` or `pid = ...` at column 0 is an argument.
/// Lines before the `TARGET = {` header (such as `Bad request.`) are not the job's; the
/// header is found by its target (`system/LABEL`, `gui/501/LABEL`), whatever its
/// indentation. A fragment without a header is read as job-level lines at its commonest
/// indentation; deeper lines outside a block are a nested block's members whose opening
/// line was cut or filtered out. Unknown properties are kept in
/// [`JobInfo::properties`], unknown nested blocks skipped, lines that are not `name =
/// value` ignored: a release that prints more never makes the job's state unreadable.
pub fn parse_print(text: &str) -> JobInfo {
    let mut info = JobInfo::default();
    let lines: Vec<&str> = text.lines().collect();
    let header = header_line(&lines);
    let header_indent = header.map_or("", |i| indentation(lines[i]));
    let body = header.map_or(&lines[..], |i| &lines[i + 1..]);
    // The indentation of the job's own properties: in a block, that of its first line.
    let own_indent = match header {
        Some(_) => body
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or("", |l| indentation(l)),
        None => fragment_indent(body),
    };
    // Every line at the header's indentation (a paste that lost it all).
    let flat = header.is_some() && own_indent == header_indent;
    // The indentation of each open nested block's opening line.
    let mut open: Vec<&str> = Vec::new();
    let mut in_arguments = false;
    // Whether the open `arguments` block has a `}` of its own indentation further on.
    let mut arguments_closed_later = false;
    let mut reason = None;
    let mut signal = None;
    for (n, line) in body.iter().enumerate() {
        let content = line.trim();
        if content.is_empty() {
            continue;
        }
        let indent = indentation(line);
        if let Some(top) = open.last() {
            let own_close = indent == *top;
            let shallower = indent.len() < top.len() && !(in_arguments && arguments_closed_later);
            let closes = content == "}" && (own_close || shallower);
            // A job-level property while a block is open: the block's `}` was lost
            // (an excerpt, a mixed paste), so the job's own lines resume here.
            // Members of a nested block are deeper than the job's own lines, unless
            // the paste lost all indentation: then only the braces tell.
            let resumes = !flat
                && !in_arguments
                && indent == own_indent
                && open.first() == Some(&own_indent)
                && content != "}"
                && property(content).is_some();
            if closes {
                open.pop();
                in_arguments = false;
                continue;
            } else if !resumes {
                if in_arguments {
                    info.arguments.push(content.to_string());
                } else if content.ends_with('{') {
                    open.push(indent);
                }
                continue;
            }
            open.clear();
            in_arguments = false;
        }
        if header.is_some() && content == "}" && indent.len() <= header_indent.len() {
            break;
        }
        // Deeper than the job's own lines and in no block that is here.
        if indent.len() > own_indent.len() && indent.starts_with(own_indent) {
            continue;
        }
        let Some((name, value)) = property(content) else {
            continue;
        };
        if value == "{" {
            open.push(indent);
            in_arguments = name == "arguments";
            arguments_closed_later = in_arguments
                && body[n + 1..]
                    .iter()
                    .any(|l| l.trim() == "}" && indentation(l) == indent);
            continue;
        }
        // The job's own line comes first: launchd prints each once, before the nested
        // blocks, and a grep of the output keeps the blocks' members (a coalition's
        // `state = active`) after it, without their blocks.
        if info.properties.contains_key(name) {
            continue;
        }
        info.properties.insert(name.to_string(), value.to_string());
        match name {
            "state" => info.state = Some(JobState::parse(value)),
            // No process has pid 0 (several tools take `pid = 0` for "none").
            "pid" => info.pid = integer(value).filter(|&pid: &i32| pid > 0),
            "runs" => info.runs = integer(value),
            "path" => info.path = Some(value.into()),
            "program" => info.program = Some(value.into()),
            "job state" => info.job_state = Some(value.into()),
            "last exit code" => info.last_exit = Some(LastExit::parse_code(value)),
            "last terminating signal" => signal = Some(LastExit::parse_signal(value)),
            "last exit reason" => {
                reason = Some(LastExit::Reason {
                    reason: value.into(),
                })
            }
            _ => {}
        }
    }
    // A death by signal, or by the system, is the more precise account of the end.
    if let Some(precise) = signal.or(reason) {
        info.last_exit = Some(precise);
    }
    info
}

/// The leading whitespace of a line.
fn indentation(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// Parses `launchctl print-disabled system`: `"LABEL" => disabled|enabled` (and the
/// older `=> true|false`) inside the `disabled services = {` block. The block is found
/// by its header, not by its indentation: macOS 12 and older print it at column 0,
/// macOS 13 and later after a blank line, indented by a tab (entries by two), and
/// other blocks (`login item associations`) follow it.
pub fn parse_print_disabled(text: &str) -> BTreeMap<String, Override> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().map(str::trim);
    if lines.by_ref().any(|l| l == "disabled services = {") {
        for line in lines.take_while(|l| *l != "}") {
            let Some((label, word)) = line.split_once("=>") else {
                continue;
            };
            let label = label.trim().trim_matches('"').to_string();
            let value = match word.trim() {
                "disabled" | "true" => Override::Disabled,
                "enabled" | "false" => Override::Enabled,
                other => Override::Unknown(other.to_string()),
            };
            out.insert(label, value);
        }
    }
    out
}

/// Whether an override may keep launchd from loading the job: `disabled`, or a word
/// instancectl does not know (a later release's), which is never taken for enabled.
/// Enabling such a label before a bootstrap is harmless when it was enabled after all.
pub fn may_block_loading(listed: Option<&Override>) -> bool {
    matches!(listed, Some(Override::Disabled | Override::Unknown(_)))
}

/// Why launchd refused to bootstrap a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapCause {
    /// The label is loaded already, from another file.
    LoadedFrom(PathBuf),
    /// A persistent `launchctl disable` override is in force.
    Disabled,
    /// An override in a word instancectl does not know is in force, as printed.
    UnknownOverride(String),
    /// A bootout of the label is still stopping it.
    BootoutInProgress,
    /// The file is not there.
    Missing,
    /// Owner, group or mode launchd does not accept; each problem with its fix.
    Ownership(Vec<lint::Problem>),
    /// Not a valid plist; the strict reader's first complaints.
    InvalidPlist(Vec<strict::SyntaxError>),
    /// The file's Label is not the label asked for.
    LabelMismatch(String),
    /// LimitLoadToSessionType leaves out the System session a daemon is loaded in.
    NotForTheSystemSession(lint::Problem),
    /// None of the known causes was found.
    Unknown,
}

/// Which subcommand failed and how, with the cause the driver determined.
#[derive(Debug)]
pub struct Failure {
    pub what: String,
    pub outcome: Outcome,
    pub cause: Option<BootstrapCause>,
}

/// Runs launchctl for the `system` domain.
#[derive(Debug, Clone)]
pub struct Launchctl {
    runner: Runner,
    program: String,
    /// How long to wait for launchd to finish stopping a job.
    pub stop_timeout: Duration,
    /// The first pause before trying again a bootstrap that launchd refused while
    /// nothing is loaded under the label and neither the state nor the file explains
    /// it (the tail of a bootout, or a transient refusal); it doubles at each try.
    pub retry_pause: Duration,
    /// How long such a bootstrap is tried again (from the first try, or from the end of
    /// a stop the driver waited out): after a bootout, launchd refused it with 5 for
    /// about 5 s on macOS 26.5.1 (headroomlabs-ai/headroom #1289).
    pub settle_timeout: Duration,
}

/// The service target of `label` in the system domain.
pub fn target(label: &str) -> String {
    format!("system/{label}")
}

impl Launchctl {
    /// `launchctl` as found in PATH (/bin/launchctl on macOS).
    pub fn new(runner: Runner) -> Launchctl {
        Launchctl {
            runner,
            program: "launchctl".into(),
            stop_timeout: Duration::from_secs(90),
            retry_pause: Duration::from_millis(250),
            settle_timeout: Duration::from_secs(15),
        }
    }

    pub fn runner(&self) -> Runner {
        self.runner
    }

    /// Whether a launchctl can be run at all (it is in PATH).
    pub fn available(&self) -> bool {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).any(|d| d.join(&self.program).is_file())
    }

    fn cmd(&self) -> Command {
        Command::new(&self.program)
    }

    /// Runs a changing subcommand and returns its outcome whatever the exit status; in
    /// dry-run mode it is only printed.
    fn change(&self, cmd: &Command) -> Result<Outcome> {
        match self.runner.change(cmd) {
            Ok(outcome) => Ok(outcome),
            Err(Error::CommandFailed { outcome, .. }) => Ok(*outcome),
            Err(e) => Err(e),
        }
    }

    fn failed(&self, context: String, outcome: Outcome) -> Error {
        Error::CommandFailed {
            context,
            outcome: Box::new(outcome),
        }
    }

    /// The job, or `None` when the label is not loaded (exit 113).
    pub fn print(&self, label: &str) -> Result<Option<JobInfo>> {
        let out = self
            .runner
            .probe(&self.cmd().arg("print").arg(target(label)))?;
        match out.code {
            Some(0) => Ok(Some(parse_print(&out.stdout))),
            Some(status::ENOSERVICE) => Ok(None),
            _ => Err(self.failed(format!("reading the state of {label}"), out)),
        }
    }

    /// Every persistent override in the system domain.
    pub fn print_disabled(&self) -> Result<BTreeMap<String, Override>> {
        let out = self
            .runner
            .query(&self.cmd().args(["print-disabled", "system"]))
            .map_err(|e| e.context("reading launchd's disabled services"))?;
        Ok(parse_print_disabled(&out.stdout))
    }

    /// The override of one label (`None`: no override, the plist's own default holds).
    pub fn override_of(&self, label: &str) -> Result<Option<Override>> {
        Ok(self.print_disabled()?.remove(label))
    }

    /// Clears a persistent "disabled" override: the job may be bootstrapped and is
    /// loaded at boot.
    pub fn enable(&self, label: &str) -> Result<()> {
        self.simple("enable", label)
    }

    /// Sets the persistent "disabled" override: launchd will not load the job at boot,
    /// nor bootstrap it, until it is enabled. It survives reboots and deleting the file.
    pub fn disable(&self, label: &str) -> Result<()> {
        self.simple("disable", label)
    }

    fn simple(&self, verb: &str, label: &str) -> Result<()> {
        let out = self.change(&self.cmd().arg(verb).arg(target(label)))?;
        if out.success() {
            Ok(())
        } else {
            Err(self.failed(format!("launchctl could not {verb} {label}"), out))
        }
    }

    /// Signals the job's process (`launchctl kill SIG system/LABEL`).
    pub fn kill(&self, signal: &str, label: &str) -> Result<()> {
        let out = self.change(&self.cmd().arg("kill").arg(signal).arg(target(label)))?;
        match out.code {
            Some(0) => Ok(()),
            Some(status::ENOSERVICE) => Err(ManagerError::NotLoaded {
                label: label.into(),
            }
            .into()),
            _ => Err(self.failed(format!("signalling {label}"), out)),
        }
    }

    /// Starts a loaded job now (`-k`: kills a running one first). Exit 113 means the
    /// label is not loaded; a bootout still in progress is waited for and reported.
    pub fn kickstart(&self, label: &str, kill: bool) -> Result<Kickstart> {
        let mut cmd = self.cmd().arg("kickstart");
        if kill {
            cmd = cmd.arg("-k");
        }
        let out = self.change(&cmd.arg(target(label)))?;
        match out.code {
            Some(0) => Ok(Kickstart::Started),
            Some(status::ENOSERVICE) => Ok(Kickstart::NotLoaded),
            Some(status::EINPROGRESS) => {
                self.wait_unloaded(label)?;
                Ok(Kickstart::NotLoaded)
            }
            // Another status (releases differ): the state decides, not the number.
            _ if self.print(label)?.is_none() => Ok(Kickstart::NotLoaded),
            _ => Err(self.failed(format!("kickstarting {label}"), out)),
        }
    }

    /// Stops and unloads the job and waits until launchd has let go of it. A label that
    /// is not loaded (exit 3) is already where bootout would bring it; a bootout still
    /// in progress (exit 36) is waited for.
    pub fn bootout(&self, label: &str) -> Result<Bootout> {
        let out = self.change(&self.cmd().arg("bootout").arg(target(label)))?;
        let result = match out.code {
            Some(0) => Bootout::Stopped,
            Some(status::ESRCH) | Some(status::ENOSERVICE) => return Ok(Bootout::NotLoaded),
            Some(status::EINPROGRESS) => Bootout::Stopped,
            // Another status (releases differ; by path it is 5 when not loaded): the
            // state decides, not the number.
            _ if self.print(label)?.is_none() => return Ok(Bootout::NotLoaded),
            _ => return Err(self.failed(format!("stopping {label} (bootout)"), out)),
        };
        if !self.runner.dry_run() {
            self.wait_unloaded(label)?;
        }
        Ok(result)
    }

    /// Waits until `print` no longer finds the label.
    pub fn wait_unloaded(&self, label: &str) -> Result<()> {
        self.wait_until(label, |job| job.is_none()).map(drop)
    }

    /// Waits while launchd is stopping the job, and returns it as it is then: `None`
    /// once a bootout has unloaded it, or the job when it was spawned again (a
    /// `kickstart -k` shows the same `SIGTERMed` state on the way, and the job never
    /// leaves the domain).
    pub fn wait_stopped(&self, label: &str) -> Result<Option<JobInfo>> {
        self.wait_until(label, |job| !job.is_some_and(JobInfo::is_stopping))
    }

    /// Reads the job until `done` says so, for at most `stop_timeout`.
    fn wait_until(
        &self,
        label: &str,
        done: impl Fn(Option<&JobInfo>) -> bool,
    ) -> Result<Option<JobInfo>> {
        let deadline = Instant::now() + self.stop_timeout;
        loop {
            let job = self.print(label)?;
            if done(job.as_ref()) {
                return Ok(job);
            }
            if Instant::now() >= deadline {
                let job = job.unwrap_or_default();
                return Err(ManagerError::StillStopping {
                    label: label.into(),
                    seconds: self.stop_timeout.as_secs(),
                    state: job.state.map_or("unknown".into(), |s| s.to_string()),
                    pid: job.pid.map_or("none".into(), |p| p.to_string()),
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Loads the job in `path` under `label`. Before: a job still being booted out is
    /// waited for, a job already loaded from the same file is left as it is, one loaded
    /// from another file is an error, and a "disabled" override is cleared (enable
    /// before bootstrap). After a refusal the state is read again to name the cause.
    pub fn bootstrap(&self, label: &str, path: &Path) -> Result<Bootstrap> {
        let mut loaded = self.print(label)?;
        if loaded.as_ref().is_some_and(JobInfo::is_stopping) {
            loaded = self.wait_stopped(label)?;
        }
        if let Some(job) = loaded {
            if job.is_loaded_from(path) {
                return Ok(Bootstrap::AlreadyLoaded);
            }
            return Err(self.bootstrap_error(
                label,
                path,
                None,
                BootstrapCause::LoadedFrom(job.path.unwrap_or_default()),
            ));
        }
        if may_block_loading(self.override_of(label)?.as_ref()) {
            self.enable(label)?;
        }
        let load = || {
            self.change(
                &self
                    .cmd()
                    .args(["bootstrap", "system"])
                    .arg(path.to_string_lossy()),
            )
        };
        let mut out = load()?;
        // A bootout of the label that has not finished makes launchd refuse: bootout
        // returns at once on macOS 13 and later and the job shows `SIGTERMed` until its
        // process exits, and launchd may go on refusing for seconds after `print` no
        // longer finds the job. A bootstrap then was recorded failing with 5 (26.3,
        // 26.5.1, 26.5.2), and one of a label launchd is busy with with 37 ("Operation
        // already in progress", 13.4). Read the state, not the words.
        let mut settle_until = Instant::now() + self.settle_timeout;
        let mut pause = self.retry_pause;
        let mut attempt = 1;
        loop {
            if out.success() {
                return Ok(Bootstrap::Loaded);
            }
            let (was_stopping, job) = match self.print(label)? {
                Some(job) if job.is_stopping() => {
                    let job = self.wait_stopped(label)?;
                    // macOS 26 goes on refusing for seconds after the stop, however
                    // long the stop took: the settle time counts from its end.
                    settle_until = Instant::now() + self.settle_timeout;
                    (true, job)
                }
                job => (false, job),
            };
            let again = match job {
                // Loaded after all (37 also answers a bootstrap of a loaded job, and a
                // `kickstart -k` under way ends with the job running again).
                Some(job) if job.is_loaded_from(path) => {
                    return Ok(Bootstrap::AlreadyLoaded);
                }
                // The stop that made launchd refuse is over, or launchd said it is
                // busy with the label (37) and is done by now: try again at once, a
                // few times, then as below.
                None if (was_stopping || out.code == Some(status::EALREADY))
                    && attempt < BOOTSTRAP_ATTEMPTS =>
                {
                    true
                }
                // Nothing loaded: a cause the state or the file shows (disabled, a bad
                // file) is reported at once. Without one, launchd is still letting go
                // of the label after a bootout (recorded for seconds on macOS 26), or
                // refused once on a fresh install (tomcounsell/ai #2104): try again,
                // pausing longer each time, until the settle time is over.
                None => {
                    let cause = self.diagnose(label, path)?;
                    if cause != BootstrapCause::Unknown || Instant::now() >= settle_until {
                        return Err(self.bootstrap_error(label, path, Some(out), cause));
                    }
                    // Never past the settle time: the last try comes as it ends.
                    std::thread::sleep(
                        pause.min(settle_until.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(BOOTSTRAP_MAX_PAUSE);
                    true
                }
                Some(_) => false,
            };
            if !again {
                break;
            }
            attempt += 1;
            out = load()?;
        }
        // Refused: find out why from the state, not from the words.
        let cause = self.diagnose(label, path)?;
        Err(self.bootstrap_error(label, path, Some(out), cause))
    }

    /// Reads everything that can make launchd refuse a bootstrap.
    pub fn diagnose(&self, label: &str, path: &Path) -> Result<BootstrapCause> {
        if let Some(job) = self.print(label)? {
            if job.is_stopping() {
                return Ok(BootstrapCause::BootoutInProgress);
            }
            if !job.is_loaded_from(path) {
                return Ok(BootstrapCause::LoadedFrom(job.path.unwrap_or_default()));
            }
        }
        match self.override_of(label)? {
            Some(Override::Disabled) => return Ok(BootstrapCause::Disabled),
            Some(Override::Unknown(word)) => return Ok(BootstrapCause::UnknownOverride(word)),
            _ => {}
        }
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(BootstrapCause::Missing);
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let problems = lint::ownership(path, meta.uid(), meta.mode());
        if !problems.is_empty() {
            return Ok(BootstrapCause::Ownership(problems));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let parsed = strict::parse(&bytes);
        if !parsed.is_valid() {
            return Ok(BootstrapCause::InvalidPlist(parsed.errors));
        }
        let file_label = parsed
            .dict()
            .and_then(|d| d.get("Label"))
            .and_then(::plist::Value::as_string)
            .unwrap_or_default()
            .to_string();
        if file_label != label {
            return Ok(BootstrapCause::LabelMismatch(file_label));
        }
        if let Some(problem) = lint::not_for_the_system_session(&bytes) {
            return Ok(BootstrapCause::NotForTheSystemSession(problem));
        }
        Ok(BootstrapCause::Unknown)
    }

    fn bootstrap_error(
        &self,
        label: &str,
        path: &Path,
        outcome: Option<Outcome>,
        cause: BootstrapCause,
    ) -> Error {
        let file = path.display();
        let reason = match &cause {
            BootstrapCause::LoadedFrom(other) if other.as_os_str().is_empty() => format!(
                "{label} is already loaded, and launchd does not say from which file \
                 (`launchctl print system/{label}` shows what it runs); `launchctl bootout \
                 system/{label}` first if it is not this instance's"
            ),
            BootstrapCause::LoadedFrom(other) => format!(
                "{label} is already loaded from {}; `launchctl bootout system/{label}` \
                 first, and remove that file if it is a stale copy",
                other.display()
            ),
            BootstrapCause::Disabled => format!(
                "{label} is disabled by a persistent override (it survives reboots and \
                 re-creating the file), and enabling it did not take; run `launchctl \
                 enable system/{label}`"
            ),
            BootstrapCause::UnknownOverride(word) => format!(
                "{label} has a launchd override instancectl cannot read (`\"{label}\" => \
                 {word}` in `launchctl print-disabled system`), and enabling it did not take; \
                 run `launchctl enable system/{label}`"
            ),
            BootstrapCause::BootoutInProgress => format!(
                "launchd is still stopping the previous {label} (bootout in progress); try \
                 again once `launchctl print system/{label}` no longer finds it"
            ),
            BootstrapCause::Missing => format!("{file} does not exist"),
            BootstrapCause::Ownership(problems) => {
                let what: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}; fix: {}", p.message, p.fix))
                    .collect();
                what.join("; ")
            }
            BootstrapCause::InvalidPlist(errors) => {
                let what: Vec<String> = errors
                    .iter()
                    .take(3)
                    .map(|e| format!("line {}: {}", e.line, e.message))
                    .collect();
                format!(
                    "{file} is not a valid property list: {}; `instancectl plist --check \
                     {file}` lists every problem",
                    what.join("; ")
                )
            }
            BootstrapCause::LabelMismatch(other) => format!(
                "{file} has Label {other:?}, not {label}; launchd loaded (or refused) it \
                 under that label"
            ),
            BootstrapCause::NotForTheSystemSession(problem) => {
                format!("{}; fix: {}", problem.message, problem.fix)
            }
            BootstrapCause::Unknown => format!(
                "none of the known causes applies ({label} is not loaded, not disabled, \
                 {file} is owned by root, not writable by group or others, and a valid \
                 plist for the System session); see the system log (`log show --last 5m --predicate \
                 'process == \"launchd\"'`)"
            ),
        };
        ManagerError::BootstrapRefused {
            label: label.into(),
            file: path.into(),
            code: outcome.as_ref().and_then(|o| o.code),
            cause,
            reason,
            outcome: outcome.map(Box::new),
        }
        .into()
    }
}

/// What [`Launchctl::bootstrap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    Loaded,
    AlreadyLoaded,
}

/// What [`Launchctl::bootout`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootout {
    Stopped,
    NotLoaded,
}

/// What [`Launchctl::kickstart`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kickstart {
    Started,
    NotLoaded,
}

/// The gid of the `wheel` group, when the host has one.
pub fn wheel_gid() -> Option<u32> {
    nix::unistd::Group::from_name("wheel")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a sample's `expect: last = ...` line reads a parsed end.
    fn last_as_expected(last: &Option<LastExit>) -> String {
        match last {
            None => "none".into(),
            Some(LastExit::Never) => "never".into(),
            Some(LastExit::Code { code, .. }) => format!("code {code}"),
            Some(LastExit::Signal { number, .. }) => {
                format!("signal {}", number.map_or("?".into(), |n| n.to_string()))
            }
            Some(LastExit::Reason { reason }) => format!("reason {reason}"),
            Some(LastExit::Other { text }) => format!("other {text}"),
        }
    }

    /// Every recorded `print` sample: state, pid, runs, how the last run ended and
    /// `job state` are what the recording says.
    #[test]
    fn print_reads_every_recorded_sample() {
        let samples: Vec<_> = launchd_emulator::corpus::load()
            .into_iter()
            .filter(|s| s.subcommand() == "print" && s.exit == 0 && s.is_service_target())
            .collect();
        assert!(samples.len() >= 14, "{} print samples", samples.len());
        for sample in &samples {
            let job = parse_print(&sample.output);
            let name = &sample.name;
            let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
            for (key, want) in &sample.expect {
                let got = match key.as_str() {
                    "state" => or_none(job.state.as_ref().map(ToString::to_string)),
                    "pid" => or_none(job.pid.map(|p| p.to_string())),
                    "runs" => or_none(job.runs.map(|r| r.to_string())),
                    "last" => last_as_expected(&job.last_exit),
                    "job state" => or_none(job.job_state.clone()),
                    "ended" => if job.has_ended() { "yes" } else { "no" }.to_string(),
                    other => panic!("{name}: unknown expectation {other}"),
                };
                assert_eq!(&got, want, "{name}: {key}");
            }
            // Nested blocks never leak into the job's own properties.
            for nested in ["ID", "port", "activation rate", "PATH", "keepalive"] {
                assert!(!job.properties.contains_key(nested), "{name}: {nested}");
            }
        }
        let akd = parse_print(
            &samples
                .iter()
                .find(|s| s.name == "print-running-akd.sample")
                .unwrap()
                .output,
        );
        assert!(akd.is_running());
        assert_eq!(
            akd.arguments,
            ["/System/Library/PrivateFrameworks/AuthKit.framework/Versions/A/Support/akd"]
        );
        assert_eq!(akd.properties["execs"], "1");
        let failed = samples
            .iter()
            .find(|s| s.name == "print-spawn-failed-codesigning.sample")
            .unwrap();
        let failed = parse_print(&failed.output);
        assert!(failed.has_ended(), "spawn failed is an end: {failed:?}");
        assert_eq!(
            failed.last_exit.unwrap().to_string(),
            "ended by the system (OS_REASON_CODESIGNING)"
        );
    }

    /// What an unseen release or a paste may do to a recorded block must not make the
    /// job unreadable: every recorded `print` sample, changed in each of these ways,
    /// still gives the same state, pid, runs, end and `job state`.
    #[test]
    fn print_survives_what_an_unseen_release_or_a_paste_does_to_it() {
        type Change = fn(&str) -> String;
        let variants: [(&str, Change); 9] = [
            ("indented by four spaces after a blank line", |t| {
                let body: Vec<String> = t.lines().map(|l| format!("    {l}")).collect();
                format!("\n{}\n", body.join("\n"))
            }),
            ("tabs pasted as spaces", |t| t.replace('\t', "        ")),
            ("CRLF line ends", |t| t.replace('\n', "\r\n")),
            ("unknown properties and nested blocks first", |t| {
                let extra = "\tbrand new = 1 (queried = 0)\n\tnew block = {\n\t\tstate = bogus\n\t\tpid = 1\n\t\tinner = {\n\t\t\truns = 99\n\t\t}\n\t}\n\tsome flags => [\n\t\t0 = \t\t]\n\tbare words without an equals sign\n";
                let lines: Vec<&str> = t.lines().collect();
                match header_line(&lines) {
                    // Right after the header, at the job's level (4 spaces in a paste
                    // that has them).
                    Some(i) => {
                        let unit = lines[i + 1..]
                            .iter()
                            .find(|l| !l.trim().is_empty())
                            .map_or("\t", |l| indentation(l));
                        format!(
                            "{}\n{}{}\n",
                            lines[..=i].join("\n"),
                            extra.replace('\t', unit),
                            lines[i + 1..].join("\n")
                        )
                    }
                    None => format!(
                        "{}{t}",
                        extra.replace("\n\t", "\n").trim_start_matches('\t')
                    ),
                }
            }),
            (
                "the domain left out of the header (a redacted paste)",
                |t| {
                    let (head, rest) = t.split_once(" = {\n").unwrap_or(("", t));
                    match head.rsplit_once('/') {
                        Some((_, label)) if !head.contains('\n') => format!("{label} = {{\n{rest}"),
                        _ => t.to_string(),
                    }
                },
            ),
            (
                "an argument with newlines, printed raw (a shell script's `}` at column 0)",
                |t| {
                    t.replacen(
                    "\targuments = {\n",
                    "\targuments = {\n\t\t/bin/sh\n\t\t-c\n\t\tp=/x\n[ -x \"$p\" ] || {\n  exit 1\n}\npid = 99\nstate = bogus\n}\nexec \"$p\"\n",
                    1,
                )
                },
            ),
            (
                "every line's indentation lost (a paste or a string literal)",
                |t| {
                    let lines: Vec<&str> = t.lines().collect();
                    if header_line(&lines).is_none() {
                        // A fragment's depth is all that tells nested lines apart.
                        return t.to_string();
                    }
                    let flat: Vec<&str> = lines.iter().map(|l| l.trim_start()).collect();
                    format!("{}\n", flat.join("\n"))
                },
            ),
            ("Bad request. and a blank line before it", |t| {
                format!("Bad request.\n\n{t}")
            }),
            ("a nested block whose closing brace was lost", |t| {
                t.replacen(
                    "\n\tendpoints = {\n",
                    "\n\tendpoints = {\n\t\t\"x\" = {\n",
                    1,
                )
            }),
        ];
        let samples: Vec<_> = launchd_emulator::corpus::load()
            .into_iter()
            .filter(|s| s.subcommand() == "print" && s.exit == 0 && s.is_service_target())
            .collect();
        let key = |j: &JobInfo| {
            (
                j.state.clone(),
                j.pid,
                j.runs,
                j.last_exit.clone(),
                j.job_state.clone(),
            )
        };
        for sample in &samples {
            let want = key(&parse_print(&sample.output));
            assert!(
                want.0.is_some() || want.3.is_some(),
                "{}: nothing read at all",
                sample.name
            );
            for (what, change) in &variants {
                let got = key(&parse_print(&change(&sample.output)));
                assert_eq!(got, want, "{}, {what}", sample.name);
            }
        }
    }

    /// An administrator's `launchctl print ... | grep -E 'state =|pid =|runs =|last '` of
    /// every recorded block: the nested blocks' `state = active` lines (often more of
    /// them than the job's own line, and deeper) never replace what the job's lines say.
    #[test]
    fn a_grep_of_every_recorded_block_reads_the_same() {
        let keys = [
            "state = ",
            "pid = ",
            "runs = ",
            "last exit code = ",
            "last terminating signal = ",
            "last exit reason = ",
            "job state = ",
        ];
        let read = |j: JobInfo| (j.state, j.pid, j.runs, j.last_exit, j.job_state);
        let mut nested = 0;
        for sample in launchd_emulator::corpus::load()
            .into_iter()
            .filter(|s| s.subcommand() == "print" && s.exit == 0 && s.is_service_target())
        {
            let lines: Vec<&str> = sample.output.lines().collect();
            if header_line(&lines).is_none() {
                continue;
            }
            let grepped: Vec<&str> = lines
                .into_iter()
                .filter(|l| keys.iter().any(|k| l.trim_start().starts_with(k)))
                .collect();
            nested += grepped
                .iter()
                .filter(|l| l.contains("state = active"))
                .count();
            let got = read(parse_print(&format!("{}\n", grepped.join("\n"))));
            assert_eq!(
                got,
                read(parse_print(&sample.output)),
                "{}: {grepped:?}",
                sample.name
            );
        }
        assert!(
            nested > 5,
            "the recordings have nested state lines to ignore"
        );
    }

    /// Every recorded `print-disabled` layout (and the `disabled services` block a
    /// domain's `print` shows): each override the recording lists, and
    /// nothing from the blocks after it.
    #[test]
    fn print_disabled_reads_every_recorded_layout() {
        let samples: Vec<_> = launchd_emulator::corpus::load()
            .into_iter()
            .filter(|s| {
                s.subcommand() == "print-disabled"
                    || (s.subcommand() == "print" && s.exit == 0 && !s.is_service_target())
            })
            .collect();
        assert!(samples.len() >= 3);
        for sample in &samples {
            let map = parse_print_disabled(&sample.output);
            let name = &sample.name;
            for (key, want) in &sample.expect {
                if key == "overrides" {
                    assert_eq!(map.len().to_string(), *want, "{name}: {map:?}");
                    continue;
                }
                let label = key
                    .strip_prefix("override ")
                    .unwrap_or_else(|| panic!("{name}: {key}"));
                let got = match map.get(label) {
                    Some(Override::Disabled) => "disabled".to_string(),
                    Some(Override::Enabled) => "enabled".to_string(),
                    Some(Override::Unknown(w)) => w.clone(),
                    None => "absent".to_string(),
                };
                assert_eq!(&got, want, "{name}: {label}");
            }
            // What a paste or a later release may do to it changes nothing.
            type Change = fn(&str) -> String;
            let variants: [(&str, Change); 5] = [
                ("CRLF line ends", |t| t.replace('\n', "\r\n")),
                ("tabs pasted as spaces", |t| t.replace('\t', "    ")),
                ("a blank line, then all indented by a tab", |t| {
                    let body: Vec<String> = t.lines().map(|l| format!("\t{l}")).collect();
                    format!("\n{}\n", body.join("\n"))
                }),
                ("every line's indentation lost", |t| {
                    let flat: Vec<&str> = t.lines().map(str::trim_start).collect();
                    format!("{}\n", flat.join("\n"))
                }),
                ("another block after it", |t| {
                    format!("{t}\nlogin item associations = {{\n\t\"a.b\" => \"c.d\"\n}}\n")
                }),
            ];
            for (what, change) in variants {
                assert_eq!(
                    parse_print_disabled(&change(&sample.output)),
                    map,
                    "{name}, {what}"
                );
            }
        }
    }

    /// The recorded failures: the driver decides by the exit status where it is
    /// unambiguous (113, 3, 36), whatever the words around it (`Bad request.` or not),
    /// and by the state where it is not: a refused bootstrap, whatever its status (5,
    /// 37, 119), is explained by what print, print-disabled and the file say.
    #[test]
    fn recorded_failures_are_classified_by_exit_status() {
        for sample in launchd_emulator::corpus::load()
            .into_iter()
            .filter(|s| s.stream == "stderr")
        {
            let text = sample.output.replace('\'', "'\\''");
            let disabled = sample.expected("cause") == Some("disabled");
            // The recorded failure answers its own subcommand; nothing else is loaded,
            // and the label is disabled when that was the recorded cause.
            let listing = if disabled {
                r#"\n\tdisabled services = {\n\t\t"x" => disabled\n\t}\n"#
            } else {
                r"\n\tdisabled services = {\n\t}\n"
            };
            let fake = Fake::new(&format!(
                "case \"$1\" in {}) printf '%s' '{text}' >&2; exit {};;\n\
                 print) exit 113;; print-disabled) printf '{listing}';; esac",
                sample.subcommand(),
                sample.exit
            ));
            let driver = fake.driver();
            let name = &sample.name;
            match (sample.subcommand(), sample.exit) {
                ("print", 113) => assert_eq!(driver.print("x").unwrap(), None, "{name}"),
                ("kickstart", 113) => assert_eq!(
                    driver.kickstart("x", true).unwrap(),
                    Kickstart::NotLoaded,
                    "{name}"
                ),
                ("bootout", 3) => {
                    assert_eq!(driver.bootout("x").unwrap(), Bootout::NotLoaded, "{name}")
                }
                // Still stopping: waited out until print no longer finds it.
                ("bootout", 36) => {
                    assert_eq!(driver.bootout("x").unwrap(), Bootout::Stopped, "{name}")
                }
                // Refused: an error that says what launchctl could not do and shows
                // launchctl's own words.
                ("enable", _) => {
                    let err = driver.enable("x").unwrap_err().to_string();
                    assert!(err.contains("could not enable x"), "{name}: {err}");
                    let recorded = sample.output.trim();
                    assert!(err.contains(recorded), "{name}: {err}");
                }
                // By path (2: no file, 5 or 113: not loaded): the driver never boots out
                // by path; the emulator's answers to these are checked against them.
                ("bootout", 2 | 5 | 113) if sample.command.ends_with(".plist") => {}
                // Refused for good (the fake answers the same every time, and print
                // finds no job): after the retries, the cause is read from the state.
                ("bootstrap", code) => {
                    let dir = tempfile::tempdir().unwrap();
                    let err = driver
                        .bootstrap("x", &dir.path().join("x.plist"))
                        .unwrap_err();
                    let (cause, words) = if disabled {
                        (
                            BootstrapCause::Disabled,
                            "disabled by a persistent override",
                        )
                    } else {
                        (BootstrapCause::Missing, "does not exist")
                    };
                    assert!(err.to_string().contains(words), "{name}: {err}");
                    assert!(
                        matches!(
                            err.into_manager(),
                            ManagerError::BootstrapRefused {
                                code: Some(c),
                                cause: ref got,
                                ..
                            } if c == code && *got == cause
                        ),
                        "{name}"
                    );
                }
                // Another refusal of a start or a stop by label (kickstart refused with
                // 1 on macOS 14.4, a bootout without root refused with 1): the state
                // decides. Not loaded is what a start wants to know and where a stop
                // wanted to be; loaded, the refusal is reported in launchctl's words.
                (verb @ ("kickstart" | "bootout"), _) if !sample.command.ends_with(".plist") => {
                    let act = |driver: &Launchctl| match verb {
                        "kickstart" => driver
                            .kickstart("x", true)
                            .map(|k| k == Kickstart::NotLoaded),
                        _ => driver.bootout("x").map(|b| b == Bootout::NotLoaded),
                    };
                    assert!(act(&driver).unwrap(), "{name}");
                    let loaded = Fake::new(&format!(
                        "case \"$1\" in {verb}) printf '%s' '{text}' >&2; exit {};;\n\
                         print) printf 'system/x = {{\\n\\tstate = running\\n\\tpid = 5\\n}}\\n';; esac",
                        sample.exit
                    ));
                    let err = act(&loaded.driver()).unwrap_err().to_string();
                    assert!(err.contains(sample.output.trim()), "{name}: {err}");
                }
                other => panic!("{name}: no decision tested for {other:?}"),
            }
        }
    }

    #[test]
    fn every_form_of_last_exit() {
        let with = |line: &str| {
            parse_print(&format!(
                "system/x = {{\n\tstate = not running\n\t{line}\n}}\n"
            ))
        };
        assert_eq!(
            with("last exit code = 1").last_exit,
            Some(LastExit::Code {
                code: 1,
                name: None
            })
        );
        assert_eq!(
            with("last exit code = 78: EX_CONFIG").last_exit,
            Some(LastExit::Code {
                code: 78,
                name: Some("EX_CONFIG".into())
            })
        );
        let killed = with("last terminating signal = Killed: 9");
        assert_eq!(
            killed.last_exit,
            Some(LastExit::Signal {
                number: Some(9),
                description: "Killed".into()
            })
        );
        assert_eq!(
            killed.last_exit.as_ref().unwrap().to_string(),
            "killed by signal 9 (Killed)"
        );
        assert_eq!(
            killed.last_exit.unwrap().how_it_ended(),
            "was killed by signal 9 (Killed)"
        );
        let refused = with("last exit reason = OS_REASON_CODESIGNING");
        assert_eq!(
            refused.last_exit.unwrap().how_it_ended(),
            "was ended by the system (OS_REASON_CODESIGNING)"
        );
        assert_eq!(
            with("last exit code = 78: EX_CONFIG")
                .last_exit
                .unwrap()
                .how_it_ended(),
            "ended with exit status 78 (EX_CONFIG)"
        );
        assert_eq!(
            with("last exit code = (never exited)").last_exit,
            Some(LastExit::Never)
        );
        assert_eq!(
            with("last exit code = something new").last_exit,
            Some(LastExit::Other {
                text: "something new".into()
            })
        );
        // Numbers in other forms: negative (as `launchctl list` prints a signal), hex,
        // or followed by a remark; words are kept as they are, not taken for a number.
        assert_eq!(
            with("last exit code = -9").last_exit,
            Some(LastExit::Code {
                code: -9,
                name: None
            })
        );
        assert_eq!(
            with("last exit code = 0x4e: EX_CONFIG").last_exit,
            Some(LastExit::Code {
                code: 78,
                name: Some("EX_CONFIG".into())
            })
        );
        assert_eq!(
            with("last exit code = 1 maybe").last_exit,
            Some(LastExit::Other {
                text: "1 maybe".into()
            })
        );
        let odd = with("pid = 0x10\n\truns = 3 (spawned)\n\tlast terminating signal = Killed");
        assert_eq!((odd.pid, odd.runs), (Some(16), Some(3)));
        assert_eq!(
            odd.last_exit,
            Some(LastExit::Signal {
                number: None,
                description: "Killed".into()
            })
        );
        assert!(odd.last_exit.unwrap().is_end());
        assert_eq!(with("pid = 0").pid, None);
        let job = with("last exit code = 0");
        assert_eq!(job.state, Some(JobState::NotRunning));
        assert_eq!(job.pid, None);
        assert!(!job.is_running());
    }

    /// What a later release may print inside the job's block that no recording has
    /// yet: a list over several lines (`[` ... `]`) whose members look like properties,
    /// and a block opened with `=> {`. Lines deeper than the job's own are never the
    /// job's.
    #[test]
    fn deeper_lines_outside_a_known_block_are_not_the_jobs() {
        let job = parse_print(
            "system/x = {\n\tstate = running\n\tnew list = [\n\t\tstate = bogus\n\t\tpid = 3\n\t]\n\
             \tnew map => {\n\t\truns = 99\n\t}\n\tpid = 42\n\truns = 2\n\tlast exit code = (never exited)\n}\n",
        );
        assert_eq!(job.state, Some(JobState::Running));
        assert_eq!((job.pid, job.runs), (Some(42), Some(2)));
        assert_eq!(job.last_exit, Some(LastExit::Never));
    }

    #[test]
    fn the_loaded_path_is_compared_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        std::fs::write(real.join("x.plist"), b"").unwrap();
        let job = parse_print(&format!(
            "system/x = {{\n\tpath = {}\n\tstate = running\n}}\n",
            real.join("x.plist").display()
        ));
        assert!(job.is_loaded_from(&dir.path().join("link/x.plist")));
        assert!(job.is_loaded_from(&real.join("x.plist")));
        assert!(!job.is_loaded_from(&real.join("y.plist")));
    }

    #[test]
    fn unknown_states_are_kept() {
        for (word, expected) in [
            ("spawn scheduled", JobState::SpawnScheduled),
            ("waiting", JobState::Waiting),
            ("exited", JobState::Other("exited".into())),
        ] {
            let job = parse_print(&format!("system/x = {{\n\tstate = {word}\n}}\n"));
            assert_eq!(job.state, Some(expected));
        }
        let stopping = parse_print("system/x = {\n\tstate = SIGTERMed\n\tpid = 5\n}\n");
        assert!(stopping.is_stopping());
        assert!(!stopping.is_running());
    }

    /// A fake launchctl: a shell script answering from files in a directory, so the
    /// driver's decisions can be tested without launchd.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new(script: &str) -> Fake {
            let dir = tempfile::tempdir().unwrap();
            let text = dir.path().join("launchctl.sh");
            std::fs::write(&text, format!("#!/bin/sh\n{script}\n")).unwrap();
            // Written by another process: a file this one has open for writing can be
            // inherited by a child another test forks at that moment, and executing it
            // then fails with ETXTBSY ("Text file busy").
            let installed = std::process::Command::new("install")
                .args(["-m", "755"])
                .arg(&text)
                .arg(dir.path().join("launchctl"))
                .status()
                .unwrap();
            assert!(installed.success());
            Fake { dir }
        }

        fn driver(&self) -> Launchctl {
            Launchctl {
                runner: Runner::new(false),
                program: self.dir.path().join("launchctl").display().to_string(),
                stop_timeout: Duration::from_secs(5),
                retry_pause: Duration::from_millis(10),
                settle_timeout: Duration::from_secs(2),
            }
        }

        fn log(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        }
    }

    /// A job file in which instancectl finds no cause for a refusal when the tests run
    /// as root (a valid plist, the label asked for, mode 0644); run as another user,
    /// its owner is the cause. Returns the file and whether it is clean.
    fn clean_plist(dir: &Path, label: &str) -> (PathBuf, bool) {
        let path = dir.join(format!("{label}.plist"));
        std::fs::write(
            &path,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
                 <key>Label</key><string>{label}</string><key>ProgramArguments</key>\
                 <array><string>/bin/true</string></array></dict></plist>\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        (path, nix::unistd::geteuid().is_root())
    }

    /// A fake launchctl that answers a bootstrap with a recorded refusal `refusals`
    /// times, then loads the job; print finds nothing until then, and no override is
    /// listed.
    fn refusing_fake(sample: &launchd_emulator::corpus::Sample, refusals: u32) -> Fake {
        let words = sample.output.replace('\'', "'\\''");
        Fake::new(&format!(
            r#"d=$(dirname "$0"); echo "$*" >> "$d/log"
case "$1" in
print) if [ -e "$d/sigtermed" ] && [ ! -e "$d/looked" ]; then touch "$d/looked"; cat "$d/sigtermed"; exit 0; fi
       if [ -e "$d/loaded" ]; then printf 'system/x = {{\n\tstate = running\n}}\n'; exit 0; fi
       printf 'Could not find service "x" in domain for system\n' >&2; exit 113;;
print-disabled) printf '\n\tdisabled services = {{\n\t}}\n';;
bootstrap) n=$(cat "$d/tries" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/tries"
           if [ $n -le {refusals} ]; then printf '%s' '{words}' >&2; exit {code}; fi
           touch "$d/loaded";;
esac"#,
            code = sample.exit
        ))
    }

    #[test]
    fn bootstrap_enables_first_and_names_a_disabled_label() {
        // launchd refuses with 5 because the override stays disabled whatever we do.
        let fake = Fake::new(
            r#"d=$(dirname "$0"); echo "$*" >> "$d/log"
case "$1" in
print) echo "Could not find service \"${2#system/}\" in domain for system" >&2; exit 113;;
kill) echo "Could not find service \"${3#system/}\" in domain for system" >&2; exit 113;;
print-disabled) printf 'disabled services = {\n\t"org.postfix.postfix-in" => disabled\n}\n';;
enable) ;;
bootstrap) echo "Bootstrap failed: 5: Input/output error" >&2; exit 5;;
esac"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let plist = dir.path().join("org.postfix.postfix-in.plist");
        std::fs::write(&plist, b"x").unwrap();
        let driver = fake.driver();
        let err = driver
            .bootstrap("org.postfix.postfix-in", &plist)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("disabled by a persistent override"), "{text}");
        assert!(text.contains("Bootstrap failed: 5"), "{text}");
        assert!(matches!(
            err.into_manager(),
            ManagerError::BootstrapRefused {
                code: Some(5),
                cause: BootstrapCause::Disabled,
                ..
            }
        ));
        // Signalling a label launchd does not know (113) says so, not "command failed".
        assert!(matches!(
            driver.kill("SIGHUP", "org.postfix.postfix-in").unwrap_err().into_manager(),
            ManagerError::NotLoaded { label } if label == "org.postfix.postfix-in"
        ));
        let log = fake.log();
        let enable = log.find("enable system/org.postfix.postfix-in").unwrap();
        let bootstrap = log.find("bootstrap system").unwrap();
        assert!(enable < bootstrap, "{log}");
    }

    /// An override in a word no recorded release prints (a later one's) is not taken
    /// for enabled: the label is enabled before the bootstrap, and a refusal names the
    /// override as printed instead of "none of the known causes".
    #[test]
    fn an_override_in_an_unknown_word_is_enabled_first_and_named() {
        let fake = Fake::new(
            r#"d=$(dirname "$0"); echo "$*" >> "$d/log"
case "$1" in
print) exit 113;;
print-disabled) printf '\n\tdisabled services = {\n\t\t"x" => disabled (user)\n\t}\n';;
bootstrap) echo "Bootstrap failed: 5: Input/output error" >&2; exit 5;;
esac"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let plist = dir.path().join("x.plist");
        std::fs::write(&plist, b"x").unwrap();
        let err = fake.driver().bootstrap("x", &plist).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("override instancectl cannot read"), "{text}");
        assert!(text.contains("disabled (user)"), "{text}");
        let log = fake.log();
        assert!(
            log.find("enable system/x").unwrap() < log.find("bootstrap system").unwrap(),
            "{log}"
        );
        assert!(may_block_loading(Some(&Override::Disabled)));
        assert!(!may_block_loading(Some(&Override::Enabled)));
        assert!(!may_block_loading(None));
    }

    #[test]
    fn bootstrap_refusal_for_a_bad_file_is_named() {
        let fake = Fake::new(
            r#"case "$1" in
print) exit 113;;
print-disabled) printf 'disabled services = {\n}\n';;
bootstrap) echo "Bootstrap failed: 5: Input/output error" >&2; exit 5;;
esac"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let plist = dir.path().join("org.postfix.postfix-in.plist");
        std::fs::write(
            &plist,
            b"<plist version=\"1.0\"><dict><key>Label</key><string>org.postfix.postfix-in</string>\
              <key>RunAtLoad</key></dict></plist>",
        )
        .unwrap();
        std::fs::set_permissions(&plist, std::os::unix::fs::PermissionsExt::from_mode(0o664))
            .unwrap();
        let driver = fake.driver();
        let cause = driver.diagnose("org.postfix.postfix-in", &plist).unwrap();
        if nix::unistd::geteuid().is_root() {
            // Owned by root: the group-write bit is what launchd refuses first.
            let BootstrapCause::Ownership(problems) = cause else {
                panic!("{cause:?}")
            };
            assert!(problems[0].message.contains("mode 0664 lets group write"));
            std::fs::set_permissions(&plist, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
            let cause = driver.diagnose("org.postfix.postfix-in", &plist).unwrap();
            let BootstrapCause::InvalidPlist(errors) = cause else {
                panic!("{cause:?}")
            };
            assert!(errors[0].message.contains("RunAtLoad"));
        } else {
            assert!(matches!(cause, BootstrapCause::Ownership(_)));
        }
        let missing = driver
            .diagnose("org.postfix.postfix-in", &dir.path().join("nope.plist"))
            .unwrap();
        assert_eq!(missing, BootstrapCause::Missing);
    }

    #[test]
    fn bootout_knows_3_and_waits_out_36() {
        let fake = Fake::new(
            r#"d=$(dirname "$0")
case "$1" in
bootout) if [ -e "$d/loaded" ]; then echo "Boot-out failed: 36: Operation now in progress" >&2; exit 36; fi
         echo "Boot-out failed: 3: No such process" >&2; exit 3;;
print) if [ -e "$d/loaded" ]; then n=$(cat "$d/polls" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/polls"
         if [ $n -ge 3 ]; then rm "$d/loaded"; fi
         printf 'system/x = {\n\tstate = SIGTERMed\n}\n'; exit 0; fi
       exit 113;;
esac"#,
        );
        let driver = fake.driver();
        assert_eq!(driver.bootout("x").unwrap(), Bootout::NotLoaded);
        std::fs::write(fake.dir.path().join("loaded"), b"").unwrap();
        assert_eq!(driver.bootout("x").unwrap(), Bootout::Stopped);
        assert!(!fake.dir.path().join("loaded").exists());
        assert_eq!(driver.kickstart("x", false).unwrap(), Kickstart::Started);
    }

    #[test]
    fn a_bootstrap_refused_with_37_while_sigtermed_is_retried_once_the_job_is_gone() {
        // macOS 13 and later: bootout returned at once, the job is still SIGTERMed, and
        // launchd answers a bootstrap in that window with 37.
        let fake = Fake::new(
            r#"d=$(dirname "$0"); echo "$*" >> "$d/log"
case "$1" in
print) n=$(cat "$d/polls" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/polls"
       if [ $n -le 3 ]; then printf 'system/x = {\n\tstate = SIGTERMed\n\tpid = 7\n}\n'; exit 0; fi
       if [ -e "$d/loaded" ]; then printf 'system/x = {\n\tstate = running\n}\n'; exit 0; fi
       printf 'Bad request.\nCould not find service "x" in domain for system\n' >&2; exit 113;;
print-disabled) printf '\n\tdisabled services = {\n\t}\n';;
bootstrap) if [ ! -e "$d/refused" ]; then touch "$d/refused"
             echo "Bootstrap failed: 37: Operation already in progress" >&2; exit 37; fi
           touch "$d/loaded";;
esac"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let plist = dir.path().join("x.plist");
        std::fs::write(&plist, b"x").unwrap();
        // The driver waits out SIGTERMed first; launchd still refuses once with 37.
        let driver = fake.driver();
        assert_eq!(driver.bootstrap("x", &plist).unwrap(), Bootstrap::Loaded);
        assert_eq!(
            fake.log().matches("bootstrap system").count(),
            2,
            "{}",
            fake.log()
        );
    }

    /// The sequence recorded on macOS 26 (kxn/codex-remote-feishu #914 and #916 on
    /// 26.5.2, bilbo's smoke test of 2026-10): after a bootout the job shows
    /// `SIGTERMed` with its pid, a bootstrap in that window is refused with 5 (not 37),
    /// and the same bootstrap succeeds once print no longer finds the job. When the job
    /// is already gone by the time the driver looks after the refusal, the refusal was
    /// that window closing: the driver tries again instead of reporting "none of the
    /// known causes applies" (or blaming the file).
    #[test]
    fn a_bootstrap_refused_with_5_in_the_sigtermed_window_is_retried_once_the_job_is_gone() {
        let corpus = launchd_emulator::corpus::load();
        let recorded = |name: &str| corpus.iter().find(|s| s.name == name).unwrap();
        let fake = refusing_fake(
            recorded("error-bootstrap-5-sigtermed-window-codex-remote-914.sample"),
            1,
        );
        std::fs::write(
            fake.dir.path().join("sigtermed"),
            &recorded("print-filtered-sigtermed-pid-bilbo.sample").output,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (plist, clean) = clean_plist(dir.path(), "x");
        let result = fake.driver().bootstrap("x", &plist);
        if !clean {
            let err = result.unwrap_err().to_string();
            return assert!(err.contains("not root"), "{err}");
        }
        assert_eq!(result.unwrap(), Bootstrap::Loaded, "{}", fake.log());
        assert_eq!(fake.log().matches("bootstrap system").count(), 2);
    }

    /// Bootstraps a clean plist against a fake that refuses it `refusals` times with
    /// the recorded `sample`: how many bootstraps it took to load, or None when the
    /// tests do not run as root (then the file's owner is the cause, and it fails).
    fn tries_until_loaded(sample: &str, refusals: u32) -> Option<usize> {
        let corpus = launchd_emulator::corpus::load();
        let refusal = corpus.iter().find(|s| s.name == sample).unwrap();
        let fake = refusing_fake(refusal, refusals);
        let dir = tempfile::tempdir().unwrap();
        let (plist, clean) = clean_plist(dir.path(), "x");
        let result = fake.driver().bootstrap("x", &plist);
        if !clean {
            assert!(result.is_err());
            return None;
        }
        assert_eq!(result.unwrap(), Bootstrap::Loaded, "{}", fake.log());
        Some(fake.log().matches("bootstrap system").count())
    }

    /// headroomlabs-ai/headroom #1289, macOS 26.5.1: after a bootout, launchd refused
    /// ten bootstraps in a row with 5 over about 5 s, while nothing was loaded under
    /// the label, and took the eleventh. A file with no fault in it is tried again
    /// with growing pauses until launchd takes it.
    #[test]
    fn a_bootstrap_refused_for_seconds_after_a_bootout_is_tried_until_launchd_takes_it() {
        if let Some(tries) =
            tries_until_loaded("error-bootstrap-5-settle-window-headroom-1289.sample", 6)
        {
            assert_eq!(tries, 7);
        }
    }

    /// 37 (launchd busy with the label, recorded on 13.4) with nothing loaded is tried
    /// again at once a few times and then, should launchd still be busy, with pauses
    /// until the settle time is over, like a 5 (it used to be reported after the
    /// third try as a refusal no known cause explains).
    #[test]
    fn a_bootstrap_refused_with_37_past_the_quick_retries_waits_like_any_refusal() {
        if let Some(tries) = tries_until_loaded(
            "error-bootstrap-37-homebrew-core-132781.sample",
            BOOTSTRAP_ATTEMPTS + 2,
        ) {
            assert_eq!(tries as u32, BOOTSTRAP_ATTEMPTS + 3);
        }
    }

    /// A refusal that does not end is reported once the settle time is over, with
    /// launchctl's words and the causes that were ruled out; a refusal whose cause
    /// the file shows is reported at once, without waiting.
    #[test]
    fn a_bootstrap_refused_for_good_is_reported_after_the_settle_time_or_at_once() {
        let corpus = launchd_emulator::corpus::load();
        let refusal = corpus
            .iter()
            .find(|s| s.name == "error-bootstrap-5-settle-window-headroom-1289.sample")
            .unwrap();
        let fake = refusing_fake(refusal, u32::MAX);
        let driver = fake.driver();
        let dir = tempfile::tempdir().unwrap();
        let (plist, clean) = clean_plist(dir.path(), "x");
        let started = Instant::now();
        let err = driver.bootstrap("x", &plist).unwrap_err();
        let took = started.elapsed();
        let text = err.to_string();
        assert!(text.contains("Bootstrap failed: 5"), "{text}");
        if clean {
            assert!(text.contains("none of the known causes"), "{text}");
            assert!(took >= driver.settle_timeout, "{took:?}");
            assert!(took < driver.settle_timeout * 3, "{took:?}");
            assert!(fake.log().matches("bootstrap system").count() > 2);
        }
        // A missing file is a cause: one bootstrap, no wait.
        let before = fake.log().matches("bootstrap system").count();
        let started = Instant::now();
        let err = driver
            .bootstrap("x", &dir.path().join("gone.plist"))
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(started.elapsed() < driver.settle_timeout);
        assert_eq!(fake.log().matches("bootstrap system").count(), before + 1);
    }

    /// A daemon's plist limited to user sessions (an agent's copied into
    /// LaunchDaemons, or an edited one) is refused by launchd for good: the refusal is
    /// reported at once with that cause, not after the settle time as an unknown one.
    #[test]
    fn a_bootstrap_refused_for_a_plist_limited_to_user_sessions_says_so_at_once() {
        let corpus = launchd_emulator::corpus::load();
        let refusal = corpus
            .iter()
            .find(|s| s.name == "error-bootstrap-5-settle-window-headroom-1289.sample")
            .unwrap();
        let fake = refusing_fake(refusal, u32::MAX);
        let driver = fake.driver();
        let dir = tempfile::tempdir().unwrap();
        let (plist, clean) = clean_plist(dir.path(), "x");
        if !clean {
            return;
        }
        let text = std::fs::read_to_string(&plist).unwrap().replace(
            "</dict>",
            "<key>LimitLoadToSessionType</key><string>Aqua</string></dict>",
        );
        std::fs::write(&plist, text).unwrap();
        let started = Instant::now();
        let err = driver.bootstrap("x", &plist).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("LimitLoadToSessionType is Aqua"), "{text}");
        assert!(!text.contains("none of the known causes"), "{text}");
        assert!(started.elapsed() < driver.settle_timeout);
        assert_eq!(fake.log().matches("bootstrap system").count(), 1);
    }

    /// macOS 26 refuses a bootstrap in the `SIGTERMed` window with 5 and then for
    /// seconds after the job is gone (codex-remote-feishu #914, headroom #1289). When
    /// the old job takes longer than the settle time to stop (a master that ignores
    /// SIGTERM is killed only after ExitTimeOut, 30 s), those refusals still come after
    /// it: the settle time counts from the end of the wait, not from the first try.
    #[test]
    fn the_settle_after_a_long_sigtermed_window_counts_from_its_end() {
        let corpus = launchd_emulator::corpus::load();
        let recorded = |name: &str| corpus.iter().find(|s| s.name == name).unwrap();
        let refusal = recorded("error-bootstrap-5-sigtermed-window-codex-remote-914.sample");
        let sigtermed = recorded("print-filtered-sigtermed-pid-bilbo.sample");
        // Nothing loaded when the driver first looks; a bootout (someone else's) begins
        // as the first bootstrap reaches launchd, which refuses it. The old job then
        // shows SIGTERMed for longer than the settle time (print is polled every
        // 100 ms), and once it is gone two more bootstraps are refused before one loads.
        let driver_settle = Duration::from_secs(2);
        let polls = driver_settle.as_millis() / 100 + 10;
        let fake = Fake::new(&format!(
            r#"d=$(dirname "$0"); echo "$*" >> "$d/log"
case "$1" in
print) if [ -e "$d/stopping" ]; then n=$(cat "$d/looks" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/looks"
         if [ $n -le {polls} ]; then printf '%s' '{sigtermed}'; exit 0; fi; fi
       if [ -e "$d/loaded" ]; then printf 'system/x = {{\n\tstate = running\n}}\n'; exit 0; fi
       printf 'Could not find service "x" in domain for system\n' >&2; exit 113;;
print-disabled) printf '\n\tdisabled services = {{\n\t}}\n';;
bootstrap) n=$(cat "$d/tries" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/tries"
           touch "$d/stopping"
           if [ $n -le 3 ]; then printf '%s' '{words}' >&2; exit {code}; fi
           touch "$d/loaded";;
esac"#,
            sigtermed = sigtermed.output,
            words = refusal.output,
            code = refusal.exit,
        ));
        let driver = fake.driver();
        assert_eq!(driver.settle_timeout, driver_settle);
        let dir = tempfile::tempdir().unwrap();
        let (plist, clean) = clean_plist(dir.path(), "x");
        let result = driver.bootstrap("x", &plist);
        if !clean {
            return assert!(result.is_err());
        }
        assert_eq!(result.unwrap(), Bootstrap::Loaded, "{}", fake.log());
        assert_eq!(fake.log().matches("bootstrap system").count(), 4);
    }

    /// `kickstart -k` shows the same `SIGTERMed` state as a bootout, but the job stays
    /// in the domain and runs again: a bootstrap that meets it waits for the stop to be
    /// over and finds the job loaded from its file, instead of waiting for an unload
    /// that never comes (and failing after the stop timeout).
    #[test]
    fn a_bootstrap_during_a_kickstart_k_finds_the_job_running_again() {
        let dir = tempfile::tempdir().unwrap();
        let plist = dir.path().join("x.plist");
        std::fs::write(&plist, b"x").unwrap();
        let fake = Fake::new(&format!(
            r#"d=$(dirname "$0"); echo "$*" >> "$d/log"
case "$1" in
print) n=$(cat "$d/polls" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/polls"
       if [ $n -le 3 ]; then printf 'system/x = {{\n\tpath = {p}\n\tstate = SIGTERMed\n\tpid = 7\n}}\n'; exit 0; fi
       printf 'system/x = {{\n\tpath = {p}\n\tstate = running\n\tpid = 8\n}}\n';;
esac"#,
            p = plist.display()
        ));
        let started = Instant::now();
        assert_eq!(
            fake.driver().bootstrap("x", &plist).unwrap(),
            Bootstrap::AlreadyLoaded
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert!(!fake.log().contains("bootstrap"), "{}", fake.log());
        // The job as it is once the stop is over.
        std::fs::remove_file(fake.dir.path().join("polls")).unwrap();
        let after = fake.driver().wait_stopped("x").unwrap().unwrap();
        assert!(after.is_running() && after.pid == Some(8), "{after:?}");
    }

    /// A loaded job whose `print` names no file (a paste, a release that leaves `path`
    /// out) is not taken for this instance's, and the message does not name an empty
    /// path.
    #[test]
    fn a_label_loaded_from_an_unnamed_file_is_named_as_such() {
        let fake = Fake::new(
            r#"case "$1" in print) printf 'system/x = {\n\tstate = running\n\tpid = 7\n}\n';; esac"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let err = fake
            .driver()
            .bootstrap("x", &dir.path().join("x.plist"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not say from which file"), "{err}");
        assert!(!err.contains("loaded from ;"), "{err}");
    }

    /// `state = xpcproxy` is a spawn under way, as recorded on macOS 15 and 26: not
    /// running yet, not ended, and not stopping.
    #[test]
    fn a_recorded_xpcproxy_state_is_a_spawn() {
        let samples: Vec<_> = launchd_emulator::corpus::load()
            .into_iter()
            .filter(|s| s.expected("state") == Some("xpcproxy"))
            .collect();
        assert!(samples.len() >= 2);
        for sample in samples {
            let job = parse_print(&sample.output);
            assert!(job.is_spawning(), "{}", sample.name);
            assert!(!job.is_running() && !job.has_ended() && !job.is_stopping());
        }
        let running = parse_print("system/x = {\n\tstate = running\n\tpid = 5\n}\n");
        assert!(!running.is_spawning());
    }

    /// An exit status the driver has no rule for (5, as bootout by path answers for a
    /// job that is not loaded) is judged by the state: not loaded is what bootout
    /// wanted; loaded means it really failed.
    #[test]
    fn an_unknown_status_is_judged_by_the_state() {
        let fake = Fake::new(
            r#"d=$(dirname "$0")
case "$1" in
bootout|kickstart) echo "Boot-out failed: 5: Input/output error" >&2; exit 5;;
print) if [ -e "$d/loaded" ]; then printf 'system/x = {\n\tstate = running\n\tpid = 7\n}\n'; exit 0; fi
       exit 113;;
esac"#,
        );
        let driver = fake.driver();
        assert_eq!(driver.bootout("x").unwrap(), Bootout::NotLoaded);
        assert_eq!(driver.kickstart("x", true).unwrap(), Kickstart::NotLoaded);
        std::fs::write(fake.dir.path().join("loaded"), b"").unwrap();
        let err = driver.bootout("x").unwrap_err().to_string();
        assert!(err.contains("Boot-out failed: 5"), "{err}");
        assert!(driver.kickstart("x", false).is_err());
    }

    #[test]
    fn kickstart_of_an_unloaded_label_says_so() {
        let fake =
            Fake::new(r#"echo "Could not find service \"x\" in domain for system" >&2; exit 113"#);
        assert_eq!(
            fake.driver().kickstart("x", true).unwrap(),
            Kickstart::NotLoaded
        );
        assert_eq!(fake.driver().print("x").unwrap(), None);
        assert!(fake.driver().kill("HUP", "x").is_err());
    }

    #[test]
    fn dry_run_prints_changes_only() {
        let fake = Fake::new(r#"echo "$*" >> "$(dirname "$0")/log"; exit 113"#);
        let mut driver = fake.driver();
        driver.runner = Runner::new(true);
        driver.enable("x").unwrap();
        driver.bootout("x").unwrap();
        assert_eq!(fake.log(), "");
    }
}

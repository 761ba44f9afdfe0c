//! `instancectl plist --check`: what is wrong with a LaunchDaemon (or LaunchAgent)
//! plist, above all one that runs Postfix, each problem with its fix.
//!
//! It reads the file with the strict reader (so a key without a value is an error, as it
//! is for launchd) and then judges what the job would do: whether every key is one
//! launchd knows, with a value of the shape it takes (launchd silently skips the
//! others), what launchd really executes (Program wins over ProgramArguments[0], and no
//! shell splits, expands or unquotes anything), whether that program daemonizes
//! (`postfix start`, `postmulti -p start`, `master -w`), whether the instance it names is
//! one postmulti knows, whether a boot daemon starts at load and is kept alive, and, for
//! installed files, whether launchd would accept the owner and mode, load the job in
//! its session, and find its Label unused by another file.
//!
//! Only a job that runs a Postfix master is held to the master's rules (started at
//! load, kept alive, run as root): Apple's newaliases and postfixsetup jobs, one-shot
//! (LaunchOnlyOnce) jobs and other daemons are judged on what launchd itself refuses or
//! ignores. tests/data/plists holds real plists from Apple, admins, package managers and
//! third parties with the findings each must give, so that a rule that alarms on a
//! working plist, or misses a broken one, fails a test.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ::plist::{Dictionary, Value};

use super::strict;
use crate::postfix::Version;
use crate::postfix::postmulti::Listed;

/// The fix for every command that does not keep the master in the foreground.
const RUN_IN_FOREGROUND: &str = "run the master in the foreground: ProgramArguments = \
     [<daemon_directory>/master, -c, <config_directory>] (what `instancectl plist NAME` writes)";

/// `postfix start-fg` exists since Postfix 3.3 (macOS ships 3.2).
const START_FG_SINCE: Version = Version(3, 3, 0);

/// What kind of problem, printed as `error[KIND]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not a valid property list (launchd refuses the file).
    Syntax,
    /// A key launchd needs is missing or has the wrong type.
    Key,
    /// Program and ProgramArguments[0] name different programs.
    ProgramMismatch,
    /// The program forks into the background and exits.
    Daemonizes,
    /// A command that does not run a master at all, or that the master refuses.
    WrongCommand,
    /// An instance name or configuration directory postmulti does not know.
    UnknownInstance,
    /// Label differs from the file name.
    Label,
    /// A boot daemon that does not start at load or is not kept alive.
    NotKeptAlive,
    /// Owner or mode launchd refuses.
    Ownership,
    /// `Disabled` is true: whether the job loads depends on launchctl's overrides.
    Disabled,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Syntax => "syntax",
            Kind::Key => "key",
            Kind::ProgramMismatch => "program-mismatch",
            Kind::Daemonizes => "daemonizes",
            Kind::WrongCommand => "command",
            Kind::UnknownInstance => "unknown-instance",
            Kind::Label => "label",
            Kind::NotKeptAlive => "keepalive",
            Kind::Ownership => "ownership",
            Kind::Disabled => "disabled",
        }
    }
}

/// One problem and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: Kind,
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
}

/// What the lint knows about the host.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// postmulti's instance list, when Postfix is installed here.
    pub instances: Option<Vec<Listed>>,
    /// The daemons directory in use (owner and mode are checked for files in it).
    pub daemons_dir: PathBuf,
    /// The gid of the wheel group, when the host has one. launchd accepts any group (it
    /// checks the owner and the write bits); another group is only noted.
    pub wheel_gid: Option<u32>,
    /// The host's Postfix version, when Postfix is installed here.
    pub version: Option<Version>,
}

/// The result of checking one file.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    /// What launchd refuses or what breaks the job (exit status 1).
    pub problems: Vec<Problem>,
    /// What works but may not do what its author expects.
    pub warnings: Vec<Problem>,
    /// Said about the file without being a problem (e.g. owner not checked).
    pub notes: Vec<String>,
}

impl Report {
    /// The report as printed: `FILE:LINE: error[kind]: message` (or `warning[kind]`)
    /// and an indented fix, in file order.
    pub fn render(&self) -> String {
        let file = self.path.display();
        let mut out = String::new();
        let mut findings: Vec<(&str, &Problem)> = self
            .problems
            .iter()
            .map(|p| ("error", p))
            .chain(self.warnings.iter().map(|p| ("warning", p)))
            .collect();
        findings.sort_by_key(|(_, p)| p.line.unwrap_or(usize::MAX));
        for (severity, p) in findings {
            match p.line {
                Some(line) => out.push_str(&format!("{file}:{line}: ")),
                None => out.push_str(&format!("{file}: ")),
            }
            out.push_str(&format!(
                "{severity}[{}]: {}\n    fix: {}\n",
                p.kind.code(),
                p.message,
                p.fix
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("{file}: note: {n}\n"));
        }
        let count = |n: usize, what: &str| match n {
            1 => format!("1 {what}"),
            n => format!("{n} {what}s"),
        };
        match (self.problems.len(), self.warnings.len()) {
            (0, 0) => out.push_str(&format!("{file}: no problems found\n")),
            (p, 0) => out.push_str(&format!("{file}: {}\n", count(p, "problem"))),
            (p, w) => out.push_str(&format!(
                "{file}: {}, {}\n",
                count(p, "problem"),
                count(w, "warning")
            )),
        }
        out
    }
}

/// Checks the file at `path`. Owner, mode and whether postmulti knows the instance are
/// facts of this host, so they are checked only for a file installed in the daemons
/// directory; a file elsewhere is judged on its contents.
pub fn check_file(path: &Path, ctx: &Context) -> std::io::Result<Report> {
    let bytes = std::fs::read(path)?;
    let meta = std::fs::metadata(path)?;
    let installed = in_daemons_dir(path, &ctx.daemons_dir);
    let local = Context {
        instances: ctx.instances.clone().filter(|_| installed),
        version: ctx.version.filter(|_| installed),
        ..ctx.clone()
    };
    let mut report = check_bytes(&bytes, path, &local);
    if installed {
        report
            .problems
            .extend(ownership(path, meta.uid(), meta.mode()));
        report.problems.extend(same_label_elsewhere(path, &bytes));
        report.problems.extend(not_for_the_system_session(&bytes));
        if meta.gid() != 0 && Some(meta.gid()) != ctx.wheel_gid {
            report.notes.push(format!(
                "group is gid {}, not wheel; launchd accepts it (it checks the owner and the \
                 group and other write bits only), as it does for `sudo brew services`' \
                 root:admin files",
                meta.gid()
            ));
        }
    } else if let Some(agents) = agents_dir(path) {
        // A LaunchAgent is loaded by its user: launchd wants it owned by that user (the
        // owner of the LaunchAgents directory) or by root, and written by no one else.
        let dir_owner = std::fs::metadata(&agents).map(|m| m.uid()).ok();
        if meta.uid() != 0 && Some(meta.uid()) != dir_owner {
            report.problems.push(Problem {
                kind: Kind::Ownership,
                line: None,
                message: format!(
                    "owned by uid {}, neither root nor the owner of {}: launchd refuses it \
                     (\"bad ownership/permissions\")",
                    meta.uid(),
                    agents.display()
                ),
                fix: format!("chown {} {}", dir_owner.unwrap_or(0), path.display()),
            });
        }
        report.problems.extend(write_bits(path, meta.mode()));
        report.problems.extend(same_label_elsewhere(path, &bytes));
    } else {
        report.notes.push(format!(
            "not installed in {}, so its owner, its mode and the instances it names were \
             not checked against this host; install it with `install -o root -g wheel -m \
             644 {} {}/`",
            ctx.daemons_dir.display(),
            path.display(),
            ctx.daemons_dir.display()
        ));
    }
    Ok(report)
}

fn in_daemons_dir(path: &Path, daemons_dir: &Path) -> bool {
    let parent = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let daemons = daemons_dir.canonicalize().ok();
    match parent {
        Some(parent) => {
            Some(&parent) == daemons.as_ref()
                || parent.file_name().is_some_and(|n| n == "LaunchDaemons")
        }
        None => false,
    }
}

/// launchd refuses a LaunchDaemon that is not owned by root or that group or others
/// may write. The group itself does not matter: `root:admin` mode 0644 (what Homebrew's
/// `sudo brew services` writes) loads, so the group is not asked for.
pub fn ownership(path: &Path, uid: u32, mode: u32) -> Vec<Problem> {
    let mut problems = Vec::new();
    let file = path.display();
    if uid != 0 {
        problems.push(Problem {
            kind: Kind::Ownership,
            line: None,
            message: format!(
                "owned by uid {uid}, not root: launchd refuses it (\"bad ownership/permissions\")"
            ),
            fix: format!("chown root:wheel {file}"),
        });
    }
    problems.extend(write_bits(path, mode));
    problems
}

/// launchd refuses a job file that group or others may write, LaunchDaemon or
/// LaunchAgent alike.
fn write_bits(path: &Path, mode: u32) -> Option<Problem> {
    if mode & 0o022 == 0 {
        return None;
    }
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "group and others",
        (true, false) => "group",
        _ => "others",
    };
    Some(Problem {
        kind: Kind::Ownership,
        line: None,
        message: format!(
            "mode {:04o} lets {who} write it: launchd refuses it (\"bad ownership/permissions\")",
            mode & 0o7777
        ),
        fix: format!("chmod 644 {}", path.display()),
    })
}

/// The LaunchAgents directory the file is in, if it is in one.
fn agents_dir(path: &Path) -> Option<PathBuf> {
    let parent = path.canonicalize().ok()?.parent()?.to_path_buf();
    (parent.file_name()? == "LaunchAgents").then_some(parent)
}

/// Another plist beside this one with the same Label: launchd loads one job per label,
/// so whichever is bootstrapped second is refused ("service already loaded"), at boot
/// too.
fn same_label_elsewhere(path: &Path, bytes: &[u8]) -> Option<Problem> {
    let label_of = |bytes: &[u8]| {
        strict::parse(bytes)
            .dict()
            .and_then(|d| d.get("Label"))
            .and_then(Value::as_string)
            .map(str::to_string)
    };
    let label = label_of(bytes)?;
    let this = path.canonicalize().ok()?;
    let mut others: Vec<PathBuf> = std::fs::read_dir(this.parent()?)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "plist") && *p != this)
        .filter(|p| std::fs::read(p).ok().and_then(|b| label_of(&b)).as_ref() == Some(&label))
        .collect();
    others.sort();
    let first = others.first()?;
    Some(Problem {
        kind: Kind::Label,
        line: None,
        message: format!(
            "{} has the Label {label} too: launchd loads one job per label, so the second \
             to be bootstrapped is refused (\"service already loaded\"), at boot as well",
            first.display()
        ),
        fix: "give each job its own Label (and name the file after it), or remove the copy".into(),
    })
}

/// A LaunchDaemon is loaded in the System session. One whose LimitLoadToSessionType
/// names only user sessions (Aqua, Background, LoginWindow, StandardIO: an agent's plist
/// copied into the daemons directory) is not loaded there; that is why Homebrew's
/// generated plists, which serve as agents and as daemons (`sudo brew services`), list
/// System among all five session types.
pub(super) fn not_for_the_system_session(bytes: &[u8]) -> Option<Problem> {
    let parsed = strict::parse(bytes);
    let sessions: Vec<&str> = match parsed.dict()?.get("LimitLoadToSessionType")? {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_string).collect(),
        _ => return None,
    };
    if sessions.is_empty() || sessions.contains(&"System") {
        return None;
    }
    Some(Problem {
        kind: Kind::Key,
        line: parsed.key_lines.get("LimitLoadToSessionType").copied(),
        message: format!(
            "LimitLoadToSessionType is {}, but a LaunchDaemon is loaded in the System \
             session: launchd does not load it there, at boot or by hand (launchctl finds \
             nothing to load, or answers \"Service cannot load in requested session\")",
            sessions.join(", ")
        ),
        fix: "add System to LimitLoadToSessionType, or remove the key (or install the \
              plist as a LaunchAgent)"
            .into(),
    })
}

/// Checks a plist's contents; `path` names it in messages and gives the expected label.
pub fn check_bytes(bytes: &[u8], path: &Path, ctx: &Context) -> Report {
    let parsed = strict::parse(bytes);
    let mut problems: Vec<Problem> = parsed
        .errors
        .iter()
        .map(|e| Problem {
            kind: Kind::Syntax,
            line: Some(e.line),
            message: format!("invalid plist: {}", e.message),
            fix: e.fix.clone(),
        })
        .collect();
    let mut warnings: Vec<Problem> = parsed
        .duplicates
        .iter()
        .map(|d| Problem {
            kind: Kind::Key,
            line: Some(d.line),
            message: format!(
                "<key>{}</key> is written twice (first on line {}): plutil keeps the last \
                 value without a word, so the first one does nothing",
                d.key, d.first
            ),
            fix: "keep one of them".into(),
        })
        .collect();
    if let Some(line) = parsed.after_end {
        warnings.push(Problem {
            kind: Kind::Syntax,
            line: Some(line),
            message: "something follows </plist>: CoreFoundation's reader (plutil's, and \
                      launchd's up to OS X 10.9) stops at </plist> and ignores it, as Apple's \
                      own com.apple.mail_migration.plist relied on; launchd's own reader since \
                      OS X 10.10 is stricter (it refuses <true></true>) and is not documented \
                      to ignore it"
                .into(),
            fix: "remove everything after </plist>".into(),
        });
    }
    let mut notes = Vec::new();
    match parsed.value.as_ref() {
        None => {}
        Some(Value::Dictionary(d)) => {
            let job = Job::new(d, &parsed, path, ctx).check();
            problems.extend(job.problems);
            warnings.extend(job.warnings);
            notes = job.notes;
        }
        Some(_) => problems.push(Problem {
            kind: Kind::Syntax,
            line: None,
            message: "the top-level value is not a <dict>".into(),
            fix: "a LaunchDaemon plist is one <dict> of keys such as Label and ProgramArguments"
                .into(),
        }),
    }
    // In file order; problems of the whole file last.
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Report {
        path: path.to_path_buf(),
        problems,
        warnings,
        notes,
    }
}

struct Job<'a> {
    d: &'a Dictionary,
    parsed: &'a strict::Parsed,
    path: &'a Path,
    ctx: &'a Context,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    notes: Vec<String>,
    /// The command puts the master in the background, so KeepAlive is no cure.
    daemonizes: bool,
}

/// What the lint found in a job's keys and command.
struct Findings {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    notes: Vec<String>,
}

impl<'a> Job<'a> {
    fn new(
        d: &'a Dictionary,
        parsed: &'a strict::Parsed,
        path: &'a Path,
        ctx: &'a Context,
    ) -> Self {
        Job {
            d,
            parsed,
            path,
            ctx,
            problems: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            daemonizes: false,
        }
    }

    fn line(&self, key: &str) -> Option<usize> {
        self.parsed.key_lines.get(key).copied()
    }

    fn push(&mut self, kind: Kind, key: Option<&str>, message: String, fix: impl Into<String>) {
        let problem = self.problem(kind, key, message, fix);
        self.problems.push(problem);
    }

    fn warn(&mut self, kind: Kind, key: Option<&str>, message: String, fix: impl Into<String>) {
        let warning = self.problem(kind, key, message, fix);
        self.warnings.push(warning);
    }

    fn problem(
        &self,
        kind: Kind,
        key: Option<&str>,
        message: String,
        fix: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            line: key.and_then(|k| self.line(k)),
            message,
            fix: fix.into(),
        }
    }

    /// KeepAlive true, or the 10.4 spelling of it, `OnDemand` false, which launchd
    /// still honours where KeepAlive is not set (Apple's mDNSResponder job used it for
    /// years): launchd starts the job at load and again whenever it exits.
    fn always_kept_alive(&self) -> bool {
        match self.d.get("KeepAlive") {
            Some(v) => *v == Value::Boolean(true),
            None => self.d.get("OnDemand") == Some(&Value::Boolean(false)),
        }
    }

    /// Whether the key was written without a value (already reported as syntax).
    fn valueless(&self, key: &str) -> bool {
        self.parsed.keys_without_value.iter().any(|k| k == key)
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.d.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.push(
                    Kind::Key,
                    Some(key),
                    format!(
                        "{key} must be a <string>, not {}: launchd does not use a value of the \
                         wrong type (it skips the key)",
                        value_kind(other)
                    ),
                    format!("write <key>{key}</key> <string>...</string>"),
                );
                None
            }
        }
    }

    fn check(mut self) -> Findings {
        self.label();
        self.keys();
        let runs_master = match self.argv() {
            Some(argv) => {
                self.spawn(&argv);
                self.command(&argv)
            }
            None => false,
        };
        self.disabled(runs_master);
        if !runs_master {
            // Apple's newaliases and postfixsetup jobs, one-shot jobs, other daemons:
            // launchd's own rules only.
            return self.findings();
        }
        self.boot();
        if let Some(user) = self.d.get("UserName").and_then(Value::as_string)
            && user != "root"
        {
            self.push(
                Kind::WrongCommand,
                Some("UserName"),
                format!(
                    "UserName {user}: the Postfix master must start as root (it binds port \
                     25 and drops privileges to mail_owner itself)"
                ),
                "remove UserName (and GroupName)",
            );
        }
        self.findings()
    }

    fn findings(self) -> Findings {
        Findings {
            problems: self.problems,
            warnings: self.warnings,
            notes: self.notes,
        }
    }

    fn label(&mut self) {
        if self.valueless("Label") {
            return;
        }
        let Some(label) = self.string("Label") else {
            if !self.d.contains_key("Label") {
                self.push(
                    Kind::Key,
                    None,
                    "no Label: launchd refuses a job without one".into(),
                    "add <key>Label</key> <string>org.postfix.NAME</string>",
                );
            }
            return;
        };
        if label.trim().is_empty() {
            self.push(
                Kind::Key,
                Some("Label"),
                "the Label is empty: launchd refuses the job (\"Invalid or missing service \
                 identifier\")"
                    .into(),
                "name the job, e.g. <string>org.postfix.NAME</string>",
            );
            return;
        }
        let stem = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = stem.strip_suffix(".plist").unwrap_or(&stem).to_string();
        // A convention, not a rule of launchd's: Apple's own ssh.plist has the label
        // com.openssh.sshd and loads. Two files with one label are the breakage; that
        // is checked among the installed files (`check_file`).
        if stem != label {
            let file = self.path.file_name().unwrap_or_default().to_string_lossy();
            self.notes.push(format!(
                "the job's Label is {label} and the file is {file}: launchd knows the job by \
                 its Label (`launchctl print system/{label}`), not by the file's name"
            ));
        }
    }

    /// The argv launchd would pass, after reporting Program/ProgramArguments mistakes.
    fn argv(&mut self) -> Option<Vec<String>> {
        let program = if self.valueless("Program") {
            None
        } else {
            self.string("Program")
        };
        let args = match self.d.get("ProgramArguments") {
            None => None,
            Some(Value::Array(items)) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_string().map(str::to_string))
                    .collect();
                if strings.is_none() {
                    self.push(
                        Kind::Key,
                        Some("ProgramArguments"),
                        "ProgramArguments must be an <array> of <string>s".into(),
                        "write every argument as <string>...</string>",
                    );
                }
                strings.filter(|s| !s.is_empty())
            }
            Some(_) => {
                self.push(
                    Kind::Key,
                    Some("ProgramArguments"),
                    "ProgramArguments must be an <array> of <string>s".into(),
                    "write <key>ProgramArguments</key> <array><string>...</string></array>",
                );
                None
            }
        };
        match (program, args) {
            (None, None) => {
                if !self.valueless("ProgramArguments") && !self.valueless("Program") {
                    self.push(
                        Kind::Key,
                        None,
                        "neither Program nor ProgramArguments: launchd has nothing to run".into(),
                        "add ProgramArguments = [<daemon_directory>/master, -c, <config_directory>]",
                    );
                }
                None
            }
            (Some(p), None) => Some(vec![p]),
            (None, Some(args)) => Some(args),
            (Some(p), Some(args)) => {
                // argv[0] may be the bare name of Program (Apple's own jobs do that).
                let same = p == args[0] || (!args[0].contains('/') && basename(&p) == args[0]);
                // A wrapper as Program with the real program's argv is a working idiom
                // (Apple's ssh.plist: sshd-keygen-wrapper runs `/usr/sbin/sshd -i`); for
                // Postfix it is seed 002's mistake (master run with postmulti's argv).
                let postfix = [p.as_str(), args[0].as_str()]
                    .iter()
                    .any(|x| matches!(basename(x), "master" | "postfix" | "postmulti"));
                if !same && postfix {
                    let rest = args[1..].join(" ");
                    self.push(
                        Kind::ProgramMismatch,
                        Some("Program"),
                        format!(
                            "Program is {p} but ProgramArguments starts with {}: launchd \
                             executes Program and passes ProgramArguments as its argv, so it \
                             would run {p} with the arguments `{rest}` (argv[0] is only a name)",
                            args[0]
                        ),
                        "remove Program and let ProgramArguments name the executable: \
                         [<daemon_directory>/master, -c, <config_directory>]",
                    );
                } else if !same && lost_first_argument(&p, &args[0]) {
                    // Program given, and ProgramArguments written as if it held only
                    // the arguments: the first of them becomes argv[0] and is lost.
                    self.push(
                        Kind::ProgramMismatch,
                        Some("ProgramArguments"),
                        format!(
                            "ProgramArguments starts with {:?}, but with Program set the \
                             first element is only argv[0], the program's name: {p} never \
                             receives {:?} as an argument",
                            args[0], args[0]
                        ),
                        format!(
                            "put the program's name first: ProgramArguments = [{p}, {}]",
                            args.join(", ")
                        ),
                    );
                }
                // Judge what the author meant to run; the mismatch is reported above.
                Some(args)
            }
        }
    }

    /// What launchd hands to posix_spawn: the executable (Program, or else the first
    /// of ProgramArguments) and the arguments, each as written. There is no shell, so a
    /// command line in one string, a `~`, or quotes around an argument do not mean what
    /// they mean to a shell.
    fn spawn(&mut self, argv: &[String]) {
        let (key, executable) = match self.d.get("Program").and_then(Value::as_string) {
            Some(program) => ("Program", program.to_string()),
            None => ("ProgramArguments", argv[0].clone()),
        };
        // launchd's own test of a failing spawn (launchd-106, testing/badexec.plist) runs "/".
        if executable.ends_with('/') {
            self.push(
                Kind::WrongCommand,
                Some(key),
                format!(
                    "{executable} ends with '/': it names a directory, which cannot be \
                     executed, so the job fails to spawn every time launchd starts it"
                ),
                "name the program itself, e.g. /usr/libexec/postfix/master",
            );
        }
        let globbing = self.d.get("EnableGlobbing") == Some(&Value::Boolean(true));
        if executable.starts_with('~') && !globbing {
            self.push(
                Kind::WrongCommand,
                Some(key),
                format!(
                    "{executable}: launchd starts the job without a shell, so ~ is not \
                     expanded and the job fails to spawn (\"No such file or directory\")"
                ),
                "write the full path (/Users/NAME/... or /var/root/...)",
            );
        }
        if let Some((path, rest)) = executable.split_once(char::is_whitespace)
            && path.starts_with('/')
            && rest.trim_start().starts_with('-')
        {
            self.push(
                Kind::WrongCommand,
                Some(key),
                format!(
                    "{key} holds the command line {executable:?}, but launchd executes the \
                     whole string as one file name, which does not exist: the job fails to \
                     spawn"
                ),
                format!(
                    "give each word its own <string> in ProgramArguments: [{path}, {}]",
                    rest.split_whitespace().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        // A shell or an interpreter reads quotes in its script argument itself.
        if matches!(
            basename(&executable),
            "sh" | "bash" | "zsh" | "dash" | "ksh" | "csh" | "tcsh" | "fish" | "env"
        ) || basename(&executable).starts_with("python")
            || matches!(
                basename(&executable),
                "perl" | "ruby" | "node" | "osascript"
            )
        {
            return;
        }
        let quoted = |a: &str| {
            let wrapped = |q: char| a.len() >= 2 && a.starts_with(q) && a.ends_with(q);
            let value_quoted = |q: char| a.contains(&format!("={q}")) && a.ends_with(q);
            wrapped('"') || wrapped('\'') || value_quoted('"') || value_quoted('\'')
        };
        let suspicious: Vec<&String> = argv[1..]
            .iter()
            .filter(|a| quoted(a) || a.starts_with(char::is_whitespace))
            .collect();
        if let Some(first) = suspicious.first() {
            self.warn(
                Kind::WrongCommand,
                Some("ProgramArguments"),
                format!(
                    "the argument {first:?} reaches the program with its quotes or spaces: \
                     launchd passes each <string> as it is written, without a shell to \
                     remove them"
                ),
                "write the argument without the shell's quoting, e.g. \
                 <string>--flagfile=/path/with spaces</string>",
            );
        }
    }

    /// Judges the command the job runs; true when it starts a Postfix master.
    fn command(&mut self, argv: &[String]) -> bool {
        let key = if self.d.contains_key("ProgramArguments") {
            "ProgramArguments"
        } else {
            "Program"
        };
        let on_demand = self.on_demand_trigger().is_some();
        let always_kept_alive = self.always_kept_alive();
        // Any KeepAlive (also one written without a value, as in seed 002) means the
        // author wants launchd to start the job again when it exits.
        let restarted = always_kept_alive
            || matches!(self.d.get("KeepAlive"), Some(Value::Dictionary(_)))
            || self.valueless("KeepAlive");
        let mut starts_master = false;
        for finding in analyze(argv) {
            self.daemonizes |= matches!(finding, Finding::Daemonizes(_));
            match finding {
                Finding::StartsMaster => starts_master = true,
                Finding::Daemonizes(why) if restarted => self.push(
                    Kind::Daemonizes,
                    Some(key),
                    format!(
                        "{why}: the job's process exits at once, launchd thinks the job \
                         ended and, with KeepAlive, starts it again every ThrottleInterval \
                         into \"the Postfix mail system is already running\""
                    ),
                    RUN_IN_FOREGROUND,
                ),
                // Without KeepAlive it works as a starter at boot: the master runs in a
                // session of its own, which launchd leaves alone when the job exits.
                Finding::Daemonizes(why) => self.warn(
                    Kind::Daemonizes,
                    Some(key),
                    format!(
                        "{why}: the master keeps running, but not as launchd's job (launchd \
                         sees the job exit at once): a master that dies stays down, and \
                         `launchctl bootout` or `kickstart -k` do not stop it"
                    ),
                    RUN_IN_FOREGROUND,
                ),
                Finding::StartFg(how) => self.start_fg(key, &how),
                Finding::Refused(why, fix) => {
                    self.push(Kind::WrongCommand, Some(key), why, fix);
                }
                // A one-shot command (`postfix reload`, `postfix check`) is a fine job
                // unless launchd is told to keep it running.
                Finding::Exits(what) if always_kept_alive => self.push(
                    Kind::WrongCommand,
                    Some(key),
                    format!(
                        "{what} does not run a master; it exits, and KeepAlive makes launchd \
                         run it again every ThrottleInterval"
                    ),
                    "run [<daemon_directory>/master, -c, <config_directory>] instead, or \
                     remove KeepAlive for a one-shot job",
                ),
                Finding::Exits(_) => {}
                Finding::ExitsAfter(seconds) if always_kept_alive => self.push(
                    Kind::WrongCommand,
                    Some(key),
                    format!(
                        "master -e {seconds} exits after {seconds} seconds and KeepAlive is \
                         true, so launchd starts it again at once: the master is restarted \
                         every {seconds} seconds"
                    ),
                    "drop -e to keep the master running, or drop KeepAlive (and RunAtLoad) \
                     to keep Apple's on-demand job",
                ),
                Finding::ExitsAfter(seconds) if !on_demand => self.push(
                    Kind::WrongCommand,
                    Some(key),
                    format!(
                        "master -e {seconds} exits after {seconds} seconds; as a boot daemon \
                         it stays down afterwards, or with KeepAlive is restarted every \
                         {seconds} seconds"
                    ),
                    "drop -e (it is for Apple's on-demand job, started by QueueDirectories)",
                ),
                Finding::ExitsAfter(_) => {}
                Finding::Needs(option, since) => {
                    if let Some(have) = self.ctx.version
                        && have < since
                    {
                        self.push(
                            Kind::WrongCommand,
                            Some(key),
                            format!(
                                "{option} exists since Postfix {since}, and this host has \
                                 Postfix {have}: the master refuses to start"
                            ),
                            format!("remove {option}"),
                        );
                    }
                }
                Finding::Instance(name) => self.instance_name(key, &name),
                Finding::ConfigDir(dir) => self.config_dir(key, &dir),
            }
        }
        if starts_master && instances_run_by(argv).is_empty() {
            self.primary_for_an_instance(key);
        }
        starts_master
    }

    /// A master (or `postfix start`) without `-c` reads /etc/postfix: it runs the
    /// primary instance. A job whose Label names a secondary instance
    /// (`org.postfix.postfix-in`, how `instancectl plist` names them) and runs the
    /// master that way is a copy of the primary's job with the `-c` forgotten: it starts
    /// the primary a second time ("the Postfix mail system is already running") and
    /// never the instance. An error when postmulti lists that instance here; without
    /// the host's list the Label's name is only a sign, so a warning. MAIL_CONFIG in
    /// EnvironmentVariables does what -c does (Postfix trusts it from root).
    fn primary_for_an_instance(&mut self, key: &str) {
        let mail_config = self
            .d
            .get("EnvironmentVariables")
            .and_then(Value::as_dictionary)
            .and_then(|env| env.get("MAIL_CONFIG"));
        if mail_config.is_some() {
            return;
        }
        let Some(label) = self.d.get("Label").and_then(Value::as_string) else {
            return;
        };
        let Some(name) = label
            .split('.')
            .find(|part| part.len() > "postfix-".len() && part.starts_with("postfix-"))
            .map(str::to_string)
        else {
            return;
        };
        let listed = self.ctx.instances.as_ref().and_then(|list| {
            list.iter()
                .find(|l| l.name == name && !l.is_primary())
                .map(|l| l.config_directory.display().to_string())
        });
        let message = format!(
            "the Label names the instance {name}, but the master runs without -c, so it \
             reads the primary's main.cf (/etc/postfix) and starts the primary instance, a \
             second time, instead of {name}"
        );
        let fix = format!(
            "add -c and {name}'s configuration directory: ProgramArguments = \
             [<daemon_directory>/master, -c, {}] (`postmulti -l` lists it)",
            listed.as_deref().unwrap_or("<config_directory>")
        );
        if listed.is_some() {
            self.push(Kind::WrongCommand, Some(key), message, fix);
        } else {
            self.warn(Kind::WrongCommand, Some(key), message, fix);
        }
    }

    /// `postfix start-fg` runs the master in the foreground (Postfix 3.3 and later), but
    /// postfix-script refuses it as soon as the primary main.cf sets
    /// multi_instance_directories: on a host with secondary instances, and always under
    /// postmulti. On a single-instance host it works until postmulti is set up.
    fn start_fg(&mut self, key: &str, how: &str) {
        let refusal = "(\"start-fg does not support multi_instance_directories\")";
        if let Some(have) = self.ctx.version
            && have < START_FG_SINCE
        {
            self.push(
                Kind::WrongCommand,
                Some(key),
                format!(
                    "{how} exists since Postfix {START_FG_SINCE}, and this host has Postfix \
                     {have}: the job exits at once"
                ),
                RUN_IN_FOREGROUND,
            );
        } else if how.starts_with("postmulti")
            || self
                .ctx
                .instances
                .as_ref()
                .is_some_and(|list| list.iter().any(|l| !l.is_primary()))
        {
            self.push(
                Kind::WrongCommand,
                Some(key),
                format!(
                    "{how} is refused whenever multi_instance_directories is set {refusal}, \
                     so it cannot run an instance of a multi-instance host"
                ),
                RUN_IN_FOREGROUND,
            );
        } else {
            self.warn(
                Kind::WrongCommand,
                Some(key),
                format!(
                    "{how} keeps the master in the foreground only while the primary \
                     main.cf sets no multi_instance_directories: after `postmulti -e init` \
                     postfix-script refuses it {refusal} and the job exits at once"
                ),
                RUN_IN_FOREGROUND,
            );
        }
    }

    fn instance_name(&mut self, key: &str, name: &str) {
        if name == "-" {
            return;
        }
        if !name.starts_with("postfix-") {
            let guess = suggest_name(name);
            self.push(
                Kind::UnknownInstance,
                Some(key),
                format!(
                    "postmulti knows no instance {name:?}: instance names start with \
                     \"postfix-\" (postmulti refuses any other)"
                ),
                match guess {
                    Some(g) => format!("use the instance's real name, probably {g}"),
                    None => "use a name that `postmulti -l` lists".into(),
                },
            );
            return;
        }
        if let Some(list) = &self.ctx.instances
            && !list.iter().any(|l| l.name == name)
        {
            let known = known_names(list);
            self.push(
                Kind::UnknownInstance,
                Some(key),
                format!("postmulti -l lists no instance {name} on this host ({known})"),
                format!(
                    "create it first (`instancectl create {name}`), or name one postmulti lists"
                ),
            );
        }
    }

    /// `-c DIR`: the master reads DIR/main.cf, whether or not postmulti lists DIR (a
    /// second Postfix kept by hand, as in the nohair-custom plist, runs all the same).
    /// So only a DIR that is neither an instance postmulti lists nor a directory with a
    /// main.cf on this host is an error: there the master exits at once.
    fn config_dir(&mut self, key: &str, dir: &str) {
        let Some(list) = &self.ctx.instances else {
            return;
        };
        if list
            .iter()
            .any(|l| same_directory(&l.config_directory, Path::new(dir)))
        {
            return;
        }
        let known = known_names(list);
        if Path::new(dir).join("main.cf").is_file() {
            self.notes.push(format!(
                "-c {dir} is not an instance `postmulti -l` lists ({known}): the master runs \
                 it, but instancectl does not manage it"
            ));
            return;
        }
        self.push(
            Kind::UnknownInstance,
            Some(key),
            format!(
                "-c {dir}: this host has no main.cf there, and no instance postmulti knows \
                 uses that configuration directory ({known}): the master exits at once"
            ),
            "point -c at the config_directory of an instance `postmulti -l` lists",
        );
    }

    /// The key that makes the job start on demand, if any. A KeepAlive dictionary with
    /// a condition other than how the job exited (PathState, OtherJobEnabled, ...)
    /// starts the job when that condition holds, so it counts too; AfterInitialDemand
    /// only delays the other conditions until a first demand, and NetworkState is no
    /// longer acted on (launchd.plist(5) of current releases), so neither starts a job.
    fn on_demand_trigger(&self) -> Option<&'static str> {
        if let Some(Value::Dictionary(conditions)) = self.d.get("KeepAlive")
            && conditions.keys().any(|k| {
                KEEP_ALIVE_CONDITIONS.iter().any(|(known, _)| known == k)
                    && !matches!(
                        k.as_str(),
                        "SuccessfulExit" | "Crashed" | "AfterInitialDemand" | "NetworkState"
                    )
            })
        {
            return Some("KeepAlive");
        }
        [
            "QueueDirectories",
            "WatchPaths",
            "StartInterval",
            "StartCalendarInterval",
            "Sockets",
            "StartOnMount",
            "LaunchEvents",
            "MachServices",
        ]
        .into_iter()
        .find(|k| self.d.contains_key(k))
    }

    /// A boot daemon (not started on demand, not a one-shot) must start at load, and
    /// should be kept alive. launchd starts at load a job it keeps alive
    /// unconditionally (`KeepAlive` true) or on how it exited (a `SuccessfulExit`
    /// condition "implies that RunAtLoad is set to true", launchd.plist(5); launchd's
    /// source, core.c of launchd-842, starts a job with a `Crashed` condition at load
    /// the same way, unless `AfterInitialDemand` waits for a first demand), so
    /// RunAtLoad is then not needed. A master started at boot but not kept alive works
    /// until it dies: a warning, not an error.
    fn boot(&mut self) {
        if self.on_demand_trigger().is_some()
            || self.d.get("LaunchOnlyOnce") == Some(&Value::Boolean(true))
        {
            return;
        }
        let starts_at_load = self.always_kept_alive()
            || matches!(self.d.get("KeepAlive"), Some(Value::Dictionary(conditions))
                if ["SuccessfulExit", "Crashed"].iter().any(|c| conditions.contains_key(c))
                    && conditions.get("AfterInitialDemand") != Some(&Value::Boolean(true)));
        // A value of the wrong type is reported by `types`.
        if matches!(self.d.get("RunAtLoad"), None | Some(Value::Boolean(false)))
            && !self.valueless("RunAtLoad")
            && !starts_at_load
        {
            self.push(
                Kind::NotKeptAlive,
                Some("RunAtLoad"),
                "RunAtLoad is not true: the job does not start at boot, nor when it is \
                 bootstrapped"
                    .into(),
                "add <key>RunAtLoad</key> <true/>",
            );
        }
        if matches!(self.d.get("KeepAlive"), None | Some(Value::Boolean(false)))
            && !self.always_kept_alive()
            && !self.valueless("KeepAlive")
            && !self.daemonizes
        {
            self.warn(
                Kind::NotKeptAlive,
                Some("KeepAlive"),
                "KeepAlive is not true: the master starts, but if it dies it stays down".into(),
                "add <key>KeepAlive</key> <true/>",
            );
        }
    }

    /// Every key launchd.plist(5) documents, checked for the shape of its value, and
    /// every other key checked for a misspelling of a documented one. launchd ignores a
    /// key it does not know, or one whose value has the wrong type, so either mistake
    /// leaves the job without what the key was written for.
    fn keys(&mut self) {
        let keys: Vec<(String, Value)> =
            self.d.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, value) in &keys {
            match KEYS.iter().find(|(known, _)| known == key) {
                Some((_, Some(shape))) if !shape.accepts(value) => self.push(
                    Kind::Key,
                    Some(key),
                    format!(
                        "{key} must be {}, not {}: launchd does not use a value of the \
                         wrong type (it skips the key)",
                        shape.describe(),
                        value_kind(value)
                    ),
                    format!("write <key>{key}</key> {}", shape.example()),
                ),
                Some(_) => {}
                None => {
                    if let Some(meant) = near_miss(key, KEYS.iter().map(|(k, _)| *k)) {
                        self.push(
                            Kind::Key,
                            Some(key),
                            format!(
                                "launchd knows no key {key:?} and ignores it (keys are \
                                 case-sensitive): the job runs as if it were not there"
                            ),
                            format!("spell it {meant}"),
                        );
                    }
                }
            }
        }
        if let Some(Value::Dictionary(conditions)) = self.d.get("KeepAlive") {
            let conditions = conditions.clone();
            self.keep_alive_conditions(&conditions);
        }
        if let Some(value) = self.d.get("StartCalendarInterval") {
            let value = value.clone();
            self.calendar(&value);
        }
    }

    /// The conditions of a KeepAlive dictionary. One launchd does not know is ignored,
    /// and a dictionary left without a condition it knows never restarts the job.
    fn keep_alive_conditions(&mut self, conditions: &Dictionary) {
        for (name, value) in conditions {
            match KEEP_ALIVE_CONDITIONS
                .iter()
                .find(|(known, _)| known == name)
            {
                Some((_, shape)) if !shape.accepts(value) => self.push(
                    Kind::Key,
                    Some("KeepAlive"),
                    format!(
                        "KeepAlive's {name} must be {}, not {}: launchd ignores the condition",
                        shape.describe(),
                        value_kind(value)
                    ),
                    format!("write <key>{name}</key> {}", shape.example()),
                ),
                Some(_) => {}
                None => {
                    let known: Vec<&str> = KEEP_ALIVE_CONDITIONS.iter().map(|(k, _)| *k).collect();
                    self.push(
                        Kind::Key,
                        Some("KeepAlive"),
                        format!(
                            "KeepAlive has no condition {name:?}: launchd ignores it, so it \
                             does not keep the job alive the way it says"
                        ),
                        match near_miss(name, known.iter().copied()) {
                            Some(meant) => format!("spell it {meant}"),
                            None => format!("use one of {}", known.join(", ")),
                        },
                    );
                }
            }
        }
    }

    /// StartCalendarInterval: a dictionary of Minute, Hour, Day, Weekday and Month, or
    /// an array of them. A field left out is a wildcard, so a misspelled one (`Minutes`)
    /// makes the job run far more often than meant.
    fn calendar(&mut self, value: &Value) {
        let entries: Vec<&Dictionary> = match value {
            Value::Dictionary(d) => vec![d],
            Value::Array(items) => items.iter().filter_map(Value::as_dictionary).collect(),
            // The wrong shape is reported by `keys`.
            _ => return,
        };
        for entry in entries {
            for (field, v) in entry {
                let Some((_, low, high)) = CALENDAR_FIELDS.iter().find(|(f, _, _)| f == field)
                else {
                    let fields: Vec<&str> = CALENDAR_FIELDS.iter().map(|(f, _, _)| *f).collect();
                    self.push(
                        Kind::Key,
                        Some("StartCalendarInterval"),
                        format!(
                            "StartCalendarInterval has no field {field:?}: launchd ignores it, \
                             and a field left out matches every value, so the job runs more \
                             often than it says"
                        ),
                        match near_miss(field, fields.iter().copied()) {
                            Some(meant) => format!("spell it {meant}"),
                            None => format!("use {}", fields.join(", ")),
                        },
                    );
                    continue;
                };
                let in_range = v
                    .as_signed_integer()
                    .is_some_and(|n| (*low..=*high).contains(&n));
                if !in_range {
                    self.push(
                        Kind::Key,
                        Some("StartCalendarInterval"),
                        format!(
                            "StartCalendarInterval's {field} must be an <integer> from {low} \
                             to {high}, not {}",
                            match v.as_signed_integer() {
                                Some(n) => n.to_string(),
                                None => value_kind(v).to_string(),
                            }
                        ),
                        format!(
                            "write <key>{field}</key> <integer>{low}</integer>, or leave the \
                             field out to match every value"
                        ),
                    );
                }
            }
        }
    }

    /// `Disabled = true` is only a default: an override that `launchctl enable` (or
    /// `launchctl load -w`) writes wins over it, and survives reboots and edits of the
    /// file. So it works, but the file alone does not say whether the job loads.
    /// `instancectl disable` is offered only for a job that runs a Postfix master: it
    /// does nothing for Apple's ClamAV or sshd jobs.
    fn disabled(&mut self, runs_master: bool) {
        if self.d.get("Disabled") != Some(&Value::Boolean(true)) {
            return;
        }
        let label = self
            .d
            .get("Label")
            .and_then(Value::as_string)
            .unwrap_or("LABEL")
            .to_string();
        // A LaunchAgent's overrides live in its user's GUI domain, a daemon's in system.
        let agent = self
            .path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "LaunchAgents");
        let domain = if agent { "gui/$(id -u)" } else { "system" };
        let target = format!("{domain}/{label}");
        self.warn(
            Kind::Disabled,
            Some("Disabled"),
            format!(
                "Disabled is true: launchd loads the job at boot only if an override enables \
                 it. `launchctl enable {target}` (and `launchctl load -w`) writes such an \
                 override, which wins over this key and outlives reboots and edits of the file; \
                 `launchctl disable {target}` writes the opposite one"
            ),
            format!(
                "see which applies with `launchctl print-disabled {domain} | grep {label}`; to \
                 keep the job down, remove Disabled and use `launchctl disable {target}`{}",
                if runs_master && !agent {
                    " (or `instancectl disable NAME`)"
                } else {
                    ""
                }
            ),
        );
    }
}

/// What launchd.plist(5) says a key's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Str,
    Bool,
    Int,
    /// An array of strings.
    Strings,
    /// A string or an array of strings (LimitLoadToSessionType).
    StrOrStrings,
    /// An integer, or a string that strtoul(3) reads ("022" for Umask).
    IntOrStr,
    Dict,
    /// A dictionary of strings (EnvironmentVariables).
    StrDict,
    /// A dictionary of integers (the resource limits).
    IntDict,
    /// A dictionary of booleans (PathState, OtherJobEnabled).
    BoolDict,
    BoolOrDict,
    /// A dictionary or an array of dictionaries (StartCalendarInterval).
    DictOrDicts,
}

impl Shape {
    fn accepts(self, v: &Value) -> bool {
        let all = |d: &Dictionary, shape: Shape| d.values().all(|x| shape.accepts(x));
        match self {
            Shape::Str => matches!(v, Value::String(_)),
            Shape::Bool => matches!(v, Value::Boolean(_)),
            Shape::Int => matches!(v, Value::Integer(_)),
            Shape::Strings => v
                .as_array()
                .is_some_and(|a| a.iter().all(|x| Shape::Str.accepts(x))),
            Shape::StrOrStrings => Shape::Str.accepts(v) || Shape::Strings.accepts(v),
            Shape::IntOrStr => Shape::Int.accepts(v) || Shape::Str.accepts(v),
            Shape::Dict => matches!(v, Value::Dictionary(_)),
            Shape::StrDict => v.as_dictionary().is_some_and(|d| all(d, Shape::Str)),
            Shape::IntDict => v.as_dictionary().is_some_and(|d| all(d, Shape::Int)),
            Shape::BoolDict => v.as_dictionary().is_some_and(|d| all(d, Shape::Bool)),
            Shape::BoolOrDict => Shape::Bool.accepts(v) || Shape::Dict.accepts(v),
            Shape::DictOrDicts => {
                Shape::Dict.accepts(v)
                    || v.as_array()
                        .is_some_and(|a| a.iter().all(|x| Shape::Dict.accepts(x)))
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Shape::Str => "a <string>",
            Shape::Bool => "<true/> or <false/>",
            Shape::Int => "an <integer>",
            Shape::Strings => "an <array> of <string>s",
            Shape::StrOrStrings => "a <string> or an <array> of <string>s",
            Shape::IntOrStr => "an <integer> (or a <string> such as \"022\")",
            Shape::Dict => "a <dict>",
            Shape::StrDict => "a <dict> of <string>s",
            Shape::IntDict => "a <dict> of <integer>s",
            Shape::BoolDict => "a <dict> of <true/> and <false/>",
            Shape::BoolOrDict => "<true/>, <false/> or a <dict> of conditions",
            Shape::DictOrDicts => "a <dict> of <integer>s, or an <array> of them",
        }
    }

    fn example(self) -> &'static str {
        match self {
            Shape::Str => "<string>...</string>",
            Shape::Bool | Shape::BoolOrDict => "<true/>",
            Shape::Int | Shape::IntOrStr => "<integer>10</integer>",
            Shape::Strings | Shape::StrOrStrings => "<array><string>...</string></array>",
            Shape::Dict | Shape::DictOrDicts => "<dict>...</dict>",
            Shape::StrDict => "<dict><key>NAME</key><string>value</string></dict>",
            Shape::IntDict => "<dict><key>NumberOfFiles</key><integer>1024</integer></dict>",
            Shape::BoolDict => "<dict><key>/path</key><true/></dict>",
        }
    }
}

/// What a value is, in the words of a plist.
fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a <string>",
        Value::Integer(_) => "an <integer>",
        Value::Real(_) => "a <real>",
        Value::Boolean(_) => "a boolean",
        Value::Array(_) => "an <array>",
        Value::Dictionary(_) => "a <dict>",
        Value::Date(_) => "a <date>",
        Value::Data(_) => "<data>",
        _ => "another type",
    }
}

/// The keys of launchd.plist(5) from Mac OS X 10.4 to macOS 15, with the shape their
/// value must have. `None`: checked by a rule of its own (Label, Program,
/// ProgramArguments), or a key Apple's own jobs use without documenting it; those are
/// listed so that the spelling check does not take them for a misspelling.
const KEYS: &[(&str, Option<Shape>)] = &[
    ("Label", None),
    ("Program", None),
    ("ProgramArguments", None),
    ("BundleProgram", Some(Shape::Str)),
    ("Disabled", Some(Shape::Bool)),
    ("UserName", Some(Shape::Str)),
    ("GroupName", Some(Shape::Str)),
    ("InitGroups", Some(Shape::Bool)),
    ("inetdCompatibility", Some(Shape::Dict)),
    ("LimitLoadToHosts", Some(Shape::Strings)),
    ("LimitLoadFromHosts", Some(Shape::Strings)),
    ("LimitLoadToSessionType", Some(Shape::StrOrStrings)),
    ("LimitLoadToHardware", Some(Shape::Dict)),
    ("LimitLoadFromHardware", Some(Shape::Dict)),
    ("EnableGlobbing", Some(Shape::Bool)),
    ("EnableTransactions", Some(Shape::Bool)),
    ("EnablePressuredExit", Some(Shape::Bool)),
    ("OnDemand", Some(Shape::Bool)),
    ("ServiceIPC", Some(Shape::Bool)),
    ("KeepAlive", Some(Shape::BoolOrDict)),
    ("RunAtLoad", Some(Shape::Bool)),
    ("RootDirectory", Some(Shape::Str)),
    ("WorkingDirectory", Some(Shape::Str)),
    ("EnvironmentVariables", Some(Shape::StrDict)),
    ("Umask", Some(Shape::IntOrStr)),
    ("TimeOut", Some(Shape::Int)),
    ("ExitTimeOut", Some(Shape::Int)),
    ("ThrottleInterval", Some(Shape::Int)),
    ("WatchPaths", Some(Shape::Strings)),
    ("QueueDirectories", Some(Shape::Strings)),
    ("StartOnMount", Some(Shape::Bool)),
    ("StartInterval", Some(Shape::Int)),
    ("StartCalendarInterval", Some(Shape::DictOrDicts)),
    ("StandardInPath", Some(Shape::Str)),
    ("StandardOutPath", Some(Shape::Str)),
    ("StandardErrorPath", Some(Shape::Str)),
    ("Debug", Some(Shape::Bool)),
    ("WaitForDebugger", Some(Shape::Bool)),
    ("SoftResourceLimits", Some(Shape::IntDict)),
    ("HardResourceLimits", Some(Shape::IntDict)),
    ("Nice", Some(Shape::Int)),
    ("ProcessType", Some(Shape::Str)),
    ("AbandonProcessGroup", Some(Shape::Bool)),
    ("LowPriorityIO", Some(Shape::Bool)),
    ("LowPriorityBackgroundIO", Some(Shape::Bool)),
    ("MaterializeDatalessFiles", Some(Shape::Bool)),
    ("LaunchOnlyOnce", Some(Shape::Bool)),
    ("MachServices", Some(Shape::Dict)),
    ("Sockets", Some(Shape::Dict)),
    ("LaunchEvents", Some(Shape::Dict)),
    ("SessionCreate", Some(Shape::Bool)),
    ("LegacyTimers", Some(Shape::Bool)),
    ("AssociatedBundleIdentifiers", Some(Shape::StrOrStrings)),
    ("HopefullyExitsFirst", Some(Shape::Bool)),
    ("HopefullyExitsLast", Some(Shape::Bool)),
    ("ServiceDescription", Some(Shape::Str)),
    // In Apple's own jobs, not in the manual page.
    ("POSIXSpawnType", None),
    ("BeginTransactionAtShutdown", None),
    ("PreventsSleep", None),
    ("JetsamProperties", None),
    ("EnableTransactionsOnSleep", None),
];

/// The conditions of a KeepAlive dictionary (launchd.plist(5); NetworkState is no
/// longer acted on but still accepted).
const KEEP_ALIVE_CONDITIONS: &[(&str, Shape)] = &[
    ("SuccessfulExit", Shape::Bool),
    ("Crashed", Shape::Bool),
    ("NetworkState", Shape::Bool),
    ("PathState", Shape::BoolDict),
    ("OtherJobEnabled", Shape::BoolDict),
    ("OtherJobActive", Shape::BoolDict),
    ("AfterInitialDemand", Shape::BoolOrDict),
];

/// The fields of a StartCalendarInterval entry and their ranges (Weekday 0 and 7 are
/// both Sunday).
const CALENDAR_FIELDS: &[(&str, i64, i64)] = &[
    ("Minute", 0, 59),
    ("Hour", 0, 23),
    ("Day", 1, 31),
    ("Weekday", 0, 7),
    ("Month", 1, 12),
];

/// The known name that `name` is probably a misspelling of: the same but for case, cut
/// short (`Crash`), or a letter or a few away (more only in names long enough that the
/// typos still leave them unmistakable: `StandardOutputPath`, `QueueDirectory`). An unknown name near none of them is someone
/// else's key and is left alone.
fn near_miss<'k>(name: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        if k == name {
            return None;
        }
        let cut_short =
            name.len() >= 5 && k.len() > name.len() && k[..name.len()].eq_ignore_ascii_case(name);
        let distance = if k.eq_ignore_ascii_case(name) || cut_short {
            0
        } else {
            strsim::damerau_levenshtein(k, name)
        };
        let allowed = match k.len() {
            ..10 => 1,
            10..15 => 2,
            _ => 3,
        };
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Whether two configuration directories are the same: written with or without a
/// trailing slash, through macOS's /etc -> /private/etc link, or as links resolved on
/// this host.
fn same_directory(a: &Path, b: &Path) -> bool {
    let plain = |p: &Path| {
        let text = p.to_string_lossy();
        let text = text.trim_end_matches('/');
        let text = text.strip_prefix("/private").unwrap_or(text);
        PathBuf::from(text)
    };
    if plain(a) == plain(b) {
        return true;
    }
    matches!(
        (a.canonicalize(), b.canonicalize()),
        (Ok(x), Ok(y)) if x == y
    )
}

fn known_names(list: &[Listed]) -> String {
    let names: Vec<&str> = list
        .iter()
        .filter(|l| !l.is_primary())
        .map(|l| l.name.as_str())
        .collect();
    if names.is_empty() {
        "it has no secondary instances".into()
    } else {
        format!("it knows {}", names.join(", "))
    }
}

/// `postfix.in` → `postfix-in`, `in` → `postfix-in`.
fn suggest_name(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let rest = cleaned
        .strip_prefix("postfix")
        .unwrap_or(&cleaned)
        .trim_matches('-');
    (!rest.is_empty()).then(|| format!("postfix-{rest}"))
}

/// Whether `first`, the first of ProgramArguments beside Program, is plainly an argument
/// rather than a name for the program: an option, or the script an interpreter was
/// meant to run. (Another program's path there is the wrapper idiom of Apple's
/// ssh.plist and works.)
fn lost_first_argument(program: &str, first: &str) -> bool {
    const INTERPRETERS: [&str; 10] = [
        "sh",
        "bash",
        "zsh",
        "node",
        "ruby",
        "perl",
        "php",
        "java",
        "osascript",
        "deno",
    ];
    const SCRIPTS: [&str; 10] = [
        ".js", ".mjs", ".py", ".rb", ".pl", ".php", ".sh", ".jar", ".ts", ".scpt",
    ];
    let interpreter = basename(program);
    first.starts_with('-')
        || ((INTERPRETERS.contains(&interpreter) || interpreter.starts_with("python"))
            && SCRIPTS.iter().any(|ext| first.ends_with(ext)))
}

/// What a command line reveals about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// It daemonizes; the text says how.
    Daemonizes(String),
    /// It starts a Postfix master (in the foreground or not).
    StartsMaster,
    /// It cannot run a master under launchd; message and fix.
    Refused(String, String),
    /// `postfix start-fg` (how it was called): whether it works depends on the host.
    StartFg(String),
    /// A Postfix command that does its work and exits (`postfix reload`); what it is.
    Exits(String),
    /// `master -e N`.
    ExitsAfter(String),
    /// An option that exists only since a Postfix version.
    Needs(String, Version),
    /// It names an instance (`postmulti -i NAME`).
    Instance(String),
    /// It names a configuration directory (`-c DIR`).
    ConfigDir(String),
}

fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Judges a command line: Postfix's own commands, and shell scripts made of them.
pub fn analyze(argv: &[String]) -> Vec<Finding> {
    let Some(program) = argv.first() else {
        return Vec::new();
    };
    let args = &argv[1..];
    match basename(program) {
        "master" => analyze_master(args),
        "postfix" => analyze_postfix(args, "postfix"),
        "postmulti" => analyze_postmulti(args),
        "sh" | "bash" | "zsh" | "dash" | "ksh" => analyze_shell(args),
        _ => Vec::new(),
    }
}

/// Options of a getopt-style command: (flag, value) pairs and the operands.
fn getopt<'a>(
    args: &'a [String],
    with_value: &str,
) -> (Vec<(char, Option<&'a str>)>, Vec<&'a str>) {
    let mut flags = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            operands.extend(args[i + 1..].iter().map(String::as_str));
            break;
        }
        if a.len() > 1 && a.starts_with('-') && operands.is_empty() {
            for (pos, c) in a[1..].char_indices() {
                if with_value.contains(c) {
                    let inline = &a[1 + pos + c.len_utf8()..];
                    let value = if inline.is_empty() {
                        i += 1;
                        args.get(i).map(String::as_str)
                    } else {
                        Some(inline)
                    };
                    flags.push((c, value));
                    break;
                }
                flags.push((c, None));
            }
        } else {
            operands.push(a);
        }
        i += 1;
    }
    (flags, operands)
}

fn analyze_master(args: &[String]) -> Vec<Finding> {
    let (flags, _) = getopt(args, "ce");
    let mut out = vec![Finding::StartsMaster];
    for (flag, value) in flags {
        match (flag, value) {
            ('w', _) => out.push(Finding::Daemonizes(
                "master -w waits only until the real master has daemonized".into(),
            )),
            ('i', _) => out.push(Finding::Refused(
                "master -i (init mode) is allowed only as process 1; under launchd the \
                 master refuses to start"
                    .into(),
                "remove -i".into(),
            )),
            ('t', _) => out.push(Finding::Refused(
                "master -t only tests whether a master runs, and exits".into(),
                "remove -t".into(),
            )),
            ('c', Some(dir)) => out.push(Finding::ConfigDir(dir.to_string())),
            ('s', _) => out.push(Finding::Needs(
                "master -s".into(),
                crate::postfix::MASTER_KEEP_STDOUT_SINCE,
            )),
            ('e', Some(secs)) => out.push(Finding::ExitsAfter(secs.to_string())),
            _ => {}
        }
    }
    out
}

fn analyze_postfix(args: &[String], how: &str) -> Vec<Finding> {
    let (flags, operands) = getopt(args, "c");
    let mut out: Vec<Finding> = flags
        .iter()
        .filter_map(|(f, v)| match (f, v) {
            ('c', Some(dir)) => Some(Finding::ConfigDir(dir.to_string())),
            _ => None,
        })
        .collect();
    match operands.first().copied() {
        Some("start") => out.extend([
            Finding::StartsMaster,
            Finding::Daemonizes(format!(
                "{how} start runs `master -w`, which daemonizes the master"
            )),
        ]),
        Some("start-fg") => out.extend([
            Finding::StartsMaster,
            Finding::StartFg(format!("{how} start-fg")),
        ]),
        Some(verb) => out.push(Finding::Exits(format!("{how} {verb}"))),
        None => {}
    }
    out
}

fn analyze_postmulti(args: &[String]) -> Vec<Finding> {
    let (flags, operands) = getopt(args, "iIgGe");
    let mut out = Vec::new();
    let mut mode = None;
    for (flag, value) in &flags {
        match (flag, value) {
            ('i', Some(name)) if name.starts_with('/') => {
                out.push(Finding::ConfigDir(name.to_string()))
            }
            ('i', Some(name)) => out.push(Finding::Instance(name.to_string())),
            ('p' | 'x', _) => mode = Some(*flag),
            _ => {}
        }
    }
    let operands: Vec<String> = operands.iter().map(|s| s.to_string()).collect();
    match mode {
        Some('p') => out.extend(analyze_postfix(&operands, "postmulti -p")),
        Some('x') => out.extend(analyze(&operands)),
        _ => {}
    }
    out
}

/// `sh -c 'SCRIPT'`: each simple command of the script, and a trailing `&`.
fn analyze_shell(args: &[String]) -> Vec<Finding> {
    let (flags, _) = getopt(args, "c");
    let Some(script) = flags
        .iter()
        .find_map(|(f, v)| (*f == 'c').then_some(*v).flatten())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if script.trim_end().ends_with('&') && !script.trim_end().ends_with("&&") {
        out.push(Finding::Daemonizes(
            "the script puts its command in the background with '&'".into(),
        ));
    }
    for part in script.split([';', '\n', '|', '&']) {
        if let Some(words) = shlex::split(part) {
            let words: Vec<String> = words
                .into_iter()
                .skip_while(|w| w == "exec" || w.contains('='))
                .collect();
            out.extend(analyze(&words));
        }
    }
    out
}

/// Which instances a job's command would start, for telling whether a hand-made job
/// already runs an instance: a name (also one postmulti would refuse, like
/// `postfix.in`), a configuration directory, or every instance (`postmulti -p start`
/// without `-i`/`-g`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    Name(String),
    ConfigDir(PathBuf),
    Every,
}

pub fn instances_run_by(argv: &[String]) -> Vec<Runs> {
    let mut out: Vec<Runs> = analyze(argv)
        .into_iter()
        .filter_map(|f| match f {
            Finding::Instance(n) => Some(Runs::Name(n)),
            Finding::ConfigDir(d) => Some(Runs::ConfigDir(d.into())),
            _ => None,
        })
        .collect();
    if argv.first().is_some_and(|p| basename(p) == "postmulti") {
        let (flags, _) = getopt(&argv[1..], "iIgGe");
        let selects = flags.iter().any(|(f, _)| matches!(f, 'i' | 'g'));
        let runs = flags.iter().any(|(f, _)| matches!(f, 'p' | 'x'));
        if runs && !selects {
            out.push(Runs::Every);
        }
    }
    out
}

impl Runs {
    /// Whether this names instance `name` with configuration in `config_directory`,
    /// counting near misses such as `postfix.in` for `postfix-in`.
    pub fn matches(&self, name: &str, config_directory: &Path) -> bool {
        match self {
            Runs::Every => true,
            Runs::ConfigDir(d) => d == config_directory,
            Runs::Name(n) => n == name || suggest_name(n).as_deref() == Some(name),
        }
    }
}

/// The argv a plist's job runs (Program as executable, ProgramArguments as argv, or the
/// program alone), for callers that only need to know what runs.
pub fn job_argv(d: &Dictionary) -> Vec<String> {
    let args: Vec<String> = d
        .get("ProgramArguments")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_string().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match (d.get("Program").and_then(Value::as_string), args.is_empty()) {
        (Some(p), true) => vec![p.to_string()],
        _ => args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn kinds(report: &Report) -> Vec<Kind> {
        report.problems.iter().map(|p| p.kind).collect()
    }

    fn listed(name: &str) -> Listed {
        Listed {
            name: name.into(),
            group: Some("mta".into()),
            enabled: true,
            config_directory: format!("/etc/{name}").into(),
        }
    }

    const SEED: &[u8] = include_bytes!("../../../tests/data/seed-002-launchdaemon.plist");

    #[test]
    fn the_seed_has_all_four_defects() {
        let ctx = Context::default();
        let report = check_bytes(SEED, Path::new("org.postfix.in.plist"), &ctx);
        let text = report.render();
        let k = kinds(&report);
        // 1. Program and ProgramArguments disagree.
        assert!(k.contains(&Kind::ProgramMismatch), "{text}");
        assert!(
            text.contains(
                "would run /usr/libexec/postfix/master with the arguments `-i postfix.in -p start`"
            ),
            "{text}"
        );
        // 2. postfix.in is not a name postmulti knows.
        assert!(k.contains(&Kind::UnknownInstance), "{text}");
        assert!(text.contains("probably postfix-in"), "{text}");
        // 3. RunAtLoad and KeepAlive have no values.
        let syntax: Vec<&Problem> = report
            .problems
            .iter()
            .filter(|p| p.kind == Kind::Syntax)
            .collect();
        assert_eq!(syntax.len(), 2, "{text}");
        assert!(
            syntax[0]
                .message
                .contains("<key>RunAtLoad</key> has no value")
        );
        assert_eq!(syntax[0].line, Some(17));
        assert!(
            syntax[1]
                .message
                .contains("<key>KeepAlive</key> has no value")
        );
        // 4. postmulti -p start daemonizes.
        assert!(k.contains(&Kind::Daemonizes), "{text}");
        assert!(
            text.contains("postmulti -p start runs `master -w`"),
            "{text}"
        );
        // Its label matches this file name, so nothing else is wrong.
        assert_eq!(report.problems.len(), 5, "{text}");
        let elsewhere = check_bytes(SEED, Path::new("seed-002-launchdaemon.plist"), &ctx);
        assert!(elsewhere.problems.iter().all(|p| p.kind != Kind::Label));
        assert!(
            elsewhere
                .notes
                .iter()
                .any(|n| n.contains("Label is org.postfix.in")),
            "{}",
            elsewhere.render()
        );
    }

    /// `SEVERITY[KIND]@LINE` of every finding, in the notation of tests/data/plists/EXPECTED.
    fn findings(report: &Report) -> Vec<String> {
        let tag = |severity: &str, p: &Problem| match p.line {
            Some(line) => format!("{severity}[{}]@{line}", p.kind.code()),
            None => format!("{severity}[{}]", p.kind.code()),
        };
        let mut out: Vec<String> = report
            .problems
            .iter()
            .map(|p| tag("error", p))
            .chain(report.warnings.iter().map(|p| tag("warning", p)))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn real_plists_give_exactly_their_expected_findings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/plists");
        let expected_text = std::fs::read_to_string(dir.join("EXPECTED")).unwrap();
        let mut expected: Vec<(String, Vec<String>)> = Vec::new();
        for line in expected_text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (file, list) = line.split_once(": ").expect("FILE: FINDINGS");
            let mut list: Vec<String> = match list.trim() {
                "none" => Vec::new(),
                l => l.split_whitespace().map(str::to_string).collect(),
            };
            list.sort();
            expected.push((file.to_string(), list));
        }
        // Every plist there is listed, and every listed file exists.
        let mut on_disk: Vec<String> = Vec::new();
        for source in std::fs::read_dir(&dir).unwrap().flatten() {
            if source.path().is_dir() {
                for f in std::fs::read_dir(source.path()).unwrap().flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    on_disk.push(format!("{}/{name}", source.file_name().to_string_lossy()));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = expected.iter().map(|(f, _)| f.clone()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "tests/data/plists and its EXPECTED disagree"
        );
        assert!(listed.len() >= 106);
        let mut mismatches = Vec::new();
        for (file, want) in &expected {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).unwrap();
            // Judged by its contents, under the name it is installed with.
            let name = Path::new(path.file_name().unwrap());
            let report = check_bytes(&bytes, name, &Context::default());
            let got = findings(&report);
            if &got != want {
                mismatches.push(format!(
                    "{file}: expected {want:?}, got {got:?}\n{}",
                    report.render()
                ));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn a_correct_job_has_no_problems() {
        let job = super::super::job::DaemonJob::for_instance(
            "postfix-in",
            Path::new("/etc/postfix-in"),
            Path::new("/usr/libexec/postfix"),
            crate::postfix::Version(3, 7, 11),
            &super::super::job::JobNaming::default(),
        );
        let ctx = Context {
            instances: Some(vec![listed("postfix-in")]),
            ..Context::default()
        };
        let report = check_bytes(
            &job.to_xml(),
            Path::new("org.postfix.postfix-in.plist"),
            &ctx,
        );
        assert!(report.problems.is_empty(), "{}", report.render());
        // The same job on a host that has no such instance.
        let ctx = Context {
            instances: Some(vec![listed("postfix-out")]),
            ..Context::default()
        };
        let report = check_bytes(
            &job.to_xml(),
            Path::new("org.postfix.postfix-in.plist"),
            &ctx,
        );
        assert_eq!(kinds(&report), [Kind::UnknownInstance]);
        assert!(report.render().contains("it knows postfix-out"));
    }

    fn plist(body: &str) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n\
             <key>Label</key><string>x</string>\n{body}\n</dict>\n</plist>\n"
        )
        .into_bytes()
    }

    fn check(body: &str) -> Report {
        check_bytes(&plist(body), Path::new("x.plist"), &Context::default())
    }

    #[test]
    fn daemonizing_commands_are_found() {
        for args in [
            "<string>/usr/sbin/postfix</string><string>start</string>",
            "<string>/usr/sbin/postfix</string><string>-c</string><string>/etc/postfix-in</string><string>start</string>",
            "<string>/usr/sbin/postmulti</string><string>-i</string><string>postfix-in</string><string>-p</string><string>start</string>",
            "<string>/usr/sbin/postmulti</string><string>-i</string><string>postfix-in</string><string>-x</string><string>postfix</string><string>start</string>",
            "<string>/usr/libexec/postfix/master</string><string>-w</string>",
            "<string>/usr/libexec/postfix/master</string><string>-wc</string><string>/etc/postfix-in</string>",
            "<string>/bin/sh</string><string>-c</string><string>exec /usr/sbin/postfix -c /etc/postfix-in start</string>",
            "<string>/bin/sh</string><string>-c</string><string>/usr/libexec/postfix/master -c /etc/postfix-in &amp;</string>",
        ] {
            let r = check(&format!(
                "<key>ProgramArguments</key><array>{args}</array>\
                 <key>RunAtLoad</key><true/><key>KeepAlive</key><true/>"
            ));
            assert!(
                kinds(&r).contains(&Kind::Daemonizes),
                "{args}: {}",
                r.render()
            );
        }
    }

    #[test]
    fn other_commands_that_cannot_work() {
        let cases = [
            (
                "<string>/usr/sbin/postfix</string><string>start-fg</string>",
                "multi_instance_directories",
            ),
            (
                "<string>/usr/libexec/postfix/master</string><string>-i</string>",
                "process 1",
            ),
            (
                "<string>/usr/libexec/postfix/master</string><string>-e</string><string>60</string>",
                "restarted every 60 seconds",
            ),
            (
                "<string>/usr/sbin/postfix</string><string>reload</string>",
                "postfix reload does not run a master; it exits, and KeepAlive",
            ),
        ];
        for (args, expected) in cases {
            let r = check(&format!(
                "<key>ProgramArguments</key><array>{args}</array>\
                 <key>RunAtLoad</key><true/><key>KeepAlive</key><true/>"
            ));
            assert!(r.render().contains(expected), "{args}: {}", r.render());
        }
    }

    #[test]
    fn apples_on_demand_job_is_fine() {
        let r = check_bytes(
            &plist_with_label(
                "org.postfix.master",
                "<key>Program</key><string>/usr/libexec/postfix/master</string>\
                 <key>ProgramArguments</key><array><string>master</string><string>-e</string><string>60</string></array>\
                 <key>QueueDirectories</key><array><string>/var/spool/postfix/maildrop</string></array>\
                 <key>AbandonProcessGroup</key><true/>",
            ),
            Path::new("org.postfix.master.plist"),
            &Context::default(),
        );
        // argv[0] "master" is the bare name of Program: the same program.
        assert!(r.problems.is_empty(), "{}", r.render());
    }

    fn plist_with_label(label: &str, body: &str) -> Vec<u8> {
        String::from_utf8(plist(body))
            .unwrap()
            .replace("<string>x</string>", &format!("<string>{label}</string>"))
            .into_bytes()
    }

    #[test]
    fn boot_daemons_must_start_and_stay_up() {
        let args = "<key>ProgramArguments</key><array><string>/usr/libexec/postfix/master</string>\
                    <string>-c</string><string>/etc/postfix-in</string></array>";
        // Neither: never started at boot (an error), and not kept alive (a warning).
        let r = check(args);
        assert_eq!(kinds(&r), [Kind::NotKeptAlive]);
        assert!(
            r.render().contains("RunAtLoad is not true"),
            "{}",
            r.render()
        );
        assert_eq!(r.warnings.len(), 1, "{}", r.render());
        let r = check(&format!(
            "{args}<key>RunAtLoad</key><true/><key>KeepAlive</key><false/>"
        ));
        assert!(r.problems.is_empty(), "{}", r.render());
        assert!(r.render().contains("warning[keepalive]"), "{}", r.render());
        assert!(r.render().contains("KeepAlive is not true"));
        // KeepAlive true, or a SuccessfulExit condition, starts the job at load:
        // RunAtLoad is not needed.
        for keep in ["<true/>", "<dict><key>SuccessfulExit</key><false/></dict>"] {
            let r = check(&format!("{args}<key>KeepAlive</key>{keep}"));
            assert!(
                r.problems.is_empty() && r.warnings.is_empty(),
                "{}",
                r.render()
            );
        }
        // OnDemand false, the 10.4 key, keeps the job alive where KeepAlive is not set.
        let r = check(&format!("{args}<key>OnDemand</key><false/>"));
        assert!(
            r.problems.is_empty() && r.warnings.is_empty(),
            "{}",
            r.render()
        );
        let r = check(&format!(
            "{args}<key>OnDemand</key><false/><key>KeepAlive</key><false/>"
        ));
        assert_eq!(kinds(&r), [Kind::NotKeptAlive], "{}", r.render());
        // Crashed: see a_crashed_condition_starts_the_master_at_load_unless_it_waits_for_demand.
        let r = check(&format!(
            "{args}<key>RunAtLoad</key><true/><key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>"
        ));
        assert!(r.problems.is_empty(), "{}", r.render());
        // Conditions other than the exit status start the job on demand.
        let r = check(&format!(
            "{args}<key>KeepAlive</key><dict><key>PathState</key><dict>\
             <key>/etc/postfix-in/main.cf</key><true/></dict></dict>"
        ));
        assert!(r.problems.is_empty(), "{}", r.render());
        // A one-shot job is not a boot daemon.
        let r = check(&format!(
            "{args}<key>RunAtLoad</key><true/><key>LaunchOnlyOnce</key><true/>"
        ));
        assert!(r.problems.is_empty(), "{}", r.render());
        // A job that runs no master is not held to the master's rules.
        let r = check(
            "<key>ProgramArguments</key><array><string>/usr/bin/newaliases</string></array>\
             <key>UserName</key><string>_postfix</string>",
        );
        assert!(r.problems.is_empty(), "{}", r.render());
        // ... but still to the types launchd wants.
        let r = check(
            "<key>ProgramArguments</key><array><string>/usr/bin/newaliases</string></array>\
             <key>RunAtLoad</key><string>yes</string><key>KeepAlive</key><string>no</string>",
        );
        assert_eq!(kinds(&r), [Kind::Key, Kind::Key], "{}", r.render());
        let r = check(&format!(
            "{args}<key>RunAtLoad</key><string>yes</string><key>KeepAlive</key><true/>\
             <key>UserName</key><string>_postfix</string><key>ThrottleInterval</key><string>10</string>"
        ));
        let text = r.render();
        assert!(text.contains("RunAtLoad must be <true/>"), "{text}");
        assert!(text.contains("must start as root"), "{text}");
        assert!(
            text.contains("ThrottleInterval must be an <integer>"),
            "{text}"
        );
    }

    /// launchd ignores a key it does not know or whose value has the wrong type, so the
    /// job silently lacks what the key says: each such key is an error naming the fix.
    #[test]
    fn misspelled_and_mistyped_keys_are_found() {
        let args = "<key>ProgramArguments</key><array><string>/usr/local/bin/x</string></array>";
        let cases = [
            (
                "<key>StartInterval</key><string>60</string>",
                "StartInterval must be an <integer>, not a <string>",
                "<integer>10</integer>",
            ),
            (
                "<key>Keepalive</key><true/>",
                "launchd knows no key \"Keepalive\"",
                "spell it KeepAlive",
            ),
            (
                "<key>StandardOutputPath</key><string>/tmp/x.log</string>",
                "no key \"StandardOutputPath\"",
                "spell it StandardOutPath",
            ),
            (
                "<key>QueueDirectory</key><array><string>/var/spool/x</string></array>",
                "no key \"QueueDirectory\"",
                "spell it QueueDirectories",
            ),
            (
                "<key>Username</key><string>_postfix</string>",
                "no key \"Username\"",
                "spell it UserName",
            ),
            (
                "<key>StartCalenderInterval</key><dict><key>Hour</key><integer>3</integer></dict>",
                "no key \"StartCalenderInterval\"",
                "spell it StartCalendarInterval",
            ),
            (
                "<key>KeepAlive</key><dict><key>Crash</key><true/></dict>",
                "KeepAlive has no condition \"Crash\"",
                "spell it Crashed",
            ),
            (
                "<key>KeepAlive</key><dict><key>SuccesfulExit</key><false/></dict>",
                "KeepAlive has no condition \"SuccesfulExit\"",
                "spell it SuccessfulExit",
            ),
            (
                "<key>KeepAlive</key><dict><key>PathState</key><true/></dict>",
                "KeepAlive's PathState must be a <dict> of <true/> and <false/>",
                "<key>/path</key>",
            ),
            (
                "<key>StartCalendarInterval</key><dict><key>Minutes</key><integer>20</integer></dict>",
                "StartCalendarInterval has no field \"Minutes\"",
                "spell it Minute",
            ),
            (
                "<key>StartCalendarInterval</key><array><dict><key>Hour</key><integer>24</integer></dict></array>",
                "Hour must be an <integer> from 0 to 23, not 24",
                "<integer>0</integer>",
            ),
            (
                "<key>StartCalendarInterval</key><dict><key>Weekday</key><string>1</string></dict>",
                "Weekday must be an <integer> from 0 to 7, not a <string>",
                "leave the field out",
            ),
            (
                "<key>EnvironmentVariables</key><dict><key>N</key><integer>1</integer></dict>",
                "EnvironmentVariables must be a <dict> of <string>s, not a <dict>",
                "<string>value</string>",
            ),
            (
                "<key>UserName</key><array><string>root</string></array>",
                "UserName must be a <string>, not an <array>",
                "<string>...</string>",
            ),
        ];
        for (body, message, fix) in cases {
            let r = check(&format!("{args}{body}"));
            assert_eq!(kinds(&r), [Kind::Key], "{body}: {}", r.render());
            assert!(
                r.problems[0].message.contains(message),
                "{body}: {}",
                r.render()
            );
            assert!(r.problems[0].fix.contains(fix), "{body}: {}", r.render());
            assert!(r.problems[0].line.is_some(), "{body}: {}", r.render());
        }
    }

    /// Keys Apple's own jobs use, every documented shape of a value, and keys of the
    /// author's own that resemble no launchd key: none of them is a finding.
    #[test]
    fn documented_keys_and_others_own_keys_are_not_misspellings() {
        let r = check(
            "<key>ProgramArguments</key><array><string>/usr/sbin/x</string></array>\
             <key>POSIXSpawnType</key><string>Interactive</string>\
             <key>EnablePressuredExit</key><false/>\
             <key>BeginTransactionAtShutdown</key><true/>\
             <key>PreventsSleep</key><true/>\
             <key>AssociatedBundleIdentifiers</key><string>io.macadmins.Outset</string>\
             <key>LimitLoadToSessionType</key><array><string>Aqua</string><string>Background</string></array>\
             <key>Umask</key><string>022</string><key>Nice</key><integer>5</integer>\
             <key>HardResourceLimits</key><dict><key>NumberOfFiles</key><integer>4096</integer></dict>\
             <key>StartCalendarInterval</key><array><dict><key>Weekday</key><integer>7</integer>\
             <key>Hour</key><integer>3</integer></dict><dict><key>Minute</key><integer>0</integer></dict></array>\
             <key>KeepAlive</key><dict><key>OtherJobEnabled</key><dict><key>com.x</key><true/></dict>\
             <key>AfterInitialDemand</key><true/></dict>\
             <key>ServiceDescription</key><string>x</string><key>Debug</key><false/>\
             <key>OurOwnSetting</key><string>kept by the author's tooling</string>",
        );
        assert!(
            r.problems.is_empty() && r.warnings.is_empty(),
            "{}",
            r.render()
        );
    }

    /// A KeepAlive condition launchd does not know does not make a master's job one
    /// started on demand: it is still not started at load.
    #[test]
    fn a_misspelled_condition_does_not_make_a_master_job_on_demand() {
        let r = check(
            "<key>ProgramArguments</key><array><string>/usr/libexec/postfix/master</string>\
             <string>-c</string><string>/etc/postfix-in</string></array>\
             <key>KeepAlive</key><dict><key>Crash</key><true/></dict>",
        );
        assert_eq!(kinds(&r), [Kind::Key, Kind::NotKeptAlive], "{}", r.render());
    }

    /// `postfix start` daemonizes: with KeepAlive that is a restart loop (an error);
    /// without, the job works as a starter at boot whose master launchd does not
    /// supervise (a warning).
    #[test]
    fn a_daemonizing_starter_is_an_error_only_when_launchd_restarts_it() {
        let args = "<key>ProgramArguments</key><array><string>/usr/sbin/postfix</string>\
                    <string>start</string></array>";
        for starter in [
            "<key>RunAtLoad</key><true/>",
            "<key>RunAtLoad</key><true/><key>LaunchOnlyOnce</key><true/>",
            "<key>RunAtLoad</key><true/><key>KeepAlive</key><false/>",
        ] {
            let r = check(&format!("{args}{starter}"));
            assert!(r.problems.is_empty(), "{starter}: {}", r.render());
            assert_eq!(r.warnings.len(), 1, "{starter}: {}", r.render());
            assert_eq!(r.warnings[0].kind, Kind::Daemonizes);
            assert!(
                r.render().contains("not as launchd's job"),
                "{}",
                r.render()
            );
        }
        for restarted in [
            "<key>KeepAlive</key><true/>",
            "<key>RunAtLoad</key><true/><key>KeepAlive</key><dict>\
             <key>SuccessfulExit</key><true/></dict>",
        ] {
            let r = check(&format!("{args}{restarted}"));
            assert_eq!(kinds(&r), [Kind::Daemonizes], "{restarted}: {}", r.render());
        }
    }

    /// `postfix start-fg` works on a single-instance host with Postfix 3.3 or later, and
    /// is refused on a multi-instance host, under postmulti, and before 3.3.
    #[test]
    fn start_fg_is_judged_by_the_host() {
        let job = |argv: &str| {
            plist(&format!(
                "<key>ProgramArguments</key><array>{argv}</array><key>KeepAlive</key><true/>"
            ))
        };
        let start_fg = job("<string>/usr/sbin/postfix</string><string>start-fg</string>");
        let name = Path::new("x.plist");
        let r = check_bytes(&start_fg, name, &Context::default());
        assert!(r.problems.is_empty(), "{}", r.render());
        assert_eq!(r.warnings.len(), 1, "{}", r.render());
        assert!(r.render().contains("postmulti -e init"), "{}", r.render());

        let multi = Context {
            instances: Some(vec![listed("postfix-out")]),
            ..Context::default()
        };
        let r = check_bytes(&start_fg, name, &multi);
        assert_eq!(kinds(&r), [Kind::WrongCommand], "{}", r.render());
        assert!(
            r.render().contains("cannot run an instance"),
            "{}",
            r.render()
        );

        let apple = Context {
            version: Some(Version(3, 2, 2)),
            ..Context::default()
        };
        let r = check_bytes(&start_fg, name, &apple);
        assert_eq!(kinds(&r), [Kind::WrongCommand], "{}", r.render());
        assert!(
            r.render().contains("exists since Postfix 3.3.0"),
            "{}",
            r.render()
        );

        let postmulti = job(
            "<string>/usr/sbin/postmulti</string><string>-i</string><string>postfix-out</string>\
             <string>-p</string><string>start-fg</string>",
        );
        let r = check_bytes(&postmulti, name, &Context::default());
        assert_eq!(kinds(&r), [Kind::WrongCommand], "{}", r.render());
    }

    /// A Label that differs from the file name loads (Apple's ssh.plist, tftp.plist):
    /// only a note. Two installed files with one Label are the real breakage.
    #[test]
    fn one_label_in_two_installed_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let daemons = dir.path().join("LaunchDaemons");
        std::fs::create_dir(&daemons).unwrap();
        let job = |label: &str| {
            plist_with_label(
                label,
                "<key>ProgramArguments</key><array><string>/usr/libexec/postfix/master</string>\
                 <string>-c</string><string>/etc/postfix-out</string></array>\
                 <key>KeepAlive</key><true/>",
            )
        };
        let out = daemons.join("org.postfix.postfix-out.plist");
        std::fs::write(&out, job("org.postfix.postfix-out")).unwrap();
        std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let ctx = Context {
            daemons_dir: daemons.clone(),
            ..Context::default()
        };
        let alone = check_file(&out, &ctx).unwrap();
        assert!(alone.problems.is_empty(), "{}", alone.render());

        // The copy made for a second instance, its Label left unchanged.
        let copy = daemons.join("org.postfix.postfix-in.plist");
        std::fs::write(&copy, job("org.postfix.postfix-out")).unwrap();
        let report = check_file(&copy, &ctx).unwrap();
        let labels: Vec<&Problem> = report
            .problems
            .iter()
            .filter(|p| p.kind == Kind::Label)
            .collect();
        assert_eq!(labels.len(), 1, "{}", report.render());
        assert!(
            labels[0]
                .message
                .contains("org.postfix.postfix-out.plist has the Label")
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("the file is org.postfix.postfix-in.plist"))
        );
        // The mismatch alone, outside any daemons directory: a note, no finding.
        let r = check_bytes(
            &job("com.openssh.sshd"),
            Path::new("ssh.plist"),
            &Context::default(),
        );
        assert!(
            r.problems.is_empty() && r.warnings.is_empty(),
            "{}",
            r.render()
        );
        assert_eq!(r.notes.len(), 1, "{}", r.render());
    }

    /// A LaunchAgent is refused when others may write it or when it belongs to neither
    /// root nor the user whose LaunchAgents directory holds it.
    #[test]
    fn launch_agents_owner_and_mode() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let agents = dir.path().join("LaunchAgents");
        std::fs::create_dir(&agents).unwrap();
        std::os::unix::fs::chown(&agents, Some(501), Some(20)).unwrap();
        let path = agents.join("x.plist");
        std::fs::write(
            &path,
            plist("<key>ProgramArguments</key><array><string>/bin/x</string></array>"),
        )
        .unwrap();
        let ctx = Context::default();
        let set = |uid: u32, mode: u32| {
            std::os::unix::fs::chown(&path, Some(uid), Some(20)).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
            check_file(&path, &ctx).unwrap()
        };
        for (uid, mode) in [(501, 0o644), (0, 0o644), (501, 0o600)] {
            let r = set(uid, mode);
            assert!(r.problems.is_empty(), "{uid} {mode:o}: {}", r.render());
        }
        let r = set(501, 0o666);
        assert_eq!(kinds(&r), [Kind::Ownership], "{}", r.render());
        assert!(r.render().contains("lets group and others write it"));
        let r = set(502, 0o644);
        assert_eq!(kinds(&r), [Kind::Ownership], "{}", r.render());
        assert!(
            r.render().contains("neither root nor the owner"),
            "{}",
            r.render()
        );
    }

    /// launchd runs no shell: a command line in Program, a `~`, and quotes around an
    /// argument (osquery#2161: `--flagfile="..."` silently not read) are taken literally.
    #[test]
    fn what_a_shell_would_do_launchd_does_not() {
        let r = check(
            "<key>Program</key><string>/usr/local/bin/osqueryd --flagfile=/var/osquery/osquery.flags</string>",
        );
        assert_eq!(kinds(&r), [Kind::WrongCommand], "{}", r.render());
        assert!(
            r.render()
                .contains("[/usr/local/bin/osqueryd, --flagfile=/var/osquery/osquery.flags]"),
            "{}",
            r.render()
        );
        let r = check("<key>ProgramArguments</key><array><string>~/bin/sync.sh</string></array>");
        assert_eq!(kinds(&r), [Kind::WrongCommand], "{}", r.render());
        assert!(r.render().contains("~ is not expanded"), "{}", r.render());
        let r = check(
            "<key>ProgramArguments</key><array><string>/usr/local/bin/osqueryd</string>\
             <string> --flagfile=\"/private/var/osquery/osquery.flags\"</string></array>",
        );
        assert!(r.problems.is_empty(), "{}", r.render());
        assert_eq!(r.warnings.len(), 1, "{}", r.render());
        assert!(
            r.render().contains("with its quotes or spaces"),
            "{}",
            r.render()
        );
        // What works: a path with spaces, a shell's own quoting, globbing on old releases.
        for fine in [
            "<key>Program</key><string>/Applications/Some App.app/Contents/MacOS/Some App</string>",
            "<key>ProgramArguments</key><array><string>/bin/sh</string><string>-c</string>\
             <string>exec \"/usr/local/bin/x\" --y='z'</string></array>",
            "<key>ProgramArguments</key><array><string>~/bin/x</string></array>\
             <key>EnableGlobbing</key><true/>",
            "<key>ProgramArguments</key><array><string>/usr/bin/x</string>\
             <string>--title=It's</string><string>a\"b</string></array>",
        ] {
            let r = check(fine);
            assert!(
                r.problems.is_empty() && r.warnings.is_empty(),
                "{fine}: {}",
                r.render()
            );
        }
    }

    /// `master -c DIR` runs whatever main.cf DIR holds: a directory postmulti does not
    /// list is an error only when it holds no main.cf on this host. macOS writes /etc as
    /// /private/etc, and a trailing slash is the same directory.
    #[test]
    fn a_config_directory_is_judged_by_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let by_hand = dir.path().join("postfix.custom");
        std::fs::create_dir(&by_hand).unwrap();
        std::fs::write(by_hand.join("main.cf"), "").unwrap();
        let job = |config: &str| {
            plist(&format!(
                "<key>ProgramArguments</key><array><string>/usr/libexec/postfix/master</string>\
                 <string>-c</string><string>{config}</string></array><key>KeepAlive</key><true/>"
            ))
        };
        let ctx = Context {
            instances: Some(vec![listed("postfix-out")]),
            ..Context::default()
        };
        let name = Path::new("x.plist");
        let r = check_bytes(&job(&format!("{}/", by_hand.display())), name, &ctx);
        assert!(r.problems.is_empty(), "{}", r.render());
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("instancectl does not manage it"))
        );
        for listed_dir in ["/private/etc/postfix-out/", "/etc/postfix-out"] {
            let r = check_bytes(&job(listed_dir), name, &ctx);
            assert!(
                r.problems.is_empty() && r.notes.is_empty(),
                "{}",
                r.render()
            );
        }
        let r = check_bytes(&job("/etc/postfix-nowhere"), name, &ctx);
        assert_eq!(kinds(&r), [Kind::UnknownInstance], "{}", r.render());
        assert!(r.render().contains("no main.cf there"), "{}", r.render());
    }

    /// What `instancectl plist NAME` and `plist --supervisor` write passes the lint with
    /// no finding at all: the reference copies in plists/ (byte-identical to the
    /// generator's output, job.rs checks that) and the supervisor job for other paths.
    #[test]
    fn the_generators_plists_pass_their_own_lint() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plists");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let name = entry.file_name();
            let r = check_bytes(&bytes, Path::new(&name), &Context::default());
            assert!(
                r.problems.is_empty() && r.warnings.is_empty() && r.notes.is_empty(),
                "{}",
                r.render()
            );
            checked += 1;
        }
        assert!(checked >= 3);
        let naming = super::super::job::JobNaming {
            label_prefix: "com.example.mail.".into(),
            log_dir: "/Library/Logs".into(),
        };
        let supervisor = super::super::job::DaemonJob::supervisor(
            Path::new("/opt/local/sbin/instancectl"),
            "30s",
            Path::new("/Library/LaunchDaemons"),
            &naming,
        );
        let r = check_bytes(
            &supervisor.to_xml(),
            Path::new("com.example.mail.instancectl.plist"),
            &Context::default(),
        );
        assert!(
            r.problems.is_empty() && r.warnings.is_empty() && r.notes.is_empty(),
            "{}",
            r.render()
        );
    }

    /// With Program set, ProgramArguments[0] is only argv[0]: a job that lists just the
    /// arguments there loses the first one (node never sees its script).
    #[test]
    fn the_first_argument_lost_to_argv0_is_found() {
        for (program, args) in [
            (
                "/usr/local/bin/node",
                "<string>/opt/app/server.js</string><string>--port</string><string>80</string>",
            ),
            (
                "/usr/local/bin/osqueryd",
                "<string>--flagfile=/var/osquery/osquery.flags</string>",
            ),
            ("/usr/bin/python3", "<string>sync.py</string>"),
        ] {
            let r = check(&format!(
                "<key>Program</key><string>{program}</string>\
                 <key>ProgramArguments</key><array>{args}</array>"
            ));
            assert_eq!(
                kinds(&r),
                [Kind::ProgramMismatch],
                "{program}: {}",
                r.render()
            );
            assert!(
                r.render()
                    .contains(&format!("ProgramArguments = [{program}, ")),
                "{}",
                r.render()
            );
        }
        // The working forms: argv[0] as the program's path or name, and a wrapper.
        for (program, args) in [
            (
                "/usr/local/bin/node",
                "<string>node</string><string>/opt/app/server.js</string>",
            ),
            (
                "/usr/libexec/sshd-keygen-wrapper",
                "<string>/usr/sbin/sshd</string><string>-i</string>",
            ),
            (
                "/bin/bash",
                "<string>/bin/sh</string><string>-c</string><string>exec x</string>",
            ),
        ] {
            let r = check(&format!(
                "<key>Program</key><string>{program}</string>\
                 <key>ProgramArguments</key><array>{args}</array>"
            ));
            assert!(
                r.problems.is_empty() && r.warnings.is_empty(),
                "{program}: {}",
                r.render()
            );
        }
    }

    /// A key written twice loads (the last value wins): a warning at the second one.
    #[test]
    fn a_repeated_key_is_a_warning() {
        let r = check(
            "<key>ProgramArguments</key><array><string>/bin/x</string></array>\n\
             <key>RunAtLoad</key><false/>\n<key>RunAtLoad</key><true/>",
        );
        assert!(r.problems.is_empty(), "{}", r.render());
        assert_eq!(r.warnings.len(), 1, "{}", r.render());
        assert_eq!(r.warnings[0].kind, Kind::Key);
        assert_eq!(r.warnings[0].line, Some(7), "{}", r.render());
        assert!(
            r.render().contains("written twice (first on line 6)"),
            "{}",
            r.render()
        );
    }

    /// The Disabled warning names the domain the override lives in: system for a
    /// daemon, the user's GUI domain for an agent.
    #[test]
    fn the_disabled_warning_names_the_right_domain() {
        let body = "<key>ProgramArguments</key><array><string>/bin/x</string></array>\
                    <key>Disabled</key><true/>";
        let r = check_bytes(
            &plist(body),
            Path::new("/Library/LaunchDaemons/x.plist"),
            &Context::default(),
        );
        assert!(
            r.render().contains("launchctl enable system/x"),
            "{}",
            r.render()
        );
        // instancectl's own command is offered for a Postfix master only.
        assert!(
            !r.render().contains("instancectl disable"),
            "{}",
            r.render()
        );
        let master = body.replace(
            "/bin/x</string>",
            "/usr/libexec/postfix/master</string><string>-c</string><string>/etc/postfix-in</string>",
        );
        let r = check_bytes(
            &plist(&format!("{master}<key>KeepAlive</key><true/>")),
            Path::new("/Library/LaunchDaemons/x.plist"),
            &Context::default(),
        );
        assert!(
            r.render().contains("instancectl disable NAME"),
            "{}",
            r.render()
        );
        let r = check_bytes(
            &plist(body),
            Path::new("/Users/a/Library/LaunchAgents/x.plist"),
            &Context::default(),
        );
        let text = r.render();
        assert!(text.contains("launchctl enable gui/$(id -u)/x"), "{text}");
        assert!(text.contains("print-disabled gui/$(id -u)"), "{text}");
        assert!(!text.contains("instancectl disable"), "{text}");
    }

    /// An agent's plist (LimitLoadToSessionType Aqua) installed as a LaunchDaemon is
    /// not loaded; Homebrew's list of all five sessions includes System and loads.
    #[test]
    fn a_daemon_limited_to_user_sessions_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let daemons = dir.path().join("LaunchDaemons");
        std::fs::create_dir(&daemons).unwrap();
        let ctx = Context {
            daemons_dir: daemons.clone(),
            ..Context::default()
        };
        let install = |name: &str, sessions: &str| {
            let path = daemons.join(name);
            std::fs::write(
                &path,
                plist_with_label(
                    name.trim_end_matches(".plist"),
                    &format!(
                        "<key>ProgramArguments</key><array><string>/bin/x</string></array>\
                         <key>LimitLoadToSessionType</key>{sessions}"
                    ),
                ),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
            check_file(&path, &ctx).unwrap()
        };
        let r = install("a.plist", "<string>Aqua</string>");
        assert_eq!(kinds(&r), [Kind::Key], "{}", r.render());
        assert!(
            r.render()
                .contains("Service cannot load in requested session")
        );
        let r = install(
            "b.plist",
            "<array><string>Aqua</string><string>Background</string><string>LoginWindow</string>\
             <string>StandardIO</string><string>System</string></array>",
        );
        assert!(r.problems.is_empty(), "{}", r.render());
        // The same agent's plist checked where it belongs is fine.
        let r = check_bytes(
            &plist(
                "<key>ProgramArguments</key><array><string>/bin/x</string></array>\
                    <key>LimitLoadToSessionType</key><string>Aqua</string>",
            ),
            Path::new("x.plist"),
            &Context::default(),
        );
        assert!(r.problems.is_empty(), "{}", r.render());
    }

    /// MacPorts runs `postfix start` under daemondo, which stays in the foreground and
    /// watches the daemon for launchd: the job is fine, and not a master job.
    #[test]
    fn postfix_under_macports_daemondo_is_fine() {
        let r = check(
            "<key>ProgramArguments</key><array><string>/opt/local/bin/daemondo</string>\
             <string>--label=postfix</string><string>--start-cmd</string>\
             <string>/opt/local/sbin/postfix</string><string>start</string><string>;</string>\
             <string>--stop-cmd</string><string>/opt/local/sbin/postfix</string>\
             <string>stop</string><string>;</string><string>--pid=none</string></array>\
             <key>Debug</key><false/><key>Disabled</key><false/><key>KeepAlive</key><true/>",
        );
        assert!(
            r.problems.is_empty() && r.warnings.is_empty(),
            "{}",
            r.render()
        );
    }

    #[test]
    fn missing_program_and_label() {
        let r = check_bytes(
            b"<plist version=\"1.0\"><dict><key>RunAtLoad</key><true/></dict></plist>",
            Path::new("a.plist"),
            &Context::default(),
        );
        let text = r.render();
        assert!(text.contains("no Label"), "{text}");
        assert!(text.contains("nothing to run"), "{text}");
        let r = check_bytes(
            &plist_with_label(" ", "<key>Program</key><string>/bin/x</string>"),
            Path::new("x.plist"),
            &Context::default(),
        );
        assert_eq!(kinds(&r), [Kind::Key], "{}", r.render());
        assert!(r.render().contains("the Label is empty"), "{}", r.render());
    }

    #[test]
    fn owner_and_mode() {
        let p = Path::new("/Library/LaunchDaemons/x.plist");
        // The group is not asked for: root:wheel, root:admin and root:staff 0644 all
        // load, because only the owner and the write bits can make launchd refuse.
        assert!(ownership(p, 0, 0o100644).is_empty());
        assert!(ownership(p, 0, 0o100444).is_empty());
        // 0600 (brew services before homebrew-services#126) and 0700 (what tailscaled
        // install-system-daemon writes) load too: no one else can write them.
        assert!(ownership(p, 0, 0o100600).is_empty());
        assert!(ownership(p, 0, 0o100700).is_empty());
        let group_writable = ownership(p, 0, 0o100664);
        assert_eq!(group_writable.len(), 1);
        assert!(
            group_writable[0]
                .message
                .contains("mode 0664 lets group write")
        );
        assert_eq!(
            group_writable[0].fix,
            "chmod 644 /Library/LaunchDaemons/x.plist"
        );
        // Owner and write bits only: a user-owned, world-writable file is wrong twice.
        assert_eq!(ownership(p, 501, 0o100666).len(), 2);
        assert_eq!(ownership(p, 501, 0o100644).len(), 1);
    }

    /// An installed root:admin 0644 file (what `sudo brew services` writes; admin is
    /// gid 80 on macOS) has no ownership problem, only a note; the same file
    /// group-writable has one.
    #[test]
    fn an_installed_root_admin_file_is_noted_not_refused() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let daemons = dir.path().join("LaunchDaemons");
        std::fs::create_dir(&daemons).unwrap();
        let path = daemons.join("org.test.x.plist");
        std::fs::write(&path, b"not checked here").unwrap();
        std::os::unix::fs::chown(&path, Some(0), Some(80)).unwrap();
        let ctx = Context {
            daemons_dir: daemons.clone(),
            wheel_gid: Some(0),
            ..Context::default()
        };
        let mode = |m| {
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(m))
                .unwrap()
        };
        let owner_problems = |r: &Report| {
            r.problems
                .iter()
                .filter(|p| p.kind == Kind::Ownership)
                .count()
        };
        mode(0o644);
        let report = check_file(&path, &ctx).unwrap();
        assert_eq!(owner_problems(&report), 0, "{}", report.render());
        assert!(report.notes.iter().any(|n| n.contains("gid 80, not wheel")));
        mode(0o664);
        let report = check_file(&path, &ctx).unwrap();
        assert_eq!(owner_problems(&report), 1, "{}", report.render());
    }

    #[test]
    fn what_a_job_runs() {
        let seed = argv(&["postmulti", "-i", "postfix.in", "-p", "start"]);
        let runs = instances_run_by(&seed);
        assert_eq!(runs, [Runs::Name("postfix.in".into())]);
        assert!(runs[0].matches("postfix-in", Path::new("/etc/postfix-in")));
        assert!(!runs[0].matches("postfix-out", Path::new("/etc/postfix-out")));
        let all = instances_run_by(&argv(&["/usr/sbin/postmulti", "-p", "start"]));
        assert_eq!(all, [Runs::Every]);
        let master = instances_run_by(&argv(&["/x/master", "-c", "/etc/postfix-out"]));
        assert!(master[0].matches("postfix-out", Path::new("/etc/postfix-out")));
        assert_eq!(suggest_name("in").as_deref(), Some("postfix-in"));
        assert_eq!(suggest_name("Postfix_Out").as_deref(), Some("postfix-out"));
    }

    /// Forms a hand edit leaves that launchd reads all the same give no finding: no
    /// DOCTYPE, comments between keys and inside an array (hiroaki-lion's `-e 60`
    /// commented out), `<true />`, a byte order mark, CRLF line ends. What follows
    /// `</plist>` is ignored by CoreFoundation: a warning, not a refusal.
    #[test]
    fn hand_edited_forms_that_load_give_no_alarm() {
        let plain = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n\
             <key>Label</key><string>org.postfix.postfix-out</string>\n\
             <!-- started at boot, kept alive -->\n<key>ProgramArguments</key>\n<array>\n\
             <string>/usr/libexec/postfix/master</string>\n<!-- <string>-e</string> -->\n\
             <string>-c</string>\n<string>/etc/postfix-out</string>\n</array>\n\
             <key>RunAtLoad</key>\n<true />\n<key>KeepAlive</key>\n<true/>\n</dict>\n</plist>\n";
        let name = Path::new("org.postfix.postfix-out.plist");
        for (what, bytes) in [
            ("no DOCTYPE, comments, <true />", plain.as_bytes().to_vec()),
            (
                "a byte order mark",
                [b"\xef\xbb\xbf", plain.as_bytes()].concat(),
            ),
            ("CRLF line ends", plain.replace('\n', "\r\n").into_bytes()),
        ] {
            let r = check_bytes(&bytes, name, &Context::default());
            assert!(findings(&r).is_empty(), "{what}: {}", r.render());
        }
        let trailing = format!("{plain}~\n~\n");
        let r = check_bytes(trailing.as_bytes(), name, &Context::default());
        let tilde_line = plain.lines().count() + 1;
        assert_eq!(findings(&r), [format!("warning[syntax]@{tilde_line}")]);
        assert_eq!(r.warnings[0].fix, "remove everything after </plist>");
    }

    /// What an administrator breaks by hand, each said with its fix.
    #[test]
    fn hand_broken_plists_say_what_is_wrong_and_how_to_fix_it() {
        let master = "<key>ProgramArguments</key><array>\
             <string>/usr/libexec/postfix/master</string><string>-c</string>\
             <string>/etc/postfix-in</string></array>";
        let cases = [
            (
                format!("{master}<key>RunAtLoad</key><true></true><key>KeepAlive</key><true/>"),
                "launchd refuses the whole file (\"Invalid property list\")",
                "write <true/>",
            ),
            (
                master.replace(
                    "</array>",
                    "<string>-e</string><string>60</string></array>\
                     <key>RunAtLoad</key><true/><key>KeepAlive</key><true/>",
                ),
                "the master is restarted every 60 seconds",
                "drop -e to keep the master running",
            ),
            (
                "<key>RunAtLoad</key><true/><key>KeepAlive</key><true/>".to_string(),
                "neither Program nor ProgramArguments: launchd has nothing to run",
                "[<daemon_directory>/master, -c, <config_directory>]",
            ),
            (
                format!(
                    "{master}<key>RunAtLoad</key><string>true</string><key>KeepAlive</key><true/>"
                ),
                "RunAtLoad must be <true/> or <false/>, not a <string>",
                "write <key>RunAtLoad</key> <true/>",
            ),
            (
                format!(
                    "{master}<key>KeepAlive</key><integer>1</integer><key>RunAtLoad</key><true/>"
                ),
                "KeepAlive must be <true/>, <false/> or a <dict> of conditions, not an <integer>",
                "write <key>KeepAlive</key> <true/>",
            ),
            (
                "<key>ProgramArguments</key><array><string>/usr/libexec/postfix/</string>\
                 <string>-c</string><string>/etc/postfix-in</string></array>\
                 <key>KeepAlive</key><true/>"
                    .to_string(),
                "/usr/libexec/postfix/ ends with '/': it names a directory",
                "name the program itself",
            ),
        ];
        for (body, message, fix) in cases {
            let r = check(&body);
            assert!(
                r.problems
                    .iter()
                    .any(|p| p.message.contains(message) && p.fix.contains(fix)),
                "{body}: {}",
                r.render()
            );
        }
    }

    /// A copy of the primary's job made for a secondary instance, with the `-c`
    /// forgotten, starts the primary again and never the instance.
    /// The master reads MAIL_CONFIG as -c sets it (Postfix trusts it from root), so a
    /// job that exports the instance's directory runs that instance.
    #[test]
    fn an_instances_master_given_mail_config_runs_the_instance() {
        let body = "<key>ProgramArguments</key><array>\
             <string>/usr/libexec/postfix/master</string></array>\
             <key>EnvironmentVariables</key><dict><key>MAIL_CONFIG</key>\
             <string>/etc/postfix-in</string></dict>\
             <key>RunAtLoad</key><true/><key>KeepAlive</key><true/>";
        let host = Context {
            instances: Some(vec![listed("postfix-in")]),
            ..Context::default()
        };
        let r = check_bytes(
            &plist_with_label("org.postfix.postfix-in", body),
            Path::new("org.postfix.postfix-in.plist"),
            &host,
        );
        assert!(findings(&r).is_empty(), "{}", r.render());
    }

    #[test]
    fn an_instances_master_without_its_config_directory_runs_the_primary() {
        let kept_alive = "<key>RunAtLoad</key><true/><key>KeepAlive</key><true/>";
        let without_c = format!(
            "<key>ProgramArguments</key><array><string>/usr/libexec/postfix/master</string>\
             </array>{kept_alive}"
        );
        let name = Path::new("org.postfix.postfix-in.plist");
        let host = Context {
            instances: Some(vec![listed("postfix-in")]),
            ..Context::default()
        };
        let bytes = plist_with_label("org.postfix.postfix-in", &without_c);
        let r = check_bytes(&bytes, name, &host);
        assert_eq!(kinds(&r), [Kind::WrongCommand], "{}", r.render());
        assert!(
            r.problems[0]
                .message
                .contains("starts the primary instance")
        );
        assert!(
            r.problems[0].fix.contains("-c, /etc/postfix-in]"),
            "{}",
            r.render()
        );
        // Judged by its contents alone, the Label's name is only a sign.
        let r = check_bytes(&bytes, name, &Context::default());
        assert!(r.problems.is_empty(), "{}", r.render());
        assert_eq!(findings(&r), ["warning[command]@5"], "{}", r.render());
        // With -c, or as the primary's own job, nothing to say.
        let with_c = without_c.replace(
            "</array>",
            "<string>-c</string><string>/etc/postfix-in</string></array>",
        );
        let r = check_bytes(
            &plist_with_label("org.postfix.postfix-in", &with_c),
            name,
            &host,
        );
        assert!(findings(&r).is_empty(), "{}", r.render());
        let primary = plist_with_label("org.postfix.master", &without_c);
        let r = check_bytes(&primary, Path::new("org.postfix.master.plist"), &host);
        assert!(findings(&r).is_empty(), "{}", r.render());
    }

    /// launchd starts a job with a Crashed condition at load as it does one with
    /// SuccessfulExit (core.c of launchd-842), unless AfterInitialDemand holds it back.
    #[test]
    fn a_crashed_condition_starts_the_master_at_load_unless_it_waits_for_demand() {
        let master = "<key>ProgramArguments</key><array>\
             <string>/usr/libexec/postfix/master</string><string>-c</string>\
             <string>/etc/postfix-in</string></array>";
        let r = check(&format!(
            "{master}<key>KeepAlive</key><dict><key>Crashed</key><true/></dict>"
        ));
        assert!(findings(&r).is_empty(), "{}", r.render());
        let r = check(&format!(
            "{master}<key>KeepAlive</key><dict><key>Crashed</key><true/>\
             <key>AfterInitialDemand</key><true/></dict>"
        ));
        assert_eq!(kinds(&r), [Kind::NotKeptAlive], "{}", r.render());
        // NetworkState is no longer acted on: it starts nothing.
        let r = check(&format!(
            "{master}<key>KeepAlive</key><dict><key>NetworkState</key><true/></dict>"
        ));
        assert_eq!(kinds(&r), [Kind::NotKeptAlive], "{}", r.render());
    }
}

//! The verdict on one instance, the problems behind it, and the command that fixes it,
//! from the facts gathered. A pure function, so every rule is tested without a running
//! Postfix.

use serde::Serialize;

use crate::check::{CheckResult, CheckStatus};
use crate::manager::{ManagerView, Override};
use crate::postfix::pid_file::MasterState;
use crate::postfix::queue::QueueCounts;
use crate::probe::ListenerStatus;
use crate::probe::sockets::Foreign;

/// One word for an instance's health, in order of how much it needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Enabled, the master runs, every listener answers, postfix check passes.
    Healthy,
    /// Not running, and that is fine: its service manager starts it on demand (the
    /// macOS primary instance).
    OnDemand,
    /// Disabled in postmulti: it is meant to be down.
    Disabled,
    /// Enabled, but stopped on purpose with `instancectl stop`: it stays down until
    /// `instancectl start`. Fine unless `status --strict`.
    Stopped,
    /// It runs, but something is wrong (a listener does not answer, the config does not
    /// pass postfix check, the master runs outside its service manager, ...).
    Degraded,
    /// Enabled but not serving: no master, or a master none of whose listeners answers.
    Down,
    /// A secondary instance whose main.cf is gone or names no directories of its own:
    /// Postfix would run it on the primary's. instancectl leaves it alone.
    Broken,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Healthy,
        Verdict::OnDemand,
        Verdict::Disabled,
        Verdict::Stopped,
        Verdict::Degraded,
        Verdict::Down,
        Verdict::Broken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::OnDemand => "on-demand",
            Verdict::Disabled => "disabled",
            Verdict::Stopped => "stopped",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
            Verdict::Broken => "broken",
        }
    }

    /// Whether `instancectl status` may exit 0 with an instance in this state;
    /// `strict` counts an instance stopped on purpose as a failure.
    pub fn is_ok(self, strict: bool) -> bool {
        match self {
            Verdict::Healthy | Verdict::OnDemand | Verdict::Disabled => true,
            Verdict::Stopped => !strict,
            Verdict::Degraded | Verdict::Down | Verdict::Broken => false,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What brings an instance back: a command, sometimes after something a person must
/// do first (correct a configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// What to do before the command, when the command alone does not fix it.
    pub first: Option<String>,
    /// The command to run.
    pub run: String,
}

impl Fix {
    fn run(command: String) -> Fix {
        Fix {
            first: None,
            run: command,
        }
    }

    fn after(first: String, command: String) -> Fix {
        Fix {
            first: Some(first),
            run: command,
        }
    }
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.first {
            Some(first) => write!(f, "{first}, then run: {}", self.run),
            None => write!(f, "run: {}", self.run),
        }
    }
}

/// Another instance configured on one of this instance's listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerClash {
    /// This instance's listener, e.g. `127.0.0.1:25`.
    pub ours: String,
    pub other: String,
    /// The other instance's name as instancectl takes it (`-` for the primary).
    pub other_name: String,
    /// The other instance's listener (differs from ours when one is a wildcard).
    pub theirs: String,
    pub other_enabled: bool,
}

/// Everything the verdict looks at.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// As instancectl takes it on its command line (`-` for the primary).
    pub name: &'a str,
    pub config_directory: &'a std::path::Path,
    pub enabled: bool,
    /// `instancectl stop` asked for it to stay down until `instancectl start`.
    pub held_down: bool,
    /// Why the instance is broken (its directories are not its own), if it is.
    pub broken: Option<&'a str>,
    /// Other programs listening on the running master's addresses and ports.
    pub foreign: &'a [Foreign],
    pub master: &'a MasterState,
    /// The name of the process that now has the stale pid file's pid, if one has.
    pub stale_pid_process: Option<&'a str>,
    pub manager: &'a ManagerView,
    pub listeners: &'a [ListenerStatus],
    pub check: &'a CheckResult,
    pub queues: Option<&'a QueueCounts>,
    pub clashes: &'a [ListenerClash],
    pub myhostname: &'a str,
    /// The other instances with the same myhostname.
    pub same_myhostname: &'a [String],
}

/// The verdict, the problems behind it, the fix, and warnings that do not change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Problems only: empty for a healthy, on-demand, disabled or stopped instance.
    pub reasons: Vec<String>,
    /// For every verdict but healthy, on-demand and disabled.
    pub fix: Option<Fix>,
    pub warnings: Vec<String>,
}

impl Judgement {
    /// A problem: the verdict becomes `v` when that is worse, and the fix of the worst
    /// problem (the first one found among equals) is the one offered.
    fn problem(&mut self, v: Verdict, reason: String, fix: Fix) {
        if v > self.verdict || self.fix.is_none() {
            self.fix = Some(fix);
        }
        if v > self.verdict {
            self.verdict = v;
        }
        self.reasons.push(reason);
    }
}

fn job_name(view: &ManagerView) -> String {
    match &view.label {
        Some(label) => format!("{} job {label}", view.kind),
        None => view.kind.to_string(),
    }
}

/// "3h12m", "45s": a short duration for people.
pub fn short_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// The line of Postfix's output that says most, with a note of how many more there
/// are: the first fatal error (Postfix prints warnings before it gives up, so the
/// reason it failed is often the last line), else the first line.
fn gist(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let severity = |line: &&&str| {
        ["panic:", "fatal:", "error:"]
            .iter()
            .position(|word| line.contains(word))
            .unwrap_or(usize::MAX)
    };
    let Some(gist) = lines.iter().min_by_key(severity) else {
        return String::new();
    };
    match lines.len() {
        1 => gist.to_string(),
        n => format!("{gist} (and {} more line(s))", n - 1),
    }
}

pub fn judge(f: &Facts) -> Judgement {
    let mut j = Judgement {
        verdict: Verdict::Healthy,
        reasons: Vec::new(),
        fix: None,
        warnings: Vec::new(),
    };
    let m = f.master;
    let view = f.manager;
    let name = f.name;
    let ctl = |verb: &str| format!("instancectl {verb} {name}");
    let check_first = || {
        format!(
            "correct what `postfix -c {} check` reports",
            f.config_directory.display()
        )
    };
    if let Some(why) = f.broken {
        j.verdict = Verdict::Broken;
        j.reasons.push(format!("broken: {why}"));
        return j;
    }

    // Warnings that hold whatever the verdict.
    if let (Some(file_pid), Some(pid)) = (m.pid_file_pid, m.pid)
        && m.running
        && file_pid != pid
    {
        j.warnings.push(format!(
            "{} names pid {file_pid}, but pid {pid} holds its lock",
            m.pid_file.display()
        ));
    }
    if let (true, Some(pid), Some(true)) = (m.stale, m.pid_file_pid, m.alive)
        && !f.enabled
    {
        j.warnings.push(format!(
            "stale pid file {}: pid {pid} now belongs to {}, not to a master",
            m.pid_file.display(),
            f.stale_pid_process
                .map_or("another process".to_string(), |n| format!("`{n}`"))
        ));
    }
    if !f.same_myhostname.is_empty() {
        j.warnings.push(format!(
            "myhostname {} is also the myhostname of {}: mail between them is refused \
             (\"mail loops back to myself\"); give each instance its own",
            f.myhostname,
            f.same_myhostname.join(", ")
        ));
    }
    match f.check.status {
        CheckStatus::Warnings => j
            .warnings
            .push(format!("postfix check warns: {}", gist(&f.check.output))),
        CheckStatus::Timeout => j.warnings.push(gist(&f.check.output)),
        _ => {}
    }
    if let Some(q) = f.queues.filter(|q| q.corrupt > 0) {
        j.warnings.push(format!(
            "{} damaged message(s) in the corrupt queue",
            q.corrupt
        ));
    }

    if !f.enabled {
        j.verdict = Verdict::Disabled;
        if m.running {
            j.warnings.push(format!(
                "disabled, but its master runs (pid {}); stop it or enable the instance",
                m.pid.map_or("?".into(), |p| p.to_string())
            ));
        }
        if view.disabled_override == Some(Override::Enabled) && view.loaded == Some(true) {
            j.warnings.push(format!(
                "disabled in postmulti, but the {} is loaded and enabled",
                job_name(view)
            ));
        }
        for c in f.clashes {
            j.warnings.push(format!(
                "{} is also configured for {}{}: enabling this instance would clash",
                c.ours,
                c.other,
                if c.ours == c.theirs {
                    String::new()
                } else {
                    format!(" ({})", c.theirs)
                }
            ));
        }
        return j;
    }

    if view.disabled_override == Some(Override::Disabled) {
        j.warnings.push(format!(
            "enabled in postmulti, but the {} is disabled: it will not start at boot",
            job_name(view)
        ));
    }
    // Neither taken as enabled nor as disabled: said, so that a release's new word
    // does not pass unnoticed.
    if let Some(Override::Unknown(word)) = &view.disabled_override {
        j.warnings.push(format!(
            "the {} has an override in a word instancectl does not know ({word:?}): \
             whether it starts at boot is unknown; see `launchctl print-disabled system`",
            job_name(view)
        ));
    }

    if let Some(problem) = &view.problem {
        // Without its supervisor nothing starts or restarts it: that comes first.
        let fix = match &view.start_command {
            Some(command) => Fix::run(command.clone()),
            None => Fix::run(ctl("start")),
        };
        j.problem(Verdict::Degraded, problem.clone(), fix);
    }

    if m.running {
        if f.held_down {
            j.warnings.push(format!(
                "marked stopped by `instancectl stop`, yet its master runs; `{}` clears the mark",
                ctl("start")
            ));
        }
        let failing: Vec<&ListenerStatus> = f.listeners.iter().filter(|l| !l.ok).collect();
        let described = |ls: &[&ListenerStatus]| {
            ls.iter()
                .map(|l| {
                    format!(
                        "{}: {}",
                        l.address,
                        l.error.as_deref().unwrap_or("no answer")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !failing.is_empty() && failing.len() == f.listeners.len() {
            j.problem(
                Verdict::Down,
                format!(
                    "no listener answers, although the master runs: {}",
                    described(&failing)
                ),
                Fix::run(ctl("restart")),
            );
        } else if !failing.is_empty() {
            j.problem(
                Verdict::Degraded,
                format!(
                    "{} of {} listeners do not answer: {}",
                    failing.len(),
                    f.listeners.len(),
                    described(&failing)
                ),
                Fix::run(ctl("restart")),
            );
        }
        let outside = |ours: i32| {
            Fix::after(
                format!(
                    "stop the master outside it (`kill {ours}`, or `postfix -c {} stop`)",
                    f.config_directory.display()
                ),
                ctl("start"),
            )
        };
        match (view.pid, m.pid) {
            (Some(theirs), Some(ours)) if theirs != ours => j.problem(
                Verdict::Degraded,
                format!(
                    "the master (pid {ours}) runs outside its service manager: the {} runs \
                     pid {theirs}",
                    job_name(view)
                ),
                outside(ours),
            ),
            (None, Some(ours)) if view.restarts_on_exit && view.state.is_some() => j.problem(
                Verdict::Degraded,
                format!(
                    "the master (pid {ours}) runs outside its service manager: the {} is {} \
                     and runs nothing, so it can neither stop nor restart this master",
                    job_name(view),
                    view.state.as_deref().unwrap_or("?")
                ),
                outside(ours),
            ),
            _ => {}
        }
        for other in f.foreign {
            j.problem(
                Verdict::Degraded,
                format!(
                    "{other}, which this master does not run: the kernel hands it some of the \
                     connections (SO_REUSEPORT); stop that program or move this instance"
                ),
                Fix::after("stop the other program".into(), ctl("restart")),
            );
        }
        if f.check.status == CheckStatus::Failed {
            j.problem(
                Verdict::Degraded,
                format!(
                    "postfix check fails: {}; the running master is not affected, but the \
                     next start will fail",
                    gist(&f.check.output)
                ),
                Fix::after(check_first(), ctl("reload")),
            );
        }
    } else if view.on_demand {
        // A problem of its on-demand job (found above) stays the verdict.
        j.verdict = j.verdict.max(Verdict::OnDemand);
        if f.check.status == CheckStatus::Failed {
            j.problem(
                Verdict::Degraded,
                format!(
                    "postfix check fails, so it will not start when needed: {}",
                    gist(&f.check.output)
                ),
                Fix::run(format!("postfix -c {} check", f.config_directory.display())),
            );
        }
    } else if f.held_down {
        // A problem with its manager (found above) stays the verdict.
        j.verdict = j.verdict.max(Verdict::Stopped);
        j.fix = Some(match &view.start_command {
            // `instancectl start` asks the supervisor, which must run first.
            Some(command) => Fix::after(format!("start the supervisor ({command})"), ctl("start")),
            None => Fix::run(ctl("start")),
        });
        if f.check.status == CheckStatus::Failed {
            j.warnings.push(format!(
                "postfix check fails, so it will not start: {}",
                gist(&f.check.output)
            ));
            j.fix = Some(Fix::after(check_first(), ctl("start")));
        }
    } else {
        let file = m.pid_file.display();
        let why = match (m.stale, m.pid_file_pid, m.alive) {
            (true, Some(pid), Some(true)) => format!(
                "not running: no master holds the lock of {file}, and the pid it names, \
                 {pid}, now belongs to {} (a stale pid file: the master is gone and its pid \
                 was reused)",
                f.stale_pid_process
                    .map_or("another process".to_string(), |n| format!("`{n}`"))
            ),
            (true, Some(pid), _) => format!(
                "not running: no master holds the lock of {file}; pid {pid}, which it names, \
                 is gone (the master stopped or was killed; Postfix leaves the file behind)"
            ),
            (true, None, _) => {
                format!("not running: no master holds the lock of {file}, which names no pid")
            }
            _ => match &m.error {
                Some(e) => format!("not running, as far as can be told: {e}"),
                None => format!("not running: no master (no {file})"),
            },
        };
        // Without its manager nothing starts it: that comes first.
        let fix = match (&view.start_command, f.check.status) {
            (Some(command), _) => Fix::run(command.clone()),
            (None, CheckStatus::Failed) => Fix::after(check_first(), ctl("start")),
            (None, _) => Fix::run(ctl("start")),
        };
        j.problem(Verdict::Down, why, fix);
        if let Some(theirs) = view.pid {
            j.reasons.push(format!(
                "the {} runs pid {theirs}, but no master holds the pid file's lock",
                job_name(view)
            ));
        }
        let mut said = Vec::new();
        if let Some(state) = &view.state {
            said.push(format!("state = {state}"));
        }
        if let Some(runs) = view.runs {
            said.push(format!("runs = {runs}"));
        }
        if let Some(code) = &view.last_exit_code {
            said.push(format!("last exit code = {code}"));
        }
        if view.restarts_on_exit && !said.is_empty() {
            j.reasons
                .push(format!("the {} says: {}", job_name(view), said.join(", ")));
        }
        if f.check.status == CheckStatus::Failed {
            j.reasons.push(format!(
                "postfix check fails, which keeps it from starting: {}",
                gist(&f.check.output)
            ));
        }
    }

    for c in f.clashes {
        let theirs = if c.ours == c.theirs {
            String::new()
        } else {
            format!(" (as {})", c.theirs)
        };
        if c.other_enabled && j.verdict != Verdict::Stopped {
            j.problem(
                Verdict::Degraded,
                format!(
                    "{} is also configured for {}{theirs}: only one of them can bind it",
                    c.ours, c.other
                ),
                Fix::run(format!("instancectl disable {}", c.other_name)),
            );
        } else {
            j.warnings.push(format!(
                "{} is also configured for {}{theirs}, which is disabled: enabling it would clash",
                c.ours, c.other
            ));
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::ManagerKind;
    use crate::postfix::pid_file::LockState;
    use crate::probe::ProbeKind;
    use std::path::PathBuf;

    fn master(running: bool, pid: Option<i32>) -> MasterState {
        MasterState {
            pid_file: PathBuf::from("/var/spool/postfix-a/pid/master.pid"),
            pid_file_pid: pid,
            lock: if running {
                LockState::Held
            } else if pid.is_some() {
                LockState::Free
            } else {
                LockState::NoFile
            },
            pid: if running { pid } else { None },
            running,
            stale: !running && pid.is_some(),
            alive: pid.map(|_| running),
            lock_holder: if running { pid } else { None },
            holds_lock: pid.map(|_| running),
            error: None,
        }
    }

    fn listener(addr: &str, ok: bool) -> ListenerStatus {
        ListenerStatus {
            address: addr.into(),
            probed: addr.into(),
            service: "smtp/inet".into(),
            command: "smtpd".into(),
            probe: ProbeKind::Smtp,
            ok,
            banner: ok.then(|| "220 a.example ESMTP Postfix".into()),
            latency_ms: ok.then_some(0.5),
            error: (!ok).then(|| "Connection refused (os error 111)".into()),
            remembered: false,
        }
    }

    fn check(status: CheckStatus, output: &str) -> CheckResult {
        CheckResult {
            status,
            output: output.into(),
            checked_at: Some("2024-11-22T15:54:55Z".into()),
            checked_at_unix: Some(1_732_290_895),
            duration_ms: Some(500),
            cached: false,
            reason: None,
            quick: false,
            full_check_due: false,
        }
    }

    struct Case {
        enabled: bool,
        held_down: bool,
        master: MasterState,
        view: ManagerView,
        listeners: Vec<ListenerStatus>,
        check: CheckResult,
        clashes: Vec<ListenerClash>,
        same: Vec<String>,
    }

    impl Case {
        fn healthy() -> Case {
            Case {
                enabled: true,
                held_down: false,
                master: master(true, Some(315)),
                view: ManagerView::empty(ManagerKind::Postfix),
                listeners: vec![listener("127.0.0.1:2525", true)],
                check: check(CheckStatus::Ok, ""),
                clashes: vec![],
                same: vec![],
            }
        }

        fn judge(&self) -> Judgement {
            judge(&self.facts())
        }

        fn facts(&self) -> Facts<'_> {
            Facts {
                name: "postfix-a",
                config_directory: std::path::Path::new("/etc/postfix-a"),
                enabled: self.enabled,
                held_down: self.held_down,
                broken: None,
                foreign: &[],
                master: &self.master,
                stale_pid_process: None,
                manager: &self.view,
                listeners: &self.listeners,
                check: &self.check,
                queues: None,
                clashes: &self.clashes,
                myhostname: "a.example",
                same_myhostname: &self.same,
            }
        }
    }

    fn launchd_view(state: &str, pid: Option<i32>) -> ManagerView {
        ManagerView {
            label: Some("org.postfix.postfix-a".into()),
            state: Some(state.into()),
            pid,
            runs: Some(3),
            last_exit_code: Some("(never exited)".into()),
            restarts_on_exit: true,
            loaded: Some(true),
            ..ManagerView::empty(ManagerKind::Postfix)
        }
    }

    /// A master that serves, with no supervisor to bring it back when it dies, is
    /// not "all healthy".
    #[test]
    fn a_manager_problem_degrades_a_serving_instance() {
        let mut case = Case::healthy();
        case.view = ManagerView {
            problem: Some("no instancectl supervisor is running".into()),
            ..ManagerView::empty(ManagerKind::Native)
        };
        let j = case.judge();
        assert_eq!(j.verdict, Verdict::Degraded);
        assert!(
            j.reasons
                .contains(&"no instancectl supervisor is running".to_string()),
            "{j:?}"
        );
    }

    #[test]
    fn the_gist_of_a_failed_check_is_its_fatal_line() {
        let output = "postfix: warning: valid_hostname: misplaced hyphen: x-.vm\n\
                      postfix/postfix-script: warning: not owned by root: /x\n\
                      postfix: fatal: file /etc/postfix-x/main.cf: parameter myhostname: \
                      bad parameter value: x-.vm\n";
        assert_eq!(
            gist(output),
            "postfix: fatal: file /etc/postfix-x/main.cf: parameter myhostname: bad parameter \
             value: x-.vm (and 2 more line(s))"
        );
        assert_eq!(
            gist("warning: a\nwarning: b\n"),
            "warning: a (and 1 more line(s))"
        );
        assert_eq!(gist("  one  \n\n"), "one");
        assert_eq!(gist(""), "");
    }

    #[test]
    fn another_program_on_a_listener_degrades() {
        let c = Case::healthy();
        let other = [Foreign {
            listener: "127.0.0.1:2525".into(),
            socket: "127.0.0.1:2525".parse().unwrap(),
            holders: vec![crate::probe::sockets::Holder {
                pid: 900,
                pgid: Some(900),
                name: "python3".into(),
            }],
        }];
        let j = judge(&Facts {
            foreign: &other,
            ..c.facts()
        });
        assert_eq!(j.verdict, Verdict::Degraded);
        assert!(
            j.reasons.iter().any(|r| r.starts_with(
                "127.0.0.1:2525 is also listened on by pid 900 `python3`, which this master \
                 does not run"
            )),
            "{j:?}"
        );
    }

    #[test]
    fn healthy_has_no_problems() {
        let j = Case::healthy().judge();
        assert_eq!(j.verdict, Verdict::Healthy);
        // Reasons are problems; a healthy instance has none, and needs no fix.
        assert!(j.reasons.is_empty(), "{j:?}");
        assert_eq!(j.fix, None);
        assert!(j.warnings.is_empty());
    }

    #[test]
    fn stopped_and_stale_are_down() {
        let mut c = Case::healthy();
        c.master = master(false, None);
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Down);
        assert!(j.reasons[0].contains("no master"), "{j:?}");
        assert_eq!(
            j.fix.as_ref().unwrap().to_string(),
            "run: instancectl start postfix-a"
        );

        c.master = master(false, Some(315));
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Down);
        assert!(
            j.reasons[0].contains("pid 315, which it names, is gone"),
            "{j:?}"
        );

        c.master.alive = Some(true);
        let j = judge(&Facts {
            stale_pid_process: Some("sleep"),
            ..c.facts()
        });
        assert_eq!(j.verdict, Verdict::Down);
        assert!(
            j.reasons[0].contains("now belongs to `sleep` (a stale pid file"),
            "{j:?}"
        );
    }

    #[test]
    fn listeners_decide_between_degraded_and_down() {
        let mut c = Case::healthy();
        c.listeners = vec![
            listener("127.0.0.1:2525", true),
            listener("127.0.0.1:2526", false),
        ];
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Degraded);
        assert_eq!(
            j.reasons,
            ["1 of 2 listeners do not answer: 127.0.0.1:2526: Connection refused (os error 111)"]
        );
        assert_eq!(
            j.fix.as_ref().unwrap().to_string(),
            "run: instancectl restart postfix-a"
        );
        c.listeners = vec![listener("127.0.0.1:2525", false)];
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Down);
        assert!(j.reasons[0].contains("no listener answers"), "{j:?}");
    }

    #[test]
    fn disabled_and_on_demand_are_fine() {
        let mut c = Case::healthy();
        c.enabled = false;
        c.master = master(false, None);
        assert_eq!(c.judge().verdict, Verdict::Disabled);
        assert!(c.judge().verdict.is_ok(true));
        assert!(c.judge().reasons.is_empty());
        assert_eq!(c.judge().fix, None);

        let mut c = Case::healthy();
        c.master = master(false, None);
        c.view.on_demand = true;
        c.view.label = Some("org.postfix.master".into());
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::OnDemand);
        assert!(j.verdict.is_ok(true));
        assert!(j.reasons.is_empty(), "{j:?}");

        c.check = check(CheckStatus::Failed, "postfix: fatal: bad");
        assert_eq!(c.judge().verdict, Verdict::Degraded);
    }

    #[test]
    fn stopped_on_purpose_is_not_down() {
        let mut c = Case::healthy();
        c.master = master(false, Some(315));
        c.held_down = true;
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Stopped);
        assert!(j.verdict.is_ok(false));
        assert!(!j.verdict.is_ok(true), "--strict counts it");
        assert!(j.reasons.is_empty(), "{j:?}");
        assert_eq!(
            j.fix.as_ref().unwrap().to_string(),
            "run: instancectl start postfix-a"
        );

        c.check = check(CheckStatus::Failed, "postfix: fatal: bad");
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Stopped);
        assert_eq!(
            j.fix.as_ref().unwrap().to_string(),
            "correct what `postfix -c /etc/postfix-a check` reports, then run: \
             instancectl start postfix-a"
        );
        assert!(j.warnings[0].contains("will not start"), "{j:?}");

        // Without a supervisor to ask, that comes first.
        c.check = check(CheckStatus::Ok, "");
        c.view.start_command = Some("systemctl enable --now instancectl".into());
        assert_eq!(
            c.judge().fix.unwrap().to_string(),
            "start the supervisor (systemctl enable --now instancectl), then run: \
             instancectl start postfix-a"
        );

        // Started behind instancectl's back: judged as running, with a warning.
        c.master = master(true, Some(315));
        c.check = check(CheckStatus::Ok, "");
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Healthy);
        assert!(j.warnings[0].contains("marked stopped"), "{j:?}");
    }

    #[test]
    fn without_its_supervisor_the_fix_is_to_start_it() {
        let mut c = Case::healthy();
        c.master = master(false, None);
        c.view = ManagerView::empty(ManagerKind::Native);
        c.view.problem = Some("nothing restarts this instance if its master dies".into());
        c.view.start_command = Some("systemctl enable --now instancectl".into());
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Down);
        assert_eq!(
            j.fix.as_ref().unwrap().run,
            "systemctl enable --now instancectl"
        );
        // Serving, but nothing would bring it back: the same fix.
        c.master = master(true, Some(315));
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Degraded);
        assert_eq!(
            j.fix.as_ref().unwrap().to_string(),
            "run: systemctl enable --now instancectl"
        );
        // Stopped on purpose, but without a supervisor: the manager's problem stays.
        c.master = master(false, Some(315));
        c.held_down = true;
        assert_eq!(c.judge().verdict, Verdict::Degraded);
    }

    #[test]
    fn master_outside_its_manager() {
        let mut c = Case::healthy();
        c.view = launchd_view("running", Some(4711));
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Degraded);
        assert!(j.reasons.iter().any(|r| r.contains(
            "the master (pid 315) runs outside its service manager: the postfix job \
             org.postfix.postfix-a runs pid 4711"
        )));

        c.view = launchd_view("not running", None);
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Degraded);
        assert!(
            j.reasons
                .iter()
                .any(|r| r.contains("is not running and runs nothing"))
        );

        c.view = launchd_view("running", Some(315));
        assert_eq!(c.judge().verdict, Verdict::Healthy);
    }

    #[test]
    fn an_override_in_an_unknown_word_is_said() {
        let mut c = Case::healthy();
        c.view = launchd_view("running", Some(315));
        c.view.disabled_override = Some(Override::Unknown("paused".into()));
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Healthy);
        assert!(
            j.warnings
                .iter()
                .any(|w| w.contains("does not know (\"paused\")")),
            "{j:?}"
        );
        c.view.disabled_override = Some(Override::Enabled);
        assert!(c.judge().warnings.is_empty());
    }

    #[test]
    fn manager_details_explain_a_down_instance() {
        let mut c = Case::healthy();
        c.master = master(false, None);
        c.view = launchd_view("spawn scheduled", None);
        c.view.last_exit_code = Some("78: EX_CONFIG".into());
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Down);
        assert!(
            j.reasons
                .iter()
                .any(|r| r
                    .contains("state = spawn scheduled, runs = 3, last exit code = 78: EX_CONFIG")),
            "{j:?}"
        );
    }

    #[test]
    fn check_failure_degrades_a_running_instance() {
        let mut c = Case::healthy();
        c.check = check(
            CheckStatus::Failed,
            "postfix: fatal: /etc/postfix-a/main.cf, line 3: missing '=' after attribute name",
        );
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Degraded);
        assert!(j.reasons.iter().any(|r| r.contains("missing '='")));

        c.check = check(
            CheckStatus::Warnings,
            "warning: not owned by root: x\nwarning: y",
        );
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Healthy);
        assert_eq!(
            j.warnings,
            ["postfix check warns: warning: not owned by root: x (and 1 more line(s))"]
        );
    }

    #[test]
    fn clashes_degrade_only_when_both_are_enabled() {
        let mut c = Case::healthy();
        c.clashes = vec![ListenerClash {
            ours: "127.0.0.1:2525".into(),
            other: "postfix-b".into(),
            other_name: "postfix-b".into(),
            theirs: "*:2525".into(),
            other_enabled: true,
        }];
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Degraded);
        assert!(j.reasons.iter().any(|r| r
            == "127.0.0.1:2525 is also configured for postfix-b (as *:2525): only one of them can bind it"));
        assert_eq!(j.fix.as_ref().unwrap().run, "instancectl disable postfix-b");
        c.clashes[0].other_enabled = false;
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Healthy);
        assert_eq!(j.warnings.len(), 1);
    }

    #[test]
    fn shared_myhostname_is_a_warning() {
        let mut c = Case::healthy();
        c.same = vec!["postfix-b".into()];
        let j = c.judge();
        assert_eq!(j.verdict, Verdict::Healthy);
        assert!(j.warnings[0].contains("also the myhostname of postfix-b"));
    }

    #[test]
    fn durations() {
        assert_eq!(short_duration(5), "5s");
        assert_eq!(short_duration(65), "1m05s");
        assert_eq!(short_duration(3700), "1h01m");
        assert_eq!(short_duration(90000), "1d01h");
    }
}

//! The text of `launchctl print system/LABEL` and `launchctl print-disabled system`.
//!
//! Parsers of real output must cope with blank lines, nested blocks (whose deeper-indented
//! `state = active` is not the job's state), and a `last terminating signal` line that
//! replaces `last exit code` after a death by signal, so the emulator prints all of those
//! the way recorded macOS output does. Right after a spawn the state is `xpcproxy` for a
//! moment ([`crate::supervisor::XPCPROXY_WINDOW`], or as long as `--xpcproxy-hold` says,
//! [`crate::supervisor::Xpcproxy`]) while the previous run's end is still
//! shown, as recorded on macOS 15 and 26: a driver must not take that end for the new
//! run's.

use crate::macos::Macos;
use crate::procs::{self, DEFAULT_PATH, LastExit};
use crate::supervisor::Job;
use std::fmt::Write;

/// The name launchd appends to a sysexits(3) status, as in `78: EX_CONFIG`.
fn sysexits_name(code: i32) -> Option<&'static str> {
    Some(match code {
        64 => "EX_USAGE",
        65 => "EX_DATAERR",
        66 => "EX_NOINPUT",
        67 => "EX_NOUSER",
        68 => "EX_NOHOST",
        69 => "EX_UNAVAILABLE",
        70 => "EX_SOFTWARE",
        71 => "EX_OSERR",
        72 => "EX_OSFILE",
        73 => "EX_CANTCREAT",
        74 => "EX_IOERR",
        75 => "EX_TEMPFAIL",
        76 => "EX_PROTOCOL",
        77 => "EX_NOPERM",
        78 => "EX_CONFIG",
        _ => return None,
    })
}

/// One line about how the job last ended.
fn last_exit_line(last: Option<LastExit>) -> String {
    match last {
        None => "last exit code = (never exited)".to_string(),
        Some(LastExit::Exited(code)) => match sysexits_name(code) {
            Some(name) => format!("last exit code = {code}: {name}"),
            None => format!("last exit code = {code}"),
        },
        Some(LastExit::Signaled(sig)) => format!(
            "last terminating signal = {}: {sig}",
            procs::signal_description(sig)
        ),
    }
}

/// The block `launchctl print system/LABEL` prints for a loaded job. The `type` and `job
/// state` lines are printed from macOS 13 on: the recordings of OS X 10.10, 10.14/15 and
/// macOS 11/12 have neither (tests/data/launchctl/print-running-yosemite-boxen-104,
/// print-running-properties-block-mojave-shipit, print-not-running-system-mip-17).
pub fn service(job: &Job, macos: Macos) -> String {
    let spec = &job.spec;
    let running = job.pid.is_some();
    let mut o = String::new();
    // Writing to a String cannot fail.
    let mut line = |depth: usize, text: &str| {
        let _ = writeln!(o, "{}{text}", "\t".repeat(depth));
    };
    line(0, &format!("system/{} = {{", spec.label));
    line(1, &format!("active count = {}", u8::from(running)));
    line(1, &format!("path = {}", job.path.display()));
    if macos.is_13_or_later() {
        line(1, "type = LaunchDaemon");
    }
    line(1, &format!("state = {}", job.state_name()));
    line(0, "");
    line(1, &format!("program = {}", spec.program));
    line(1, "arguments = {");
    for arg in &spec.arguments {
        line(2, arg);
    }
    line(1, "}");
    line(0, "");
    if let Some(dir) = &spec.working_directory {
        line(1, &format!("working directory = {dir}"));
        line(0, "");
    }
    if spec.stdout_path.is_some() || spec.stderr_path.is_some() {
        if let Some(p) = &spec.stdout_path {
            line(1, &format!("stdout path = {p}"));
        }
        if let Some(p) = &spec.stderr_path {
            line(1, &format!("stderr path = {p}"));
        }
        line(0, "");
    }
    line(1, "default environment = {");
    line(2, &format!("PATH => {DEFAULT_PATH}"));
    line(1, "}");
    line(0, "");
    line(1, "environment = {");
    let mut env = spec.environment.clone();
    env.entry("XPC_SERVICE_NAME".to_string())
        .or_insert_with(|| spec.label.clone());
    for (k, v) in &env {
        line(2, &format!("{k} => {v}"));
    }
    line(1, "}");
    line(0, "");
    line(1, "domain = system");
    if let Some(user) = &spec.user_name {
        line(1, &format!("username = {user}"));
    }
    if let Some(group) = &spec.group_name {
        line(1, &format!("group = {group}"));
    }
    line(1, &format!("minimum runtime = {}", spec.throttle_interval));
    line(1, &format!("exit timeout = {}", spec.exit_timeout));
    line(1, &format!("runs = {}", job.runs));
    if let Some(pid) = job.pid {
        line(1, &format!("pid = {pid}"));
    }
    line(1, &last_exit_line(job.last_exit));
    line(0, "");
    line(1, "resource coalition = {");
    line(2, &format!("ID = {}", 1000 + job.instance));
    line(2, "type = resource");
    line(2, "state = active");
    line(2, &format!("active count = {}", u8::from(running)));
    line(2, &format!("name = {}", spec.label));
    line(1, "}");
    line(0, "");
    line(1, "spawn type = daemon (3)");
    // `job state` too is only recorded from macOS 13 on.
    if macos.is_13_or_later() {
        if running {
            line(1, "job state = running");
        } else if job.last_exit.is_some() {
            line(1, "job state = exited");
        }
    }
    let mut props = Vec::new();
    if spec.has_keepalive() {
        props.push("keepalive");
    }
    if spec.run_at_load {
        props.push("runatload");
    }
    if spec.inferred_program {
        props.push("inferred program");
    }
    if spec.abandon_process_group {
        props.push("abandon process group");
    }
    if !props.is_empty() {
        line(0, "");
        line(1, &format!("properties = {}", props.join(" | ")));
    }
    line(0, "}");
    o
}

/// `launchctl print-disabled system`: every override, in the layout of the release.
/// Up to macOS 12: unindented, `=> true`/`=> false`, nothing after it (the system
/// domain has no `login item associations` block; a user domain's has); from macOS 13:
/// a blank first line, the block indented by a tab and its entries by two, `=>
/// disabled`/`=> enabled` (tests/data/launchctl has both).
pub fn disabled<'a>(overrides: impl Iterator<Item = (&'a str, bool)>, macos: Macos) -> String {
    let new = macos.is_13_or_later();
    let (outer, inner) = if new { ("\t", "\t\t") } else { ("", "\t") };
    let mut o = String::new();
    if new {
        o.push('\n');
    }
    let _ = writeln!(o, "{outer}disabled services = {{");
    for (label, disabled) in overrides {
        let word = match (disabled, new) {
            (true, true) => "disabled",
            (false, true) => "enabled",
            (true, false) => "true",
            (false, false) => "false",
        };
        let _ = writeln!(o, "{inner}\"{label}\" => {word}");
    }
    let _ = writeln!(o, "{outer}}}");
    o
}

//! `launchctl`: the real command's arguments, messages and exit statuses, for the subset of
//! subcommands instancectl uses, talking to `launchd-emulator` instead of launchd.
//!
//! As in the real tool, arguments are checked here (a usage error exits 64 with the
//! subcommand's usage) and the daemon's errno-style answer becomes the message and the exit
//! status. Only the `system` domain exists in the emulator.

use crate::errors::{E2BIMPL, ENODOMAIN, ENOENT, ENOSERVICE, ESRCH, EX_USAGE, strerror};
use crate::procs::parse_signal;
use crate::protocol::{Request, Response};
use std::io;
use std::path::Path;

/// What one launchctl invocation prints and exits with.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Subcommands with the usage text printed for them.
const SUBCOMMANDS: &[(&str, &str, &str)] = &[
    (
        "bootstrap",
        "<domain-target> [service-path, service-path2, ...]",
        "Bootstraps a domain or a service into a domain.",
    ),
    (
        "bootout",
        "<domain-target> [service-path1, service-path2, ...] | <service-target>",
        "Tears down a domain or removes a service from a domain.",
    ),
    ("enable", "<service-target>", "Enables an existing service."),
    (
        "disable",
        "<service-target>",
        "Disables an existing service.",
    ),
    (
        "kickstart",
        "[-kp] <service-target>",
        "Forces an existing service to start.",
    ),
    (
        "kill",
        "<signal-name|signal-number> <service-target>",
        "Sends a signal to the service instance.",
    ),
    (
        "print",
        "<domain-target> | <service-target>",
        "Prints a description of a domain or service.",
    ),
    (
        "print-disabled",
        "<domain-target>",
        "Prints which services are disabled.",
    ),
    (
        "reboot",
        "[system|userspace|halt|obliterate] [-s]",
        "Initiates a system reboot of the specified type.",
    ),
    (
        "help",
        "<subcommand>",
        "Prints the usage for a given subcommand.",
    ),
];

/// Real subcommands the emulator does not provide.
const NOT_EMULATED: &[&str] = &[
    "load",
    "unload",
    "list",
    "start",
    "stop",
    "remove",
    "submit",
    "setenv",
    "unsetenv",
    "getenv",
    "error",
    "variant",
    "version",
    "blame",
    "attach",
    "debug",
    "limit",
    "runstats",
    "examine",
    "config",
    "procinfo",
    "hostinfo",
    "resolveport",
    "managerpid",
    "manageruid",
    "managername",
    "asuser",
    "bsexec",
    "print-cache",
    "print-token",
    "dumpstate",
    "dumpjpcategory",
    "plist",
    "uncache",
    "userswitch",
];

/// A parsed `<domain-target>` or `<service-target>`.
enum Target {
    /// `system` or `system/LABEL`.
    System(Option<String>),
    /// A domain launchd has but the emulator does not, described as launchctl names it.
    Elsewhere(String),
    /// Not a target specifier at all.
    Bad,
}

fn parse_target(spec: &str) -> Target {
    let mut parts = spec.splitn(3, '/');
    let domain = parts.next().unwrap_or("");
    let second = parts.next().filter(|s| !s.is_empty());
    if domain == "system" {
        return Target::System(second.map(str::to_string));
    }
    let kind = match domain {
        "user" => "uid",
        "gui" => "user gui",
        "login" => "login",
        "session" => "asid",
        "pid" => "pid",
        _ => return Target::Bad,
    };
    match second.map(str::parse::<u64>) {
        Some(Ok(handle)) => Target::Elsewhere(format!("{kind}: {handle}")),
        _ => Target::Bad,
    }
}

fn general_usage() -> String {
    let mut s = String::from(
        "Usage: launchctl <subcommand> ... | help [subcommand]\n\
         Many subcommands take a target specifier that refers to a domain or service\n\
         within that domain. The emulated launchd has one domain:\n\
         \n\
         system/[service-name]\n\
         The system-wide domain, or a service within it.\n\
         \nSubcommands:\n",
    );
    for (name, _, what) in SUBCOMMANDS {
        s.push_str(&format!("\t{name:<16}{what}\n"));
    }
    s
}

fn usage(sub: &str) -> Outcome {
    let text = SUBCOMMANDS
        .iter()
        .find(|(name, ..)| *name == sub)
        .map_or_else(
            || "help <subcommand>".to_string(),
            |(n, u, _)| format!("{n} {u}"),
        );
    Outcome {
        code: EX_USAGE,
        stderr: format!("Usage: launchctl {text}\n"),
        ..Outcome::default()
    }
}

fn bad_name(sub: &str) -> Outcome {
    let mut out = usage(sub);
    out.stderr = format!(
        "Unrecognized target specifier. <service-target> takes a form of <domain-target>/<service-id>.\n\
         Please refer to `man launchctl` for explanation of the <domain-target> specifiers.\n{}",
        out.stderr
    );
    out
}

fn failure(code: i32, stderr: String) -> Outcome {
    Outcome {
        code,
        stderr,
        ..Outcome::default()
    }
}

fn no_domain(desc: &str) -> Outcome {
    failure(ENODOMAIN, format!("Could not find domain for {desc}\n"))
}

fn no_service(label: &str) -> Outcome {
    failure(
        ENOSERVICE,
        format!("Could not find service \"{label}\" in domain for system\n"),
    )
}

fn not_emulated() -> Outcome {
    failure(
        E2BIMPL,
        "Command is not yet implemented. (not provided by the launchd emulator)\n".to_string(),
    )
}

/// Resolves `target` to a service label in the system domain, or the outcome to report.
fn service_label(sub: &str, target: &str) -> Result<String, Outcome> {
    match parse_target(target) {
        Target::System(Some(label)) => Ok(label),
        Target::System(None) | Target::Bad => Err(bad_name(sub)),
        Target::Elsewhere(desc) => Err(no_domain(&desc)),
    }
}

/// Checks that `target` names the system domain itself.
fn system_domain(sub: &str, target: &str) -> Result<(), Outcome> {
    match parse_target(target) {
        Target::System(None) => Ok(()),
        Target::System(Some(_)) | Target::Bad => Err(bad_name(sub)),
        Target::Elsewhere(desc) => Err(no_domain(&desc)),
    }
}

/// Runs one launchctl invocation. `args[0]` is the subcommand; `send` delivers a request
/// to the daemon; `cwd` makes relative plist paths absolute as launchctl does.
pub fn run(
    args: &[String],
    send: &mut dyn FnMut(Request) -> io::Result<Response>,
    stdout_is_tty: bool,
    cwd: &Path,
) -> Outcome {
    let Some(sub) = args.first().map(String::as_str) else {
        return Outcome {
            stdout: general_usage(),
            ..Outcome::default()
        };
    };
    let result = match sub {
        "bootstrap" => bootstrap(args, send, cwd),
        "bootout" => bootout(args, send, cwd),
        "enable" | "disable" => enable(args, send),
        "kickstart" => kickstart(args, send, stdout_is_tty),
        "kill" => kill(args, send),
        "print" => print(args, send),
        "print-disabled" => print_disabled(args, send),
        "reboot" => reboot(args, send),
        "help" => Ok(help(args)),
        s if NOT_EMULATED.contains(&s) => Ok(not_emulated()),
        s => Ok(Outcome {
            code: 1,
            stdout: general_usage(),
            stderr: format!("Unrecognized subcommand: {s}\n"),
        }),
    };
    result.unwrap_or_else(|e| {
        failure(
            69,
            format!("launchctl: cannot reach the launchd emulator: {e}\n"),
        )
    })
}

fn help(args: &[String]) -> Outcome {
    match args.get(1) {
        None => Outcome {
            stdout: general_usage(),
            ..Outcome::default()
        },
        Some(sub) => {
            let out = usage(sub);
            let known = SUBCOMMANDS.iter().any(|(n, ..)| n == sub);
            Outcome {
                code: if known { 0 } else { EX_USAGE },
                ..out
            }
        }
    }
}

fn absolute(cwd: &Path, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        cwd.join(path).to_string_lossy().into_owned()
    }
}

type Send<'a> = &'a mut dyn FnMut(Request) -> io::Result<Response>;

fn bootstrap(args: &[String], send: Send, cwd: &Path) -> io::Result<Outcome> {
    if args.len() < 3 {
        return Ok(usage("bootstrap"));
    }
    if let Err(out) = system_domain("bootstrap", &args[1]) {
        return Ok(out);
    }
    let mut error = 0;
    for path in &args[2..] {
        let r = send(Request::Bootstrap {
            path: absolute(cwd, path),
        })?;
        if r.error != 0 {
            error = r.error;
        }
    }
    Ok(if error == 0 {
        Outcome::default()
    } else {
        failure(
            error,
            format!("Bootstrap failed: {error}: {}\n", strerror(error)),
        )
    })
}

fn bootout(args: &[String], send: Send, cwd: &Path) -> io::Result<Outcome> {
    if args.len() < 2 {
        return Ok(usage("bootout"));
    }
    let requests: Vec<Request> = match parse_target(&args[1]) {
        Target::System(Some(label)) => vec![Request::BootoutLabel { label }],
        // Tearing down the whole system domain is not something a test may ask for.
        Target::System(None) if args.len() < 3 => return Ok(usage("bootout")),
        Target::System(None) => args[2..]
            .iter()
            .map(|p| Request::BootoutPath {
                path: absolute(cwd, p),
            })
            .collect(),
        Target::Bad => return Ok(bad_name("bootout")),
        Target::Elsewhere(desc) => return Ok(no_domain(&desc)),
    };
    let mut error = 0;
    let mut said = String::new();
    for request in requests {
        let missing = match &request {
            Request::BootoutPath { path } => Some(path.clone()),
            _ => None,
        };
        let r = send(request)?;
        if r.error != 0 {
            error = r.error;
        }
        // A plist that is not there is named first (recorded, exit 2).
        if let (ENOENT, Some(path)) = (r.error, missing) {
            said.push_str(&format!("{path}: {}\n", strerror(ENOENT)));
        }
    }
    Ok(if error == 0 {
        Outcome::default()
    } else {
        failure(
            error,
            format!("{said}Boot-out failed: {error}: {}\n", strerror(error)),
        )
    })
}

fn enable(args: &[String], send: Send) -> io::Result<Outcome> {
    let sub = args[0].as_str();
    if args.len() < 2 {
        return Ok(usage(sub));
    }
    let label = match service_label(sub, &args[1]) {
        Ok(l) => l,
        Err(out) => return Ok(out),
    };
    let request = if sub == "enable" {
        Request::Enable { label }
    } else {
        Request::Disable { label }
    };
    let r = send(request)?;
    Ok(if r.error == 0 {
        Outcome::default()
    } else {
        failure(
            r.error,
            format!(
                "Could not {sub} service: {}: {}\n",
                r.error,
                strerror(r.error)
            ),
        )
    })
}

fn kickstart(args: &[String], send: Send, stdout_is_tty: bool) -> io::Result<Outcome> {
    let (mut kill, mut print_pid) = (false, false);
    let mut rest = args[1..].iter();
    let target = loop {
        match rest.next() {
            None => return Ok(usage("kickstart")),
            Some(a) if a == "--" => match rest.next() {
                Some(t) => break t,
                None => return Ok(usage("kickstart")),
            },
            Some(a) if a.len() > 1 && a.starts_with('-') => {
                for c in a[1..].chars() {
                    match c {
                        'k' => kill = true,
                        'p' => print_pid = true,
                        's' => return Ok(not_emulated()),
                        _ => {
                            let mut out = usage("kickstart");
                            out.stderr =
                                format!("launchctl: illegal option -- {c}\n{}", out.stderr);
                            return Ok(out);
                        }
                    }
                }
            }
            Some(t) => break t,
        }
    };
    let label = match service_label("kickstart", target) {
        Ok(l) => l,
        Err(out) => return Ok(out),
    };
    let r = send(Request::Kickstart {
        label: label.clone(),
        kill,
    })?;
    Ok(match r.error {
        0 => {
            let pid = r.pid.unwrap_or(0);
            let stdout = match (print_pid, stdout_is_tty) {
                (false, _) => String::new(),
                (true, true) => format!("service spawned with pid: {pid}\n"),
                (true, false) => format!("{pid}\n"),
            };
            Outcome {
                stdout,
                ..Outcome::default()
            }
        }
        ENOSERVICE => no_service(&label),
        e => failure(
            e,
            format!(
                "Could not kickstart service \"{label}\": {e}: {}\n",
                strerror(e)
            ),
        ),
    })
}

fn kill(args: &[String], send: Send) -> io::Result<Outcome> {
    if args.len() < 3 {
        return Ok(usage("kill"));
    }
    let Some(signal) = parse_signal(&args[1]) else {
        let mut out = usage("kill");
        out.stderr = format!("Invalid signal.\n{}", out.stderr);
        return Ok(out);
    };
    let label = match service_label("kill", &args[2]) {
        Ok(l) => l,
        Err(out) => return Ok(out),
    };
    let r = send(Request::Kill {
        label: label.clone(),
        signal: signal as i32,
    })?;
    Ok(match r.error {
        0 => Outcome::default(),
        ENOSERVICE => no_service(&label),
        ESRCH => failure(ESRCH, "No process to signal.\n".to_string()),
        e => failure(
            e,
            format!("Could not signal service: {e}: {}\n", strerror(e)),
        ),
    })
}

fn print(args: &[String], send: Send) -> io::Result<Outcome> {
    if args.len() < 2 {
        return Ok(usage("print"));
    }
    let label = match parse_target(&args[1]) {
        Target::System(Some(label)) => label,
        // Printing the whole domain is not emulated.
        Target::System(None) => return Ok(not_emulated()),
        Target::Bad => return Ok(bad_name("print")),
        Target::Elsewhere(desc) => return Ok(no_domain(&desc)),
    };
    let r = send(Request::Print {
        label: label.clone(),
    })?;
    Ok(match r.error {
        0 => Outcome {
            stdout: r.output.unwrap_or_default(),
            ..Outcome::default()
        },
        // From macOS 13 on, print says `Bad request.` first (recorded, exit 113).
        ENOSERVICE if r.macos13 => {
            let mut out = no_service(&label);
            out.stderr.insert_str(0, "Bad request.\n");
            out
        }
        ENOSERVICE => no_service(&label),
        e => failure(
            e,
            format!("Could not print service: {e}: {}\n", strerror(e)),
        ),
    })
}

fn print_disabled(args: &[String], send: Send) -> io::Result<Outcome> {
    if args.len() < 2 {
        return Ok(usage("print-disabled"));
    }
    if let Err(out) = system_domain("print-disabled", &args[1]) {
        return Ok(out);
    }
    let r = send(Request::PrintDisabled)?;
    Ok(Outcome {
        code: r.error,
        stdout: r.output.unwrap_or_default(),
        ..Outcome::default()
    })
}

fn reboot(args: &[String], send: Send) -> io::Result<Outcome> {
    let kind = args.get(1).map(String::as_str).filter(|a| *a != "-s");
    match kind {
        None | Some("system") | Some("userspace") => {
            let r = send(Request::Reboot)?;
            Ok(Outcome {
                code: r.error,
                ..Outcome::default()
            })
        }
        Some("halt") | Some("obliterate") | Some("logout") | Some("apps") => Ok(not_emulated()),
        Some(_) => Ok(usage("reboot")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (Outcome, Vec<Request>) {
        let mut sent = Vec::new();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut send = |r: Request| {
            sent.push(r);
            Ok(Response::ok())
        };
        let out = run(&args, &mut send, false, Path::new("/work"));
        (out, sent)
    }

    #[test]
    fn usage_errors_exit_64_without_contacting_launchd() {
        for args in [
            &["bootstrap"][..],
            &["bootstrap", "system"],
            &["bootstrap", "system/foo", "/x.plist"],
            &["bootout", "system"],
            &["kickstart", "-k"],
            &["kickstart", "-x", "system/a"],
            &["kill", "NOPE", "system/a"],
            &["enable", "system"],
            &["print", "bogus/a"],
            &["print-disabled", "system/a"],
            &["reboot", "sideways"],
        ] {
            let (out, sent) = run_args(args);
            assert_eq!(out.code, 64, "{args:?}: {out:?}");
            assert!(out.stderr.contains("Usage: launchctl"), "{args:?}: {out:?}");
            assert!(sent.is_empty(), "{args:?}");
        }
    }

    #[test]
    fn other_domains_do_not_exist() {
        let (out, sent) = run_args(&["print", "gui/501/org.example"]);
        assert_eq!(out.code, 112);
        assert_eq!(out.stderr, "Could not find domain for user gui: 501\n");
        assert!(sent.is_empty());
    }

    #[test]
    fn arguments_become_requests() {
        let (out, sent) = run_args(&["kickstart", "-kp", "system/a"]);
        assert_eq!(out.code, 0);
        assert_eq!(out.stdout, "0\n");
        assert_eq!(
            sent,
            [Request::Kickstart {
                label: "a".into(),
                kill: true
            }]
        );
        let (_, sent) = run_args(&["bootstrap", "system", "rel/a.plist"]);
        assert_eq!(
            sent,
            [Request::Bootstrap {
                path: "/work/rel/a.plist".into()
            }]
        );
        let (_, sent) = run_args(&["kill", "SIGKILL", "system/a"]);
        assert_eq!(
            sent,
            [Request::Kill {
                label: "a".into(),
                signal: 9
            }]
        );
    }
}

//! The daemon process around the job table: signal handling (SIGCHLD reaping, SIGTERM
//! shutdown), the timer thread, and the Unix socket that `launchctl` connects to.
//!
//! The signals the daemon acts on are blocked in every thread and taken with sigwait by one
//! thread, so no work happens in a signal handler and the daemon can run as PID 1 of a pid
//! namespace (where signals without a handler would be dropped; a no-op handler is set).

use crate::macos::Macos;
use crate::protocol::{self, Request, Response};
use crate::supervisor::{BOOTOUT_SETTLE, Config, Daemon, Xpcproxy};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::thread;
use std::time::Duration;

/// Command-line options of `launchd-emulator`.
#[derive(Debug, Clone)]
pub struct Options {
    pub cfg: Config,
    /// Get SIGTERM when the process that started the emulator goes away, so a killed test
    /// run leaves no emulator (and hence no jobs) behind.
    pub die_with_parent: bool,
}

pub const USAGE: &str = "usage: launchd-emulator --state-dir DIR --daemons-dir DIR [--macos RELEASE] [--apple-postfix] [--xpcproxy-hold MS] [--bootout-settle MS] [--die-with-parent]\n\
    --macos 12 answers as macOS 12 and older, --macos 13 as macOS 13 to 15, --macos 26 (or\n\
    later) as macOS 26 and later, --macos 10.11 names Apple's Postfix job org.postfix.master\n\
    (default: 15; LAUNCHD_EMULATOR_MACOS=RELEASE in the environment is the same)\n\
    --xpcproxy-hold MS keeps every spawn in state xpcproxy for MS milliseconds before the\n\
    program is exec'd, as on a slow Mac (default 0: exec'd at once, xpcproxy shown\n\
    for 100 ms; LAUNCHD_EMULATOR_XPCPROXY_HOLD_MS=MS in the environment is the same)\n\
    --bootout-settle MS: from macOS 26 on, how long a label stays refused (5) after its\n\
    bootout (default 5000, as recorded on 26.5.1; LAUNCHD_EMULATOR_BOOTOUT_SETTLE_MS=MS in\n\
    the environment is the same)";

/// The daemon's environment variable that sets `--bootout-settle`, in milliseconds.
pub const BOOTOUT_SETTLE_ENV: &str = "LAUNCHD_EMULATOR_BOOTOUT_SETTLE_MS";

/// Reads `--bootout-settle`'s milliseconds.
fn settle_ms(text: &str) -> Result<Duration, String> {
    text.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("--bootout-settle {text:?}: expected milliseconds, such as 5000"))
}

/// Parses the daemon's arguments.
pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut state_dir = None;
    let mut daemons_dir = None;
    let mut macos = match std::env::var("LAUNCHD_EMULATOR_MACOS") {
        Ok(v) => Macos::parse(&v)?,
        Err(_) => Macos::DEFAULT,
    };
    let mut apple_postfix = false;
    let mut die_with_parent = false;
    let hold_ms = |text: &str| {
        text.parse::<u64>()
            .map(|ms| Xpcproxy {
                hold: std::time::Duration::from_millis(ms),
            })
            .map_err(|_| format!("--xpcproxy-hold {text:?}: expected milliseconds, such as 3000"))
    };
    let mut xpcproxy = match std::env::var(Xpcproxy::ENV) {
        Ok(v) => hold_ms(&v)?,
        Err(_) => Xpcproxy {
            hold: std::time::Duration::ZERO,
        },
    };
    let mut bootout_settle = match std::env::var(BOOTOUT_SETTLE_ENV) {
        Ok(v) => settle_ms(&v)?,
        Err(_) => BOOTOUT_SETTLE,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--state-dir" => state_dir = it.next().map(PathBuf::from),
            "--daemons-dir" => daemons_dir = it.next().map(PathBuf::from),
            "--macos" => macos = Macos::parse(it.next().map_or("", String::as_str))?,
            "--apple-postfix" => apple_postfix = true,
            "--xpcproxy-hold" => xpcproxy = hold_ms(it.next().map_or("", String::as_str))?,
            "--bootout-settle" => {
                bootout_settle = settle_ms(it.next().map_or("", String::as_str))?;
            }
            "--die-with-parent" => die_with_parent = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    match (state_dir, daemons_dir) {
        (Some(state_dir), Some(daemons_dir)) => Ok(Options {
            cfg: Config {
                state_dir,
                daemons_dir,
                macos,
                apple_postfix,
                xpcproxy,
                bootout_settle,
            },
            die_with_parent,
        }),
        _ => Err("--state-dir and --daemons-dir are required".to_string()),
    }
}

extern "C" fn ignore_signal(_: nix::libc::c_int) {}

/// Runs the daemon in the foreground. Returns only on a setup error; SIGTERM or SIGINT
/// stops every job and exits the process.
pub fn run(opts: Options) -> io::Result<()> {
    let mut waited = SigSet::empty();
    for sig in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        waited.add(sig);
        let action = SigAction::new(
            SigHandler::Handler(ignore_signal),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing; the signals stay blocked and are taken by sigwait.
        unsafe { signal::sigaction(sig, &action) }.map_err(io::Error::from)?;
    }
    // Blocked before any thread exists, so every thread inherits the mask.
    waited.thread_block().map_err(io::Error::from)?;

    // Orphans of jobs (a daemonizing job's grandchild) come to the emulator, as to launchd.
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
    if opts.die_with_parent {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
    }

    std::fs::create_dir_all(&opts.cfg.state_dir)?;
    let socket = protocol::socket_path(&opts.cfg.state_dir);
    let daemon = Arc::new(Daemon::new(opts.cfg)?);

    {
        let daemon = daemon.clone();
        let socket = socket.clone();
        thread::spawn(move || signal_loop(daemon, waited, socket));
    }
    {
        let daemon = daemon.clone();
        thread::spawn(move || daemon.run_timers());
    }

    daemon.boot();

    // Bound under a temporary name and renamed, so the socket exists only once it accepts.
    let tmp = socket.with_extension("sock.tmp");
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&tmp)?;
    std::fs::rename(&tmp, &socket)?;
    eprintln!(
        "launchd-emulator[{}]: ready on {}",
        std::process::id(),
        socket.display()
    );

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let daemon = daemon.clone();
                thread::spawn(move || {
                    if let Err(e) = serve(&daemon, stream) {
                        eprintln!("launchd-emulator: client: {e}");
                    }
                });
            }
            Err(e) => eprintln!("launchd-emulator: accept: {e}"),
        }
    }
    Ok(())
}

fn signal_loop(daemon: Arc<Daemon>, waited: SigSet, socket: PathBuf) {
    static SHUTDOWN: Once = Once::new();
    loop {
        match waited.wait() {
            Ok(Signal::SIGCHLD) => daemon.reap(),
            Ok(sig) => {
                eprintln!("launchd-emulator: {sig:?}: stopping every job");
                SHUTDOWN.call_once(|| {
                    let daemon = daemon.clone();
                    let socket = socket.clone();
                    // Shutdown waits for exits, which this thread must keep reaping.
                    thread::spawn(move || {
                        daemon.shutdown();
                        let _ = std::fs::remove_file(&socket);
                        std::process::exit(0);
                    });
                });
            }
            Err(e) => eprintln!("launchd-emulator: sigwait: {e}"),
        }
    }
}

fn serve(daemon: &Daemon, stream: UnixStream) -> io::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => dispatch(daemon, request),
        Err(e) => {
            eprintln!("launchd-emulator: bad request {line:?}: {e}");
            Response::err(22)
        }
    };
    let mut out = serde_json::to_string(&response).map_err(io::Error::other)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

/// Carries out one request. The answer says which generation launchd is, since
/// launchctl words some failures differently from macOS 13 on.
pub fn dispatch(daemon: &Daemon, request: Request) -> Response {
    Response {
        macos13: daemon.config().macos.is_13_or_later(),
        ..carry_out(daemon, request)
    }
}

fn carry_out(daemon: &Daemon, request: Request) -> Response {
    match request {
        Request::Enable { label } => Response::err(daemon.set_disabled(&label, false)),
        Request::Disable { label } => Response::err(daemon.set_disabled(&label, true)),
        Request::Bootstrap { path } => Response::err(daemon.bootstrap(Path::new(&path))),
        Request::BootoutLabel { label } => Response::err(daemon.bootout(&label)),
        Request::BootoutPath { path } => Response::err(daemon.bootout_path(Path::new(&path))),
        Request::Kickstart { label, kill } => match daemon.kickstart(&label, kill) {
            Ok(pid) => Response {
                pid: Some(pid),
                ..Response::ok()
            },
            Err(e) => Response::err(e),
        },
        Request::Kill { label, signal } => Response::err(daemon.kill(&label, signal)),
        Request::Print { label } => match daemon.print(&label) {
            Ok(text) => Response {
                output: Some(text),
                ..Response::ok()
            },
            Err(e) => Response::err(e),
        },
        Request::PrintDisabled => Response {
            output: Some(daemon.print_disabled()),
            ..Response::ok()
        },
        Request::Reboot => {
            daemon.reboot();
            Response::ok()
        }
    }
}

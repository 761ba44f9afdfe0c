//! The supervisor's control socket: other instancectl commands ask a running
//! supervisor to pick up a changed desired state, restart an instance, or report what
//! it runs. One JSON request line, one JSON response line.
//!
//! Whoever may talk to it may stop and restart mail service, so the socket is mode
//! 0600 whatever the umask, and the supervisor answers root only (SO_PEERCRED). A
//! request line is at most `MAX_REQUEST` bytes, at most `MAX_CLIENTS` connections are
//! served at once (others are told to come back), and a client has `CLIENT_TIMEOUT`
//! to send its request.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::sys::stat::{Mode, umask};

use serde::{Deserialize, Serialize};

use super::Event;
use crate::error::{Error, Result};
use crate::manager::ManagerError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Re-read the desired state (instance list, enable flags, stop marks) and act on it.
    Sync,
    /// Kill and start an instance's master now, without backoff.
    Restart { name: String },
    /// Report every supervised instance.
    Status,
}

/// What the supervisor knows of one instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChildReport {
    pub name: String,
    /// running, backoff (waiting to start again), stopped, config-error.
    pub state: String,
    pub pid: Option<i32>,
    /// The master was already running when the supervisor found it.
    pub adopted: bool,
    /// How many times the supervisor has started it.
    pub runs: u32,
    pub last_exit: Option<String>,
    pub uptime_secs: Option<u64>,
    pub failed_probes: u32,
    /// Runs in a row that failed (a fatal exit, or a death soon after the start).
    #[serde(default)]
    pub failed_runs: u32,
    /// Why it does not run, when the supervisor knows: a configuration error, or a
    /// master that keeps failing (then the next start is delayed).
    pub problem: Option<String>,
    /// The last lines the master wrote (Postfix's own words when it fails).
    #[serde(default)]
    pub last_output: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    pub message: String,
    pub instances: Vec<ChildReport>,
}

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("supervisor.sock")
}

/// The longest request line accepted; real requests are well under 200 bytes.
const MAX_REQUEST: u64 = 64 * 1024;
/// Connections served at once.
const MAX_CLIENTS: usize = 8;
/// How long a client may take to send its request, and to read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the socket mode 0600 and accepts connections on a thread, each answered on
/// a thread of its own (at most `MAX_CLIENTS` at once); requests go to the loop.
pub fn serve(path: &Path, events: Sender<Event>) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    // The socket gets its mode from the umask at bind(): no moment with more.
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(previous);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
                let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
                if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                    busy.fetch_sub(1, Ordering::AcqRel);
                    refuse(
                        &stream,
                        "the supervisor is busy with other requests; try again",
                    );
                    continue;
                }
                let events = events.clone();
                let done = busy.clone();
                let spawned = std::thread::Builder::new()
                    .name("control client".into())
                    .spawn(move || {
                        answer(&stream, events);
                        done.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    busy.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })?;
    Ok(())
}

fn refuse(stream: &UnixStream, message: &str) {
    send(
        stream,
        &Response {
            ok: false,
            message: message.into(),
            instances: Vec::new(),
        },
    );
}

fn send(stream: &UnixStream, response: &Response) {
    if let Ok(mut text) = serde_json::to_string(response) {
        text.push('\n');
        let _ = (&*stream).write_all(text.as_bytes());
    }
}

/// Why the peer may not talk to the supervisor, if it may not.
fn unauthorized(stream: &UnixStream) -> Option<String> {
    match getsockopt(stream, PeerCredentials) {
        Ok(peer) if peer.uid() == 0 => None,
        Ok(peer) => Some(format!(
            "permission denied: only root may control the supervisor (you are uid {})",
            peer.uid()
        )),
        Err(e) => Some(format!("cannot tell who is asking ({e})")),
    }
}

fn answer(stream: &UnixStream, events: Sender<Event>) {
    if let Some(why) = unauthorized(stream) {
        tracing::warn!(problem = %why, "control request refused");
        return refuse(stream, &why);
    }
    let mut line = Vec::new();
    match BufReader::new(stream.take(MAX_REQUEST)).read_until(b'\n', &mut line) {
        Ok(_) if line.ends_with(b"\n") => {}
        Ok(_) if line.len() as u64 >= MAX_REQUEST => {
            return refuse(
                stream,
                &format!("bad request: longer than {MAX_REQUEST} bytes"),
            );
        }
        // The client went away, or sent no whole line in time.
        Ok(_) | Err(_) => return,
    }
    let response = match serde_json::from_slice::<Request>(&line) {
        Ok(request) => {
            let (reply, replied) = mpsc::channel();
            if events.send(Event::Control(request, reply)).is_err() {
                return;
            }
            replied.recv().unwrap_or_else(|_| Response {
                ok: false,
                message: "the supervisor is shutting down".into(),
                instances: Vec::new(),
            })
        }
        Err(e) => Response {
            ok: false,
            message: format!("bad request: {e}"),
            instances: Vec::new(),
        },
    };
    send(stream, &response);
}

/// Sends one request to the running supervisor and waits for its answer.
pub fn ask(state_dir: &Path, request: &Request) -> Result<Response> {
    let path = socket_path(state_dir);
    let stream = UnixStream::connect(&path).map_err(|error| ManagerError::NoSupervisor {
        socket: path.clone(),
        error,
    })?;
    // Stopping a master can take its whole ExitTimeOut; starting one several seconds.
    // A report is quick, unless the supervisor is busy starting instances or hangs:
    // `status` must not wait minutes for a supervisor that is stuck.
    let patience = match request {
        Request::Status => Duration::from_secs(15),
        _ => Duration::from_secs(120),
    };
    stream
        .set_read_timeout(Some(patience))
        .map_err(|e| Error::io(&path, e))?;
    let mut text = serde_json::to_string(request).expect("requests encode");
    text.push('\n');
    (&stream)
        .write_all(text.as_bytes())
        .map_err(|e| Error::io(&path, e))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ManagerError::SupervisorSilent {
                    seconds: patience.as_secs(),
                }
                .into()
            }
            _ => Error::io(&path, e),
        })?;
    serde_json::from_str(&line).map_err(|e| {
        ManagerError::SupervisorAnswer {
            error: e.to_string(),
        }
        .into()
    })
}

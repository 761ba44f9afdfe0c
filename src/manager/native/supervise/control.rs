//! The supervisor's control socket: other instancectl commands ask a running
//! supervisor to pick up a changed desired state, restart an instance, or report what
//! it runs. One JSON request line, one JSON response line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Event;
use crate::error::{Error, Result};

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
    /// running, starting, backoff, stopped, config-error.
    pub state: String,
    pub pid: Option<i32>,
    /// The master was already running when the supervisor found it.
    pub adopted: bool,
    /// How many times the supervisor has started it.
    pub runs: u32,
    pub last_exit: Option<String>,
    pub uptime_secs: Option<u64>,
    pub failed_probes: u32,
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

/// Accepts connections on a thread and hands each request to the supervisor loop.
pub fn serve(path: &Path, events: Sender<Event>) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let events = events.clone();
                std::thread::spawn(move || answer(stream, events));
            }
        })?;
    Ok(())
}

fn answer(stream: UnixStream, events: Sender<Event>) {
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return;
    }
    let response = match serde_json::from_str::<Request>(&line) {
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
    if let Ok(mut text) = serde_json::to_string(&response) {
        text.push('\n');
        let _ = (&stream).write_all(text.as_bytes());
    }
}

/// Sends one request to the running supervisor and waits for its answer.
pub fn ask(state_dir: &Path, request: &Request) -> Result<Response> {
    let path = socket_path(state_dir);
    let stream = UnixStream::connect(&path).map_err(|e| {
        Error::failed(format!(
            "no instancectl supervisor is running ({}: {e}). The native manager needs one: \
             run `instancectl supervise` (under systemd, or as a container's PID 1), or \
             choose another manager with --manager",
            path.display()
        ))
    })?;
    // Stopping a master can take its whole ExitTimeOut; starting one several seconds.
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| Error::io(&path, e))?;
    let mut text = serde_json::to_string(request).expect("requests encode");
    text.push('\n');
    (&stream)
        .write_all(text.as_bytes())
        .map_err(|e| Error::io(&path, e))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&line)
        .map_err(|e| Error::failed(format!("the supervisor's answer is unreadable: {e}")))
}

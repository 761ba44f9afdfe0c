//! `launchctl` for tests: the real command line, answered by `launchd-emulator`, which it
//! finds through `LAUNCHD_EMULATOR_DIR` (the emulator's state directory).

use launchd_emulator::client;
use launchd_emulator::protocol::{ENV_DIR, Request, Response, socket_path};
use std::io::{self, IsTerminal, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// launchd is always there on a Mac; give an emulator that is still starting a moment.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);

fn connect() -> io::Result<UnixStream> {
    let dir = std::env::var_os(ENV_DIR)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{ENV_DIR} is not set")))?;
    let path = socket_path(&PathBuf::from(dir));
    let deadline = Instant::now() + CONNECT_PATIENCE;
    loop {
        match UnixStream::connect(&path) {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
            }
        }
    }
}

fn send(request: Request) -> io::Result<Response> {
    let mut stream = connect()?;
    let mut line = serde_json::to_string(&request).map_err(io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    serde_json::from_str(&reply).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad reply {reply:?}: {e}"),
        )
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let out = client::run(&args, &mut send, io::stdout().is_terminal(), &cwd);
    let _ = io::stdout().write_all(out.stdout.as_bytes());
    let _ = io::stderr().write_all(out.stderr.as_bytes());
    std::process::exit(out.code);
}

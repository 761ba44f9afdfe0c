//! Turns the signals the supervisor cares about into events on its loop's channel:
//! SIGCHLD (a child exited), SIGTERM/SIGINT (stop everything and exit), SIGHUP
//! (re-read the desired state).

use std::sync::mpsc::Sender;

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::Event;

pub fn forward(events: Sender<Event>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGCHLD, SIGHUP, SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let event = match signal {
                    SIGCHLD => Event::ChildExited,
                    SIGHUP => Event::Reload,
                    _ => Event::Shutdown,
                };
                if events.send(event).is_err() {
                    break;
                }
            }
        })?;
    Ok(())
}

//! The health prober: every interval, on its own thread so the supervisor loop never
//! waits on the network, it checks each running master (alive, not stopped) and
//! probes its SMTP listeners in parallel, then reports the results as one event.

use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Event;
use crate::probe::smtp;
use crate::process::{self, Liveness};

/// One master to probe.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub pid: i32,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub pid: i32,
    /// The process no longer exists.
    pub gone: bool,
    /// Why the instance is not serving, if it is not.
    pub failure: Option<String>,
}

pub type Targets = Arc<Mutex<Vec<Target>>>;

pub fn spawn(targets: Targets, interval: Duration, events: Sender<Event>) -> std::io::Result<()> {
    let timeout = interval.clamp(Duration::from_millis(200), Duration::from_secs(2));
    std::thread::Builder::new()
        .name("prober".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let snapshot = targets.lock().map(|t| t.clone()).unwrap_or_default();
                if snapshot.is_empty() {
                    continue;
                }
                let results = probe_all(&snapshot, timeout);
                if events.send(Event::Probed(results)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

fn probe_all(targets: &[Target], timeout: Duration) -> Vec<Probe> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| scope.spawn(move || probe_one(t, timeout)))
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

fn probe_one(target: &Target, timeout: Duration) -> Probe {
    let mut probe = Probe {
        name: target.name.clone(),
        pid: target.pid,
        gone: false,
        failure: None,
    };
    match process::liveness(target.pid) {
        Liveness::Gone => {
            probe.gone = true;
            probe.failure = Some("the master process is gone".into());
            return probe;
        }
        // A stopped master keeps its sockets open, so idle smtpd processes may still
        // greet for a while; its process state tells at once.
        Liveness::Stopped => {
            probe.failure = Some("the master process is stopped (SIGSTOP or traced)".into());
            return probe;
        }
        Liveness::Running => {}
    }
    probe.failure = target.addrs.iter().find_map(|addr| {
        smtp::probe(*addr, timeout)
            .err()
            .map(|e| format!("{addr}: {e}"))
    });
    probe
}

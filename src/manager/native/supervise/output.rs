//! What a master writes to its terminal: each line goes to the supervisor's log, and
//! the last few are kept to explain why a master stopped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const KEPT_LINES: usize = 20;

pub struct MasterOutput {
    lines: Mutex<VecDeque<String>>,
    closed: AtomicBool,
}

impl MasterOutput {
    /// Reads `terminal` on a thread until every process holding it has gone.
    pub fn follow(instance: String, terminal: File) -> Arc<MasterOutput> {
        let output = Arc::new(MasterOutput {
            lines: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
        });
        let shared = output.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("output {instance}"))
            .spawn(move || {
                for line in BufReader::new(terminal).lines() {
                    let Ok(line) = line else { break };
                    let line = line.trim_end_matches('\r').to_string();
                    tracing::warn!(instance = %instance, "{line}");
                    if let Ok(mut lines) = shared.lines.lock() {
                        if lines.len() == KEPT_LINES {
                            lines.pop_front();
                        }
                        lines.push_back(line);
                    }
                }
                shared.closed.store(true, Ordering::Release);
            });
        if spawned.is_err() {
            output.closed.store(true, Ordering::Release);
        }
        output
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Gives the reader a moment to take in a dying master's last words.
    pub fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.closed.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

//! Health of a running instance: whether its master lives and every listener answers
//! SMTP.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::smtp;

/// Waits until the instance's master runs and every listener greets with 220.
/// On timeout the error lists what was still missing.
pub fn wait_until_serving(instance: &Instance, timeout: Duration) -> Result<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = not_serving(instance);
        match (instance.running_master(), missing.is_empty()) {
            (Some(pid), true) => return Ok(pid),
            (pid, _) if Instant::now() >= deadline => {
                let mut reasons = missing;
                if pid.is_none() {
                    reasons.insert(
                        0,
                        format!(
                            "no master process ({} names none alive)",
                            instance.pid_file().display()
                        ),
                    );
                }
                return Err(Error::failed(format!(
                    "{} did not come up within {} s: {}",
                    instance.display_name(),
                    timeout.as_secs(),
                    reasons.join("; ")
                )));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The listeners that do not answer, each with its error.
pub fn not_serving(instance: &Instance) -> Vec<String> {
    instance
        .listeners
        .iter()
        .filter_map(|l| {
            smtp::probe(l.probe_addr(), Duration::from_millis(500))
                .err()
                .map(|e| format!("{l}: {e}"))
        })
        .collect()
}

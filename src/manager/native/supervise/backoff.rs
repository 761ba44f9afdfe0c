//! Restart delays: a master that ran for a while and was killed is restarted at once;
//! one that keeps failing waits exponentially longer, up to a cap, so a crash loop
//! costs little. A master that exits with a status failed, however long it took:
//! Postfix's master only exits that way on a fatal error, and it sleeps a second
//! before it does, so "it ran for a second" proves nothing.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
    /// A run shorter than this failed, whatever ended it.
    pub stable_after: Duration,
    /// A run at least this long forgives the failures before it.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            // A master killed after serving for a second did not fail to start:
            // whatever killed it, bring it back at once.
            stable_after: Duration::from_secs(1),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// How a run ended, as far as the backoff cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub lasted: Duration,
    /// It exited with a status (a fatal error), rather than being killed.
    pub gave_up: bool,
}

impl Backoff {
    /// Whether a run counts as a failure.
    pub fn failed(&self, run: Run) -> bool {
        run.gave_up || run.lasted < self.stable_after
    }

    /// The delay before the next start and the new count of failed runs in a row,
    /// given the last run and the failed runs before it.
    pub fn next(&self, run: Run, failures: u32) -> (Duration, u32) {
        let failures = if run.lasted >= self.reset_after {
            0
        } else {
            failures
        };
        if !self.failed(run) {
            return (Duration::ZERO, 0);
        }
        let failures = failures + 1;
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        (self.first.saturating_mul(factor).min(self.cap), failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn killed_after(ms: u64) -> Run {
        Run {
            lasted: Duration::from_millis(ms),
            gave_up: false,
        }
    }

    #[test]
    fn stable_runs_restart_at_once() {
        let b = Backoff::default();
        assert_eq!(b.next(killed_after(2000), 5), (Duration::ZERO, 0));
    }

    #[test]
    fn short_runs_back_off_to_the_cap() {
        let b = Backoff::default();
        let (d1, n1) = b.next(killed_after(10), 0);
        let (d2, n2) = b.next(killed_after(10), n1);
        let (d3, _) = b.next(killed_after(10), n2);
        assert_eq!(
            (d1, d2, d3),
            (
                Duration::from_millis(250),
                Duration::from_millis(500),
                Duration::from_secs(1)
            )
        );
        let (capped, _) = b.next(killed_after(10), 40);
        assert_eq!(capped, Duration::from_secs(30));
    }

    /// Postfix's fatal errors sleep a second before the exit: such a run is no
    /// success, however long it lasted.
    #[test]
    fn a_fatal_exit_after_the_one_second_sleep_backs_off() {
        let b = Backoff::default();
        let fatal = Run {
            lasted: Duration::from_millis(1030),
            gave_up: true,
        };
        let (d1, n1) = b.next(fatal, 0);
        let (d2, n2) = b.next(fatal, n1);
        let (d3, n3) = b.next(fatal, n2);
        assert_eq!((n1, n2, n3), (1, 2, 3));
        assert!(d1 < d2 && d2 < d3, "{d1:?} {d2:?} {d3:?}");
    }

    #[test]
    fn a_long_run_forgives_earlier_failures() {
        let b = Backoff::default();
        let late_fatal = Run {
            lasted: Duration::from_secs(3600),
            gave_up: true,
        };
        assert_eq!(b.next(late_fatal, 9), (Duration::from_millis(250), 1));
    }
}

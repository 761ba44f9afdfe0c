//! Restart delays: a master that ran for a while is restarted at once; one that keeps
//! dying young waits exponentially longer, up to a cap, so a crash loop costs little.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
    /// A run at least this long counts as healthy and resets the delay.
    pub stable_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            // A master that served for a second did not fail to start: whatever
            // killed it, bring it back at once.
            stable_after: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    /// The delay before the next start, given how long the last run lasted and how
    /// many runs in a row before it were short. Returns the new count of short runs.
    pub fn next(&self, ran_for: Duration, short_runs: u32) -> (Duration, u32) {
        if ran_for >= self.stable_after {
            return (Duration::ZERO, 0);
        }
        let short_runs = short_runs + 1;
        let factor = 2u32.saturating_pow(short_runs.saturating_sub(1).min(16));
        (self.first.saturating_mul(factor).min(self.cap), short_runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_runs_restart_at_once() {
        let b = Backoff::default();
        assert_eq!(b.next(Duration::from_secs(2), 5), (Duration::ZERO, 0));
    }

    #[test]
    fn short_runs_back_off_to_the_cap() {
        let b = Backoff::default();
        let (d1, n1) = b.next(Duration::from_millis(10), 0);
        let (d2, n2) = b.next(Duration::from_millis(10), n1);
        let (d3, _) = b.next(Duration::from_millis(10), n2);
        assert_eq!(
            (d1, d2, d3),
            (
                Duration::from_millis(250),
                Duration::from_millis(500),
                Duration::from_secs(1)
            )
        );
        let (capped, _) = b.next(Duration::from_millis(10), 40);
        assert_eq!(capped, Duration::from_secs(30));
    }
}

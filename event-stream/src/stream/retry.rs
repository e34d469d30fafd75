//! How transient failures are retried: exponential backoff with jitter, a bounded
//! number of attempts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Attempts and delays for transient failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Handler calls in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The delay before the second attempt; each next one doubles it.
    pub initial_delay: Duration,
    /// No delay is longer than this before jitter (jitter adds up to as much again).
    pub max_delay: Duration,
    /// Whether delays are randomised (so failing consumers do not retry in step).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 5 attempts, 200 ms doubling up to 5 s, jittered: about 3 s of retrying.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt only: a transient failure is dead-lettered at once.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delays to wait between attempts: `max_attempts - 1` of them.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let retries = self.max_attempts.max(1) as usize - 1;
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(retries);
        if self.jitter {
            builder = builder.with_jitter();
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stop_after_the_budget() {
        let policy = RetryPolicy {
            max_attempts: 6,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            jitter: false,
        };
        let delays: Vec<u128> = policy.delays().map(|d| d.as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        assert_eq!(RetryPolicy::none().delays().count(), 0);
    }

    #[test]
    fn jitter_stays_within_one_step_of_the_plain_delay() {
        let policy = RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            jitter: true,
        };
        for _ in 0..50 {
            let delays: Vec<Duration> = policy.delays().collect();
            assert_eq!(delays.len(), 3);
            for (i, d) in delays.iter().enumerate() {
                let plain = Duration::from_millis(100 << i);
                assert!(*d >= plain && *d <= plain * 2, "{i}: {d:?}");
            }
        }
    }
}

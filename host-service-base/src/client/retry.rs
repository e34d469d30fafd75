//! Retry policy: how many times, how long between, and which failures qualify.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::error::HostError;

/// Bounded retries with exponential backoff and jitter.
///
/// Delay before retry `n` (0-based) is `initial_backoff * 2^n`, capped at `max_backoff`,
/// plus a random jitter in `[0, delay)` when `jitter` is on, so concurrent clients that
/// failed together do not come back together. A `Retry-After` from the server replaces
/// the computed delay, capped at `max_retry_after` so a hostile or confused server
/// cannot park a caller for hours (the caller's cancellation token always wins anyway).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retries).
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of the exponential delay (before jitter).
    pub max_backoff: Duration,
    /// Add random jitter on top of each delay.
    pub jitter: bool,
    /// Upper bound on a server-sent `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            jitter: true,
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The delays between attempts, in order (`max_retries` of them).
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff.max(self.initial_backoff))
            .with_factor(2.0)
            .with_max_times(self.max_retries as usize);
        if self.jitter {
            builder = builder.with_jitter();
        }
        builder.build()
    }

    /// The smallest total time `n` retries wait (no jitter, no `Retry-After`): what a
    /// caller can count on having passed before it sees the final error.
    pub fn min_total_backoff(&self, retries: u32) -> Duration {
        let no_jitter = Self {
            jitter: false,
            ..self.clone()
        };
        no_jitter.delays().take(retries as usize).sum()
    }

    /// The delay before the next attempt: the server's `Retry-After` (capped) when it
    /// sent one, else the policy's next backoff.
    pub(crate) fn next_delay(
        &self,
        error: &HostError,
        server_retry_after: Option<Duration>,
        backoff: &mut impl Iterator<Item = Duration>,
    ) -> Option<Duration> {
        let computed = backoff.next()?;
        let hinted = server_retry_after.or(match error {
            HostError::Busy { retry_after, .. } => *retry_after,
            _ => None,
        });
        Some(hinted.map_or(computed, |d| d.min(self.max_retry_after)))
    }
}

/// Whether a failed attempt may be repeated.
///
/// `request_sent` is false only when the connection was never established, in which case
/// even a non-idempotent POST is safe to send again: the server cannot have seen it.
pub(crate) fn should_retry(error: &HostError, idempotent: bool, request_sent: bool) -> bool {
    if !error.is_retryable() {
        return false;
    }
    idempotent || !request_sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap() {
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            jitter: false,
            ..RetryPolicy::default()
        };
        let delays: Vec<_> = policy.delays().map(|d| d.as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
        // backon multiplies in f32: allow nanoseconds of rounding.
        let total = policy.min_total_backoff(3);
        assert!(
            total.abs_diff(Duration::from_millis(700)) < Duration::from_micros(1),
            "{total:?}"
        );
    }

    #[test]
    fn jitter_only_adds() {
        let policy = RetryPolicy {
            max_retries: 4,
            ..RetryPolicy::default()
        };
        let base: Vec<_> = RetryPolicy {
            jitter: false,
            ..policy.clone()
        }
        .delays()
        .collect();
        for _ in 0..50 {
            for (jittered, base) in policy.delays().zip(&base) {
                assert!(
                    jittered >= *base && jittered < *base * 2,
                    "{jittered:?} vs {base:?}"
                );
            }
        }
    }

    #[test]
    fn retry_after_is_capped() {
        let policy = RetryPolicy {
            max_retry_after: Duration::from_secs(2),
            jitter: false,
            ..RetryPolicy::default()
        };
        let err = HostError::Upstream {
            status: 503,
            code: "x".into(),
            message: String::new(),
        };
        let mut delays = policy.delays();
        let d = policy.next_delay(&err, Some(Duration::from_secs(3600)), &mut delays);
        assert_eq!(d, Some(Duration::from_secs(2)));
    }

    #[test]
    fn post_is_retried_only_when_unsent_or_marked() {
        let err = HostError::Timeout {
            service: "s".into(),
            after: Duration::from_secs(1),
        };
        assert!(!should_retry(&err, false, true));
        assert!(should_retry(&err, false, false));
        assert!(should_retry(&err, true, true));
        let bad = HostError::bad_field("x", "y");
        assert!(!should_retry(&bad, true, false));
    }
}

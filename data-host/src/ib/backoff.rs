//! Reconnect delays: `backon`'s exponential backoff, shaped as "equal jitter".

use std::time::Duration;

use backon::ExponentialBuilder;

/// Delays drawn from `[d/2, d)`, `d` doubling from `min` up to `max`, so that many
/// clients of one gateway (or one gateway restart seen by many services) do not retry
/// in step, and no wait is ever longer than `max` (the outage line promises that).
///
/// backon's jitter adds up to one delay on top (`[b, 2b)`), so the builder is given
/// halves: base `b` doubling from `min/2` to `max/2` gives exactly `[d/2, d)`. It never
/// runs out (no attempt limit); a fresh `build()` starts again at `min` after a connect.
pub(super) fn reconnect_backoff(min: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_jitter()
        .with_min_delay(min / 2)
        .with_max_delay(max.max(min) / 2)
        .without_max_times()
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder;

    use super::*;

    #[test]
    fn doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let builder = reconnect_backoff(min, max);
        let mut delays = builder.build();
        for base in [100, 200, 400, 800, 1000, 1000, 1000] {
            let base = Duration::from_millis(base);
            let d = delays.next().expect("never runs out");
            assert!(d >= base / 2 && d <= base, "{d:?} for {base:?}");
        }
        // After a connect the next outage starts small again.
        let d = builder.build().next().expect("never runs out");
        assert!(d <= min, "{d:?}");
    }

    #[test]
    fn jitter_varies() {
        let builder = reconnect_backoff(Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::HashSet<Duration> = builder.build().take(20).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn a_maximum_below_the_minimum_waits_the_minimum() {
        let min = Duration::from_secs(2);
        let mut delays = reconnect_backoff(min, Duration::from_secs(1)).build();
        for d in delays.by_ref().take(5) {
            assert!(d >= min / 2 && d <= min, "{d:?}");
        }
    }
}

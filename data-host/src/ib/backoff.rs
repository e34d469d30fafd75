//! Reconnect delays: exponential backoff with jitter.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is drawn from
/// `[d/2, d]`, `d` doubling from `min` up to `max`, so that many clients of one
/// gateway (or one gateway restart seen by many services) do not retry in step.
#[derive(Debug)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        use std::hash::BuildHasher;
        // A random seed without a dependency: std seeds `RandomState` randomly.
        let rng = std::collections::hash_map::RandomState::new().hash_one(0x1b_u8);
        Self {
            min,
            max: max.max(min),
            next: min,
            rng,
        }
    }

    pub(super) fn reset(&mut self) {
        self.next = self.min;
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // SplitMix64 step, then a uniform fraction in [0, 1).
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let fraction = (z >> 11) as f64 / (1_u64 << 53) as f64;
        base / 2 + (base / 2).mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let mut b = Backoff::new(min, max);
        let bases = [100, 200, 400, 800, 1000, 1000];
        for base in bases {
            let base = Duration::from_millis(base);
            let d = b.next_delay();
            assert!(d >= base / 2 && d <= base, "{d:?} for {base:?}");
        }
        b.reset();
        assert!(b.next_delay() <= min);
    }

    #[test]
    fn jitter_varies() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}

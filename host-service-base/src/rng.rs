//! The workspace's one seeded random number generator (SplitMix64).
//!
//! Training needs runs that repeat bit for bit from a seed (candle's CPU random tensors
//! come from a thread-local generator that cannot be seeded: weight initialisation,
//! dropout masks and batch shuffling draw from this instead), and tests need random
//! inputs that a failure can be replayed from. SplitMix64 serves both: seeded,
//! reproducible across platforms and versions, passes BigCrush, and needs no
//! dependency. It is not cryptographic; nothing here needs that.

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`: the same seed gives the same sequence.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent generator for a sub-task, so that e.g. dropout draws do not shift
    /// the shuffling sequence when the architecture changes.
    pub fn fork(&mut self, stream: u64) -> Self {
        Self::new(self.next_u64() ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision (every value exactly representable).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in `[0, 1)` with 24 bits of precision (every value exactly representable).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1_u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform in `0..n` (`n > 0`; 0 for `n == 0`), by Lemire's multiply-shift: no
    /// division, and the bias is below `n / 2^64`.
    pub fn below(&mut self, n: u64) -> u64 {
        // The high half of a 128-bit product is below `n`, so it fits in u64.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `0..n` (`n > 0`; 0 for `n == 0`), for indices.
    pub fn index(&mut self, n: usize) -> usize {
        // usize is at most 64 bits on every supported target, and the result is below n.
        self.below(n as u64) as usize
    }

    /// A uniformly chosen element of `items`, `None` when it is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.index(items.len()))
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_in_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let f = a.next_f32();
            assert!((0.0..1.0).contains(&f));
            b.next_f32();
            let d = a.next_f64();
            assert!((0.0..1.0).contains(&d));
            b.next_f64();
            assert!(a.below(5) < 5);
            b.below(5);
        }
        // Reference value of SplitMix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn shuffles_to_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        SplitMix64::new(1).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn picks_from_the_slice_and_nothing_from_an_empty_one() {
        let mut rng = SplitMix64::new(3);
        let items = [1, 2, 3];
        for _ in 0..100 {
            assert!(rng.pick(&items).is_some_and(|x| items.contains(x)));
        }
        assert_eq!(rng.pick::<u8>(&[]), None);
        assert_eq!(rng.below(0), 0);
    }
}

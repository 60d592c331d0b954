//! A small seeded pseudo-random generator (SplitMix64) for protocol choices
//! that must be random but reproducible: same seed, same sequence.

use crate::hash::mix64;

/// SplitMix64: 64-bit state, passes BigCrush, trivially seedable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        let out = mix64(self.state);
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        out
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; bias below 2^-32 for the
    /// small `n` used here). Returns 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_uniform_enough() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        let mut c = SplitMix64::new(43);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut buckets = [0u32; 4];
        for _ in 0..40_000 {
            buckets[a.below(4) as usize] += 1;
        }
        for n in buckets {
            assert!((9_500..10_500).contains(&n), "{buckets:?}");
        }
        assert_eq!(a.below(0), 0);
    }
}

//! The engine's clock. Nodes see time as [`ftsplice_proto::Instant`]
//! (microseconds); the engine keeps nanoseconds internally so that
//! serialization delays of small packets on fast links (1.2 µs for 1500 B at
//! 10 Gbit/s) add up exactly instead of drifting by rounding.

use core::time::Duration;
use ftsplice_proto::Instant;

/// Simulated time in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub fn from_instant(t: Instant) -> SimTime {
        SimTime(t.as_micros().saturating_mul(1_000))
    }

    /// The instant nodes see: rounded down to the microsecond.
    pub fn instant(self) -> Instant {
        Instant::from_micros(self.0 / 1_000)
    }

    pub fn from_millis(ms: u64) -> SimTime {
        SimTime(ms.saturating_mul(1_000_000))
    }

    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn plus(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_add(nanos(d)))
    }

    pub fn add_nanos(self, ns: u64) -> SimTime {
        SimTime(self.0.saturating_add(ns))
    }
}

/// A duration in whole nanoseconds, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Time to clock `bytes` onto a link of `bits_per_sec`, in nanoseconds,
/// rounded up. A zero rate means "infinitely fast".
pub fn serialization_ns(bytes: usize, bits_per_sec: u64) -> u64 {
    if bits_per_sec == 0 {
        return 0;
    }
    // The common case in 64 bits (128-bit division is a library call
    // on the per-packet path); same result.
    if let Some(bits) = (bytes as u64).checked_mul(8_000_000_000) {
        return bits.div_ceil(bits_per_sec);
    }
    let bits = (bytes as u128) * 8 * 1_000_000_000;
    let bps = u128::from(bits_per_sec);
    u64::try_from(bits.div_ceil(bps)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_is_exact_for_common_rates() {
        assert_eq!(serialization_ns(1500, 1_000_000_000), 12_000);
        assert_eq!(serialization_ns(1500, 10_000_000_000), 1_200);
        assert_eq!(serialization_ns(1, 3), 2_666_666_667);
        assert_eq!(serialization_ns(1500, 0), 0);
    }

    #[test]
    fn instants_round_down_to_micros() {
        assert_eq!(SimTime(12_999).instant(), Instant::from_micros(12));
        assert_eq!(
            SimTime::from_instant(Instant::from_millis(3)),
            SimTime(3_000_000)
        );
        assert_eq!(SimTime::MAX.plus(Duration::from_secs(1)), SimTime::MAX);
    }
}

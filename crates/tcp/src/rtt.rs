//! Round-trip time estimation and retransmission timeout (RFC 6298), with
//! Linux's bounds: RTO = SRTT + max(4·RTTVAR, rto_min) (so the 200 ms floor
//! sits on top of the smoothed RTT, as in `tcp_set_rto`), initial RTO 1 s,
//! exponential backoff capped at `rto_max` (120 s).

use core::time::Duration;

/// RTT estimator and RTO with backoff.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt_us: Option<u64>,
    rttvar_us: u64,
    min_rtt_us: Option<u64>,
    latest_us: u64,
    rto_min: Duration,
    rto_max: Duration,
    initial: Duration,
    backoff: u32,
}

impl RttEstimator {
    pub fn new(initial: Duration, rto_min: Duration, rto_max: Duration) -> Self {
        RttEstimator {
            srtt_us: None,
            rttvar_us: 0,
            min_rtt_us: None,
            latest_us: 0,
            rto_min,
            rto_max,
            initial,
            backoff: 0,
        }
    }

    /// Feeds one RTT measurement.
    pub fn sample(&mut self, rtt: Duration) {
        let r = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latest_us = r;
        self.min_rtt_us = Some(self.min_rtt_us.map_or(r, |m| m.min(r)));
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(r);
                self.rttvar_us = (3 * self.rttvar_us + err) / 4;
                self.srtt_us = Some((7 * srtt + r) / 8);
            }
        }
    }

    /// The RTO without backoff.
    pub fn base_rto(&self) -> Duration {
        match self.srtt_us {
            None => self.initial,
            Some(srtt) => {
                let var = Duration::from_micros(4 * self.rttvar_us).max(self.rto_min);
                (Duration::from_micros(srtt) + var).min(self.rto_max)
            }
        }
    }

    /// The current RTO including exponential backoff.
    pub fn rto(&self) -> Duration {
        let base = self.base_rto();
        let factor = 1u32.checked_shl(self.backoff).unwrap_or(u32::MAX);
        base.checked_mul(factor)
            .unwrap_or(self.rto_max)
            .min(self.rto_max)
    }

    /// Doubles the RTO (after a timeout).
    pub fn back_off(&mut self) {
        if self.backoff < 31 {
            self.backoff += 1;
        }
    }

    /// Clears the backoff (new data was acknowledged).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us.map(Duration::from_micros)
    }

    pub fn rttvar(&self) -> Duration {
        Duration::from_micros(self.rttvar_us)
    }

    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt_us.map(Duration::from_micros)
    }

    pub fn latest(&self) -> Duration {
        Duration::from_micros(self.latest_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(120),
        )
    }

    #[test]
    fn initial_rto_is_one_second() {
        assert_eq!(est().rto(), Duration::from_secs(1));
    }

    #[test]
    fn floor_applies_on_top_of_srtt() {
        let mut e = est();
        for _ in 0..50 {
            e.sample(Duration::from_millis(2));
        }
        assert_eq!(e.srtt(), Some(Duration::from_millis(2)));
        assert_eq!(e.rto(), Duration::from_millis(202));
        assert_eq!(e.min_rtt(), Some(Duration::from_millis(2)));
    }

    #[test]
    fn first_sample_sets_var_to_half() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        // 100 + max(4*50, 200) = 300 ms.
        assert_eq!(e.rto(), Duration::from_millis(300));
        e.sample(Duration::from_millis(300));
        assert_eq!(e.srtt(), Some(Duration::from_micros(125_000)));
        // rttvar = (3*50 + 200)/4 = 87.5 ms -> 4x = 350 ms.
        assert_eq!(e.rto(), Duration::from_micros(125_000 + 350_000));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut e = est();
        e.sample(Duration::from_millis(1));
        let base = e.rto();
        e.back_off();
        assert_eq!(e.rto(), base * 2);
        for _ in 0..40 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(120));
        e.reset_backoff();
        assert_eq!(e.rto(), base);
        assert_eq!(e.backoff(), 0);
    }
}

//! Time-based loss detection, RACK (RFC 8985) as Linux runs it by default:
//! a segment is lost once a segment sent after it has been delivered and a
//! reordering window has passed. The window is min_rtt/4 times a step count
//! that DSACKs raise (capped at SRTT), and 0 before any reordering was seen
//! once in recovery or with `dup_thresh` segments SACKed.

use core::time::Duration;

use ftsplice_proto::Instant;

use crate::seq::SeqNum;

/// RACK state of a sender.
#[derive(Clone, Debug)]
pub struct Rack {
    /// Send time and end of the most recently sent delivered segment.
    xmit: Option<(Instant, SeqNum)>,
    /// RTT of that segment.
    rtt: Duration,
    /// Reordering was observed (a hole filled by an original transmission,
    /// or a DSACK).
    reord_seen: bool,
    steps: u32,
    last_step: Option<Instant>,
    /// A segment was delivered since the last detection run.
    advanced: bool,
}

impl Default for Rack {
    fn default() -> Self {
        Rack {
            xmit: None,
            rtt: Duration::ZERO,
            reord_seen: false,
            steps: 1,
            last_step: None,
            advanced: false,
        }
    }
}

/// `t1, s1` was sent after `t2, s2` (ties broken by sequence).
pub fn sent_after(t1: Instant, s1: SeqNum, t2: Instant, s2: SeqNum) -> bool {
    t1 > t2 || (t1 == t2 && s1 > s2)
}

impl Rack {
    pub fn new() -> Self {
        Self::default()
    }

    /// A segment `[.., end)` last sent at `sent_at` was delivered (ACKed or
    /// SACKed). Retransmitted segments delivered faster than `min_rtt` are
    /// ignored: the original probably arrived.
    pub fn on_delivered(
        &mut self,
        now: Instant,
        sent_at: Instant,
        end: SeqNum,
        retransmitted: bool,
        min_rtt: Option<Duration>,
    ) {
        let rtt = now - sent_at;
        if retransmitted && min_rtt.is_some_and(|m| rtt < m) {
            return;
        }
        self.advanced = true;
        match self.xmit {
            Some((t, s)) if !sent_after(sent_at, end, t, s) => {}
            _ => {
                self.xmit = Some((sent_at, end));
                self.rtt = rtt;
            }
        }
    }

    pub fn reord_seen(&self) -> bool {
        self.reord_seen
    }

    /// Reordering was observed.
    pub fn on_reordering(&mut self) {
        self.reord_seen = true;
    }

    /// A DSACK arrived: widen the window (at most once per `srtt`).
    pub fn on_dsack(&mut self, now: Instant, srtt: Duration) {
        self.reord_seen = true;
        if self.last_step.is_some_and(|t| now < t + srtt) {
            return;
        }
        self.last_step = Some(now);
        self.steps = (self.steps + 1).min(255);
    }

    /// The reordering window.
    pub fn reo_wnd(
        &self,
        min_rtt: Option<Duration>,
        srtt: Option<Duration>,
        in_recovery: bool,
        sacked_segs: usize,
        dup_thresh: usize,
    ) -> Duration {
        if !self.reord_seen && (in_recovery || sacked_segs >= dup_thresh) {
            return Duration::ZERO;
        }
        let w = min_rtt.unwrap_or_default() / 4 * self.steps;
        match srtt {
            Some(s) => w.min(s),
            None => w,
        }
    }

    /// The most recently sent delivered segment and its RTT.
    pub fn latest(&self) -> Option<(Instant, SeqNum, Duration)> {
        self.xmit.map(|(t, s)| (t, s, self.rtt))
    }

    /// Whether a segment was delivered since the last call.
    pub fn take_advanced(&mut self) -> bool {
        core::mem::take(&mut self.advanced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn tracks_most_recently_sent_delivery() {
        let mut r = Rack::new();
        r.on_delivered(ms(30), ms(10), SeqNum(200), false, None);
        r.on_delivered(ms(31), ms(5), SeqNum(100), false, None);
        assert_eq!(
            r.latest(),
            Some((ms(10), SeqNum(200), Duration::from_millis(20)))
        );
        // Same send time: the higher sequence wins.
        r.on_delivered(ms(32), ms(10), SeqNum(300), false, None);
        assert_eq!(r.latest().unwrap().1, SeqNum(300));
        assert!(r.take_advanced());
        assert!(!r.take_advanced());
    }

    #[test]
    fn ignores_fast_acks_of_retransmissions() {
        let mut r = Rack::new();
        r.on_delivered(
            ms(12),
            ms(10),
            SeqNum(1),
            true,
            Some(Duration::from_millis(10)),
        );
        assert_eq!(r.latest(), None);
    }

    #[test]
    fn window_grows_with_dsacks_up_to_srtt() {
        let mut r = Rack::new();
        let min = Some(Duration::from_millis(8));
        let srtt = Some(Duration::from_millis(10));
        assert_eq!(r.reo_wnd(min, srtt, false, 0, 3), Duration::from_millis(2));
        assert_eq!(r.reo_wnd(min, srtt, true, 0, 3), Duration::ZERO);
        assert_eq!(r.reo_wnd(min, srtt, false, 3, 3), Duration::ZERO);
        r.on_dsack(ms(0), Duration::from_millis(10));
        assert!(r.reord_seen());
        assert_eq!(r.reo_wnd(min, srtt, true, 5, 3), Duration::from_millis(4));
        // Within one srtt: no further step.
        r.on_dsack(ms(5), Duration::from_millis(10));
        assert_eq!(r.reo_wnd(min, srtt, true, 5, 3), Duration::from_millis(4));
        for i in 1..20 {
            r.on_dsack(ms(20 * i), Duration::from_millis(10));
        }
        assert_eq!(r.reo_wnd(min, srtt, true, 5, 3), Duration::from_millis(10));
    }
}

//! Congestion window control: slow start plus either CUBIC (RFC 9438,
//! Linux's default: β = 0.7, C = 0.4, fast convergence, Reno-friendly
//! region) or Reno (RFC 5681, halving). Windows are in bytes; growth happens
//! only while the sender is cwnd-limited, as in Linux.

use core::time::Duration;

use ftsplice_proto::Instant;

/// Which algorithm grows the window in congestion avoidance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    Reno,
    /// The Linux default.
    #[default]
    Cubic,
}

const CUBIC_BETA: f64 = 0.7;
const CUBIC_C: f64 = 0.4;

#[derive(Clone, Debug, Default)]
struct Cubic {
    /// Window (segments) before the last reduction.
    w_max: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch: Option<Instant>,
    k: f64,
    /// Reno-friendly estimate (segments).
    w_est: f64,
}

/// Congestion controller state.
#[derive(Clone, Debug)]
pub struct Congestion {
    algo: Algorithm,
    mss: usize,
    initial_segments: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acked in congestion avoidance not yet turned into growth.
    ca_acc: usize,
    cubic: Cubic,
}

impl Congestion {
    pub fn new(algo: Algorithm, mss: usize, initial_segments: usize) -> Self {
        let mss = mss.max(1);
        Congestion {
            algo,
            mss,
            initial_segments: initial_segments.max(1),
            cwnd: mss * initial_segments.max(1),
            ssthresh: usize::MAX,
            ca_acc: 0,
            cubic: Cubic::default(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algo
    }

    pub fn cwnd(&self) -> usize {
        self.cwnd
    }

    pub fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// Changes the segment size (after the handshake fixed the MSS), keeping
    /// the window in segments.
    pub fn set_mss(&mut self, mss: usize) {
        let mss = mss.max(1);
        let segs = (self.cwnd / self.mss).max(1);
        self.mss = mss;
        self.cwnd = segs * mss;
    }

    /// `acked` new bytes were cumulatively acknowledged outside recovery.
    pub fn on_ack(&mut self, now: Instant, acked: usize, srtt: Duration, cwnd_limited: bool) {
        if !cwnd_limited || acked == 0 {
            return;
        }
        let mut acked = acked;
        if self.in_slow_start() {
            let room = self.ssthresh - self.cwnd;
            let grow = acked.min(room);
            self.cwnd += grow;
            acked -= grow;
            if acked == 0 {
                return;
            }
        }
        match self.algo {
            Algorithm::Reno => self.reno_ca(acked),
            Algorithm::Cubic => self.cubic_ca(now, acked, srtt),
        }
    }

    fn reno_ca(&mut self, acked: usize) {
        self.ca_acc += acked;
        if self.ca_acc >= self.cwnd {
            self.ca_acc -= self.cwnd;
            self.cwnd += self.mss;
        }
    }

    fn cubic_ca(&mut self, now: Instant, acked: usize, srtt: Duration) {
        let mss = self.mss as f64;
        let cwnd_segs = self.cwnd as f64 / mss;
        let c = &mut self.cubic;
        let epoch = *c.epoch.get_or_insert_with(|| {
            if c.w_max < cwnd_segs {
                c.k = 0.0;
                c.w_max = cwnd_segs;
            } else {
                c.k = ((c.w_max - cwnd_segs) / CUBIC_C).cbrt();
            }
            c.w_est = cwnd_segs;
            now
        });
        let t = (now - epoch + srtt).as_secs_f64();
        let target = CUBIC_C * (t - c.k).powi(3) + c.w_max;
        let target = target.clamp(cwnd_segs, 1.5 * cwnd_segs);
        // Reno-friendly estimate, RFC 9438 §4.3.
        let alpha = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA);
        c.w_est += alpha * (acked as f64 / mss) / cwnd_segs;
        let target = target.max(c.w_est);
        // Grow by (target - cwnd)/cwnd segments per acked segment.
        let inc_segs = (target - cwnd_segs) / cwnd_segs * (acked as f64 / mss);
        self.ca_acc += (inc_segs * mss) as usize;
        if self.ca_acc >= self.mss {
            let whole = self.ca_acc / self.mss * self.mss;
            self.cwnd += whole;
            self.ca_acc -= whole;
        }
    }

    /// Loss detected by duplicate ACKs / SACK: sets ssthresh from the
    /// window (as Linux's `ssthresh` hooks do) and returns it; the caller
    /// sets the window for recovery with [`Self::enter_recovery`].
    pub fn on_loss(&mut self) -> usize {
        let cwnd_segs = self.cwnd as f64 / self.mss as f64;
        self.ssthresh = match self.algo {
            Algorithm::Reno => (self.cwnd / 2).max(2 * self.mss),
            Algorithm::Cubic => {
                let c = &mut self.cubic;
                // Fast convergence.
                c.w_max = if cwnd_segs < c.w_max {
                    cwnd_segs * (1.0 + CUBIC_BETA) / 2.0
                } else {
                    cwnd_segs
                };
                c.epoch = None;
                ((self.cwnd as f64 * CUBIC_BETA) as usize).max(2 * self.mss)
            }
        };
        self.ca_acc = 0;
        self.ssthresh
    }

    /// Fast recovery: the window becomes ssthresh (RFC 6675 §5 step 4.2).
    pub fn enter_recovery(&mut self) {
        self.cwnd = self.ssthresh;
    }

    /// Recovery ended (all data outstanding at its start was acknowledged):
    /// the window is ssthresh, as Linux's `tcp_end_cwnd_reduction` sets it.
    pub fn exit_recovery(&mut self) {
        self.cwnd = self.ssthresh.max(2 * self.mss);
    }

    /// Retransmission timeout: ssthresh as for a loss, window one segment.
    pub fn on_rto(&mut self) {
        self.on_loss();
        self.cwnd = self.mss;
    }

    /// Another timeout while still recovering from one: ssthresh stays (it
    /// was computed from the window before the first timeout).
    pub fn on_rto_again(&mut self) {
        self.cwnd = self.mss;
    }

    /// Undoes a reduction found spurious: back to `prior` (the state before
    /// it) unless the window has since grown past it (Linux
    /// `tcp_undo_cwnd_reduction`).
    pub fn undo(&mut self, prior: &Congestion) {
        if prior.cwnd > self.cwnd {
            let (algo, mss) = (self.algo, self.mss);
            *self = prior.clone();
            self.algo = algo;
            self.set_mss(mss);
        }
        self.ssthresh = self.ssthresh.max(prior.ssthresh);
    }

    /// Sending resumes after `idle` without data in flight (Linux
    /// `tcp_cwnd_restart`, `tcp_slow_start_after_idle=1`): ssthresh keeps
    /// 3/4 of the window, which halves per RTO of idleness down to the
    /// initial window.
    pub fn restart_after_idle(&mut self, idle: Duration, rto: Duration) {
        let restart = (self.initial_segments * self.mss).min(self.cwnd);
        self.ssthresh = self.ssthresh.max(self.cwnd / 4 * 3);
        let mut cwnd = self.cwnd;
        let mut left = idle;
        while left > rto && cwnd > restart {
            left -= rto;
            cwnd >>= 1;
        }
        self.cwnd = cwnd.max(restart);
        self.cubic.epoch = None;
        self.ca_acc = 0;
    }

    pub fn mss(&self) -> usize {
        self.mss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const RTT: Duration = Duration::from_millis(10);

    #[test]
    fn slow_start_doubles_per_window() {
        for algo in [Algorithm::Reno, Algorithm::Cubic] {
            let mut c = Congestion::new(algo, MSS, 10);
            assert_eq!(c.cwnd(), 10 * MSS);
            c.on_ack(Instant::ZERO, 10 * MSS, RTT, true);
            assert_eq!(c.cwnd(), 20 * MSS);
            // Not cwnd-limited: no growth.
            c.on_ack(Instant::ZERO, 10 * MSS, RTT, false);
            assert_eq!(c.cwnd(), 20 * MSS);
        }
    }

    #[test]
    fn reno_halves_and_grows_one_mss_per_rtt() {
        let mut c = Congestion::new(Algorithm::Reno, MSS, 10);
        c.on_ack(Instant::ZERO, 30 * MSS, RTT, true);
        assert_eq!(c.on_loss(), 20 * MSS);
        c.enter_recovery();
        c.exit_recovery();
        assert_eq!(c.cwnd(), 20 * MSS);
        assert!(!c.in_slow_start());
        c.on_ack(Instant::ZERO, 20 * MSS, RTT, true);
        assert_eq!(c.cwnd(), 21 * MSS);
    }

    #[test]
    fn cubic_reduces_by_beta_and_regrows_to_wmax() {
        let mut c = Congestion::new(Algorithm::Cubic, MSS, 100);
        assert_eq!(c.on_loss(), 70 * MSS);
        c.enter_recovery();
        assert_eq!(c.cwnd(), 70 * MSS);
        // K = cbrt(30/0.4) ~ 4.2 s: with a 100 ms RTT (outside the
        // Reno-friendly region) cwnd is back near w_max after ~4.2 s.
        let rtt = Duration::from_millis(100);
        let mut now = Instant::ZERO;
        let mut at_2s = 0;
        for i in 0..42 {
            now += rtt;
            let w = c.cwnd();
            c.on_ack(now, w, rtt, true);
            if i == 19 {
                at_2s = c.cwnd() / MSS;
            }
        }
        let w = c.cwnd() / MSS;
        assert!((95..=110).contains(&w), "cwnd {w} segments");
        // Concave: most of the growth happens early.
        assert!(at_2s > 85, "cwnd at 2 s {at_2s}");
    }

    #[test]
    fn cubic_is_reno_friendly_at_short_rtts() {
        let mut c = Congestion::new(Algorithm::Cubic, MSS, 100);
        c.on_loss();
        c.enter_recovery();
        let mut now = Instant::ZERO;
        for _ in 0..100 {
            now += RTT;
            let w = c.cwnd();
            c.on_ack(now, w, RTT, true);
        }
        // ~0.53 segments per RTT from the Reno-friendly estimate.
        let w = c.cwnd() / MSS;
        assert!((115..=130).contains(&w), "cwnd {w} segments");
    }

    #[test]
    fn undo_restores_the_prior_window() {
        let mut c = Congestion::new(Algorithm::Cubic, MSS, 10);
        c.on_ack(Instant::ZERO, 40 * MSS, RTT, true);
        let prior = c.clone();
        c.on_loss();
        c.enter_recovery();
        assert_eq!(c.cwnd(), 35 * MSS);
        c.undo(&prior);
        assert_eq!(c.cwnd(), 50 * MSS);
        assert_eq!(c.ssthresh(), usize::MAX);
    }

    #[test]
    fn idle_restart_halves_per_rto_down_to_initial_window() {
        let rto = Duration::from_millis(200);
        let mut c = Congestion::new(Algorithm::Cubic, MSS, 10);
        c.on_ack(Instant::ZERO, 70 * MSS, RTT, true);
        assert_eq!(c.cwnd(), 80 * MSS);
        c.restart_after_idle(Duration::from_millis(450), rto);
        assert_eq!(c.cwnd(), 20 * MSS);
        assert_eq!(c.ssthresh(), usize::MAX);
        c.restart_after_idle(Duration::from_secs(10), rto);
        assert_eq!(c.cwnd(), 10 * MSS);
    }

    #[test]
    fn rto_collapses_window() {
        let mut c = Congestion::new(Algorithm::Cubic, MSS, 10);
        c.on_rto();
        assert_eq!(c.cwnd(), MSS);
        assert_eq!(c.ssthresh(), 7 * MSS);
        assert!(c.in_slow_start());
        c.set_mss(500);
        assert_eq!(c.cwnd(), 500);
        assert_eq!(c.mss(), 500);
    }
}

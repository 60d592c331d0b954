//! Per-connection configuration, defaulting to Linux's behaviour (see each
//! field) with the simulation's 256 kB buffers.

use core::time::Duration;

use crate::congestion::Algorithm;

/// Connection parameters. `Config::default()` is Linux-like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// MSS announced and used as the upper bound for sending (1460).
    pub mss: u16,
    /// Send buffer size in bytes (256 kB).
    pub send_buffer: usize,
    /// Receive buffer size in bytes (256 kB); the window is its free space.
    pub recv_buffer: usize,
    /// Offer window scaling (RFC 7323).
    pub window_scaling: bool,
    /// Shift to announce; `None` = smallest shift that lets the window
    /// field cover `recv_buffer`.
    pub window_shift: Option<u8>,
    /// Offer SACK (RFC 2018) and use SACK-based recovery (RFC 6675).
    pub sack: bool,
    /// Offer timestamps (RFC 7323).
    pub timestamps: bool,
    /// Initial congestion window in segments (10, RFC 6928).
    pub initial_cwnd: usize,
    pub congestion: Algorithm,
    /// RTO before any RTT sample (1 s).
    pub rto_initial: Duration,
    /// Floor added on top of SRTT (200 ms, Linux `TCP_RTO_MIN`).
    pub rto_min: Duration,
    /// Backoff cap (120 s, Linux `TCP_RTO_MAX`).
    pub rto_max: Duration,
    /// Delayed-ACK timeout (40 ms, Linux `TCP_DELACK_MIN`).
    pub delayed_ack: Duration,
    /// Consecutive data retransmission timeouts before giving up
    /// (15, Linux `tcp_retries2`).
    pub max_retries: u32,
    /// SYN retransmissions before giving up (6, `tcp_syn_retries`).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before giving up (5, `tcp_synack_retries`).
    pub synack_retries: u32,
    /// TIME-WAIT duration (60 s, Linux `TCP_TIMEWAIT_LEN`).
    pub time_wait: Duration,
    /// Duplicate ACKs / SACKed segments above a hole that mark it lost (3).
    pub dup_thresh: usize,
    /// Disjoint out-of-order ranges held before further segments that would
    /// open a new hole are dropped.
    pub max_ooo_ranges: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            window_scaling: true,
            window_shift: None,
            sack: true,
            timestamps: true,
            initial_cwnd: 10,
            congestion: Algorithm::Cubic,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            delayed_ack: Duration::from_millis(40),
            max_retries: 15,
            syn_retries: 6,
            synack_retries: 5,
            time_wait: Duration::from_secs(60),
            dup_thresh: 3,
            max_ooo_ranges: 64,
        }
    }
}

impl Config {
    /// The window shift this configuration announces (RFC 7323 caps it at 14).
    pub fn own_window_shift(&self) -> u8 {
        if let Some(s) = self.window_shift {
            return s.min(14);
        }
        let mut shift = 0u8;
        while shift < 14 && (self.recv_buffer >> shift) > usize::from(u16::MAX) {
            shift += 1;
        }
        shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_covers_the_buffer() {
        let c = Config::default();
        assert_eq!(c.own_window_shift(), 3);
        let small = Config {
            recv_buffer: 65535,
            ..Config::default()
        };
        assert_eq!(small.own_window_shift(), 0);
        let fixed = Config {
            window_shift: Some(20),
            ..Config::default()
        };
        assert_eq!(fixed.own_window_shift(), 14);
    }
}

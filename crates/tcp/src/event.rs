//! What a connection tells its owner: events, counters and its state name.

use core::time::Duration;

/// Something the application should react to, from `poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The handshake completed.
    Connected,
    /// New in-order bytes can be read with `recv`.
    DataReadable,
    /// The send buffer has room again after a `send` could not take
    /// everything.
    SendBufferSpace,
    /// The peer sent FIN; everything it sent has been received (read the
    /// rest with `recv`).
    PeerClosed,
    /// The peer reset the connection.
    Reset,
    /// Retransmissions were exhausted (`tcp_retries2` / SYN retries).
    TimedOut,
    /// The connection reached CLOSED (after TIME-WAIT, LAST-ACK, a reset,
    /// a timeout or `abort`); it can be dropped. Always the last event.
    Closed,
}

/// RFC 9293 connection states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    Closed,
}

impl State {
    /// Past the handshake (RFC 9293 "synchronized" states).
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::SynSent | State::SynReceived | State::Closed)
    }

    /// The peer may still send data.
    pub fn can_receive(self) -> bool {
        matches!(
            self,
            State::Established | State::FinWait1 | State::FinWait2 | State::SynReceived
        )
    }

    /// The application may still queue data.
    pub fn can_send(self) -> bool {
        matches!(
            self,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        )
    }
}

/// Why an incoming segment was dropped (counted in [`Stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Sequence number outside the receive window (RFC 9293 acceptability).
    OutOfWindow,
    /// Timestamp older than TS.Recent (PAWS, RFC 7323).
    Paws,
    /// Acknowledges data never sent or far below SND.UNA.
    BadAck,
    /// No ACK flag in a synchronized state, or a bad handshake segment.
    Malformed,
    /// Would open more out-of-order holes than allowed.
    TooManyHoles,
    /// The connection is frozen or closed.
    Inactive,
}

/// Per-connection counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Application bytes sent for the first time.
    pub bytes_sent: u64,
    /// Application bytes retransmitted.
    pub bytes_retransmitted: u64,
    /// Application bytes delivered in order to the receive buffer.
    pub bytes_received: u64,
    pub segments_sent: u64,
    pub segments_received: u64,
    /// Segments retransmitted (all causes).
    pub retransmits: u64,
    /// Retransmission timeouts (data or handshake).
    pub rto_count: u64,
    /// Fast retransmit / recovery episodes.
    pub fast_retransmits: u64,
    /// Zero-window probes sent.
    pub window_probes: u64,
    /// DSACKs received (RFC 2883): the peer got data twice.
    pub dsacks_received: u64,
    /// DSACKs sent.
    pub dsacks_sent: u64,
    /// Window reductions undone as spurious (DSACK or timestamps).
    pub undos: u64,
    /// The sender has seen the network reorder segments.
    pub reordering_seen: bool,
    pub dropped_out_of_window: u64,
    pub dropped_paws: u64,
    pub dropped_bad_ack: u64,
    pub dropped_malformed: u64,
    pub dropped_too_many_holes: u64,
    pub dropped_inactive: u64,
    /// Smoothed RTT when last measured.
    pub srtt: Option<Duration>,
}

impl Stats {
    pub(crate) fn count_drop(&mut self, why: DropReason) {
        let c = match why {
            DropReason::OutOfWindow => &mut self.dropped_out_of_window,
            DropReason::Paws => &mut self.dropped_paws,
            DropReason::BadAck => &mut self.dropped_bad_ack,
            DropReason::Malformed => &mut self.dropped_malformed,
            DropReason::TooManyHoles => &mut self.dropped_too_many_holes,
            DropReason::Inactive => &mut self.dropped_inactive,
        };
        *c += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_predicates() {
        assert!(State::Established.is_synchronized());
        assert!(!State::SynSent.is_synchronized());
        assert!(State::CloseWait.can_send());
        assert!(!State::CloseWait.can_receive());
        assert!(State::FinWait2.can_receive());
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let mut s = Stats::default();
        s.count_drop(DropReason::Paws);
        s.count_drop(DropReason::Paws);
        s.count_drop(DropReason::TooManyHoles);
        assert_eq!(s.dropped_paws, 2);
        assert_eq!(s.dropped_too_many_holes, 1);
        assert_eq!(s.dropped_bad_ack, 0);
    }
}

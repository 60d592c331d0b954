//! The sender's retransmission queue and SACK scoreboard (RFC 6675): one
//! record per transmitted segment with its SACKed / lost / retransmitted
//! state and last send time, from which `pipe`, loss marking (RACK, see
//! [`crate::rack`]), the next segment to retransmit, RTT samples (Karn's
//! rule) and reordering detection follow.

use core::time::Duration;
use std::collections::VecDeque;

use ftsplice_proto::Instant;

use crate::options::SackBlock;
use crate::rack::{sent_after, Rack};
use crate::seq::SeqNum;

/// One transmitted segment: sequence space `[start, end)`, including the
/// FIN if `fin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxSeg {
    pub start: SeqNum,
    pub end: SeqNum,
    pub fin: bool,
    /// Last (re)transmission time.
    pub sent_at: Instant,
    /// Selectively acknowledged by the peer.
    pub sacked: bool,
    /// Presumed lost (by SACK evidence, dup ACKs or a timeout).
    pub lost: bool,
    /// Retransmitted since it was marked lost (so it is in flight again).
    pub retrans: bool,
    /// Ever retransmitted (its ACK cannot give an RTT sample, Karn).
    pub ever_retrans: bool,
}

impl TxSeg {
    pub fn len(&self) -> usize {
        self.end.since(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counted in `pipe` (RFC 6675 §4): neither SACKed nor lost-and-not-resent.
    fn in_flight(&self) -> bool {
        !self.sacked && (!self.lost || self.retrans)
    }

    /// Presumed lost and not yet resent (and not SACKed since).
    fn awaits_retransmit(&self) -> bool {
        self.lost && !self.retrans && !self.sacked
    }
}

/// What a cumulative ACK did to the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Send time of the newest fully acknowledged never-retransmitted segment.
    pub rtt_sent_at: Option<Instant>,
    /// Segments fully acknowledged.
    pub segs_acked: usize,
    /// A never-retransmitted segment below a SACKed one was delivered late:
    /// the network reorders.
    pub reordered: bool,
}

/// What SACK blocks did to the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackOutcome {
    /// Segments newly SACKed.
    pub newly_sacked: usize,
    /// See [`AckOutcome::reordered`].
    pub reordered: bool,
}

/// Context for reporting deliveries to RACK.
pub struct Delivery<'a> {
    pub rack: &'a mut Rack,
    pub now: Instant,
    pub min_rtt: Option<Duration>,
}

impl Delivery<'_> {
    fn report(&mut self, s: &TxSeg) {
        self.rack
            .on_delivered(self.now, s.sent_at, s.end, s.ever_retrans, self.min_rtt);
    }
}

/// The scoreboard. `pipe`, the SACKed count and the retransmitted count
/// are kept up to date on every change, so an ACK that only advances
/// SND.UNA costs O(segments it acknowledges), not O(queue).
#[derive(Clone, Debug, Default)]
pub struct Scoreboard {
    segs: VecDeque<TxSeg>,
    pipe: usize,
    sacked_segs: usize,
    /// Segments in the queue that were ever retransmitted.
    retx_segs: usize,
    /// Segments awaiting retransmission (lost, not resent, not SACKed).
    lost_segs: usize,
    /// Some first transmission was recorded earlier than the one before
    /// it (a caller's clock going backwards); until the queue drains,
    /// send times are not known to increase along it.
    unordered: bool,
    /// Send time of the latest first transmission.
    last_first_sent: Option<Instant>,
    /// Index before which no segment awaits retransmission.
    retx_hint: usize,
}

impl Scoreboard {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn first(&self) -> Option<&TxSeg> {
        self.segs.front()
    }

    pub fn get(&self, i: usize) -> Option<&TxSeg> {
        self.segs.get(i)
    }

    /// Bytes presumed in the network (RFC 6675 `pipe`).
    pub fn pipe(&self) -> usize {
        self.pipe
    }

    /// Records a first transmission.
    pub fn push(&mut self, start: SeqNum, end: SeqNum, fin: bool, now: Instant) {
        if self.segs.is_empty() {
            self.unordered = false;
        } else {
            self.unordered |= self.last_first_sent.is_some_and(|t| now < t);
        }
        self.last_first_sent = Some(now);
        let seg = TxSeg {
            start,
            end,
            fin,
            sent_at: now,
            sacked: false,
            lost: false,
            retrans: false,
            ever_retrans: false,
        };
        self.pipe += seg.len();
        self.segs.push_back(seg);
    }

    /// Segments currently SACKed.
    pub fn sacked_segs(&self) -> usize {
        self.sacked_segs
    }

    /// Removes everything below `una` (trimming a partially acknowledged
    /// segment), reporting deliveries.
    /// `fack` is the highest SACKed sequence before this ACK's SACK blocks
    /// were applied.
    pub fn ack(&mut self, una: SeqNum, fack: Option<SeqNum>, d: &mut Delivery<'_>) -> AckOutcome {
        let mut out = AckOutcome::default();
        while let Some(first) = self.segs.front_mut() {
            if first.end <= una {
                if !first.ever_retrans {
                    out.rtt_sent_at = Some(first.sent_at);
                    if !first.sacked && fack.is_some_and(|f| first.end < f) {
                        out.reordered = true;
                    }
                }
                if !first.sacked {
                    d.report(first);
                }
                out.segs_acked += 1;
                if first.in_flight() {
                    self.pipe -= first.len();
                }
                self.sacked_segs -= usize::from(first.sacked);
                self.retx_segs -= usize::from(first.ever_retrans);
                self.lost_segs -= usize::from(first.awaits_retransmit());
                self.segs.pop_front();
                self.retx_hint = self.retx_hint.saturating_sub(1);
            } else {
                if first.start < una {
                    if first.in_flight() {
                        self.pipe -= una.since(first.start);
                    }
                    first.start = una;
                }
                break;
            }
        }
        #[cfg(debug_assertions)]
        self.check_counts();
        out
    }

    /// Marks segments wholly inside the blocks as SACKed, reporting
    /// deliveries.
    pub fn sack(&mut self, blocks: &[SackBlock], d: &mut Delivery<'_>) -> SackOutcome {
        let mut out = SackOutcome::default();
        let fack = self.highest_sacked();
        for b in blocks {
            if b.end <= b.start {
                continue;
            }
            let from = self.segs.partition_point(|s| s.end <= b.start);
            for s in self.segs.iter_mut().skip(from) {
                if s.start >= b.end {
                    break;
                }
                if !s.sacked && s.start >= b.start && s.end <= b.end {
                    s.sacked = true;
                    out.newly_sacked += 1;
                    if !s.ever_retrans && fack.is_some_and(|f| s.end < f) {
                        out.reordered = true;
                    }
                    d.report(s);
                }
            }
        }
        if out.newly_sacked > 0 {
            self.recompute_pipe();
        }
        out
    }

    /// RACK loss marking (RFC 8985 §6.2): a segment sent before the most
    /// recently sent delivered one is lost once `rtt + reo_wnd` has passed
    /// since it was sent. Returns how many were newly marked and, if some
    /// are not yet due, how long until the next one is.
    pub fn rack_mark_lost(
        &mut self,
        rack: &Rack,
        now: Instant,
        reo_wnd: Duration,
    ) -> (usize, Option<Duration>) {
        let Some((xmit, xmit_end, rtt)) = rack.latest() else {
            return (0, None);
        };
        let mut marked = 0;
        let mut lowest = None;
        let mut wait: Option<Duration> = None;
        // First transmissions are sent in order, so once one was not sent
        // before the latest delivered segment, no later one was: unless a
        // retransmission (sent later than its place in the queue) is in
        // the queue, the scan stops there.
        let ordered = self.retx_segs == 0 && !self.unordered;
        for (i, s) in self.segs.iter_mut().enumerate() {
            if s.sacked || (s.lost && !s.retrans) {
                continue;
            }
            if !sent_after(xmit, xmit_end, s.sent_at, s.end) {
                if ordered {
                    break;
                }
                continue;
            }
            let due = s.sent_at + rtt + reo_wnd;
            if due <= now {
                s.lost = true;
                s.retrans = false;
                marked += 1;
                lowest.get_or_insert(i);
            } else {
                let left = due - now;
                wait = Some(wait.map_or(left, |w| w.max(left)));
            }
        }
        if let Some(i) = lowest {
            self.retx_hint = self.retx_hint.min(i);
            self.recompute_pipe();
        }
        (marked, wait)
    }

    /// Un-marks segments presumed lost but not yet retransmitted (the loss
    /// was spurious).
    pub fn clear_lost(&mut self) {
        for s in self.segs.iter_mut() {
            if s.lost && !s.retrans {
                s.lost = false;
            }
        }
        self.recompute_pipe();
    }

    /// Whether a retransmission is in flight (neither SACKed nor lost again).
    pub fn retrans_in_flight(&self) -> bool {
        self.segs.iter().any(|s| s.retrans && !s.sacked)
    }

    /// Whether any unSACKed segment is presumed lost and awaits
    /// retransmission.
    pub fn any_lost(&self) -> bool {
        self.lost_segs > 0
    }

    /// Marks the first unSACKed segment lost (fast retransmit, NewReno
    /// partial ACK). Returns whether it was newly marked.
    pub fn mark_first_lost(&mut self) -> bool {
        let Some((i, s)) = self.segs.iter_mut().enumerate().find(|(_, s)| !s.sacked) else {
            return false;
        };
        if s.lost && !s.retrans {
            return false;
        }
        s.lost = true;
        s.retrans = false;
        self.retx_hint = self.retx_hint.min(i);
        self.recompute_pipe();
        true
    }

    /// Retransmission timeout: every unSACKed segment is presumed lost.
    pub fn mark_all_lost(&mut self) {
        for s in self.segs.iter_mut().filter(|s| !s.sacked) {
            s.lost = true;
            s.retrans = false;
        }
        self.retx_hint = 0;
        self.recompute_pipe();
    }

    /// Forgets SACK information (the peer may have reneged).
    pub fn clear_sacks(&mut self) {
        for s in self.segs.iter_mut() {
            s.sacked = false;
        }
        self.recompute_pipe();
    }

    /// Index of the first segment awaiting retransmission.
    pub fn next_lost(&mut self) -> Option<usize> {
        let from = self.retx_hint;
        match self
            .segs
            .iter()
            .skip(from)
            .position(|s| s.lost && !s.retrans && !s.sacked)
        {
            Some(p) => {
                self.retx_hint = from + p;
                Some(from + p)
            }
            None => {
                self.retx_hint = self.segs.len();
                None
            }
        }
    }

    /// Records the retransmission of segment `i`.
    pub fn on_retransmit(&mut self, i: usize, now: Instant) {
        if let Some(s) = self.segs.get_mut(i) {
            // In flight again unless SACKed meanwhile.
            if !s.in_flight() && !s.sacked {
                self.pipe += s.len();
            }
            self.retx_segs += usize::from(!s.ever_retrans);
            self.lost_segs -= usize::from(s.awaits_retransmit());
            s.retrans = true;
            s.ever_retrans = true;
            s.sent_at = now;
        }
    }

    /// Highest SACKed sequence number.
    pub fn highest_sacked(&self) -> Option<SeqNum> {
        if self.sacked_segs == 0 {
            return None;
        }
        self.segs.iter().rev().find(|s| s.sacked).map(|s| s.end)
    }

    /// Whether any segment is SACKed.
    pub fn any_sacked(&self) -> bool {
        self.sacked_segs > 0
    }

    /// Bytes of unSACKed, lost-and-not-resent segments.
    pub fn lost_bytes(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| s.lost && !s.retrans && !s.sacked)
            .map(TxSeg::len)
            .sum()
    }

    /// (pipe, SACKed, lost awaiting retransmission) counted from scratch.
    fn count(&self) -> (usize, usize, usize) {
        let (mut pipe, mut sacked, mut lost) = (0, 0, 0);
        for s in &self.segs {
            if s.in_flight() {
                pipe += s.len();
            }
            sacked += usize::from(s.sacked);
            lost += usize::from(s.awaits_retransmit());
        }
        (pipe, sacked, lost)
    }

    fn recompute_pipe(&mut self) {
        (self.pipe, self.sacked_segs, self.lost_segs) = self.count();
    }

    /// The counters kept up to date incrementally match a recount.
    #[cfg(debug_assertions)]
    fn check_counts(&self) {
        let retx = self.segs.iter().filter(|s| s.ever_retrans).count();
        debug_assert_eq!(
            (self.pipe, self.sacked_segs, self.lost_segs, self.retx_segs),
            {
                let (p, s, l) = self.count();
                (p, s, l, retx)
            },
            "scoreboard counters drifted"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(n: u32) -> Scoreboard {
        let mut b = Scoreboard::new();
        for i in 0..n {
            b.push(
                SeqNum(i * 100),
                SeqNum(i * 100 + 100),
                false,
                Instant::from_millis(u64::from(i)),
            );
        }
        b
    }

    fn blk(a: u32, b: u32) -> SackBlock {
        SackBlock {
            start: SeqNum(a),
            end: SeqNum(b),
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn pipe_tracks_sack_loss_and_retransmit() {
        let mut rack = Rack::new();
        let mut b = board(6);
        assert_eq!(b.pipe(), 600);
        let mut d = Delivery {
            rack: &mut rack,
            now: ms(20),
            min_rtt: None,
        };
        let out = b.sack(&[blk(200, 500)], &mut d);
        assert_eq!(out.newly_sacked, 3);
        assert!(!out.reordered);
        assert_eq!(b.pipe(), 300);
        assert_eq!(b.sacked_segs(), 3);
        // Latest delivered was sent at 4 ms with RTT 16 ms: segments 0 and 1
        // (sent at 0 and 1 ms) are lost at 16/17 ms + reo_wnd.
        let (n, wait) = b.rack_mark_lost(&rack, ms(20), Duration::ZERO);
        assert_eq!((n, wait), (2, None));
        assert_eq!(b.pipe(), 100);
        assert!(b.any_lost());
        assert_eq!(b.next_lost(), Some(0));
        b.on_retransmit(0, ms(21));
        assert_eq!(b.pipe(), 200);
        assert_eq!(b.next_lost(), Some(1));
        b.on_retransmit(1, ms(21));
        assert_eq!(b.next_lost(), None);
        let mut d = Delivery {
            rack: &mut rack,
            now: ms(40),
            min_rtt: None,
        };
        let out = b.ack(SeqNum(500), None, &mut d);
        assert_eq!(out.segs_acked, 5);
        // The newest never-retransmitted acked segment was sent at 4 ms.
        assert_eq!(out.rtt_sent_at, Some(ms(4)));
        assert_eq!(b.pipe(), 100);
    }

    #[test]
    fn rack_waits_for_the_reordering_window() {
        let mut rack = Rack::new();
        let mut b = board(3);
        let mut d = Delivery {
            rack: &mut rack,
            now: ms(12),
            min_rtt: None,
        };
        b.sack(&[blk(200, 300)], &mut d);
        // RTT 10 ms; segment 1 sent at 1 ms is due at 11 + 4 = 15 ms.
        let (n, wait) = b.rack_mark_lost(&rack, ms(12), Duration::from_millis(4));
        assert_eq!(n, 0);
        assert_eq!(wait, Some(Duration::from_millis(3)));
        let (n, _) = b.rack_mark_lost(&rack, ms(15), Duration::from_millis(4));
        assert_eq!(n, 2);
        b.clear_lost();
        assert!(!b.any_lost());
        assert_eq!(b.pipe(), 200);
    }

    #[test]
    fn late_original_is_reordering() {
        let mut rack = Rack::new();
        let mut b = board(4);
        let mut d = Delivery {
            rack: &mut rack,
            now: ms(12),
            min_rtt: None,
        };
        b.sack(&[blk(300, 400)], &mut d);
        assert!(b.sack(&[blk(100, 200)], &mut d).reordered);
        assert!(b.ack(SeqNum(100), Some(SeqNum(400)), &mut d).reordered);
        // Acked in the same ACK that first SACKs above it: not reordering.
        let mut b = board(4);
        b.sack(&[blk(300, 400)], &mut d);
        assert!(!b.ack(SeqNum(200), None, &mut d).reordered);
    }

    #[test]
    fn partial_sack_of_a_segment_does_not_count() {
        let mut rack = Rack::new();
        let mut d = Delivery {
            rack: &mut rack,
            now: ms(12),
            min_rtt: None,
        };
        let mut b = board(3);
        assert_eq!(b.sack(&[blk(150, 300)], &mut d).newly_sacked, 1);
        assert!(!b.get(1).unwrap().sacked);
        assert!(b.get(2).unwrap().sacked);
        assert_eq!(b.highest_sacked(), Some(SeqNum(300)));
    }

    #[test]
    fn partial_ack_trims_first_segment() {
        let mut rack = Rack::new();
        let mut d = Delivery {
            rack: &mut rack,
            now: ms(12),
            min_rtt: None,
        };
        let mut b = board(2);
        let out = b.ack(SeqNum(50), None, &mut d);
        assert_eq!(out.segs_acked, 0);
        assert_eq!(b.first().unwrap().start, SeqNum(50));
        assert_eq!(b.pipe(), 150);
    }

    #[test]
    fn timeout_marks_all_unsacked_lost() {
        let mut rack = Rack::new();
        let mut d = Delivery {
            rack: &mut rack,
            now: ms(12),
            min_rtt: None,
        };
        let mut b = board(4);
        b.sack(&[blk(300, 400)], &mut d);
        b.mark_all_lost();
        assert_eq!(b.pipe(), 0);
        assert_eq!(b.lost_bytes(), 300);
        assert_eq!(b.next_lost(), Some(0));
        b.clear_sacks();
        assert_eq!(b.pipe(), 100);
        assert!(!b.any_sacked());
    }

    #[test]
    fn first_lost_for_newreno() {
        let mut b = board(4);
        assert!(b.mark_first_lost());
        assert!(!b.mark_first_lost());
        b.on_retransmit(0, ms(50));
        assert_eq!(b.next_lost(), None);
        assert!(b.mark_first_lost());
    }
}

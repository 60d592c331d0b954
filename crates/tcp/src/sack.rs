//! The sender's retransmission queue and SACK scoreboard (RFC 6675): one
//! record per transmitted segment with its SACKed / lost / retransmitted
//! state and last send time, from which `pipe`, loss marking (`IsLost`),
//! the next segment to retransmit and RTT samples (Karn's rule) follow.

use std::collections::VecDeque;

use ftsplice_proto::Instant;

use crate::options::SackBlock;
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
}

/// What a cumulative ACK did to the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Send time of the newest fully acknowledged never-retransmitted segment.
    pub rtt_sent_at: Option<Instant>,
    /// Segments fully acknowledged.
    pub segs_acked: usize,
}

/// The scoreboard.
#[derive(Clone, Debug, Default)]
pub struct Scoreboard {
    segs: VecDeque<TxSeg>,
    pipe: usize,
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

    /// Removes everything below `una` (trimming a partially acknowledged
    /// segment).
    pub fn ack(&mut self, una: SeqNum) -> AckOutcome {
        let mut out = AckOutcome::default();
        while let Some(first) = self.segs.front_mut() {
            if first.end <= una {
                if !first.ever_retrans {
                    out.rtt_sent_at = Some(first.sent_at);
                }
                out.segs_acked += 1;
                self.segs.pop_front();
                self.retx_hint = self.retx_hint.saturating_sub(1);
            } else {
                if first.start < una {
                    first.start = una;
                }
                break;
            }
        }
        self.recompute_pipe();
        out
    }

    /// Marks segments wholly inside the blocks as SACKed. Returns the latest
    /// send time among newly SACKed segments, if any.
    pub fn sack(&mut self, blocks: &[SackBlock]) -> Option<Instant> {
        let mut newest: Option<Instant> = None;
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
                    newest = Some(newest.map_or(s.sent_at, |n| n.max(s.sent_at)));
                }
            }
        }
        if newest.is_some() {
            self.recompute_pipe();
        }
        newest
    }

    /// RFC 6675 `IsLost`: marks unSACKed segments with at least `dup_thresh`
    /// SACKed segments above them as lost. Returns how many were newly marked.
    pub fn mark_lost_by_sack(&mut self, dup_thresh: usize) -> usize {
        let mut sacked_above = 0;
        let mut marked = 0;
        let mut lowest = None;
        for (i, s) in self.segs.iter_mut().enumerate().rev() {
            if s.sacked {
                sacked_above += 1;
            } else if sacked_above >= dup_thresh && !s.lost {
                s.lost = true;
                s.retrans = false;
                marked += 1;
                lowest = Some(i);
            }
        }
        if let Some(i) = lowest {
            self.retx_hint = self.retx_hint.min(i);
            self.recompute_pipe();
        }
        marked
    }

    /// Marks retransmissions in flight that were sent before `deadline` as
    /// lost again (RACK, RFC 8985, applied to retransmissions only: a segment
    /// sent later has been delivered). Returns newly marked count.
    pub fn mark_lost_retrans_before(&mut self, deadline: Instant) -> usize {
        let mut marked = 0;
        let mut lowest = None;
        for (i, s) in self.segs.iter_mut().enumerate() {
            if s.sacked || !s.lost || !s.retrans {
                continue;
            }
            if s.sent_at < deadline {
                s.retrans = false;
                marked += 1;
                lowest.get_or_insert(i);
            }
        }
        if let Some(i) = lowest {
            self.retx_hint = self.retx_hint.min(i);
            self.recompute_pipe();
        }
        marked
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
            if !s.in_flight() {
                self.pipe += s.len();
            }
            s.retrans = true;
            s.ever_retrans = true;
            s.sent_at = now;
        }
    }

    /// Highest SACKed sequence number.
    pub fn highest_sacked(&self) -> Option<SeqNum> {
        self.segs.iter().rev().find(|s| s.sacked).map(|s| s.end)
    }

    /// Whether any segment is SACKed.
    pub fn any_sacked(&self) -> bool {
        self.segs.iter().any(|s| s.sacked)
    }

    /// Bytes of unSACKed, lost-and-not-resent segments.
    pub fn lost_bytes(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| s.lost && !s.retrans && !s.sacked)
            .map(TxSeg::len)
            .sum()
    }

    fn recompute_pipe(&mut self) {
        self.pipe = self
            .segs
            .iter()
            .filter(|s| s.in_flight())
            .map(TxSeg::len)
            .sum();
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

    #[test]
    fn pipe_tracks_sack_loss_and_retransmit() {
        let mut b = board(6);
        assert_eq!(b.pipe(), 600);
        assert_eq!(b.sack(&[blk(200, 500)]), Some(Instant::from_millis(4)));
        assert_eq!(b.pipe(), 300);
        assert_eq!(b.mark_lost_by_sack(3), 2);
        assert_eq!(b.pipe(), 100);
        assert_eq!(b.next_lost(), Some(0));
        b.on_retransmit(0, Instant::from_millis(10));
        assert_eq!(b.pipe(), 200);
        assert_eq!(b.next_lost(), Some(1));
        b.on_retransmit(1, Instant::from_millis(10));
        assert_eq!(b.next_lost(), None);
        let out = b.ack(SeqNum(500));
        assert_eq!(out.segs_acked, 5);
        // The newest never-retransmitted acked segment was sent at 4 ms.
        assert_eq!(out.rtt_sent_at, Some(Instant::from_millis(4)));
        assert_eq!(b.pipe(), 100);
    }

    #[test]
    fn partial_sack_of_a_segment_does_not_count() {
        let mut b = board(3);
        assert_eq!(b.sack(&[blk(150, 300)]), Some(Instant::from_millis(2)));
        assert!(!b.get(1).unwrap().sacked);
        assert!(b.get(2).unwrap().sacked);
        assert_eq!(b.highest_sacked(), Some(SeqNum(300)));
    }

    #[test]
    fn partial_ack_trims_first_segment() {
        let mut b = board(2);
        let out = b.ack(SeqNum(50));
        assert_eq!(out.segs_acked, 0);
        assert_eq!(b.first().unwrap().start, SeqNum(50));
        assert_eq!(b.pipe(), 150);
    }

    #[test]
    fn timeout_marks_all_unsacked_lost() {
        let mut b = board(4);
        b.sack(&[blk(300, 400)]);
        b.mark_all_lost();
        assert_eq!(b.pipe(), 0);
        assert_eq!(b.lost_bytes(), 300);
        assert_eq!(b.next_lost(), Some(0));
        b.clear_sacks();
        assert_eq!(b.pipe(), 100);
        assert!(!b.any_sacked());
    }

    #[test]
    fn first_lost_and_time_based_loss() {
        let mut b = board(4);
        assert!(b.mark_first_lost());
        assert!(!b.mark_first_lost());
        b.on_retransmit(0, Instant::from_millis(50));
        assert_eq!(b.next_lost(), None);
        // A segment sent after the retransmission was delivered: lost again.
        assert_eq!(b.mark_lost_retrans_before(Instant::from_millis(40)), 0);
        assert_eq!(b.mark_lost_retrans_before(Instant::from_millis(60)), 1);
        assert_eq!(b.next_lost(), Some(0));
        // Original transmissions are left to the SACK / dup-ACK rules.
        assert!(!b.get(1).unwrap().lost);
    }
}

//! The sender's reaction to ACKs: SND.UNA and window updates, RTT samples,
//! congestion window growth, duplicate-ACK / SACK loss detection and the
//! fast-recovery (RFC 6675 with SACK, RFC 6582 NewReno without) and
//! timeout-recovery phases, and the FIN-acknowledged state transitions.

use ftsplice_proto::Instant;

use super::{Connection, Recovery};
use crate::event::{DropReason, Event, State};
use crate::segment::Segment;
use crate::seq::SeqNum;

impl Connection {
    /// Handles the ACK field; false if the segment must be dropped.
    pub(super) fn process_ack<P: AsRef<[u8]>>(&mut self, now: Instant, seg: &Segment<P>) -> bool {
        let ack = seg.ack;
        if ack > self.snd_nxt {
            self.ack_now = true;
            self.stats.count_drop(DropReason::BadAck);
            return false;
        }
        let too_old = self.max_snd_wnd.max(usize::from(u16::MAX));
        if ack < self.snd_una - too_old {
            // RFC 5961 §5.2.
            self.ack_now = true;
            self.stats.count_drop(DropReason::BadAck);
            return false;
        }
        let mut newly_sacked = None;
        if self.sack_ok && !seg.options.sack.is_empty() && !self.board.is_empty() {
            let una = self.snd_una.max(ack);
            let mut blocks = seg.options.sack;
            let valid: crate::options::SackBlocks = blocks
                .as_slice()
                .iter()
                .filter(|b| b.start >= una && b.end <= self.snd_nxt && b.start < b.end)
                .copied()
                .collect();
            blocks = valid;
            newly_sacked = self.board.sack(blocks.as_slice());
        }
        let old_wnd = self.snd_wnd;
        let window = usize::from(seg.window) << self.snd_wscale;
        if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= ack) {
            self.snd_wnd = window;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
        }
        let acked = ack.since(self.snd_una);
        if acked > 0 {
            self.on_new_ack(now, seg, ack, acked);
        } else if !self.board.is_empty() {
            let dup = if self.sack_ok {
                newly_sacked.is_some()
            } else {
                seg.payload.as_ref().is_empty()
                    && !seg.flags.fin()
                    && self.snd_wnd == old_wnd
                    && ack == self.snd_una
            };
            if dup {
                self.dupacks = (self.dupacks + 1).min(self.board.len());
            }
        }
        if self.snd_wnd > 0 && self.persist_at.is_some() {
            self.persist_at = None;
            self.persist_backoff = 0;
        }
        if let Some(t) = newly_sacked {
            self.mark_lost_retransmissions(t);
        }
        self.detect_loss(now);
        true
    }

    fn on_new_ack<P: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        seg: &Segment<P>,
        ack: SeqNum,
        acked: usize,
    ) {
        let fin_acked = self.fin_seq.is_some_and(|f| self.snd_una <= f && ack > f);
        let data_acked = acked - usize::from(fin_acked);
        let out = self.board.ack(ack);
        self.send_buf.consume(data_acked);
        self.snd_una = ack;
        match out.rtt_sent_at {
            Some(t) => self.rtt.sample(now - t),
            None => self.ts_rtt_sample(now, &seg.options),
        }
        self.rtt.reset_backoff();
        self.retries = 0;
        self.rto_at = if self.board.is_empty() {
            None
        } else {
            Some(now + self.rtt.rto())
        };
        match self.recovery {
            Recovery::Fast { recover } | Recovery::Loss { recover } if ack >= recover => {
                if matches!(self.recovery, Recovery::Fast { .. }) {
                    self.cc.exit_recovery(self.pipe());
                }
                self.recovery = Recovery::Open;
                self.dupacks = 0;
            }
            Recovery::Fast { .. } => {
                if !self.sack_ok {
                    // NewReno partial ACK: the next hole is lost too; the
                    // dup ACKs for what was acked no longer count.
                    self.dupacks = self
                        .dupacks
                        .saturating_sub(out.segs_acked.saturating_sub(1));
                    if self.board.mark_first_lost() {
                        self.force_retx = true;
                    }
                }
            }
            Recovery::Loss { .. } => {
                self.dupacks = 0;
                self.cc
                    .on_ack(now, data_acked, self.srtt_or_rto(), self.cwnd_limited);
            }
            Recovery::Open => {
                self.dupacks = 0;
                self.cc
                    .on_ack(now, data_acked, self.srtt_or_rto(), self.cwnd_limited);
            }
        }
        if self.send_blocked && self.send_buf.free() > 0 {
            self.send_blocked = false;
            self.push_event(Event::SendBufferSpace);
        }
        if fin_acked {
            match self.state {
                State::FinWait1 => self.state = State::FinWait2,
                State::Closing => self.enter_time_wait(now),
                State::LastAck => self.enter_closed(),
                _ => {}
            }
        }
    }

    fn srtt_or_rto(&self) -> core::time::Duration {
        self.rtt.srtt().unwrap_or(self.cfg.rto_initial)
    }

    /// RACK-style detection of lost retransmissions: a retransmission sent
    /// before a segment that was just SACKed (minus a reordering window of
    /// min_rtt/4) is lost again.
    fn mark_lost_retransmissions(&mut self, newest_sacked_sent_at: Instant) {
        let reo_wnd = self.rtt.min_rtt().unwrap_or_default() / 4;
        let deadline = Instant::from_micros(
            newest_sacked_sent_at
                .as_micros()
                .saturating_sub(reo_wnd.as_micros() as u64),
        );
        self.board.mark_lost_retrans_before(deadline);
    }

    fn detect_loss(&mut self, now: Instant) {
        let _ = now;
        if self.board.is_empty() {
            return;
        }
        if self.sack_ok {
            self.board.mark_lost_by_sack(self.cfg.dup_thresh);
        }
        if self.recovery != Recovery::Open {
            return;
        }
        let first_lost = self.board.first().is_some_and(|s| s.lost && !s.sacked);
        if self.dupacks >= self.cfg.dup_thresh || first_lost {
            self.enter_fast_recovery();
        }
    }

    fn enter_fast_recovery(&mut self) {
        self.recovery = Recovery::Fast {
            recover: self.snd_nxt,
        };
        self.cc.on_loss();
        self.cc.enter_recovery();
        self.board.mark_first_lost();
        self.force_retx = true;
        self.stats.fast_retransmits += 1;
    }

    /// Bytes presumed in flight: the scoreboard's pipe, minus one segment
    /// per duplicate ACK when SACK is off (Linux's "Reno SACK" emulation).
    pub(super) fn pipe(&self) -> usize {
        let p = self.board.pipe();
        if self.sack_ok {
            p
        } else {
            p.saturating_sub(self.dupacks * self.data_mss())
        }
    }
}

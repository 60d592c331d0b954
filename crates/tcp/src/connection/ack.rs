//! The sender's reaction to ACKs: SND.UNA and window updates, RTT samples,
//! congestion window growth, loss detection (RACK with SACK, duplicate ACKs
//! without), the fast-recovery (RFC 6675 pipe / RFC 6582 NewReno) and
//! timeout-recovery phases, DSACK handling (RFC 2883) with undo of spurious
//! reductions (DSACKs or timestamps, RFC 3522 style, as Linux), and the
//! FIN-acknowledged state transitions.

use ftsplice_proto::Instant;

use super::{Connection, Recovery, Undo};
use crate::event::{DropReason, Event, State};
use crate::options::{SackBlock, SackBlocks};
use crate::sack::Delivery;
use crate::segment::Segment;
use crate::seq::{ts_before, SeqNum};

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
        let blocks = seg.options.sack.as_slice();
        if self.sack_ok {
            if let Some(&b0) = blocks.first() {
                let inside_b1 = blocks
                    .get(1)
                    .is_some_and(|b1| b1.start <= b0.start && b0.end <= b1.end);
                if b0.end <= ack || inside_b1 {
                    self.on_dsack(now, b0);
                }
            }
        }
        let prior_fack = self.board.highest_sacked();
        let min_rtt = self.rtt.min_rtt();
        let mut newly_sacked = 0;
        if self.sack_ok && !blocks.is_empty() && !self.board.is_empty() {
            let una = self.snd_una.max(ack);
            let valid: SackBlocks = blocks
                .iter()
                .filter(|b| b.start >= una && b.end <= self.snd_nxt && b.start < b.end)
                .copied()
                .collect();
            let mut d = Delivery {
                rack: &mut self.rack,
                now,
                min_rtt,
            };
            let out = self.board.sack(valid.as_slice(), &mut d);
            newly_sacked = out.newly_sacked;
            if out.reordered {
                self.note_reordering();
            }
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
            self.on_new_ack(now, seg, ack, acked, prior_fack);
        } else if !self.board.is_empty() {
            let dup = if self.sack_ok {
                newly_sacked > 0
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
        self.detect_loss(now, false);
        true
    }

    fn on_new_ack<P: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        seg: &Segment<P>,
        ack: SeqNum,
        acked: usize,
        prior_fack: Option<SeqNum>,
    ) {
        let fin_acked = self.fin_seq.is_some_and(|f| self.snd_una <= f && ack > f);
        let data_acked = acked - usize::from(fin_acked);
        let mut d = Delivery {
            rack: &mut self.rack,
            now,
            min_rtt: self.rtt.min_rtt(),
        };
        let out = self.board.ack(ack, prior_fack, &mut d);
        if out.reordered {
            self.note_reordering();
        }
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
        // Timestamp undo (Linux `tcp_try_undo_recovery` / `_partial` /
        // `_loss`): in fast recovery only on the ACK ending it or when no
        // retransmission is in flight, after a timeout on any ACK.
        let may_check = match self.recovery {
            Recovery::Open => false,
            Recovery::Loss { .. } => true,
            Recovery::Fast { recover } => ack >= recover || !self.board.retrans_in_flight(),
        };
        if may_check && self.spurious_by_timestamp(&seg.options) {
            self.undo_reduction();
        }
        match self.recovery {
            Recovery::Fast { recover } | Recovery::Loss { recover } if ack >= recover => {
                if matches!(self.recovery, Recovery::Fast { .. }) {
                    self.cc.exit_recovery();
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
            Recovery::Loss { .. } | Recovery::Open => {
                self.dupacks = 0;
                let srtt = self.rtt.srtt().unwrap_or(self.cfg.rto_initial);
                self.cc.on_ack(now, data_acked, srtt, self.cwnd_limited);
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

    fn note_reordering(&mut self) {
        if !self.rack.reord_seen() {
            self.stats.reordering_seen = true;
        }
        self.rack.on_reordering();
    }

    /// A DSACK: the peer got something twice.
    fn on_dsack(&mut self, now: Instant, block: SackBlock) {
        self.stats.dsacks_received += 1;
        let srtt = self.rtt.srtt().unwrap_or(self.cfg.rto_initial);
        self.rack.on_dsack(now, srtt);
        self.stats.reordering_seen = true;
        let Some(u) = self.undo.as_mut() else {
            return;
        };
        if block.start >= u.marker && u.retrans > 0 {
            u.retrans -= 1;
            if u.retrans == 0 {
                self.undo_reduction();
            }
        }
    }

    /// The ACK echoes a timestamp older than the first retransmission of the
    /// episode: the original arrived, the retransmission was not needed.
    fn spurious_by_timestamp(&self, opts: &crate::options::TcpOptions) -> bool {
        let (Some(u), Some(ts)) = (self.undo.as_ref(), opts.timestamp) else {
            return false;
        };
        match u.stamp {
            Some(stamp) if self.ts_ok && ts.tsecr != 0 => ts_before(ts.tsecr, stamp),
            _ => false,
        }
    }

    /// Restores the window from before a reduction found to be spurious.
    pub(super) fn undo_reduction(&mut self) {
        let Some(u) = self.undo.take() else {
            return;
        };
        self.cc.undo(&u.prior);
        self.board.clear_lost();
        self.recovery = Recovery::Open;
        self.dupacks = 0;
        self.force_retx = false;
        self.stats.undos += 1;
        self.note_reordering();
    }

    /// Marks losses and enters fast recovery when something is lost.
    /// `timer` is set when the RACK reordering timer fired.
    pub(super) fn detect_loss(&mut self, now: Instant, timer: bool) {
        if self.board.is_empty() {
            self.reo_at = None;
            return;
        }
        if self.sack_ok {
            if !self.rack.take_advanced() && !timer {
                return;
            }
            let reo_wnd = self.rack.reo_wnd(
                self.rtt.min_rtt(),
                self.rtt.srtt(),
                self.recovery != Recovery::Open,
                self.board.sacked_segs(),
                self.cfg.dup_thresh,
            );
            let (_, wait) = self.board.rack_mark_lost(&self.rack, now, reo_wnd);
            self.reo_at = wait.map(|w| now + w);
            if self.recovery == Recovery::Open && self.board.any_lost() {
                self.enter_fast_recovery();
            }
        } else if self.recovery == Recovery::Open && self.dupacks >= self.cfg.dup_thresh {
            self.board.mark_first_lost();
            self.enter_fast_recovery();
        }
    }

    fn enter_fast_recovery(&mut self) {
        self.undo = Some(Undo {
            prior: self.cc.clone(),
            marker: self.snd_una,
            retrans: 0,
            stamp: None,
        });
        self.recovery = Recovery::Fast {
            recover: self.snd_nxt,
        };
        self.cc.on_loss();
        self.cc.enter_recovery();
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

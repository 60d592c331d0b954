//! Timers: retransmission timeout (RFC 6298 with Linux bounds, SYN and data
//! retry limits), delayed ACK, persist (zero-window probes) and TIME-WAIT.

use ftsplice_proto::Instant;

use super::{Connection, Recovery, Undo};
use crate::event::{Event, State};

impl Connection {
    /// Earliest time `handle_timeout` must be called, if any timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.frozen || self.state == State::Closed {
            return None;
        }
        [
            self.rto_at,
            self.delack_at,
            self.persist_at,
            self.reo_at,
            self.timewait_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.frozen || self.state == State::Closed {
            return;
        }
        if self.timewait_at.is_some_and(|t| t <= now) {
            self.enter_closed();
            return;
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            self.probe_due = true;
            self.persist_backoff = self.persist_backoff.saturating_add(1);
            let backoff = 1u32 << self.persist_backoff.min(16);
            let t = self
                .rtt
                .base_rto()
                .saturating_mul(backoff)
                .min(self.cfg.rto_max);
            self.persist_at = Some(now + t);
        }
        if self.reo_at.is_some_and(|t| t <= now) {
            self.reo_at = None;
            self.detect_loss(now, true);
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            self.on_rto();
        }
    }

    fn on_rto(&mut self) {
        self.stats.rto_count += 1;
        match self.state {
            State::SynSent | State::SynReceived => {
                let limit = if self.state == State::SynSent {
                    self.cfg.syn_retries
                } else {
                    self.cfg.synack_retries
                };
                self.retries += 1;
                if self.retries > limit {
                    return self.timed_out();
                }
                self.rtt.back_off();
                self.syn_due = true;
            }
            _ => {
                if self.board.is_empty() {
                    return;
                }
                self.retries += 1;
                if self.retries > self.cfg.max_retries {
                    return self.timed_out();
                }
                if matches!(self.recovery, Recovery::Loss { .. }) {
                    self.cc.on_rto_again();
                } else {
                    if self.undo.is_none() || self.recovery == Recovery::Open {
                        self.undo = Some(Undo {
                            prior: self.cc.clone(),
                            marker: self.snd_una,
                            retrans: 0,
                            stamp: None,
                        });
                    }
                    self.cc.on_rto();
                }
                self.reo_at = None;
                // The timeout may mean the receiver reneged on its SACKs
                // (discarded data it had SACKed): forget them and resend
                // from SND.UNA (RFC 2018 §8, RFC 6675 §5.1). Segments it
                // still holds are SACKed again by the ACKs that follow.
                self.board.clear_sacks();
                self.board.mark_all_lost();
                self.recovery = Recovery::Loss {
                    recover: self.snd_nxt,
                };
                self.dupacks = 0;
                self.rtt.back_off();
                self.force_retx = true;
            }
        }
    }

    fn timed_out(&mut self) {
        self.push_event(Event::TimedOut);
        self.enter_closed();
    }
}

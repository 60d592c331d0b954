//! What the connection sends next: RSTs, SYN / SYN-ACK, retransmissions of
//! segments marked lost (limited by `pipe < cwnd`), new data (limited by
//! cwnd and the peer's window, with sender-side silly-window avoidance and
//! Nagle off), the FIN, zero-window probes and pure ACKs; plus building the
//! header fields every segment carries (ACK, window, timestamps, SACK).

use ftsplice_proto::Instant;

use super::Connection;
use crate::event::State;
use crate::options::{
    sack_option_len, SackBlocks, TcpOptions, Timestamp, MAX_OPTIONS_LEN, TS_OPTION_LEN,
};
use crate::segment::{Flags, Segment};
use crate::seq::SeqNum;

impl Connection {
    /// The next segment to send, if any. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Segment> {
        if self.frozen {
            return None;
        }
        if let Some(rst) = self.pending_rst.take() {
            self.stats.segments_sent += 1;
            return Some(rst);
        }
        match self.state {
            State::Closed => None,
            State::SynSent | State::SynReceived => self.transmit_syn(now),
            _ => self.transmit_synchronized(now),
        }
    }

    fn transmit_syn(&mut self, now: Instant) -> Option<Segment> {
        if !self.syn_due {
            return None;
        }
        self.syn_due = false;
        let passive = self.state == State::SynReceived;
        let mut options = TcpOptions {
            mss: Some(self.cfg.mss),
            ..TcpOptions::default()
        };
        // A SYN offers what is configured; a SYN-ACK echoes what was offered
        // (`negotiate` already cleared what the peer lacks).
        let offer_ws = if passive {
            self.ws_ok
        } else {
            self.cfg.window_scaling
        };
        if offer_ws {
            options.window_scale = Some(self.rcv_wscale);
        }
        options.sack_permitted = if passive { self.sack_ok } else { self.cfg.sack };
        let want_ts = if passive {
            self.ts_ok
        } else {
            self.cfg.timestamps
        };
        if want_ts {
            let tsval = self.tsval(now);
            self.ts_last_sent = tsval;
            options.timestamp = Some(Timestamp {
                tsval,
                tsecr: if passive { self.ts_recent } else { 0 },
            });
        }
        let mut flags = Flags::SYN;
        if passive {
            flags |= Flags::ACK;
            self.last_ack_sent = self.rcv_nxt;
        }
        let window = self.recv_buf.window().min(usize::from(u16::MAX));
        if passive {
            self.rcv_adv = self.rcv_nxt + window;
        }
        if self.syn_sent_at.is_some() {
            self.syn_retransmitted = true;
            self.stats.retransmits += 1;
        }
        self.syn_sent_at = Some(now);
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
        self.stats.segments_sent += 1;
        Some(Segment {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack: if passive { self.rcv_nxt } else { SeqNum(0) },
            flags,
            window: window as u16,
            options,
            payload: Vec::new(),
        })
    }

    fn transmit_synchronized(&mut self, now: Instant) -> Option<Segment> {
        if self.state != State::TimeWait {
            if let Some(seg) = self.retransmit_lost(now) {
                return Some(seg);
            }
            if let Some(seg) = self.send_new(now) {
                return Some(seg);
            }
            if self.probe_due {
                self.probe_due = false;
                self.stats.window_probes += 1;
                let seq = self.snd_una - 1;
                return Some(self.build(now, seq, Flags::ACK, Vec::new()));
            }
        }
        if self.ack_now {
            let seq = self.snd_nxt;
            return Some(self.build(now, seq, Flags::ACK, Vec::new()));
        }
        None
    }

    fn retransmit_lost(&mut self, now: Instant) -> Option<Segment> {
        let i = self.board.next_lost()?;
        if !self.force_retx && self.pipe() >= self.cc.cwnd() {
            self.cwnd_limited = true;
            return None;
        }
        self.force_retx = false;
        let s = *self.board.get(i)?;
        let data_len = s.len() - usize::from(s.fin);
        let mut payload = self.payload_buf(data_len);
        self.send_buf
            .copy_range(s.start.since(self.snd_una), data_len, &mut payload);
        let mut flags = Flags::ACK;
        if s.fin {
            flags |= Flags::FIN;
        }
        if data_len > 0 {
            flags |= Flags::PSH;
        }
        let seg = self.build(now, s.start, flags, payload);
        self.board.on_retransmit(i, now);
        if let Some(u) = self.undo.as_mut() {
            u.retrans += 1;
            if u.stamp.is_none() && self.ts_ok {
                u.stamp = Some(self.ts_last_sent);
            }
        }
        self.stats.retransmits += 1;
        self.stats.bytes_retransmitted += data_len as u64;
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
        Some(seg)
    }

    fn send_new(&mut self, now: Instant) -> Option<Segment> {
        if self.fin_seq.is_some() {
            return None;
        }
        let in_flight = self.snd_nxt.since(self.snd_una);
        let unsent = self.send_buf.len().saturating_sub(in_flight);
        if unsent == 0 {
            if !self.fin_queued {
                self.cwnd_limited = false;
                return None;
            }
            return Some(self.send_data(now, 0, true));
        }
        if self.board.is_empty() {
            if let Some(t) = self.last_data_sent {
                let rto = self.rtt.rto();
                if now - t > rto {
                    self.cc.restart_after_idle(now - t, rto);
                }
            }
        }
        if self.pipe() >= self.cc.cwnd() {
            self.cwnd_limited = true;
            return None;
        }
        let max_payload = self.data_mss() - sack_option_len(self.sack_blocks_wanted());
        let wnd_avail = (self.snd_una + self.snd_wnd).since(self.snd_nxt);
        let len = unsent.min(max_payload).min(wnd_avail);
        // Sender SWS avoidance (RFC 9293 §3.8.6.2.1, Nagle off).
        if len == 0 || (len < unsent && len < max_payload && len < self.max_snd_wnd / 2) {
            self.cwnd_limited = false;
            if self.board.is_empty() && self.persist_at.is_none() {
                let backoff = 1u32 << self.persist_backoff.min(16);
                let t = self
                    .rtt
                    .base_rto()
                    .saturating_mul(backoff)
                    .min(self.cfg.rto_max);
                self.persist_at = Some(now + t);
            }
            return None;
        }
        let fin = self.fin_queued && len == unsent;
        let seg = self.send_data(now, len, fin);
        self.cwnd_limited = self.pipe() >= self.cc.cwnd();
        Some(seg)
    }

    /// Sends `len` new bytes at SND.NXT (with FIN if `fin`).
    fn send_data(&mut self, now: Instant, len: usize, fin: bool) -> Segment {
        let mut payload = self.payload_buf(len);
        let in_flight = self.snd_nxt.since(self.snd_una);
        self.send_buf.copy_range(in_flight, len, &mut payload);
        let mut flags = Flags::ACK;
        if fin {
            flags |= Flags::FIN;
        }
        let unsent_after = self.send_buf.len() - in_flight - len;
        if len > 0 && unsent_after == 0 {
            flags |= Flags::PSH;
        }
        let start = self.snd_nxt;
        let seg = self.build(now, start, flags, payload);
        let end = start + len + usize::from(fin);
        self.board.push(start, end, fin, now);
        self.snd_nxt = end;
        if fin {
            self.fin_seq = Some(start + len);
        }
        self.stats.bytes_sent += len as u64;
        self.last_data_sent = Some(now);
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
        seg
    }

    /// SACK blocks to attach to a full-sized segment.
    fn sack_blocks_wanted(&self) -> usize {
        if !self.sack_ok {
            return 0;
        }
        let max = if self.ts_ok { 3 } else { 4 };
        (self.ooo.num_ranges() + usize::from(self.dsack.is_some())).min(max)
    }

    /// Builds a segment with the current ACK, window, timestamp and as many
    /// SACK blocks as fit next to `payload` within the MSS.
    pub(super) fn build(
        &mut self,
        now: Instant,
        seq: SeqNum,
        flags: Flags,
        payload: Vec<u8>,
    ) -> Segment {
        let mut options = TcpOptions::default();
        let mut opt_len = 0;
        if self.ts_ok {
            let tsval = self.tsval(now);
            self.ts_last_sent = tsval;
            options.timestamp = Some(Timestamp {
                tsval,
                tsecr: self.ts_recent,
            });
            opt_len += TS_OPTION_LEN;
        }
        let wanted = self.sack_blocks_wanted();
        if wanted > 0 {
            let room = self
                .send_mss
                .saturating_sub(payload.len())
                .min(MAX_OPTIONS_LEN)
                .saturating_sub(opt_len);
            let fit = (1..=wanted)
                .rev()
                .find(|&n| sack_option_len(n) <= room)
                .unwrap_or(0);
            let mut blocks = SackBlocks::new();
            if fit > 0 {
                if let Some(d) = self.dsack.take() {
                    blocks.push(d);
                    self.stats.dsacks_sent += 1;
                }
            }
            for b in self.ooo.sack_blocks(fit - blocks.len()).as_slice() {
                blocks.push(*b);
            }
            options.sack = blocks;
        }
        self.dsack = None;
        let window = self.advertise_window();
        self.last_ack_sent = self.rcv_nxt;
        self.ack_now = false;
        self.unacked_bytes = 0;
        self.delack_at = None;
        self.stats.segments_sent += 1;
        Segment {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: self.rcv_nxt,
            flags,
            window,
            options,
            payload,
        }
    }

    /// The window field to send: free receive space, scaled, never moving
    /// the right edge left (rounded up as Linux does).
    fn advertise_window(&mut self) -> u16 {
        let shift = u32::from(self.rcv_wscale);
        let free = self.recv_buf.window();
        let mut raw = (free >> shift).min(usize::from(u16::MAX));
        let promised = self.rcv_adv.since(self.rcv_nxt);
        if raw << shift < promised {
            raw = promised.div_ceil(1 << shift).min(usize::from(u16::MAX));
        }
        let edge = self.rcv_nxt + (raw << shift);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        raw as u16
    }
}

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

/// The next segment, before its payload is taken from the send buffer.
enum Out {
    /// A segment built elsewhere (a reset).
    Owned(Segment),
    /// A header, and `(offset, len)`: the payload's bytes in the send
    /// buffer, counted from SND.UNA's byte.
    Built(Segment<()>, Option<(usize, usize)>),
}

impl Connection {
    /// The next segment to send, if any. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Segment> {
        Some(match self.next_segment(now)? {
            Out::Owned(seg) => seg,
            Out::Built(hdr, None) => hdr.with_payload(Vec::new()),
            Out::Built(hdr, Some((offset, len))) => {
                let mut payload = Vec::with_capacity(len);
                self.send_buf.copy_range(offset, len, &mut payload);
                hdr.with_payload(payload)
            }
        })
    }

    /// Like [`Connection::poll_transmit`], but hands the segment to `f`
    /// with its payload borrowed from the send buffer (copied only when it
    /// wraps around the buffer's end), and returns what `f` made of it: a
    /// caller that serializes segments saves a copy and an allocation per
    /// segment.
    pub fn poll_transmit_with<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&Segment<&[u8]>) -> R,
    ) -> Option<R> {
        Some(match self.next_segment(now)? {
            Out::Owned(seg) => f(&seg.as_borrowed()),
            Out::Built(hdr, None) => f(&hdr.with_payload(&[][..])),
            Out::Built(hdr, Some((offset, len))) => match self.send_buf.slice(offset, len) {
                Some(payload) => f(&hdr.with_payload(payload)),
                None => {
                    let mut payload = core::mem::take(&mut self.spare);
                    payload.clear();
                    self.send_buf.copy_range(offset, len, &mut payload);
                    let r = f(&hdr.with_payload(&payload[..]));
                    self.spare = payload;
                    r
                }
            },
        })
    }

    fn next_segment(&mut self, now: Instant) -> Option<Out> {
        if self.frozen {
            return None;
        }
        if let Some(rst) = self.pending_rst.take() {
            self.stats.segments_sent += 1;
            return Some(Out::Owned(rst));
        }
        match self.state {
            State::Closed => None,
            State::SynSent | State::SynReceived => self.transmit_syn(now),
            _ => self.transmit_synchronized(now),
        }
    }

    fn transmit_syn(&mut self, now: Instant) -> Option<Out> {
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
        let seg = Segment {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack: if passive { self.rcv_nxt } else { SeqNum(0) },
            flags,
            window: window as u16,
            options,
            payload: (),
        };
        Some(Out::Built(seg, None))
    }

    fn transmit_synchronized(&mut self, now: Instant) -> Option<Out> {
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
                return Some(Out::Built(self.build(now, seq, Flags::ACK, 0), None));
            }
        }
        if self.ack_now {
            let seq = self.snd_nxt;
            return Some(Out::Built(self.build(now, seq, Flags::ACK, 0), None));
        }
        None
    }

    fn retransmit_lost(&mut self, now: Instant) -> Option<Out> {
        let i = self.board.next_lost()?;
        if !self.force_retx && self.pipe() >= self.cc.cwnd() {
            self.cwnd_limited = true;
            return None;
        }
        self.force_retx = false;
        let s = *self.board.get(i)?;
        let data_len = s.len() - usize::from(s.fin);
        let data = self.data_range(s.start.since(self.snd_una), data_len);
        let mut flags = Flags::ACK;
        if s.fin {
            flags |= Flags::FIN;
        }
        if data_len > 0 {
            flags |= Flags::PSH;
        }
        let seg = self.build(now, s.start, flags, data.map_or(0, |d| d.1));
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
        Some(Out::Built(seg, data))
    }

    /// The send buffer's bytes `offset..offset + len` as they are now (the
    /// part of them it holds, as `copy_range` copies), if any.
    fn data_range(&self, offset: usize, len: usize) -> Option<(usize, usize)> {
        let end = (offset + len).min(self.send_buf.len());
        (offset < end).then(|| (offset, end - offset))
    }

    fn send_new(&mut self, now: Instant) -> Option<Out> {
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
    fn send_data(&mut self, now: Instant, len: usize, fin: bool) -> Out {
        let in_flight = self.snd_nxt.since(self.snd_una);
        let data = self.data_range(in_flight, len);
        let mut flags = Flags::ACK;
        if fin {
            flags |= Flags::FIN;
        }
        let unsent_after = self.send_buf.len() - in_flight - len;
        if len > 0 && unsent_after == 0 {
            flags |= Flags::PSH;
        }
        let start = self.snd_nxt;
        let seg = self.build(now, start, flags, data.map_or(0, |d| d.1));
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
        Out::Built(seg, data)
    }

    /// SACK blocks to attach to a full-sized segment.
    fn sack_blocks_wanted(&self) -> usize {
        if !self.sack_ok {
            return 0;
        }
        let max = if self.ts_ok { 3 } else { 4 };
        (self.ooo.num_ranges() + usize::from(self.dsack.is_some())).min(max)
    }

    /// Builds a segment header with the current ACK, window, timestamp and
    /// as many SACK blocks as fit next to `payload_len` bytes within the
    /// MSS.
    pub(super) fn build(
        &mut self,
        now: Instant,
        seq: SeqNum,
        flags: Flags,
        payload_len: usize,
    ) -> Segment<()> {
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
                .saturating_sub(payload_len)
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
            payload: (),
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

//! Segment arrival (RFC 9293 §3.10.7): handshake states, the acceptability
//! test, PAWS (RFC 7323), RST/SYN handling with challenge ACKs (RFC 5961),
//! and the receive path (in-order data, out-of-order storage, delayed ACKs,
//! FIN).

use ftsplice_proto::Instant;

use super::Connection;
use crate::event::{DropReason, Event, State};
use crate::options::{SackBlock, TcpOptions};
use crate::segment::{Flags, Segment};
use crate::seq::{ts_before, SeqNum};

/// In-order segments ACKed at once (no delayed ACK) after the handshake
/// and after loss or reordering was seen, as Linux's quick-ACK mode does
/// (`TCP_MAX_QUICKACKS`).
const QUICKACKS: u32 = 16;

impl Connection {
    /// Processes one segment addressed to this connection.
    pub fn handle_segment<P: AsRef<[u8]>>(&mut self, now: Instant, seg: &Segment<P>) {
        if self.frozen || self.state == State::Closed {
            self.stats.count_drop(DropReason::Inactive);
            return;
        }
        if seg.dst_port != self.local.port() || seg.src_port != self.remote.port() {
            self.stats.count_drop(DropReason::Malformed);
            return;
        }
        self.stats.segments_received += 1;
        match self.state {
            State::SynSent => self.on_syn_sent(now, seg),
            State::SynReceived => self.on_syn_received(now, seg),
            _ => self.on_synchronized(now, seg),
        }
    }

    fn drop_seg(&mut self, why: DropReason) {
        self.stats.count_drop(why);
    }

    fn queue_rst(&mut self, seq: SeqNum) {
        self.pending_rst = Some(Segment {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: SeqNum(0),
            flags: Flags::RST,
            window: 0,
            options: TcpOptions::default(),
            payload: Vec::new(),
        });
    }

    fn reset_by_peer(&mut self) {
        self.push_event(Event::Reset);
        self.enter_closed();
    }

    fn on_syn_sent<P: AsRef<[u8]>>(&mut self, now: Instant, seg: &Segment<P>) {
        let f = seg.flags;
        if f.ack() && (seg.ack <= self.iss || seg.ack > self.snd_nxt) {
            if !f.rst() {
                self.queue_rst(seg.ack);
            }
            return self.drop_seg(DropReason::BadAck);
        }
        if f.rst() {
            if f.ack() {
                self.reset_by_peer();
            } else {
                self.drop_seg(DropReason::Malformed);
            }
            return;
        }
        if !f.syn() {
            return self.drop_seg(DropReason::Malformed);
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.last_ack_sent = self.rcv_nxt;
        self.negotiate(&seg.options);
        self.snd_wnd = usize::from(seg.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        if f.ack() {
            self.snd_una = seg.ack;
            self.handshake_rtt(now, seg);
            self.establish();
            self.ack_now = true;
        } else {
            // Simultaneous open.
            self.state = State::SynReceived;
            self.syn_due = true;
        }
    }

    fn on_syn_received<P: AsRef<[u8]>>(&mut self, now: Instant, seg: &Segment<P>) {
        let f = seg.flags;
        if f.rst() {
            let wnd = self.recv_buf.window().max(1);
            if seg.seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd) {
                self.reset_by_peer();
            } else {
                self.drop_seg(DropReason::OutOfWindow);
            }
            return;
        }
        if f.syn() {
            if !f.ack() && seg.seq == self.irs {
                // The peer did not get our SYN-ACK.
                self.syn_due = true;
            }
            return self.drop_seg(DropReason::Malformed);
        }
        if !f.ack() {
            return self.drop_seg(DropReason::Malformed);
        }
        if seg.ack != self.snd_nxt {
            self.queue_rst(seg.ack);
            return self.drop_seg(DropReason::BadAck);
        }
        self.snd_una = seg.ack;
        self.handshake_rtt(now, seg);
        self.snd_wnd = usize::from(seg.window) << self.snd_wscale;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        self.establish();
        if self.fin_queued {
            // `close` during SYN-RECEIVED already moved us to FIN-WAIT-1.
            self.state = State::FinWait1;
        }
        self.on_synchronized(now, seg);
    }

    fn establish(&mut self) {
        self.state = State::Established;
        self.syn_due = false;
        self.rto_at = None;
        self.retries = 0;
        self.rtt.reset_backoff();
        self.quickacks = QUICKACKS;
        self.push_event(Event::Connected);
    }

    /// RTT of the handshake: from the SYN's send time unless it was
    /// retransmitted (Karn), else from the echoed timestamp.
    fn handshake_rtt<P: AsRef<[u8]>>(&mut self, now: Instant, seg: &Segment<P>) {
        match self.syn_sent_at {
            Some(t) if !self.syn_retransmitted => self.rtt.sample(now - t),
            _ => self.ts_rtt_sample(now, &seg.options),
        }
    }

    pub(super) fn ts_rtt_sample(&mut self, now: Instant, opts: &TcpOptions) {
        if !self.ts_ok {
            return;
        }
        if let Some(ts) = opts.timestamp.filter(|t| t.tsecr != 0) {
            let ms = self.tsval(now).wrapping_sub(ts.tsecr);
            if ms < 1 << 30 {
                self.rtt
                    .sample(core::time::Duration::from_millis(u64::from(ms)));
            }
        }
    }

    /// RFC 9293 acceptability, in Linux's form: the segment must end at or
    /// after the last window update we sent and start inside the window.
    fn acceptable(&self, seq: SeqNum, seg_len: usize) -> bool {
        let wnd = self.rcv_adv.since(self.rcv_nxt).max(self.recv_buf.window());
        let end = seq + seg_len;
        end >= self.last_ack_sent.min(self.rcv_nxt)
            && (seq <= self.rcv_nxt + wnd)
            && (seg_len == 0 || wnd > 0 || seq == self.rcv_nxt)
    }

    fn on_synchronized<P: AsRef<[u8]>>(&mut self, now: Instant, seg: &Segment<P>) {
        let f = seg.flags;
        let len = seg.payload.as_ref().len();
        // PAWS-lite: only segments carrying data or FIN are rejected.
        if self.ts_ok && !f.rst() && (len > 0 || f.fin()) {
            if let Some(ts) = seg.options.timestamp {
                if ts_before(ts.tsval, self.ts_recent) {
                    self.ack_now = true;
                    return self.drop_seg(DropReason::Paws);
                }
            }
        }
        if !self.acceptable(seg.seq, seg.seq_len()) {
            if !f.rst() {
                self.ack_now = true;
                if len > 0 && seg.seq + len <= self.rcv_nxt {
                    self.note_duplicate(seg.seq, seg.seq + len);
                }
            }
            return self.drop_seg(DropReason::OutOfWindow);
        }
        if f.rst() {
            if seg.seq == self.rcv_nxt {
                if self.state == State::TimeWait {
                    self.enter_closed();
                } else {
                    self.reset_by_peer();
                }
            } else {
                // RFC 5961 §3.2 challenge ACK.
                self.ack_now = true;
                self.drop_seg(DropReason::OutOfWindow);
            }
            return;
        }
        if let Some(ts) = seg.options.timestamp.filter(|_| self.ts_ok) {
            if seg.seq <= self.last_ack_sent && !ts_before(ts.tsval, self.ts_recent) {
                self.ts_recent = ts.tsval;
            }
        }
        if f.syn() {
            // RFC 5961 §4 challenge ACK.
            self.ack_now = true;
            return self.drop_seg(DropReason::Malformed);
        }
        if !f.ack() {
            return self.drop_seg(DropReason::Malformed);
        }
        if !self.process_ack(now, seg) || self.state == State::Closed {
            return;
        }
        self.process_data(now, seg);
    }

    fn process_data<P: AsRef<[u8]>>(&mut self, now: Instant, seg: &Segment<P>) {
        let payload = seg.payload.as_ref();
        let fin = seg.flags.fin();
        if payload.is_empty() && !fin {
            return;
        }
        if !self.state.can_receive() || self.fin_received {
            // Retransmitted data or FIN after the peer's FIN: re-ACK.
            self.ack_now = true;
            if self.state == State::TimeWait && fin {
                self.timewait_at = Some(now + self.cfg.time_wait);
            }
            return;
        }
        let mut complete = true;
        if !payload.is_empty() {
            complete = self.receive_payload(now, seg.seq, payload);
        }
        if fin && complete {
            let fin_seq = seg.seq + payload.len();
            if fin_seq >= self.rcv_nxt {
                self.peer_fin = Some(fin_seq);
            }
            self.ack_now = true;
        }
        self.try_consume_fin(now);
    }

    /// Stores payload; returns false if its tail was cut by the window.
    fn receive_payload(&mut self, now: Instant, seq: SeqNum, payload: &[u8]) -> bool {
        self.rcv_mss = self
            .rcv_mss
            .max(payload.len().min(usize::from(self.cfg.mss)));
        let mut start = seq;
        let mut data = payload;
        if start < self.rcv_nxt {
            let skip = self.rcv_nxt.since(start);
            self.note_duplicate(start, start + skip.min(data.len()));
            if skip >= data.len() {
                // Entirely old: a retransmission we already have.
                self.ack_now = true;
                return true;
            }
            data = &data[skip..];
            start = self.rcv_nxt;
        }
        let off = start.since(self.rcv_nxt);
        let room = self.recv_buf.window();
        if off >= room {
            self.ack_now = true;
            self.drop_seg(DropReason::OutOfWindow);
            return false;
        }
        let take = data.len().min(room - off);
        let complete = take == data.len();
        let data = &data[..take];
        if off == 0 {
            self.recv_buf.write_at(0, data);
            self.deliver(take);
            if self.ooo.is_empty() {
                self.unacked_bytes += take;
                if self.unacked_bytes > self.rcv_mss || self.quickacks > 0 {
                    self.quickacks = self.quickacks.saturating_sub(1);
                    self.ack_now = true;
                } else if self.delack_at.is_none() {
                    self.delack_at = Some(now + self.cfg.delayed_ack);
                }
            } else {
                // Filling a hole: absorb what follows and ACK at once.
                while let Some(end) = self.ooo.advance(self.rcv_nxt) {
                    let n = end.since(self.rcv_nxt);
                    self.deliver(n);
                }
                self.ack_now = true;
            }
        } else {
            match self.ooo.insert(start, start + take) {
                Ok(()) => {
                    self.recv_buf.write_at(off, data);
                    self.quickacks = QUICKACKS;
                }
                Err(_) => self.drop_seg(DropReason::TooManyHoles),
            }
            self.ack_now = true;
        }
        complete
    }

    /// Bytes `[start, end)` arrived again: report them in a DSACK.
    fn note_duplicate(&mut self, start: SeqNum, end: SeqNum) {
        // The peer is retransmitting: its window is small, ACK promptly.
        self.quickacks = QUICKACKS;
        if self.sack_ok {
            self.dsack = Some(SackBlock { start, end });
        }
    }

    /// `n` bytes at RCV.NXT (already in the ring) become readable.
    fn deliver(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.recv_buf.commit(n);
        self.rcv_nxt += n;
        self.stats.bytes_received += n as u64;
        self.push_event(Event::DataReadable);
    }

    fn try_consume_fin(&mut self, now: Instant) {
        if self.fin_received || self.peer_fin != Some(self.rcv_nxt) {
            return;
        }
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_now = true;
        self.push_event(Event::PeerClosed);
        let our_fin_acked = self.fin_seq.is_some_and(|f| self.snd_una > f);
        match self.state {
            State::Established | State::SynReceived => self.state = State::CloseWait,
            State::FinWait1 if our_fin_acked => self.enter_time_wait(now),
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }
}

//! One TCP connection: the state, its construction (active and passive
//! open) and the application-facing API (send/recv/close, events, stats,
//! repair state, freeze). Input, ACK handling, output and timers live in the
//! sibling modules.

mod ack;
mod input;
mod output;
mod timers;

use core::net::SocketAddrV4;
use core::time::Duration;
use std::collections::VecDeque;

use ftsplice_proto::Instant;

use crate::buffer::{RecvBuffer, SendBuffer};
use crate::config::Config;
use crate::congestion::Congestion;
use crate::event::{DropReason, Event, State, Stats};
use crate::options::SackBlock;
use crate::options::{TcpOptions, TS_OPTION_LEN};
use crate::rack::Rack;
use crate::reassembly::Reassembly;
use crate::repair::{RepairState, RepairTimestamps};
use crate::rtt::RttEstimator;
use crate::sack::Scoreboard;
use crate::segment::{Flags, Segment};
use crate::seq::SeqNum;

/// MSS assumed when the peer sends no MSS option (RFC 9293 §3.7.1).
const DEFAULT_PEER_MSS: u16 = 536;

/// What is needed to undo a window reduction found spurious (Linux's
/// `undo_marker` / `undo_retrans` / `retrans_stamp`).
#[derive(Clone, Debug)]
struct Undo {
    /// The congestion state before the reduction.
    prior: Congestion,
    /// SND.UNA when the episode began.
    marker: SeqNum,
    /// Retransmissions not yet reported as duplicates by DSACK.
    retrans: u32,
    /// TSval of the episode's first retransmission.
    stamp: Option<u32>,
}

/// Loss recovery phase of the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recovery {
    Open,
    /// Fast recovery until `recover` is acknowledged (RFC 6675 / 6582).
    Fast {
        recover: SeqNum,
    },
    /// After a retransmission timeout, until `recover` is acknowledged.
    Loss {
        recover: SeqNum,
    },
}

/// A sans-IO TCP connection.
///
/// Drive it with [`handle_segment`](Self::handle_segment) for every segment
/// of this 4-tuple, [`handle_timeout`](Self::handle_timeout) when
/// [`poll_timeout`](Self::poll_timeout) has passed, and after each call (and
/// after `send`, `recv`, `close`) drain [`poll_transmit`](Self::poll_transmit)
/// until `None` and [`poll_event`](Self::poll_event).
#[derive(Debug)]
pub struct Connection {
    cfg: Config,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    state: State,
    frozen: bool,

    iss: SeqNum,
    irs: SeqNum,
    /// The SYN (or SYN-ACK) must be (re)sent.
    syn_due: bool,
    syn_sent_at: Option<Instant>,
    syn_retransmitted: bool,

    snd_una: SeqNum,
    snd_nxt: SeqNum,
    snd_wnd: usize,
    max_snd_wnd: usize,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    snd_wscale: u8,
    peer_mss: u16,
    /// Bytes of options + payload per segment: min(peer MSS, own MSS).
    send_mss: usize,
    send_buf: SendBuffer,
    /// `close` was called: send FIN after the queued data.
    fin_queued: bool,
    /// Sequence number of our FIN once sent.
    fin_seq: Option<SeqNum>,
    board: Scoreboard,
    cc: Congestion,
    recovery: Recovery,
    rack: Rack,
    undo: Option<Undo>,
    dupacks: usize,
    /// Send the next lost segment even if `pipe >= cwnd` (entering recovery).
    force_retx: bool,
    cwnd_limited: bool,
    send_blocked: bool,
    /// Last transmission of new data (for the restart after idle).
    last_data_sent: Option<Instant>,
    rtt: RttEstimator,
    retries: u32,
    probe_due: bool,
    persist_backoff: u32,

    rcv_nxt: SeqNum,
    rcv_wscale: u8,
    /// Right edge of the window last advertised.
    rcv_adv: SeqNum,
    recv_buf: RecvBuffer,
    ooo: Reassembly,
    /// Sequence number of the peer's FIN, once seen (possibly out of order).
    peer_fin: Option<SeqNum>,
    fin_received: bool,
    /// Largest payload received (Linux `rcv_mss`), for delayed ACKs.
    rcv_mss: usize,
    ack_now: bool,
    /// In-order segments still to ACK immediately (quick-ACK mode).
    quickacks: u32,
    /// A duplicate to report first in the next ACK's SACK blocks (RFC 2883).
    dsack: Option<SackBlock>,
    /// In-order bytes received since the last ACK sent.
    unacked_bytes: usize,
    last_ack_sent: SeqNum,

    /// Window scaling negotiated (both SYNs carried the option).
    ws_ok: bool,
    sack_ok: bool,
    ts_ok: bool,
    ts_offset: u32,
    ts_recent: u32,
    ts_last_sent: u32,

    rto_at: Option<Instant>,
    delack_at: Option<Instant>,
    persist_at: Option<Instant>,
    /// RACK reordering timer.
    reo_at: Option<Instant>,
    timewait_at: Option<Instant>,

    pending_rst: Option<Segment>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Where [`Connection::poll_transmit_with`] copies a payload that wraps
    /// around the send buffer's end (kept, so it is allocated once).
    spare: Vec<u8>,
}

impl Connection {
    fn new(
        local: SocketAddrV4,
        remote: SocketAddrV4,
        state: State,
        isn: u32,
        ts_offset: u32,
        cfg: Config,
    ) -> Self {
        let iss = SeqNum(isn);
        let send_mss = usize::from(cfg.mss.max(64));
        let cc = Congestion::new(cfg.congestion, send_mss, cfg.initial_cwnd);
        Connection {
            local,
            remote,
            state,
            frozen: false,
            iss,
            irs: SeqNum(0),
            syn_due: true,
            syn_sent_at: None,
            syn_retransmitted: false,
            snd_una: iss,
            snd_nxt: iss + 1,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            snd_wscale: 0,
            peer_mss: DEFAULT_PEER_MSS,
            send_mss,
            send_buf: SendBuffer::new(cfg.send_buffer),
            fin_queued: false,
            fin_seq: None,
            board: Scoreboard::new(),
            cc,
            recovery: Recovery::Open,
            rack: Rack::new(),
            undo: None,
            dupacks: 0,
            force_retx: false,
            cwnd_limited: false,
            send_blocked: false,
            last_data_sent: None,
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            retries: 0,
            probe_due: false,
            persist_backoff: 0,
            rcv_nxt: SeqNum(0),
            rcv_wscale: if cfg.window_scaling {
                cfg.own_window_shift()
            } else {
                0
            },
            rcv_adv: SeqNum(0),
            recv_buf: RecvBuffer::new(cfg.recv_buffer),
            ooo: Reassembly::new(cfg.max_ooo_ranges),
            peer_fin: None,
            fin_received: false,
            rcv_mss: usize::from(DEFAULT_PEER_MSS),
            ack_now: false,
            quickacks: 0,
            dsack: None,
            unacked_bytes: 0,
            last_ack_sent: SeqNum(0),
            ws_ok: false,
            sack_ok: false,
            ts_ok: false,
            ts_offset,
            ts_recent: 0,
            ts_last_sent: 0,
            rto_at: None,
            delack_at: None,
            persist_at: None,
            reo_at: None,
            timewait_at: None,
            pending_rst: None,
            events: VecDeque::new(),
            stats: Stats::default(),
            spare: Vec::new(),
            cfg,
        }
    }

    /// Active open: the first `poll_transmit` returns the SYN. `isn` is the
    /// initial sequence number and `ts_offset` the timestamp offset (both
    /// from the caller's seeded RNG).
    pub fn connect(
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        isn: u32,
        ts_offset: u32,
        cfg: Config,
    ) -> Connection {
        let _ = now;
        Connection::new(local, remote, State::SynSent, isn, ts_offset, cfg)
    }

    /// Passive open from a received SYN: the first `poll_transmit` returns
    /// the SYN-ACK. Fails (with the reason) if `syn` is not a plain SYN.
    pub fn accept_syn<P: AsRef<[u8]>>(
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &Segment<P>,
        isn: u32,
        ts_offset: u32,
        cfg: Config,
    ) -> Result<Connection, DropReason> {
        let _ = now;
        if !syn.flags.syn() || syn.flags.ack() || syn.flags.rst() || syn.flags.fin() {
            return Err(DropReason::Malformed);
        }
        if syn.dst_port != local.port() || syn.src_port != remote.port() {
            return Err(DropReason::Malformed);
        }
        let mut c = Connection::new(local, remote, State::SynReceived, isn, ts_offset, cfg);
        c.stats.segments_received += 1;
        c.irs = syn.seq;
        c.rcv_nxt = syn.seq + 1;
        c.rcv_adv = c.rcv_nxt;
        c.last_ack_sent = c.rcv_nxt;
        c.negotiate(&syn.options);
        c.snd_wnd = usize::from(syn.window);
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        Ok(c)
    }

    /// Applies the options of the peer's SYN (or SYN-ACK).
    fn negotiate(&mut self, opts: &TcpOptions) {
        self.peer_mss = opts.mss.unwrap_or(DEFAULT_PEER_MSS).max(64);
        self.send_mss = usize::from(self.peer_mss.min(self.cfg.mss.max(64)));
        match opts.window_scale {
            Some(s) if self.cfg.window_scaling => {
                self.ws_ok = true;
                self.snd_wscale = s.min(14);
            }
            _ => {
                self.ws_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.sack_ok = self.cfg.sack && opts.sack_permitted;
        self.ts_ok = self.cfg.timestamps && opts.timestamp.is_some();
        if let Some(ts) = opts.timestamp.filter(|_| self.ts_ok) {
            self.ts_recent = ts.tsval;
        }
        self.rcv_mss = self.send_mss.min(usize::from(self.cfg.mss));
        self.cc.set_mss(self.data_mss());
    }

    /// Payload bytes of a full-sized segment without SACK blocks.
    fn data_mss(&self) -> usize {
        let ts = if self.ts_ok { TS_OPTION_LEN } else { 0 };
        self.send_mss.saturating_sub(ts).max(1)
    }

    // ---- application API ----

    /// Queues bytes for sending; returns how many fit in the send buffer
    /// (0 after `close`, a reset, or `freeze`). A short write arms a
    /// [`Event::SendBufferSpace`].
    pub fn send(&mut self, data: &[u8]) -> usize {
        if self.frozen || self.fin_queued || !self.state.can_send() {
            return 0;
        }
        let n = self.send_buf.write(data);
        if n < data.len() {
            self.send_blocked = true;
        }
        n
    }

    /// Reads received in-order bytes (also allowed when frozen, so a proxy
    /// can drain the queue).
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        let n = self.recv_buf.read(buf);
        if n > 0 && !self.frozen {
            self.maybe_window_update();
        }
        n
    }

    /// Bytes ready for `recv`.
    pub fn recv_available(&self) -> usize {
        self.recv_buf.len()
    }

    /// Free space in the send buffer.
    pub fn send_space(&self) -> usize {
        if self.fin_queued || !self.state.can_send() {
            0
        } else {
            self.send_buf.free()
        }
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.send_buf.len()
    }

    /// Closes the sending direction: a FIN follows the queued data
    /// (RFC 9293 CLOSE). Receiving continues until the peer's FIN.
    pub fn close(&mut self) {
        if self.frozen {
            return;
        }
        match self.state {
            State::SynSent => self.enter_closed(),
            // The FIN follows once the handshake completes.
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Aborts: sends a RST (if synchronized) and closes immediately.
    pub fn abort(&mut self) {
        if self.frozen || self.state == State::Closed {
            return;
        }
        if self.state != State::SynSent {
            self.pending_rst = Some(Segment {
                src_port: self.local.port(),
                dst_port: self.remote.port(),
                seq: self.snd_nxt,
                ack: SeqNum(0),
                flags: Flags::RST,
                window: 0,
                options: TcpOptions::default(),
                payload: Vec::new(),
            });
        }
        self.enter_closed();
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// Counters, with the current smoothed RTT.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.srtt = self.rtt.srtt();
        s
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    /// Current retransmission timeout (with backoff).
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// Congestion window in bytes.
    pub fn cwnd(&self) -> usize {
        self.cc.cwnd()
    }

    pub fn ssthresh(&self) -> usize {
        self.cc.ssthresh()
    }

    /// In fast recovery or timeout recovery.
    pub fn in_recovery(&self) -> bool {
        self.recovery != Recovery::Open
    }

    /// SACK was negotiated.
    pub fn sack_enabled(&self) -> bool {
        self.sack_ok
    }

    /// Timestamps were negotiated.
    pub fn timestamps_enabled(&self) -> bool {
        self.ts_ok
    }

    // ---- repair / freeze ----

    /// Stops the connection for splicing: afterwards it sends nothing, arms
    /// no timers and ignores input (`recv` still drains the receive buffer).
    /// Take [`repair_state`](Self::repair_state) before or after; it no
    /// longer changes.
    pub fn freeze(&mut self) {
        self.frozen = true;
        self.pending_rst = None;
        self.rto_at = None;
        self.delack_at = None;
        self.persist_at = None;
        self.reo_at = None;
        self.timewait_at = None;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// What Linux's TCP_REPAIR would report for this socket.
    pub fn repair_state(&self) -> RepairState {
        let unacked = self.snd_nxt.since(self.snd_una);
        let sent_data = unacked - usize::from(self.fin_in_flight());
        let unsent = if self.state.is_synchronized() {
            self.send_buf.len().saturating_sub(sent_data)
        } else {
            self.send_buf.len()
        };
        let has_ooo = !self.ooo.is_empty() || (self.peer_fin.is_some() && !self.fin_received);
        RepairState {
            local: self.local,
            remote: self.remote,
            state: self.state,
            iss: self.iss,
            irs: self.irs,
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt,
            rcv_nxt: self.rcv_nxt,
            snd_wnd: u32::try_from(self.snd_wnd).unwrap_or(u32::MAX),
            max_window: u32::try_from(self.max_snd_wnd).unwrap_or(u32::MAX),
            rcv_wnd: u32::try_from(self.rcv_adv.since(self.rcv_nxt)).unwrap_or(u32::MAX),
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            peer_mss: self.peer_mss,
            send_mss: u16::try_from(self.data_mss()).unwrap_or(u16::MAX),
            sack_ok: self.sack_ok,
            timestamps: self.ts_ok.then_some(RepairTimestamps {
                offset: self.ts_offset,
                last_tsval_sent: self.ts_last_sent,
                ts_recent: self.ts_recent,
            }),
            unsent_bytes: u32::try_from(unsent).unwrap_or(u32::MAX),
            unacked_bytes: u32::try_from(unacked).unwrap_or(u32::MAX),
            unread_bytes: u32::try_from(self.recv_buf.len()).unwrap_or(u32::MAX),
            has_out_of_order: has_ooo,
            send_queue_empty: self.send_buf.is_empty() && unacked == 0,
            recv_queue_empty: self.recv_buf.is_empty() && !has_ooo,
        }
    }

    // ---- shared helpers ----

    /// Our FIN is sent and not yet acknowledged.
    fn fin_in_flight(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.snd_una <= f)
    }

    fn push_event(&mut self, e: Event) {
        if matches!(e, Event::DataReadable | Event::SendBufferSpace) && self.events.contains(&e) {
            return;
        }
        self.events.push_back(e);
    }

    fn enter_closed(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.rto_at = None;
        self.delack_at = None;
        self.persist_at = None;
        self.reo_at = None;
        self.timewait_at = None;
        self.ack_now = false;
        self.syn_due = false;
        self.probe_due = false;
        self.push_event(Event::Closed);
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.rto_at = None;
        self.persist_at = None;
        self.timewait_at = Some(now + self.cfg.time_wait);
    }

    fn tsval(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// After the application read: advertise a window that grew a lot
    /// (Linux `tcp_cleanup_rbuf`: the advertised rest is at most half the
    /// buffer and the new window at least doubles it).
    fn maybe_window_update(&mut self) {
        if !self.state.is_synchronized() || !self.state.can_receive() {
            return;
        }
        let remaining = self.rcv_adv.since(self.rcv_nxt);
        let free = self.recv_buf.window();
        let threshold = (self.recv_buf.capacity() / 2).min(2 * self.rcv_mss);
        if 2 * remaining <= self.recv_buf.capacity() && free >= remaining + threshold {
            self.ack_now = true;
        }
    }
}

#[cfg(test)]
mod tests;

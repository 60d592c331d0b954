//! The logger's driver of one connection's [`Recovery`] (paper §4.3) after
//! the primary backend failed: it re-sends logged bytes the client has not
//! acknowledged (retransmitting them until acknowledged), asks the
//! alternate for T_S/T_A and to apply state, opens the recovery connection
//! to the alternate *from the client's own address and port* (the
//! alternate's packets to the client cross the logger, its gateway),
//! sends it the replayed requests, feeds its bytes to the absorb-and-compare
//! step, and finally joins the client's connection to the alternate's with
//! a `proto::splice` translation installed in the logger itself.
//!
//! Departure from the paper: the re-splice happens in the logger, not in
//! the proxies. The logger is on every packet's path between the front end
//! and the backends, so a translation there is invisible to whatever is in
//! front (a proxy's splice keeps pointing at the failed backend's tuple)
//! and no un-splice/re-splice round among the proxies is needed.
//!
//! Switching from the logger's own TCP connection to translation: the
//! alternate may already have sent bytes beyond the splice point to the
//! logger's connection; those join the bytes re-sent to the client. The
//! switch waits until the alternate acknowledged everything the logger sent
//! it, so nothing on the recovery connection needs retransmitting after it
//! is frozen; client packets that arrive meanwhile are held and replayed
//! through the translation.

use crate::net::node::Ctx;
use crate::net::udp;
use crate::roles::tcpip;
use crate::roles::webmail::control::{Ctl, PORT};
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::splice::{
    translate, Direction as SpliceDir, Splice, SpliceId, TsDeltas, WindowScales,
};
use ftsplice_proto::Instant;
use ftsplice_proto::ProxyId;
use ftsplice_recovery::recovery::{Action, Recovery, ResetReason, Resplice};
use ftsplice_recovery::SeqSpace;
use ftsplice_tcp::{Config, Connection, Event, Flags, Segment, SeqNum, TcpOptions, Timestamp};

/// Client packets held per connection while the re-splice is pending.
const MAX_HELD: usize = 1024;
/// Payload of a re-sent segment (the client's MSS without options).
const RESEND_MSS: usize = 1400;

/// What the logged connection looked like when the backend failed.
#[derive(Clone, Copy, Debug)]
pub struct Frozen {
    /// The connection's key in control messages.
    pub key: u64,
    /// The logger's control address.
    pub logger: Ipv4Addr,
    pub client: SocketAddrV4,
    pub backend: SocketAddrV4,
    pub alternate: SocketAddrV4,
    pub c2s: SeqSpace,
    pub s2c: SeqSpace,
    pub client_isn: u32,
    pub backend_isn: u32,
    pub client_wscale: u8,
    pub backend_wscale: u8,
    pub sack: bool,
    /// The backend's last raw window field.
    pub backend_window: u16,
    /// Client-to-server bytes logged (everything the alternate will get).
    pub c2s_logged: u64,
    /// Timestamps negotiated: the latest TSval seen from (client, backend).
    pub ts: Option<(u32, u32)>,
}

/// How the recovery of one connection ended (so far).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    /// Translation installed and the re-sent bytes acknowledged.
    Done,
    Reset(ResetReason),
}

pub struct Driver {
    pub f: Frozen,
    rec: Recovery,
    tcp: Config,
    alt: Option<Connection>,
    alt_pending: Vec<u8>,
    /// Logged server-to-client bytes from `resend_base` the client may not
    /// have (then the alternate's bytes beyond the splice point).
    resend_base: u64,
    resend: Vec<u8>,
    /// First re-send offset never sent yet.
    resend_next: u64,
    client_acked: u64,
    resend_at: Option<Instant>,
    resend_rto: Duration,
    resplice: Option<Resplice>,
    splice: Option<Splice>,
    held: Vec<Vec<u8>>,
    /// Transactions about to run again on the alternate (the aux logger
    /// must answer their aux requests from its log).
    aux_replays: Vec<u64>,
    pub status: Status,
    pub resent_segments: u64,
    pub translated: u64,
    pub spliced_at: Option<Instant>,
    pub done_at: Option<Instant>,
}

impl Driver {
    pub fn new(f: Frozen, rec: Recovery, tcp: Config, ack_cl: u64) -> Driver {
        Driver {
            f,
            rec,
            tcp,
            alt: None,
            alt_pending: Vec::new(),
            resend_base: ack_cl,
            resend: Vec::new(),
            resend_next: ack_cl,
            client_acked: ack_cl,
            resend_at: None,
            resend_rto: Duration::from_millis(300),
            resplice: None,
            splice: None,
            held: Vec::new(),
            aux_replays: Vec::new(),
            status: Status::Running,
            resent_segments: 0,
            translated: 0,
            spliced_at: None,
            done_at: None,
        }
    }

    pub fn recovery(&self) -> &Recovery {
        &self.rec
    }

    /// Transactions whose aux requests will be replayed (drained).
    pub fn take_aux_replays(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.aux_replays)
    }

    /// A control message to the alternate, sent before anything the
    /// recovery connection sends afterwards (same path, FIFO).
    fn ctl(&self, ctx: &mut Ctx<'_>, m: &Ctl) {
        ctx.send_ip(udp::build(
            SocketAddrV4::new(self.f.logger, PORT),
            SocketAddrV4::new(*self.f.alternate.ip(), PORT),
            &m.encode(),
        ));
    }

    pub fn is_translating(&self) -> bool {
        self.splice.is_some()
    }

    /// The alternate reported (T_S, T_A).
    pub fn on_report(&mut self, ctx: &mut Ctx<'_>, t_s: u64, t_a: u64) {
        self.rec.handle_state_report(ctx.now(), t_s, t_a);
        self.pump(ctx);
    }

    /// Executes the recovery's actions and moves the connection along.
    pub fn pump(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            let mut did = false;
            while let Some(a) = self.rec.poll_action() {
                did = true;
                self.execute(ctx, a);
            }
            did |= self.drive_alt(ctx);
            if !did {
                break;
            }
        }
        self.maybe_switch(ctx);
    }

    fn execute(&mut self, ctx: &mut Ctx<'_>, a: Action) {
        let now = ctx.now();
        match a {
            // The logger stops forwarding to the failed backend as soon as
            // it has a driver for the connection.
            Action::Unsplice => {}
            Action::Absorb { .. } => {
                // The replays are about to go out on the recovery
                // connection: tell the alternate their original numbers.
                if let (Some(cp), Some(plan)) = (self.rec.crash_point(), self.rec.replay_plan()) {
                    let m = Ctl::Numbering {
                        conn: self.f.key,
                        t_sp: cp.t_sp,
                        replayed: plan.replay.clone(),
                    };
                    self.aux_replays = plan.replay.clone();
                    self.aux_replays.push(cp.t_sp);
                    self.ctl(ctx, &m);
                }
            }
            Action::ResendToClient { range, bytes } => {
                self.resend_base = range.start;
                self.resend = bytes;
                self.send_resend(ctx, false);
            }
            Action::ShareLastComplete { t_l } => {
                let c = self.f.client;
                let m = Ctl::Takeover {
                    conn: self.f.key,
                    t_l,
                    client: u32::from(*c.ip()),
                    port: c.port(),
                };
                self.ctl(ctx, &m);
            }
            Action::ConnectAlternate => {
                let isn = ctx.rng().next_u32();
                let ts = ctx.rng().next_u32();
                self.alt = Some(Connection::connect(
                    now,
                    self.f.client,
                    self.f.alternate,
                    isn,
                    ts,
                    self.tcp.clone(),
                ));
            }
            Action::ApplyState { through } => {
                let m = Ctl::ApplyThrough {
                    conn: self.f.key,
                    through,
                };
                self.ctl(ctx, &m);
            }
            Action::SendToAlternate(b) => self.alt_pending.extend_from_slice(&b),
            Action::Resplice(rs) => {
                self.resplice = Some(rs);
                self.spliced_at = Some(now);
            }
            Action::ResetClient(reason) => {
                self.reset_client(ctx);
                self.status = Status::Reset(reason);
            }
            Action::Done => {
                self.status = Status::Done;
                self.done_at = Some(now);
            }
        }
    }

    /// Moves bytes on the recovery connection; true if the recovery was
    /// told something (it may have new actions).
    fn drive_alt(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let now = ctx.now();
        let Some(c) = self.alt.as_mut().filter(|c| !c.is_frozen()) else {
            return false;
        };
        if !self.alt_pending.is_empty() {
            let n = c.send(&self.alt_pending);
            self.alt_pending.drain(..n);
        }
        let mut buf = [0u8; 16 * 1024];
        let mut got = Vec::new();
        loop {
            let n = c.recv(&mut buf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let (src, dst) = (*c.local().ip(), *c.remote().ip());
        while let Some(seg) = c.poll_transmit(now) {
            ctx.send_ip(tcpip::emit(src, dst, &seg));
        }
        let mut events = Vec::new();
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
        let did = !got.is_empty() || !events.is_empty();
        if !got.is_empty() {
            let used = self.rec.handle_alternate_data(now, &got);
            if used < got.len() && self.status == Status::Running {
                // Beyond the splice point: the client's.
                self.resend.extend_from_slice(&got[used..]);
                self.send_resend(ctx, false);
            }
        }
        for e in events {
            match e {
                Event::Connected => self.rec.handle_alternate_connected(now),
                Event::Reset | Event::TimedOut | Event::Closed | Event::PeerClosed => {
                    self.rec.handle_alternate_closed(now)
                }
                _ => {}
            }
        }
        did
    }

    /// Sends re-send bytes not sent yet, or (`again`) all not acknowledged.
    fn send_resend(&mut self, ctx: &mut Ctx<'_>, again: bool) {
        let end = self.resend_base + self.resend.len() as u64;
        let from = if again {
            self.client_acked
        } else {
            self.resend_next
        };
        let mut off = from.max(self.client_acked).max(self.resend_base);
        while off < end {
            let n = (end - off).min(RESEND_MSS as u64);
            let from = (off - self.resend_base) as usize;
            let seg = Segment {
                src_port: self.f.backend.port(),
                dst_port: self.f.client.port(),
                seq: SeqNum(self.f.s2c.seq(off)),
                ack: SeqNum(self.f.c2s.seq(self.f.c2s_logged)),
                flags: Flags::ACK | Flags::PSH,
                window: self.f.backend_window,
                options: TcpOptions {
                    timestamp: self.f.ts.map(|(c, b)| Timestamp { tsval: b, tsecr: c }),
                    ..TcpOptions::default()
                },
                payload: self.resend[from..from + n as usize].to_vec(),
            };
            ctx.send_ip(tcpip::emit(*self.f.backend.ip(), *self.f.client.ip(), &seg));
            self.resent_segments += 1;
            off += n;
        }
        self.resend_next = self.resend_next.max(end);
        self.resend_at = (self.client_acked < end).then(|| ctx.now() + self.resend_rto);
    }

    fn reset_client(&mut self, ctx: &mut Ctx<'_>) {
        let seg: Segment = Segment {
            src_port: self.f.backend.port(),
            dst_port: self.f.client.port(),
            seq: SeqNum(self.f.s2c.seq(self.client_acked)),
            ack: SeqNum(0),
            flags: Flags::RST,
            window: 0,
            options: TcpOptions::default(),
            payload: Vec::new(),
        };
        ctx.send_ip(tcpip::emit(*self.f.backend.ip(), *self.f.client.ip(), &seg));
        if let Some(c) = self.alt.as_mut() {
            c.abort();
            let (src, dst) = (*c.local().ip(), *c.remote().ip());
            while let Some(s) = c.poll_transmit(ctx.now()) {
                ctx.send_ip(tcpip::emit(src, dst, &s));
            }
        }
        self.resend_at = None;
    }

    /// Installs the translation once the alternate acknowledged everything
    /// the logger sent on the recovery connection.
    fn maybe_switch(&mut self, ctx: &mut Ctx<'_>) {
        let (Some(rs), None, Some(c)) = (self.resplice, &self.splice, self.alt.as_mut()) else {
            return;
        };
        if !self.alt_pending.is_empty() || matches!(self.status, Status::Reset(_)) {
            return;
        }
        let st = c.repair_state();
        if st.unsent_bytes != 0 || st.unacked_bytes != 0 {
            return;
        }
        c.freeze();
        let (seq_delta, ack_delta) = rs.splice_deltas(
            (0, 0),
            (self.f.client_isn, self.f.backend_isn),
            (st.iss.0, st.irs.0),
        );
        self.splice = Some(Splice {
            id: SpliceId::compose(ProxyId(0), 0),
            version: 1,
            client: self.f.client,
            vip: self.f.backend,
            ssa: st.local,
            backend: st.remote,
            seq_delta,
            ack_delta,
            // The alternate's clock continues where the failed backend's
            // stopped, and the client's where the recovery connection's
            // did (`proto::splice` deltas, as a proxy's splice has them).
            ts: match (self.f.ts, st.timestamps) {
                (Some((client, backend)), Some(tb)) => Some(TsDeltas {
                    c2s: tb.last_tsval_sent.wrapping_sub(client),
                    s2c: backend.wrapping_sub(tb.ts_recent),
                }),
                _ => None,
            },
            wscale: WindowScales {
                client: self.f.client_wscale,
                vip: self.f.backend_wscale,
                ssa: st.rcv_wscale,
                backend: st.snd_wscale,
            },
            sack_ok: self.f.sack && st.sack_ok,
        });
        for p in std::mem::take(&mut self.held) {
            self.client_packet(ctx, p);
        }
    }

    /// A packet from the client for the failed backend's tuple.
    pub fn client_packet(&mut self, ctx: &mut Ctx<'_>, mut bytes: Vec<u8>) {
        let now = ctx.now();
        let Ok(p) = tcpip::parse(&bytes) else {
            return ctx
                .stats()
                .drop("logger: unparseable client packet in recovery");
        };
        if let (Some(ts), Some((c, _))) = (p.seg.options.timestamp, self.f.ts.as_mut()) {
            *c = ts.tsval;
        }
        if p.seg.flags.ack() {
            let mut s2c = self.f.s2c;
            if let Some(ack) = s2c.offset(p.seg.ack.0) {
                if ack > self.client_acked {
                    self.client_acked = ack;
                    self.rec.handle_client_ack(now, ack);
                    let end = self.resend_base + self.resend.len() as u64;
                    if ack >= end {
                        self.resend_at = None;
                    }
                }
            }
        }
        let news = {
            let mut c2s = self.f.c2s;
            let len = p.seg.payload.len() as u64;
            c2s.offset(p.seg.seq.0)
                .is_some_and(|o| o + len > self.f.c2s_logged || p.seg.flags.fin())
        };
        if p.seg.flags.rst() {
            self.status = Status::Reset(ResetReason::AlternateClosed);
        }
        match &self.splice {
            Some(s) => match translate(s, SpliceDir::ClientToServer, &mut bytes) {
                Ok(_) => {
                    self.translated += 1;
                    ctx.send_ip(bytes);
                }
                Err(_) => ctx.stats().drop("logger: re-splice translation refused"),
            },
            None if news && self.held.len() < MAX_HELD => self.held.push(bytes),
            None if news => ctx.stats().drop("logger: re-splice hold queue full"),
            // Already logged: the alternate gets it from the log.
            None => ctx
                .stats()
                .drop("logger: logged client data during recovery"),
        }
        self.pump(ctx);
    }

    /// A packet from the alternate to the client's address and port.
    pub fn alternate_packet(&mut self, ctx: &mut Ctx<'_>, mut bytes: Vec<u8>) {
        match &self.splice {
            Some(s) => match translate(s, SpliceDir::ServerToClient, &mut bytes) {
                Ok(_) => {
                    self.translated += 1;
                    ctx.send_ip(bytes);
                }
                Err(_) => ctx.stats().drop("logger: re-splice translation refused"),
            },
            None => {
                let Ok(p) = tcpip::parse(&bytes) else {
                    return ctx.stats().drop("logger: unparseable alternate packet");
                };
                if let Some(c) = self.alt.as_mut() {
                    c.handle_segment(ctx.now(), &p.seg);
                }
                self.pump(ctx);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let alt = self
            .alt
            .as_ref()
            .filter(|c| !c.is_frozen())
            .and_then(Connection::poll_timeout);
        [alt, self.resend_at, self.rec.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if self.rec.poll_timeout().is_some_and(|t| t <= now) {
            self.rec.handle_timeout(now);
        }
        if let Some(c) = self.alt.as_mut().filter(|c| !c.is_frozen()) {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
        if self.resend_at.is_some_and(|t| t <= now) {
            self.resend_rto = (self.resend_rto * 2).min(Duration::from_secs(10));
            self.send_resend(ctx, true);
        }
        self.pump(ctx);
    }
}

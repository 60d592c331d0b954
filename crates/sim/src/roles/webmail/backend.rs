//! A webmail backend machine: serves [`super::app`] over HTTP/1.1 keep-alive
//! connections (one request at a time per connection, each taking its
//! service time), pushes each transaction's session record to its
//! alternate (paper §4.1 step 3), and, as an alternate, stores pushed
//! records in an [`AlternateState`] per logged connection, applies them on
//! the logger's signal (or at once, for the client-retry baseline) and
//! answers the logger's recovery requests (§4.3). Requests that need the
//! aux mail store send it an [`Ctl::AuxRequest`] tagged with the paper's
//! transaction id (client address, port, the transaction's number on the
//! client's connection: on a recovery connection the logger's
//! [`Ctl::Numbering`] maps the k-th request back to it) and are answered
//! once both the service time has passed and the aux answer is in.
//!
//! A [`CrashPlan`] makes the machine report when it reaches one of the
//! paper's four crash points in transaction `tx`; the scenario then cuts
//! its power ([`crate::Fault::Crash`]).

use super::app::{self, Session};
use super::control::{Ctl, AUX_PORT, PORT};
use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, Node};
use crate::net::udp;
use crate::roles::tcpip;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::Instant;
use ftsplice_recovery::aux::TxId;
use ftsplice_recovery::http::Transactionalizer;
use ftsplice_recovery::log::Direction;
use ftsplice_recovery::state_sync::AlternateState;
use ftsplice_recovery::tags::TagTable;
use ftsplice_tcp::listener::ListenOutcome;
use ftsplice_tcp::{reset_for, Config, Connection, Listener, State};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where in a transaction the backend crashes (paper §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// After the response of `tx` left the machine, before the next request.
    Between,
    /// Part of `tx`'s request has arrived.
    MidRequest,
    /// `tx`'s request has arrived, its response is not generated yet.
    BeforeResponse,
    /// Part of `tx`'s response has been sent.
    MidResponse,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 4] = [
        CrashPoint::Between,
        CrashPoint::MidRequest,
        CrashPoint::BeforeResponse,
        CrashPoint::MidResponse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::Between => "between",
            CrashPoint::MidRequest => "mid-request",
            CrashPoint::BeforeResponse => "before-response",
            CrashPoint::MidResponse => "mid-response",
        }
    }

    pub fn parse(s: &str) -> Option<CrashPoint> {
        CrashPoint::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Crash at `point` of the `tx`-th request (from 1) of the first connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashPlan {
    pub tx: u64,
    pub point: CrashPoint,
}

#[derive(Clone, Debug)]
pub struct BackendConfig {
    pub addr: Ipv4Addr,
    /// Machine name (shows in `/status.php`).
    pub name: &'static str,
    /// Where session records are pushed.
    pub alternate: Option<Ipv4Addr>,
    /// Apply pushed records at once (no logger: the baseline) instead of
    /// on the logger's "response logged" signal.
    pub apply_on_push: bool,
    pub tcp: Config,
    pub crash: Option<CrashPlan>,
    /// How long an asynchronous push takes to leave the machine (state
    /// lag at the alternate: pushes still queued die with the machine).
    pub push_delay: Duration,
    /// The aux mail store.
    pub aux: Option<Ipv4Addr>,
}

struct Conn {
    tcp: Connection,
    key: u64,
    input: Vec<u8>,
    parser: Transactionalizer,
    answered: u64,
    /// Request being processed and when it is done.
    busy: Option<(Instant, u64)>,
    out: Vec<u8>,
    /// The rest of a response held back to crash mid-response.
    held: Vec<u8>,
    /// Transaction whose response is in `out` (for the "between" point).
    sending: u64,
    /// Original numbers of this connection's requests (recovery
    /// connections): replayed ones, then from `t_sp` on.
    numbering: Option<(Vec<u64>, u64)>,
    /// Transaction id of the aux request being waited for.
    aux_wait: Option<u64>,
    aux_reply: Vec<u8>,
}

impl Conn {
    /// The client transaction number of the `k`-th request (from 1).
    fn original(&self, k: u64) -> u64 {
        match &self.numbering {
            None => k,
            Some((replayed, t_sp)) => match usize::try_from(k.saturating_sub(1))
                .ok()
                .and_then(|i| replayed.get(i))
            {
                Some(&t) => t,
                None => t_sp + k.saturating_sub(1 + replayed.len() as u64),
            },
        }
    }
}

/// Counters of one backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    pub requests: u64,
    pub pushes: u64,
    pub applied: u64,
    pub probes: u64,
}

pub struct Backend {
    cfg: BackendConfig,
    conns: Vec<Conn>,
    sessions: BTreeMap<u32, Session>,
    alt: BTreeMap<u64, AlternateState>,
    crash_at: Option<Instant>,
    triggered: bool,
    first_conn: Option<u64>,
    /// Pushes waiting for `push_delay`.
    pushes: Vec<(Instant, Ctl)>,
    /// Numbering of recovery connections announced by the logger.
    numbering: BTreeMap<u64, (Vec<u64>, u64)>,
    pub stats: BackendStats,
}

/// Key of a logged connection: client address and port.
pub fn conn_key(peer: SocketAddrV4) -> u64 {
    u64::from(u32::from(*peer.ip())) << 16 | u64::from(peer.port())
}

impl Backend {
    pub fn new(cfg: BackendConfig) -> Backend {
        Backend {
            cfg,
            conns: Vec::new(),
            sessions: BTreeMap::new(),
            alt: BTreeMap::new(),
            crash_at: None,
            triggered: false,
            first_conn: None,
            pushes: Vec::new(),
            numbering: BTreeMap::new(),
            stats: BackendStats::default(),
        }
    }

    /// The crash plan's point was reached (the scenario cuts the power).
    pub fn crash_due(&self, now: Instant) -> bool {
        self.triggered || self.crash_at.is_some_and(|t| t <= now)
    }

    /// The session this machine holds for `client`.
    pub fn session(&self, client: Ipv4Addr) -> Option<&Session> {
        self.sessions.get(&u32::from(client))
    }

    fn plan_for(&self, key: u64, tx: u64, point: CrashPoint) -> bool {
        self.cfg
            .crash
            .is_some_and(|c| c.tx == tx && c.point == point)
            && self.first_conn == Some(key)
    }

    fn ctl(&self, ctx: &mut Ctx<'_>, to: Ipv4Addr, m: &Ctl) {
        let b = udp::build(
            SocketAddrV4::new(self.cfg.addr, PORT),
            SocketAddrV4::new(to, PORT),
            &m.encode(),
        );
        ctx.send_ip(b);
    }

    fn apply(&mut self, conn: u64, records: Vec<(u64, Vec<u8>)>) {
        for (_, r) in records {
            self.sessions
                .insert((conn >> 16) as u32, Session::from_record(&r));
            self.stats.applied += 1;
        }
    }

    fn handle_ctl(&mut self, ctx: &mut Ctx<'_>, from: Ipv4Addr, m: Ctl) {
        match m {
            Ctl::Push { conn, tx, record } => {
                let a = self.alt.entry(conn).or_default();
                let mut ready = a.on_push(tx, record);
                if self.cfg.apply_on_push {
                    ready.extend(a.on_response_logged(tx));
                }
                self.apply(conn, ready);
            }
            Ctl::Logged { conn, tx } => {
                let a = self.alt.entry(conn).or_default();
                let ready = a.on_response_logged(tx);
                let t_s = a.report().0;
                self.apply(conn, ready);
                self.ctl(ctx, from, &Ctl::Applied { conn, t_s });
            }
            Ctl::Takeover { conn, .. } => {
                let (t_s, t_a) = self.alt.entry(conn).or_default().report();
                self.ctl(ctx, from, &Ctl::Report { conn, t_s, t_a });
            }
            Ctl::ApplyThrough { conn, through } => {
                match self.alt.entry(conn).or_default().apply_through(through) {
                    Ok(r) => self.apply(conn, r),
                    // The logger's recovery times out and resets the client.
                    Err(_) => ctx.stats().drop("backend: state to apply is missing"),
                }
            }
            Ctl::Probe { id } => {
                self.stats.probes += 1;
                self.ctl(ctx, from, &Ctl::ProbeReply { id });
            }
            Ctl::Numbering {
                conn,
                t_sp,
                replayed,
            } => {
                // The recovery connection is usually open already.
                for c in self.conns.iter_mut().filter(|c| c.key == conn) {
                    c.numbering = Some((replayed.clone(), t_sp));
                }
                self.numbering.insert(conn, (replayed, t_sp));
            }
            Ctl::AuxResponse { tx, body } => {
                if let Some(i) = self.conns.iter().position(|c| c.aux_wait == Some(tx)) {
                    self.conns[i].aux_wait = None;
                    self.conns[i].aux_reply = body;
                    self.drive(ctx, i);
                }
            }
            Ctl::ProbeReply { .. }
            | Ctl::Applied { .. }
            | Ctl::Report { .. }
            | Ctl::AuxRequest { .. } => ctx.stats().drop("backend: unexpected control message"),
        }
    }

    fn handle_tcp(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        let p = match tcpip::parse(bytes) {
            Ok(p) => p,
            Err(e) => return ctx.stats().drop(e.reason()),
        };
        let now = ctx.now();
        if let Some(i) = self
            .conns
            .iter()
            .position(|c| c.tcp.remote() == p.src && c.tcp.local() == p.dst)
        {
            self.conns[i].tcp.handle_segment(now, &p.seg);
            return self.drive(ctx, i);
        }
        let reply = if p.dst == SocketAddrV4::new(self.cfg.addr, 80) {
            let l = Listener::new(p.dst, self.cfg.tcp.clone());
            let isn = ctx.rng().next_u32();
            let ts = ctx.rng().next_u32();
            match l.accept_syn(now, p.src, &p.seg, isn, ts) {
                ListenOutcome::Accepted(tcp) => {
                    let key = conn_key(p.src);
                    self.first_conn.get_or_insert(key);
                    self.conns.push(Conn {
                        tcp: *tcp,
                        key,
                        input: Vec::new(),
                        parser: Transactionalizer::new(Arc::new(TagTable::conservative())),
                        answered: 0,
                        busy: None,
                        out: Vec::new(),
                        held: Vec::new(),
                        sending: 0,
                        numbering: self.numbering.get(&key).cloned(),
                        aux_wait: None,
                        aux_reply: Vec::new(),
                    });
                    let i = self.conns.len() - 1;
                    return self.drive(ctx, i);
                }
                ListenOutcome::Reset(r) => Some(r),
                ListenOutcome::Ignored => None,
            }
        } else {
            reset_for(&p.seg)
        };
        if let Some(r) = reply {
            ctx.stats()
                .drop("backend: no connection, answered with reset");
            ctx.send_ip(tcpip::emit(self.cfg.addr, *p.src.ip(), &r));
        }
    }

    /// Reads, processes, writes and transmits for connection `i`.
    fn drive(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let now = ctx.now();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = self.conns[i].tcp.recv(&mut buf);
            if n == 0 {
                break;
            }
            let c = &mut self.conns[i];
            c.input.extend_from_slice(&buf[..n]);
            c.parser.feed(Direction::ClientToServer, &buf[..n]);
        }
        let (key, next) = (self.conns[i].key, self.conns[i].answered + 1);
        // Part of request `next` is here: bytes beyond the previous
        // request's end, and `next` not complete.
        let c = &self.conns[i];
        let prev_end = c.parser.get(next - 1).map_or(0, |t| t.req.end);
        let started = c.input.len() as u64 > prev_end;
        let complete = c.parser.get(next).is_some_and(|t| t.req_done);
        if started && !complete && self.plan_for(key, next, CrashPoint::MidRequest) {
            self.triggered = true;
        }
        // Finish the request being processed.
        if let Some((at, num)) = self.conns[i].busy {
            if at <= now && self.conns[i].aux_wait.is_none() {
                self.conns[i].busy = None;
                self.respond(ctx, i, num);
            }
        }
        // Start the next one.
        let c = &mut self.conns[i];
        if !c.out.is_empty() {
            let n = c.tcp.send(&c.out);
            c.out.drain(..n);
        }
        if c.busy.is_none() && c.out.is_empty() && c.held.is_empty() {
            if let Some(t) = c.parser.get(c.answered + 1).filter(|t| t.req_done) {
                let done = now + Duration::from_micros(app::service_us(&t.target));
                let num = t.num;
                c.busy = Some((done, num));
                let body = c
                    .input
                    .get(t.req_head_end as usize..t.req.end as usize)
                    .unwrap_or_default();
                let session = self
                    .sessions
                    .get(&((key >> 16) as u32))
                    .cloned()
                    .unwrap_or_default();
                if let (Some(req), Some(aux)) = (
                    app::aux_request(&session, &t.method, &t.target, body),
                    self.cfg.aux,
                ) {
                    let peer = c.tcp.remote();
                    let tx = TxId::new(*peer.ip(), peer.port(), c.original(num)).0;
                    c.aux_wait = Some(tx);
                    let m = Ctl::AuxRequest { tx, body: req };
                    let b = udp::build(
                        SocketAddrV4::new(self.cfg.addr, PORT),
                        SocketAddrV4::new(aux, AUX_PORT),
                        &m.encode(),
                    );
                    ctx.send_ip(b);
                }
                if self.plan_for(key, num, CrashPoint::BeforeResponse) {
                    self.triggered = true;
                }
            }
        }
        let c = &mut self.conns[i];
        if !c.out.is_empty() {
            let n = c.tcp.send(&c.out);
            c.out.drain(..n);
        }
        let addr = self.cfg.addr;
        while let Some(seg) = c.tcp.poll_transmit(now) {
            ctx.send_ip(tcpip::emit(addr, *c.tcp.remote().ip(), &seg));
        }
        while c.tcp.poll_event().is_some() {}
        if c.out.is_empty()
            && c.held.is_empty()
            && c.sending > 0
            && c.tcp.repair_state().unsent_bytes == 0
        {
            let tx = std::mem::take(&mut c.sending);
            if self.plan_for(key, tx, CrashPoint::Between) && self.crash_at.is_none() {
                // Long enough for the last segment to cross the LAN, far
                // shorter than the client's round trip for the next request.
                self.crash_at = Some(now + Duration::from_micros(100));
            }
        }
        if self.conns[i].tcp.state() == State::Closed {
            self.conns.remove(i);
        }
    }

    fn send_pushes(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(alt) = self.cfg.alternate else {
            return;
        };
        while self.pushes.first().is_some_and(|p| p.0 <= now) {
            let (_, m) = self.pushes.remove(0);
            self.ctl(ctx, alt, &m);
        }
    }

    fn respond(&mut self, ctx: &mut Ctx<'_>, i: usize, num: u64) {
        let Some(t) = self.conns[i].parser.get(num).cloned() else {
            return;
        };
        let c = &mut self.conns[i];
        let body = c
            .input
            .get(t.req_head_end as usize..t.req.end as usize)
            .unwrap_or_default()
            .to_vec();
        let peer = (c.key >> 16) as u32;
        let session = self.sessions.entry(peer).or_default();
        let aux = std::mem::take(&mut self.conns[i].aux_reply);
        let resp = app::handle(session, self.cfg.name, &t.method, &t.target, &body, &aux);
        let record = session.record();
        self.stats.requests += 1;
        let key = self.conns[i].key;
        if self.cfg.alternate.is_some() {
            self.stats.pushes += 1;
            let at = ctx.now() + self.cfg.push_delay;
            self.pushes.push((
                at,
                Ctl::Push {
                    conn: key,
                    tx: num,
                    record,
                },
            ));
            self.send_pushes(ctx);
        }
        self.conns[i].parser.feed(Direction::ServerToClient, &resp);
        self.conns[i].parser.forget_through(num.saturating_sub(2));
        let mid = self.plan_for(key, num, CrashPoint::MidResponse);
        let c = &mut self.conns[i];
        c.answered = num;
        c.sending = num;
        if mid {
            let half = (resp.len() / 2).max(1);
            c.out.extend_from_slice(&resp[..half]);
            c.held.extend_from_slice(&resp[half..]);
            // The first half crosses the LAN; the rest never comes.
            self.crash_at = Some(ctx.now() + Duration::from_millis(1));
        } else {
            c.out.extend_from_slice(&resp);
        }
    }
}

impl Node for Backend {
    fn kind(&self) -> &'static str {
        "backend"
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        if frame.kind != FrameKind::Ip {
            return;
        }
        match frame.bytes.get(9) {
            Some(6) => self.handle_tcp(ctx, &frame.bytes),
            Some(&udp::IPPROTO_UDP) => match udp::parse(&frame.bytes) {
                Ok(d) if d.dst.port() == PORT => match Ctl::decode(d.payload) {
                    Some(m) => self.handle_ctl(ctx, *d.src.ip(), m),
                    None => ctx.stats().drop("backend: bad control message"),
                },
                Ok(_) => ctx.stats().drop("backend: udp to a closed port"),
                Err(e) => ctx.stats().drop(e.reason()),
            },
            _ => ctx.stats().drop("backend: not tcp or udp"),
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if self.crash_at.is_some_and(|t| t <= now) {
            self.triggered = true;
        }
        self.send_pushes(ctx);
        let mut i = 0;
        while i < self.conns.len() {
            let n = self.conns.len();
            if self.conns[i].tcp.poll_timeout().is_some_and(|t| t <= now) {
                self.conns[i].tcp.handle_timeout(now);
            }
            self.drive(ctx, i);
            if self.conns.len() == n {
                i += 1;
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.iter().flat_map(|c| {
            let busy = c.busy.filter(|_| c.aux_wait.is_none()).map(|b| b.0);
            [c.tcp.poll_timeout(), busy]
        });
        conns
            .chain([
                self.crash_at.filter(|_| !self.triggered),
                self.pushes.first().map(|p| p.0),
            ])
            .flatten()
            .min()
    }

    fn crash(&mut self) {
        self.conns.clear();
        self.sessions.clear();
        self.alt.clear();
        self.pushes.clear();
        self.numbering.clear();
        self.crash_at = None;
        self.triggered = false;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

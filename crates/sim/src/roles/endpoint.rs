//! Client and server machines: a host with one address running many
//! `ftsplice-tcp` connections, each driving an HTTP application
//! ([`super::http`]). Connection timers are kept in a heap so a host with
//! hundreds of connections answers `poll_timeout` in O(1).
//!
//! A backend host may also run a split-splice [`Agent`]: it receives
//! replicated splices and rewrites the server's outgoing packets so they go
//! straight to the client.

use super::agent::Agent;
use super::http::{BodyOpts, ClientApp, Job, ServerApp};
use super::tcpip;
use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, Node};
use crate::net::pool;
use crate::net::udp;
use crate::FastMap;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::Instant;
use ftsplice_tcp::listener::ListenOutcome;
use ftsplice_tcp::{reset_for, Config, Connection, Event, Listener, State};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// What the host does.
#[derive(Clone, Debug)]
pub enum Role {
    /// Opens one connection per job to `target` at `start`, from ports
    /// `first_port..`.
    Client {
        target: SocketAddrV4,
        jobs: Vec<Job>,
        start: Instant,
        first_port: u16,
    },
    /// Listens on `port`.
    Server { port: u16 },
}

enum App {
    Client(ClientApp),
    Server(ServerApp),
}

impl App {
    fn wake(&self) -> Option<Instant> {
        match self {
            App::Client(c) => c.wake(),
            App::Server(s) => s.wake(),
        }
    }
}

/// The host's transmit path: packets the split-splice agent rewrote cost it
/// `cost` of CPU each (the DSN'06 agent's splicing cost) and leave in order
/// once it is spent; with no cost they leave at once.
#[derive(Default)]
struct Egress {
    cost: Duration,
    busy_until: Instant,
    queue: VecDeque<(Instant, Vec<u8>)>,
}

struct Slot {
    conn: Connection,
    app: App,
    timer: Option<Instant>,
}

/// A TCP host.
pub struct Endpoint {
    addr: Ipv4Addr,
    role: Role,
    cfg: Config,
    conns: Vec<Option<Slot>>,
    by_key: FastMap<(u16, SocketAddrV4), usize>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    start_at: Option<Instant>,
    scratch: Vec<u8>,
    agent: Option<Agent>,
    agent_template: Option<Agent>,
    body: BodyOpts,
    egress: Egress,
}

impl Endpoint {
    pub fn new(addr: Ipv4Addr, role: Role, cfg: Config) -> Endpoint {
        Endpoint {
            addr,
            role,
            cfg,
            conns: Vec::new(),
            by_key: FastMap::default(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            start_at: None,
            scratch: vec![0; 64 * 1024],
            agent: None,
            agent_template: None,
            body: BodyOpts::default(),
            egress: Egress::default(),
        }
    }

    /// Produces and checks HTTP bodies as `opts` says (paced, undigested
    /// bulk transfers for the paper studies).
    pub fn with_body_opts(mut self, opts: BodyOpts) -> Endpoint {
        self.body = opts;
        self
    }

    /// Charges `cost` of CPU for every packet the agent rewrites.
    pub fn with_agent_cost(mut self, cost: Duration) -> Endpoint {
        self.egress.cost = cost;
        self
    }

    /// Runs a split-splice agent on this host.
    pub fn with_agent(mut self, agent: Agent) -> Endpoint {
        self.agent = Some(agent.clone());
        self.agent_template = Some(agent);
        self
    }

    pub fn agent(&self) -> Option<&Agent> {
        self.agent.as_ref()
    }

    /// Per-connection TCP counters (diagnostics).
    pub fn conn_stats(&self) -> Vec<(SocketAddrV4, State, ftsplice_tcp::Stats, usize)> {
        self.conns
            .iter()
            .flatten()
            .map(|s| {
                (
                    s.conn.remote(),
                    s.conn.state(),
                    s.conn.stats(),
                    s.conn.cwnd(),
                )
            })
            .collect()
    }

    /// Connections currently open.
    pub fn open(&self) -> usize {
        self.by_key.len()
    }

    /// Records every client connection that has not finished as broken
    /// (call at the end of a run).
    pub fn abandon_all(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        for s in self.conns.iter_mut().flatten() {
            if let App::Client(c) = &mut s.app {
                c.abandon(now, ctx.stats());
            }
        }
    }

    fn insert(&mut self, key: (u16, SocketAddrV4), slot: Slot) -> usize {
        let i = match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(slot);
                i
            }
            None => {
                self.conns.push(Some(slot));
                self.conns.len() - 1
            }
        };
        self.by_key.insert(key, i);
        i
    }

    fn open_clients(&mut self, ctx: &mut Ctx<'_>) {
        let Role::Client {
            target,
            jobs,
            first_port,
            ..
        } = &self.role
        else {
            return;
        };
        let (target, jobs, first) = (*target, jobs.clone(), *first_port);
        for (k, job) in jobs.into_iter().enumerate() {
            let local = SocketAddrV4::new(self.addr, first.wrapping_add(k as u16));
            let isn = ctx.rng().next_u32();
            let ts = ctx.rng().next_u32();
            let conn = Connection::connect(ctx.now(), local, target, isn, ts, self.cfg.clone());
            let app = App::Client(ClientApp::with_opts(job, ctx.now(), self.body));
            let i = self.insert(
                (local.port(), target),
                Slot {
                    conn,
                    app,
                    timer: None,
                },
            );
            self.drive(ctx, i, None);
        }
    }

    /// Lets connection `i` react to `ev` and everything that follows, sends
    /// its segments and re-arms its timer.
    fn drive(&mut self, ctx: &mut Ctx<'_>, i: usize, first: Option<Event>) {
        let now = ctx.now();
        let Some(slot) = self.conns.get_mut(i).and_then(|s| s.as_mut()) else {
            return;
        };
        let mut ev = first;
        loop {
            match &mut slot.app {
                App::Client(c) => {
                    c.on_event(now, &mut slot.conn, ev, ctx.stats(), &mut self.scratch)
                }
                App::Server(s) => {
                    s.on_event(now, &mut slot.conn, ev, ctx.stats(), &mut self.scratch)
                }
            }
            let (addr, remote) = (self.addr, *slot.conn.remote().ip());
            while let Some(bytes) = slot
                .conn
                .poll_transmit_with(now, |seg| tcpip::emit(addr, remote, seg))
            {
                send(ctx, &mut self.agent, &mut self.egress, bytes);
            }
            ev = slot.conn.poll_event();
            if ev.is_none() {
                break;
            }
        }
        if slot.conn.state() == State::Closed {
            let key = (slot.conn.local().port(), slot.conn.remote());
            if let App::Client(c) = &mut slot.app {
                c.abandon(now, ctx.stats());
            }
            self.by_key.remove(&key);
            self.conns[i] = None;
            self.free.push(i);
            return;
        }
        let t = [slot.conn.poll_timeout(), slot.app.wake()]
            .into_iter()
            .flatten()
            .min();
        if t != slot.timer {
            slot.timer = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    fn handle_tcp(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        let p = match tcpip::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                ctx.stats().drop(e.reason());
                return;
            }
        };
        if *p.dst.ip() != self.addr {
            ctx.stats().drop("endpoint: not for this host");
            return;
        }
        let now = ctx.now();
        if let Some(&i) = self.by_key.get(&(p.dst.port(), p.src)) {
            if let Some(s) = self.conns[i].as_mut() {
                s.conn.handle_segment(now, &p.seg);
            }
            self.drive(ctx, i, None);
            return;
        }
        let reply = match &self.role {
            Role::Server { port } if *port == p.dst.port() => {
                let l = Listener::new(p.dst, self.cfg.clone());
                let isn = ctx.rng().next_u32();
                let ts = ctx.rng().next_u32();
                match l.accept_syn(now, p.src, &p.seg, isn, ts) {
                    ListenOutcome::Accepted(conn) => {
                        let i = self.insert(
                            (p.dst.port(), p.src),
                            Slot {
                                conn: *conn,
                                app: App::Server(ServerApp::with_opts(self.body)),
                                timer: None,
                            },
                        );
                        self.drive(ctx, i, None);
                        None
                    }
                    ListenOutcome::Reset(r) => Some(r),
                    ListenOutcome::Ignored => None,
                }
            }
            _ => reset_for(&p.seg),
        };
        if let Some(r) = reply {
            ctx.stats()
                .drop("endpoint: no connection, answered with reset");
            let bytes = tcpip::emit(self.addr, *p.src.ip(), &r);
            send(ctx, &mut self.agent, &mut self.egress, bytes);
        }
    }
}

/// Sends a packet the host's stack produced, through the agent if there is
/// one (it may rewrite it to go straight to the client, at a CPU cost).
fn send(ctx: &mut Ctx<'_>, agent: &mut Option<Agent>, egress: &mut Egress, mut bytes: Vec<u8>) {
    if bytes.is_empty() {
        ctx.stats().drop("endpoint: segment could not be emitted");
        return;
    }
    let now = ctx.now();
    let rewritten = match agent {
        Some(a) => a.egress(now, &mut bytes, ctx.stats()),
        None => false,
    };
    let cost = if rewritten {
        egress.cost
    } else {
        Duration::ZERO
    };
    if cost.is_zero() && egress.queue.is_empty() {
        ctx.send_ip(bytes);
        return;
    }
    let at = egress.busy_until.max(now) + cost;
    egress.busy_until = at;
    egress.queue.push_back((at, bytes));
}

/// Sends the queued packets whose CPU time is spent.
fn flush_egress(ctx: &mut Ctx<'_>, egress: &mut Egress) {
    let now = ctx.now();
    while egress.queue.front().is_some_and(|e| e.0 <= now) {
        if let Some((_, bytes)) = egress.queue.pop_front() {
            ctx.send_ip(bytes);
        }
    }
}

impl Node for Endpoint {
    fn kind(&self) -> &'static str {
        match self.role {
            Role::Client { .. } => "client",
            Role::Server { .. } => "server",
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        if let Role::Client { start, .. } = self.role {
            self.start_at = Some(start.max(ctx.now()));
        }
        if let Some(a) = &mut self.agent {
            a.start(ctx);
        }
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        if frame.kind != FrameKind::Ip {
            return;
        }
        match frame.bytes.get(9) {
            Some(6) => self.handle_tcp(ctx, &frame.bytes),
            Some(&udp::IPPROTO_UDP) => match &mut self.agent {
                Some(a) => a.handle_udp(ctx, &frame.bytes),
                None => ctx.stats().drop("endpoint: udp without agent"),
            },
            _ => ctx.stats().drop("endpoint: not tcp"),
        }
        pool::give(frame.bytes);
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if self.start_at.is_some_and(|t| t <= now) {
            self.start_at = None;
            self.open_clients(ctx);
        }
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.conns.get_mut(i).and_then(|s| s.as_mut()) else {
                continue;
            };
            if s.timer != Some(t) {
                continue;
            }
            s.timer = None;
            // The slot's timer may be the application's (a paced body).
            if s.conn.poll_timeout().is_some_and(|c| c <= now) {
                s.conn.handle_timeout(now);
            }
            self.drive(ctx, i, None);
        }
        if let Some(a) = &mut self.agent {
            a.handle_timeout(ctx);
        }
        flush_egress(ctx, &mut self.egress);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let t = self.timers.peek().map(|r| r.0 .0);
        let a = self.agent.as_ref().and_then(|a| a.poll_timeout());
        let e = self.egress.queue.front().map(|e| e.0);
        [t, self.start_at, a, e].into_iter().flatten().min()
    }

    fn crash(&mut self) {
        self.conns.clear();
        self.by_key.clear();
        self.free.clear();
        self.timers.clear();
        self.start_at = None;
        self.agent = self.agent_template.clone();
        self.egress.queue.clear();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

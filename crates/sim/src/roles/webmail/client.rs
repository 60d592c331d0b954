//! The webmail client of the `backend-crash` scenarios, like the paper's C
//! program (§6.2): one keep-alive connection, requests sent back to back
//! (each written in two pieces, request line first, as a browser that
//! flushes early would), every response checked byte for byte against the
//! reference stream of a backend that never fails.
//!
//! With [`Retry`] set it is the *traditional* client of the paper's
//! comparison: the server's heartbeats reach it every interval (modelled
//! as replies to the client's probes), it declares the server failed when
//! three in a row are missing (2-3 intervals after a crash, as the paper
//! says), reconnects to the alternate and re-issues the request
//! that was not answered.
//!
//! Outcome: one [`ConnRecord`] (transfer hashes over the whole response
//! stream), plus [`ClientResult`] for failover times.

use super::app::{self, Request};
use super::control::{Ctl, PORT};
use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, Node};
use crate::net::udp;
use crate::roles::tcpip;
use crate::stats::{ConnRecord, Note, Outcome};
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::Instant;
use ftsplice_tcp::{reset_for, Config, Connection, Event};
use sha2::{Digest, Sha256};

/// Client-side failure detection of the traditional architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Heartbeat interval (the paper: 1 s LAN, 5 s WAN-MIT, 10 s WAN-SG).
    pub heartbeat: Duration,
    /// Missed beats that declare the server failed (the paper: 3).
    pub missed: u32,
    /// Where to reconnect.
    pub alternate: Ipv4Addr,
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub addr: Ipv4Addr,
    pub server: SocketAddrV4,
    pub requests: Vec<Request>,
    /// Name of the backend whose responses are the reference.
    pub reference_server: &'static str,
    pub start: Instant,
    pub tcp: Config,
    pub retry: Option<Retry>,
    /// Job id in the run's statistics.
    pub id: u64,
}

/// How the run went, for the scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientResult {
    pub started: Option<Instant>,
    pub finished: Option<Instant>,
    /// Responses completely received and correct.
    pub answered: usize,
    pub resets: u32,
    pub reconnects: u32,
    /// First byte that differed from the reference.
    pub mismatch: Option<usize>,
    pub detected: Option<Instant>,
}

pub struct Client {
    cfg: ClientConfig,
    expected: Vec<u8>,
    ends: Vec<usize>,
    conn: Option<Connection>,
    received: Vec<u8>,
    /// Requests written on the current connection (index of the next).
    next: usize,
    port: u16,
    start_at: Option<Instant>,
    beat_at: Option<Instant>,
    beat_id: u64,
    /// The server is declared failed at this time unless a beat arrives.
    dead_at: Option<Instant>,
    done: bool,
    pub result: ClientResult,
    /// When each response was completely received.
    pub answer_times: Vec<Instant>,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Client {
        let (expected, ends) = app::reference(&cfg.requests, cfg.reference_server);
        Client {
            expected,
            ends,
            conn: None,
            received: Vec::new(),
            next: 0,
            port: 10_000,
            start_at: None,
            beat_at: None,
            beat_id: 0,
            dead_at: None,
            done: false,
            result: ClientResult::default(),
            answer_times: Vec::new(),
            cfg,
        }
    }

    fn connect(&mut self, ctx: &mut Ctx<'_>, to: SocketAddrV4) {
        let local = SocketAddrV4::new(self.cfg.addr, self.port);
        self.port = self.port.wrapping_add(1);
        let isn = ctx.rng().next_u32();
        let ts = ctx.rng().next_u32();
        self.conn = Some(Connection::connect(
            ctx.now(),
            local,
            to,
            isn,
            ts,
            self.cfg.tcp.clone(),
        ));
        // Re-issue from the first request not completely answered.
        self.received.truncate(self.answered_end());
        self.next = self.result.answered;
    }

    fn answered_end(&self) -> usize {
        match self.result.answered {
            0 => 0,
            n => self.ends.get(n - 1).copied().unwrap_or(0),
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        let now = ctx.now();
        self.result.finished = Some(now);
        let id = self.cfg.id;
        let start = self.result.started.unwrap_or(now);
        ctx.stats()
            .transfer_sent(id * 1000, Sha256::digest(&self.expected).into());
        if outcome != Outcome::Broken {
            ctx.stats()
                .transfer_received(id * 1000, Sha256::digest(&self.received).into());
        }
        ctx.stats().conn(ConnRecord {
            id,
            start,
            end: now,
            bytes: self.received.len() as u64,
            outcome,
            transfers: 1,
        });
        self.beat_at = None;
        self.dead_at = None;
    }

    fn drive(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(c) = self.conn.as_mut() else { return };
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = c.recv(&mut buf);
            if n == 0 {
                break;
            }
            let at = self.received.len();
            self.received.extend_from_slice(&buf[..n]);
            ctx.stats().goodput(now, n as u64);
            let want = self.expected.get(at..self.received.len());
            if want != Some(&self.received[at..]) && self.result.mismatch.is_none() {
                let off = (at..self.received.len())
                    .find(|&k| self.expected.get(k) != self.received.get(k))
                    .unwrap_or(at);
                self.result.mismatch = Some(off);
            }
        }
        while self
            .ends
            .get(self.result.answered)
            .is_some_and(|&e| self.received.len() >= e)
        {
            self.result.answered += 1;
            self.answer_times.push(now);
        }
        // Send the next request once the previous one is answered.
        if self.next == self.result.answered && self.next < self.cfg.requests.len() {
            let r = self.cfg.requests[self.next].bytes();
            let split = r
                .iter()
                .position(|&b| b == b'\n')
                .map_or(r.len(), |p| p + 1);
            c.send(&r[..split]);
            // The request line leaves in its own segment.
            let dst = *c.remote().ip();
            while let Some(seg) = c.poll_transmit(now) {
                ctx.send_ip(tcpip::emit(self.cfg.addr, dst, &seg));
            }
            c.send(&r[split..]);
            self.next += 1;
        }
        let mut ended = false;
        let mut reset = false;
        let dst = *c.remote().ip();
        while let Some(seg) = c.poll_transmit(now) {
            ctx.send_ip(tcpip::emit(self.cfg.addr, dst, &seg));
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                Event::Reset => reset = true,
                Event::TimedOut | Event::Closed => ended = true,
                _ => {}
            }
        }
        if self.result.mismatch.is_some() {
            c.abort();
            while let Some(seg) = c.poll_transmit(now) {
                ctx.send_ip(tcpip::emit(self.cfg.addr, dst, &seg));
            }
            return self.finish(ctx, Outcome::Completed);
        }
        if self.result.answered == self.cfg.requests.len() {
            c.close();
            while let Some(seg) = c.poll_transmit(now) {
                ctx.send_ip(tcpip::emit(self.cfg.addr, dst, &seg));
            }
            self.conn = None;
            return self.finish(ctx, Outcome::Completed);
        }
        if reset {
            self.result.resets += 1;
            ctx.note(Note::Other("client connection reset"));
        }
        if reset || ended {
            self.conn = None;
            self.finish(ctx, Outcome::Broken);
        }
    }

    /// Three beats in a row are missing: the traditional failover. Give up
    /// on the server, reconnect to the alternate, re-issue the unanswered
    /// request.
    fn fail_over(&mut self, ctx: &mut Ctx<'_>, r: Retry) {
        let now = ctx.now();
        ctx.note(Note::PeerDead(*self.cfg.server.ip()));
        self.result.detected.get_or_insert(now);
        self.result.reconnects += 1;
        self.cfg.server = SocketAddrV4::new(r.alternate, self.cfg.server.port());
        if let Some(c) = self.conn.as_mut() {
            c.abort();
        }
        self.conn = None;
        self.connect(ctx, self.cfg.server);
        self.dead_at = Some(now + r.heartbeat * r.missed);
        self.drive(ctx);
    }

    fn beat(&mut self, ctx: &mut Ctx<'_>, r: Retry) {
        let now = ctx.now();
        self.beat_id += 1;
        let b = udp::build(
            SocketAddrV4::new(self.cfg.addr, PORT),
            SocketAddrV4::new(*self.cfg.server.ip(), PORT),
            &Ctl::Probe { id: self.beat_id }.encode(),
        );
        ctx.send_ip(b);
        self.beat_at = Some(now + r.heartbeat);
    }
}

impl Node for Client {
    fn kind(&self) -> &'static str {
        "client"
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.start_at = Some(self.cfg.start.max(ctx.now()));
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        if frame.kind != FrameKind::Ip || self.done {
            return;
        }
        match frame.bytes.get(9) {
            Some(6) => {
                let p = match tcpip::parse(&frame.bytes) {
                    Ok(p) => p,
                    Err(e) => return ctx.stats().drop(e.reason()),
                };
                match self.conn.as_mut() {
                    Some(c) if c.remote() == p.src && c.local() == p.dst => {
                        c.handle_segment(ctx.now(), &p.seg);
                        self.drive(ctx);
                    }
                    _ => {
                        if let Some(r) = reset_for(&p.seg) {
                            ctx.send_ip(tcpip::emit(self.cfg.addr, *p.src.ip(), &r));
                        }
                        ctx.stats().drop("client: segment for no connection");
                    }
                }
            }
            Some(&udp::IPPROTO_UDP) => match udp::parse(&frame.bytes)
                .ok()
                .and_then(|d| Ctl::decode(d.payload))
            {
                Some(Ctl::ProbeReply { id }) if id == self.beat_id => {
                    if let Some(r) = self.cfg.retry {
                        self.dead_at = Some(ctx.now() + r.heartbeat * r.missed);
                    }
                }
                _ => ctx.stats().drop("client: unexpected datagram"),
            },
            _ => ctx.stats().drop("client: not tcp or udp"),
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if self.start_at.is_some_and(|t| t <= now) {
            self.start_at = None;
            self.result.started = Some(now);
            self.connect(ctx, self.cfg.server);
            if let Some(r) = self.cfg.retry {
                self.beat_at = Some(now);
                self.dead_at = Some(now + r.heartbeat * r.missed);
            }
        }
        if let Some(r) = self.cfg.retry.filter(|_| !self.done) {
            if self.dead_at.is_some_and(|t| t <= now) {
                self.fail_over(ctx, r);
            }
            if self.beat_at.is_some_and(|t| t <= now) {
                self.beat(ctx, r);
            }
        }
        if let Some(c) = self.conn.as_mut() {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
        if !self.done {
            self.drive(ctx);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let c = self.conn.as_ref().and_then(Connection::poll_timeout);
        [c, self.start_at, self.beat_at, self.dead_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn crash(&mut self) {
        self.conn = None;
        self.start_at = None;
        self.beat_at = None;
        self.dead_at = None;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

//! Study endpoints: a client machine opening N TCP connections (PUT: it
//! sends M bytes on each, optionally paced at an offered rate; GET: it
//! receives M bytes) and a server machine accepting them, both around
//! `ftsplice_tcp::Connection`. The next hop toward the service VIP is chosen
//! per connection among the live proxies (the stateless L3 LB's flow hash,
//! folded into the sender as the LB itself is never the bottleneck; or,
//! like the papers' LB, round-robin per packet). A
//! server in split-splice mode sends its segments straight to the client with
//! the VIP as source (the agent's translation), paying `egress_cost` each.

use crate::net::node::{Ctx, Frame, IfaceId, Node};
use crate::study::segcodec;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::Instant;
use ftsplice_tcp::{Config, Connection, Event, Segment};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Who sends the bulk data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (HTTP PUT body).
    Put,
    /// Server to client (HTTP GET response body).
    Get,
}

/// Shared addressing of a study network.
#[derive(Clone, Debug)]
pub struct Addrs {
    pub client: Ipv4Addr,
    pub server: Ipv4Addr,
    pub vip: Ipv4Addr,
}

/// Per-connection progress.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Transfer {
    /// The handshake completed (transfer timing starts here).
    pub started: Option<Instant>,
    /// The receiver holds every byte.
    pub done: Option<Instant>,
    pub received: u64,
}

struct Conn {
    tcp: Connection,
    /// Bytes the application still has to hand to TCP.
    to_write: u64,
    /// Bytes the pacer allows to be written now.
    credit: u64,
    expect: u64,
    xfer: Transfer,
    deadline: Option<Instant>,
}

/// The handshake is done and the application may still write.
fn established(c: &Conn) -> bool {
    let st = c.tcp.state();
    st.is_synchronized() && st.can_send()
}

const ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];
const PORT: u16 = 80;
const TICK: Duration = Duration::from_millis(1);

/// A client or server machine of the studies.
pub struct Host {
    pub addrs: Addrs,
    is_client: bool,
    dir: Direction,
    bytes: u64,
    conns_wanted: u16,
    /// Offered rate per connection in bits/s (client PUT only; 0: unpaced).
    rate_bps: u64,
    cfg: Config,
    /// Live proxies (next hops toward the VIP); empty: talk directly.
    pub gateways: Vec<Ipv4Addr>,
    /// Split splice: answer the client directly with the VIP as source.
    pub agent: bool,
    /// Spread every packet round-robin over the live proxies (the papers'
    /// LB) instead of pinning each connection to one (flow hash).
    pub spray: bool,
    rr: usize,
    egress_cost: Duration,
    egress: VecDeque<(Instant, Ipv4Addr, Vec<u8>)>,
    cpu_free: Instant,
    conns: BTreeMap<u16, Conn>,
    timers: BTreeSet<(Instant, u16)>,
    tick: Option<Instant>,
    /// Segments that could not be encoded or decoded.
    pub bad: u64,
}

impl Host {
    /// The client: `conns` connections of `bytes` each, `rate_bps` total
    /// offered load when it is the sender (0: as fast as TCP goes).
    pub fn client(addrs: Addrs, dir: Direction, conns: u16, bytes: u64, rate_bps: u64) -> Host {
        let mut h = Host::new(addrs, true, dir, bytes);
        h.conns_wanted = conns;
        h.rate_bps = rate_bps / u64::from(conns.max(1));
        h
    }

    /// The server; `rate_bps` is its total offered load when it is the
    /// sender (0: unpaced), `egress_cost` its per-segment send cost (the
    /// agent's splicing in split-splice mode).
    pub fn server(
        addrs: Addrs,
        dir: Direction,
        conns: u16,
        bytes: u64,
        rate_bps: u64,
        egress_cost: Duration,
    ) -> Host {
        let mut h = Host::new(addrs, false, dir, bytes);
        h.egress_cost = egress_cost;
        h.rate_bps = rate_bps / u64::from(conns.max(1));
        h
    }

    /// Uses `cfg` for every connection (before the run starts).
    pub fn set_tcp_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    fn new(addrs: Addrs, is_client: bool, dir: Direction, bytes: u64) -> Host {
        Host {
            addrs,
            is_client,
            dir,
            bytes,
            conns_wanted: 0,
            rate_bps: 0,
            cfg: Config::default(),
            gateways: Vec::new(),
            agent: false,
            spray: false,
            rr: 0,
            egress_cost: Duration::ZERO,
            egress: VecDeque::new(),
            cpu_free: Instant::ZERO,
            conns: BTreeMap::new(),
            timers: BTreeSet::new(),
            tick: None,
            bad: 0,
        }
    }

    /// Progress of every connection, by client port.
    pub fn transfers(&self) -> Vec<Transfer> {
        self.conns.values().map(|c| c.xfer).collect()
    }

    /// Segments retransmitted over all connections.
    pub fn retransmits(&self) -> u64 {
        self.conns.values().map(|c| c.tcp.stats().retransmits).sum()
    }

    /// Connections whose receiver has everything.
    pub fn completed(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.xfer.done.is_some())
            .count()
    }

    fn sends_data(&self) -> bool {
        self.is_client == (self.dir == Direction::Put)
    }

    fn remote_of(&self) -> Ipv4Addr {
        if self.gateways.is_empty() && !self.agent {
            if self.is_client {
                self.addrs.server
            } else {
                self.addrs.client
            }
        } else {
            self.addrs.vip
        }
    }

    /// Where a segment of connection `port` goes: (IP source, IP
    /// destination, L2 next hop).
    fn route(&mut self, port: u16, remote: Ipv4Addr) -> (Ipv4Addr, Ipv4Addr, Ipv4Addr) {
        let me = if self.is_client {
            self.addrs.client
        } else {
            self.addrs.server
        };
        if !self.is_client && self.agent {
            return (self.addrs.vip, self.addrs.client, self.addrs.client);
        }
        if remote == self.addrs.vip && !self.gateways.is_empty() {
            let i = if self.spray {
                self.rr = self.rr.wrapping_add(1);
                self.rr
            } else {
                usize::from(port)
            };
            let g = self.gateways[i % self.gateways.len()];
            return (me, remote, g);
        }
        (me, remote, remote)
    }

    fn pump(&mut self, now: Instant, port: u16) {
        let sends = self.sends_data();
        let Some(c) = self.conns.get_mut(&port) else {
            return;
        };
        if sends && established(c) {
            while c.to_write > 0 {
                let allowed = if self.rate_bps == 0 {
                    c.to_write
                } else {
                    c.credit.min(c.to_write)
                };
                let n = (allowed as usize).min(ZEROS.len());
                if n == 0 {
                    break;
                }
                let w = c.tcp.send(&ZEROS[..n]) as u64;
                if w == 0 {
                    break;
                }
                c.to_write -= w;
                if self.rate_bps != 0 {
                    c.credit -= w;
                }
            }
        }
        while let Some(ev) = c.tcp.poll_event() {
            if ev == Event::Connected && c.xfer.started.is_none() {
                c.xfer.started = Some(now);
            }
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = c.tcp.recv(&mut buf);
            if n == 0 {
                break;
            }
            c.xfer.received += n as u64;
        }
        if !sends && c.xfer.done.is_none() && c.xfer.received >= c.expect {
            c.xfer.done = Some(now);
        }
        let remote = *c.tcp.remote().ip();
        let mut out = Vec::new();
        while let Some(seg) = c.tcp.poll_transmit(now) {
            out.push(seg);
        }
        let new_deadline = c.tcp.poll_timeout();
        let old = core::mem::replace(&mut c.deadline, new_deadline);
        if let Some(t) = old {
            self.timers.remove(&(t, port));
        }
        if let Some(t) = new_deadline {
            self.timers.insert((t, port));
        }
        for seg in out {
            self.emit(now, port, remote, &seg);
        }
    }

    fn emit(&mut self, now: Instant, port: u16, remote: Ipv4Addr, seg: &Segment) {
        let (src, dst, hop) = self.route(port, remote);
        let Some(bytes) = segcodec::encode(src, dst, seg) else {
            self.bad += 1;
            return;
        };
        let at = self.cpu_free.max(now) + self.egress_cost;
        self.cpu_free = at;
        self.egress.push_back((at, hop, bytes));
    }

    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        while self.egress.front().is_some_and(|e| e.0 <= now) {
            if let Some((_, hop, bytes)) = self.egress.pop_front() {
                ctx.send_to(IfaceId(0), hop, bytes);
            }
        }
    }

    fn new_conn(&self, tcp: Connection) -> Conn {
        let sends = self.sends_data();
        Conn {
            tcp,
            to_write: if sends { self.bytes } else { 0 },
            credit: 0,
            expect: if sends { 0 } else { self.bytes },
            xfer: Transfer::default(),
            deadline: None,
        }
    }
}

impl Node for Host {
    fn kind(&self) -> &'static str {
        if self.is_client {
            "client"
        } else {
            "server"
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        if !self.is_client {
            return;
        }
        let now = ctx.now();
        let remote = SocketAddrV4::new(self.remote_of(), PORT);
        for i in 0..self.conns_wanted {
            let port = 10_000 + i;
            let isn = ctx.rng().next_u32();
            let ts = ctx.rng().next_u32();
            let local = SocketAddrV4::new(self.addrs.client, port);
            let tcp = Connection::connect(now, local, remote, isn, ts, self.cfg.clone());
            let c = self.new_conn(tcp);
            self.conns.insert(port, c);
            self.pump(now, port);
        }
        if self.rate_bps != 0 {
            self.tick = Some(now);
        }
        self.flush(ctx);
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        let now = ctx.now();
        let (src, dst, seg) = match segcodec::decode(&frame.bytes) {
            Ok(v) => v,
            Err(reason) => {
                self.bad += 1;
                ctx.stats().drop(reason);
                return;
            }
        };
        let port = if self.is_client {
            seg.dst_port
        } else {
            seg.src_port
        };
        if !self.conns.contains_key(&port) {
            if self.is_client || !seg.flags.syn() || seg.flags.ack() {
                ctx.stats().drop("study host: segment for no connection");
                return;
            }
            let local = SocketAddrV4::new(dst, seg.dst_port);
            let remote = SocketAddrV4::new(src, seg.src_port);
            let isn = ctx.rng().next_u32();
            let ts = ctx.rng().next_u32();
            match Connection::accept_syn(now, local, remote, &seg, isn, ts, self.cfg.clone()) {
                Ok(tcp) => {
                    let c = self.new_conn(tcp);
                    self.conns.insert(port, c);
                    if self.rate_bps != 0 && self.tick.is_none() {
                        self.tick = Some(now);
                    }
                }
                Err(_) => {
                    ctx.stats().drop("study host: bad SYN");
                    return;
                }
            }
        } else if let Some(c) = self.conns.get_mut(&port) {
            c.tcp.handle_segment(now, &seg);
        }
        self.pump(now, port);
        self.flush(ctx);
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        while let Some(&(t, port)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, port));
            if let Some(c) = self.conns.get_mut(&port) {
                c.deadline = None;
                c.tcp.handle_timeout(now);
            }
            self.pump(now, port);
        }
        if self.tick.is_some_and(|t| t <= now) {
            let per_tick = self.rate_bps / 8 / 1000;
            let ports: Vec<u16> = self.conns.keys().copied().collect();
            let mut pending = false;
            for port in ports {
                if let Some(c) = self.conns.get_mut(&port) {
                    if c.to_write > 0 {
                        // The application starts producing once the
                        // connection is up (no burst of saved-up credit).
                        if established(c) {
                            c.credit = (c.credit + per_tick).min(c.to_write);
                        }
                        pending = true;
                    }
                }
                self.pump(now, port);
            }
            self.tick = pending.then(|| now + TICK);
        }
        self.flush(ctx);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.first().map(|t| t.0),
            self.tick,
            self.egress.front().map(|e| e.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn crash(&mut self) {
        self.conns.clear();
        self.timers.clear();
        self.egress.clear();
        self.tick = None;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

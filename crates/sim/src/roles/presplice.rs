//! The pre-splice path of a proxy (paper §6 steps 4–6, Figure 6): accept the
//! client's connection A (VIP side), read the request head, L7-route, open
//! connection B from the SSA with a port of this proxy's partition, hand the
//! bytes read from A to B, and once the backend acknowledged all of them,
//! freeze both and build the [`Splice`].
//!
//! To reach a state where the two byte streams line up (see
//! `proto::splice`), A is frozen as soon as the head is complete: client
//! packets arriving after that are held and replayed through the splice.
//! Data the backend sends before the splice exists (a GET response can
//! start with the ACK of the request) is never given to B: B sees the
//! segment without payload (for its ACK), the original is held and replayed
//! through the splice, so the backend's bytes reach the client only via the
//! splice. The sockets are dropped when the splice has been replicated
//! ([`PreTable::release`]).

use super::proxy::ProxyConfig;
use super::tcpip;
use crate::net::node::Ctx;
use core::net::SocketAddrV4;
use ftsplice_proto::hash::flow_hash;
use ftsplice_proto::orphan_records::{PreKey, PreRecord};
use ftsplice_proto::route::head::{parse_head, HeadLimits, Parsed};
use ftsplice_proto::splice::table::SpliceTable;
use ftsplice_proto::splice::{Splice, SpliceId, TsDeltas, WindowScales};
use ftsplice_proto::Instant;
use ftsplice_tcp::listener::ListenOutcome;
use ftsplice_tcp::{Connection, Event, Flags, Listener, RepairState, Segment, SeqNum, State};
use std::collections::HashMap;

/// Packets held per connection while its splice is being built.
const MAX_HELD: usize = 4096;

/// One connection pair being spliced.
pub struct PreSplice {
    a: Connection,
    b: Option<Connection>,
    /// Bytes read from A, all of which go to B.
    buf: Vec<u8>,
    sent: usize,
    frozen: bool,
    held: Vec<Vec<u8>>,
    spliced: Option<SpliceId>,
    port: Option<u16>,
    dead: bool,
}

impl PreSplice {
    /// Gives A, until it is frozen, the held client segments that are no
    /// longer beyond its RCV.NXT (removing them from the hold).
    fn feed_in_order(&mut self, now: Instant) {
        while !self.frozen {
            let rcv_nxt = self.a.repair_state().rcv_nxt;
            let next = self.held.iter().position(|b| {
                tcpip::parse(b).is_ok_and(|p| p.src == self.a.remote() && !beyond(&p.seg, rcv_nxt))
            });
            let Some(k) = next else { break };
            let bytes = self.held.remove(k);
            if let Ok(p) = tcpip::parse(&bytes) {
                self.a.handle_segment(now, &p.seg);
            }
        }
    }
}

/// A splice ready to install and the packets to replay through it.
pub type Built = (Splice, Vec<Vec<u8>>);

/// All pre-splice connections of a proxy.
#[derive(Default)]
pub struct PreTable {
    slots: Vec<Option<PreSplice>>,
    free: Vec<usize>,
    by_client: HashMap<SocketAddrV4, usize>,
    by_port: HashMap<u16, usize>,
    by_splice: HashMap<SpliceId, usize>,
    counter: u64,
    port_cursor: u32,
    scratch: Vec<u8>,
    /// Connections accepted, and ones that ended without a splice, since
    /// the proxy last drained them (`proto::orphan_records`).
    accepted: Vec<PreRecord>,
    ended: Vec<PreKey>,
}

fn transmit(ctx: &mut Ctx<'_>, c: &mut Connection) {
    let now = ctx.now();
    let (l, r) = (*c.local().ip(), *c.remote().ip());
    while let Some(seg) = c.poll_transmit(now) {
        let bytes = tcpip::emit(l, r, &seg);
        if !bytes.is_empty() {
            ctx.send_ip(bytes);
        }
    }
}

/// A segment with data or a FIN starting beyond `rcv_nxt`.
fn beyond(seg: &Segment<&[u8]>, rcv_nxt: SeqNum) -> bool {
    (!seg.payload.is_empty() || seg.flags.fin()) && seg.seq.diff(rcv_nxt) > 0
}

fn ends(ev: Event) -> bool {
    matches!(ev, Event::Reset | Event::TimedOut | Event::Closed)
}

/// The splice joining frozen A and B (see `proto::splice` for the deltas).
pub fn build_splice(id: SpliceId, a: &RepairState, b: &RepairState) -> Splice {
    let ts = match (a.timestamps, b.timestamps) {
        (Some(ta), Some(tb)) => Some(TsDeltas {
            c2s: tb.last_tsval_sent.wrapping_sub(ta.ts_recent),
            s2c: ta.last_tsval_sent.wrapping_sub(tb.ts_recent),
        }),
        _ => None,
    };
    Splice {
        id,
        version: 1,
        client: a.remote,
        vip: a.local,
        ssa: b.local,
        backend: b.remote,
        seq_delta: b.snd_nxt.0.wrapping_sub(a.rcv_nxt.0),
        ack_delta: b.rcv_nxt.0.wrapping_sub(a.snd_nxt.0),
        ts,
        wscale: WindowScales {
            client: a.snd_wscale,
            vip: a.rcv_wscale,
            ssa: b.rcv_wscale,
            backend: b.snd_wscale,
        },
        sack_ok: a.sack_ok && b.sack_ok,
    }
}

impl PreTable {
    /// Resets for a fresh incarnation; `port_seed` spreads port choice so a
    /// restarted proxy does not start at the ports it used before.
    pub fn start(&mut self, port_seed: u32) {
        *self = PreTable::default();
        self.port_cursor = port_seed;
        self.scratch = vec![0; 64 * 1024];
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// This proxy has a socket for the packet `src -> dst`.
    pub fn has_socket(
        &self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        vip: core::net::Ipv4Addr,
        ssa: core::net::Ipv4Addr,
    ) -> bool {
        if *dst.ip() == vip {
            self.by_client.contains_key(&src)
        } else if *dst.ip() == ssa {
            self.by_port.contains_key(&dst.port())
        } else {
            false
        }
    }

    /// Connections accepted and connections ended unspliced since the last
    /// call, for the pre-splice records.
    pub fn take_records(&mut self) -> (Vec<PreRecord>, Vec<PreKey>) {
        (
            core::mem::take(&mut self.accepted),
            core::mem::take(&mut self.ended),
        )
    }

    /// The splice was replicated: drop its sockets.
    pub fn release(&mut self, id: SpliceId) {
        if let Some(i) = self.by_splice.remove(&id) {
            self.remove(i);
        }
    }

    fn remove(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i).and_then(Option::take) {
            self.by_client.remove(&s.a.remote());
            if let Some(p) = s.port {
                self.by_port.remove(&p);
            }
            if let Some(id) = s.spliced {
                self.by_splice.remove(&id);
            }
            self.free.push(i);
        }
    }

    fn alloc_port(
        &mut self,
        cfg: &ProxyConfig,
        table: &SpliceTable,
        backend: SocketAddrV4,
    ) -> Option<u16> {
        let ranges: Vec<_> = cfg.partitions.ranges_of(cfg.id).collect();
        let total: u32 = ranges
            .iter()
            .map(|r| u32::from(*r.end()) - u32::from(*r.start()) + 1)
            .sum();
        for _ in 0..total.min(65_536) {
            let mut k = self.port_cursor % total.max(1);
            self.port_cursor = self.port_cursor.wrapping_add(1);
            for r in &ranges {
                let n = u32::from(*r.end()) - u32::from(*r.start()) + 1;
                if k < n {
                    let port = *r.start() + k as u16;
                    let ssa = SocketAddrV4::new(cfg.ssa, port);
                    if !self.by_port.contains_key(&port) && table.peek(backend, ssa).is_none() {
                        return Some(port);
                    }
                    break;
                }
                k -= n;
            }
        }
        None
    }

    /// Handles a packet this proxy owns that matches no splice.
    pub fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        cfg: &ProxyConfig,
        table: &SpliceTable,
        bytes: Vec<u8>,
    ) -> Option<Built> {
        let now = ctx.now();
        let p = match tcpip::parse(&bytes) {
            Ok(p) => p,
            Err(e) => {
                ctx.stats().drop(e.reason());
                return None;
            }
        };
        let i = if p.dst == cfg.vip {
            match self.by_client.get(&p.src) {
                Some(&i) => {
                    let s = self.slots[i].as_mut()?;
                    if s.frozen {
                        if s.held.len() < MAX_HELD {
                            s.held.push(bytes.clone());
                        } else {
                            ctx.stats().drop("proxy: pre-splice hold queue full");
                        }
                        return None;
                    }
                    // Data (or a FIN) beyond what the socket holds in order
                    // is held for the splice, never queued out of order:
                    // the socket would SACK it, and bytes SACKed here but
                    // never handed to the backend are lost (the client
                    // does not resend what was SACKed unless it detects
                    // reneging). This holds in SYN-RECEIVED too: a
                    // per-packet lb reorders pre-splice packets (some reach
                    // the owner directly, some via a redirect), so the
                    // first segment completing the handshake may carry
                    // data from beyond a hole.
                    if beyond(&p.seg, s.a.repair_state().rcv_nxt) {
                        if s.held.len() < MAX_HELD {
                            s.held.push(bytes.clone());
                        } else {
                            ctx.stats().drop("proxy: pre-splice hold queue full");
                        }
                        return None;
                    }
                    s.a.handle_segment(now, &p.seg);
                    // Held segments the hole-filling one made in order go
                    // to the socket, so a head spread over reordered
                    // segments completes without a retransmission.
                    s.feed_in_order(now);
                    i
                }
                None => {
                    let isn = ctx.rng().next_u32();
                    let ts = ctx.rng().next_u32();
                    let l = Listener::new(cfg.vip, cfg.tcp.clone());
                    let ListenOutcome::Accepted(a) = l.accept_syn(now, p.src, &p.seg, isn, ts)
                    else {
                        ctx.stats().drop("proxy: not a connection request");
                        return None;
                    };
                    let s = PreSplice {
                        a: *a,
                        b: None,
                        buf: Vec::new(),
                        sent: 0,
                        frozen: false,
                        held: Vec::new(),
                        spliced: None,
                        port: None,
                        dead: false,
                    };
                    let i = match self.free.pop() {
                        Some(i) => {
                            self.slots[i] = Some(s);
                            i
                        }
                        None => {
                            self.slots.push(Some(s));
                            self.slots.len() - 1
                        }
                    };
                    self.by_client.insert(p.src, i);
                    self.accepted.push(PreRecord {
                        client: p.src,
                        vip: cfg.vip,
                        rst_seq: isn.wrapping_add(1),
                    });
                    i
                }
            }
        } else {
            let &i = self.by_port.get(&p.dst.port())?;
            let s = self.slots[i].as_mut()?;
            let b = s.b.as_mut()?;
            if b.remote() != p.src || s.spliced.is_some() {
                ctx.stats().drop("proxy: stray backend segment");
                return None;
            }
            if !p.seg.payload.is_empty() || p.seg.flags.fin() {
                let stripped = Segment {
                    payload: &[][..],
                    flags: Flags(p.seg.flags.0 & !Flags::FIN.0),
                    ..p.seg
                };
                b.handle_segment(now, &stripped);
                if s.held.len() < MAX_HELD {
                    s.held.push(bytes.clone());
                }
            } else {
                b.handle_segment(now, &p.seg);
            }
            i
        };
        self.drive(ctx, cfg, table, i)
    }

    /// Moves connection `i` forward; returns the splice when it is built.
    fn drive(
        &mut self,
        ctx: &mut Ctx<'_>,
        cfg: &ProxyConfig,
        table: &SpliceTable,
        i: usize,
    ) -> Option<Built> {
        let now = ctx.now();
        let mut scratch = core::mem::take(&mut self.scratch);
        if scratch.is_empty() {
            scratch = vec![0; 64 * 1024];
        }
        let mut need_port = None;
        {
            let s = self.slots.get_mut(i)?.as_mut()?;
            if !s.frozen {
                while let Some(ev) = s.a.poll_event() {
                    s.dead |= ends(ev);
                }
                loop {
                    let n = s.a.recv(&mut scratch);
                    if n == 0 {
                        break;
                    }
                    s.buf.extend_from_slice(&scratch[..n]);
                }
                if s.b.is_none() && !s.dead {
                    match parse_head(&s.buf, &HeadLimits::default()) {
                        Ok(Parsed::Complete(_)) => {
                            let n = cfg.backends.len().max(1) as u64;
                            need_port = cfg
                                .backends
                                .get((flow_hash(s.a.remote(), cfg.vip) % n) as usize)
                                .copied();
                            if need_port.is_none() {
                                ctx.stats().drop("proxy: no backend");
                                s.a.abort();
                                s.dead = true;
                            }
                        }
                        Ok(Parsed::NeedMore) => {}
                        Err(_) => {
                            ctx.stats().drop("proxy: bad request head");
                            s.a.abort();
                            s.dead = true;
                        }
                    }
                }
                transmit(ctx, &mut s.a);
            }
        }
        if let Some(backend) = need_port {
            match self.alloc_port(cfg, table, backend) {
                Some(port) => {
                    let isn = ctx.rng().next_u32();
                    let ts = ctx.rng().next_u32();
                    let s = self.slots[i].as_mut()?;
                    let mut bc = cfg.tcp.clone();
                    bc.mss = bc.mss.min(s.a.repair_state().peer_mss);
                    s.b = Some(Connection::connect(
                        now,
                        SocketAddrV4::new(cfg.ssa, port),
                        backend,
                        isn,
                        ts,
                        bc,
                    ));
                    s.port = Some(port);
                    s.a.freeze();
                    s.frozen = true;
                    self.by_port.insert(port, i);
                }
                None => {
                    ctx.stats().drop("proxy: no free ssa port");
                    if let Some(s) = self.slots[i].as_mut() {
                        s.a.abort();
                        s.dead = true;
                    }
                }
            }
        }
        self.scratch = scratch;
        let s = self.slots.get_mut(i)?.as_mut()?;
        let mut ready = false;
        if let Some(b) = s.b.as_mut() {
            while let Some(ev) = b.poll_event() {
                s.dead |= ends(ev);
            }
            if b.state() == State::Established && s.sent < s.buf.len() {
                s.sent += b.send(&s.buf[s.sent..]);
            }
            transmit(ctx, b);
            if !s.dead
                && s.spliced.is_none()
                && s.sent == s.buf.len()
                && b.state() == State::Established
            {
                let rb = b.repair_state();
                ready = rb.unsent_bytes == 0 && rb.unacked_bytes == 0;
            }
        }
        if s.dead {
            if s.frozen {
                // The client's side is frozen and nobody will answer it:
                // reset it so it does not wait for a retransmission timeout.
                transmit(ctx, &mut s.a);
            }
            ctx.stats().drop("proxy: pre-splice connection failed");
            self.ended.push(PreKey {
                client: s.a.remote(),
                vip: cfg.vip,
            });
            self.remove(i);
            return None;
        }
        if !ready {
            return None;
        }
        let b = s.b.as_mut()?;
        b.freeze();
        self.counter += 1;
        let id = SpliceId::compose(cfg.id, self.counter);
        let splice = build_splice(id, &s.a.repair_state(), &b.repair_state());
        s.spliced = Some(id);
        let held = core::mem::take(&mut s.held);
        self.by_splice.insert(id, i);
        Some((splice, held))
    }

    /// Runs due connection timers.
    pub fn handle_timeout(
        &mut self,
        ctx: &mut Ctx<'_>,
        cfg: &ProxyConfig,
        table: &SpliceTable,
    ) -> Vec<Built> {
        let now = ctx.now();
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            let Some(s) = self.slots[i].as_mut() else {
                continue;
            };
            let mut due = false;
            if s.a.poll_timeout().is_some_and(|t| t <= now) {
                s.a.handle_timeout(now);
                due = true;
            }
            if let Some(b) = s.b.as_mut() {
                if b.poll_timeout().is_some_and(|t| t <= now) {
                    b.handle_timeout(now);
                    due = true;
                }
            }
            if due {
                out.extend(self.drive(ctx, cfg, table, i));
            }
        }
        out
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        // Only the live slots (one per `by_client` entry): every slot,
        // freed ones included, was walked on each of the proxy's events
        // (~2 % of a 100-connection run once the splices were done).
        self.by_client
            .values()
            .filter_map(|&i| self.slots.get(i)?.as_ref())
            .flat_map(|s| {
                [
                    s.a.poll_timeout(),
                    s.b.as_ref().and_then(|b| b.poll_timeout()),
                ]
            })
            .flatten()
            .min()
    }
}

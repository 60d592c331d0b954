//! The splicing proxy (paper §6): every packet is first looked up in the
//! replicated splice table and, if it matches, translated and sent on. A
//! packet matching no splice goes to its pre-splice owner (`proto::owner`),
//! which runs the pre-splice path in [`super::presplice`]: accept the client
//! connection, read the request head, L7-route, connect from the SSA, hand
//! over the bytes, freeze both connections, build and replicate the splice.
//!
//! Control plane: heartbeats to the lbs and to peer proxies (workload 0
//! until the proxy has pulled its peers' splice tables), a failure detector
//! for peers driving replication, redirect membership and teardown.

use super::control::{send_repl, send_udp, tcp_flags, tcp_tuple, HB_PORT, REPL_PORT};
use super::presplice::PreTable;
use super::tcpip;
use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, Node, NodeId};
use crate::net::udp;
use crate::stats::Note;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::detector::{DetectorConfig, DetectorEvent, FailureDetector};
use ftsplice_proto::heartbeat::HeartbeatSender;
use ftsplice_proto::orphan::{OrphanConfig, OrphanGuard, OrphanSegment, OrphanVerdict, Reset};
use ftsplice_proto::orphan_records::{PreKey, PreRecordConfig, PreRecords};
use ftsplice_proto::owner::{DropReason, PortPartitions, RedirectDecision, Redirector, Unmatched};
use ftsplice_proto::replication::{Codec, Message, Replicator, ReplicatorConfig, ReplicatorEvent};
use ftsplice_proto::splice::{translate, Splice};
use ftsplice_proto::teardown::{Teardown, TeardownAction, TeardownConfig};
use ftsplice_proto::{Instant, ProxyId};
use ftsplice_tcp::{Config, Flags, Segment, SeqNum};
use std::collections::BTreeSet;

/// Workload factor a ready proxy announces.
pub const WORKLOAD: u32 = 100;

/// Proxy configuration.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub id: ProxyId,
    /// The proxy's own (station) address.
    pub addr: Ipv4Addr,
    /// Service address and port clients connect to.
    pub vip: SocketAddrV4,
    /// Shared splice address backends see.
    pub ssa: Ipv4Addr,
    /// The other proxies.
    pub peers: Vec<(ProxyId, Ipv4Addr)>,
    /// Node ids of the other proxies (frames from them are redirects).
    pub peer_nodes: Vec<NodeId>,
    /// Split-splice agents: replication peers that never relay.
    pub agents: Vec<(ProxyId, Ipv4Addr)>,
    /// Load balancers to send heartbeats to.
    pub lbs: Vec<Ipv4Addr>,
    pub partitions: PortPartitions,
    /// Backends of the service (L7 routing picks one per connection).
    pub backends: Vec<SocketAddrV4>,
    pub heartbeat: Duration,
    pub missed: u32,
    pub tcp: Config,
    pub teardown: TeardownConfig,
    /// CPU time per datagram byte on top of the node's per-packet splicing
    /// cost (the SRDS'06 calibration: its proxies were byte-bound; zero
    /// elsewhere).
    pub cost_per_byte: Duration,
}

/// Counters of one proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub translated: u64,
    pub redirected: u64,
    pub splices_created: u64,
    pub replayed: u64,
    /// Orphaned client segments answered with a reset (`proto::orphan`).
    pub orphan_resets: u64,
    /// Idle clients of a dead peer reset from its pre-splice records
    /// (`proto::orphan_records`), and record messages sent.
    pub record_resets: u64,
    pub record_messages: u64,
}

/// The proxy node.
pub struct Proxy {
    cfg: ProxyConfig,
    repl: Replicator,
    codec: Codec,
    redirector: Redirector,
    teardown: Teardown,
    detector: FailureDetector,
    orphans: OrphanGuard,
    records: PreRecords,
    beat: Option<HeartbeatSender>,
    pre: PreTable,
    started: Instant,
    synced: BTreeSet<ProxyId>,
    ready: bool,
    settled: bool,
    pub stats: ProxyStats,
}

fn owner_reason(r: DropReason) -> &'static str {
    match r {
        DropReason::NotForService => "proxy: not for the service",
        DropReason::NoLiveProxy => "proxy: no live proxy",
        DropReason::PortUnowned => "proxy: ssa port unowned",
        DropReason::OwnerDead => "proxy: pre-splice owner dead",
        DropReason::RedirectLoop => "proxy: redirect loop",
    }
}

impl Proxy {
    pub fn new(cfg: ProxyConfig) -> Proxy {
        let dcfg = DetectorConfig {
            interval: cfg.heartbeat,
            missed: cfg.missed,
            hold: 0,
        };
        let detector = FailureDetector::new(dcfg);
        Proxy {
            orphans: OrphanGuard::new(Instant::ZERO, cfg.id, OrphanConfig::for_detector(dcfg)),
            records: PreRecords::new(cfg.id, PreRecordConfig::default()),
            repl: Replicator::new(ReplicatorConfig::new(cfg.id)),
            codec: Codec::new(None),
            redirector: Redirector::new(cfg.id, *cfg.vip.ip(), cfg.ssa, cfg.partitions.clone()),
            teardown: Teardown::new(Instant::ZERO, cfg.id, cfg.teardown),
            detector,
            beat: None,
            pre: PreTable::default(),
            started: Instant::ZERO,
            synced: BTreeSet::new(),
            ready: false,
            settled: false,
            stats: ProxyStats::default(),
            cfg,
        }
    }

    pub fn id(&self) -> ProxyId {
        self.cfg.id
    }

    /// Splices in the local table.
    pub fn splices(&self) -> usize {
        self.repl.table().len()
    }

    /// Pre-splice connections in progress.
    pub fn presplicing(&self) -> usize {
        self.pre.len()
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    fn peer_addr(&self, id: ProxyId) -> Option<Ipv4Addr> {
        self.cfg
            .peers
            .iter()
            .chain(&self.cfg.agents)
            .find(|p| p.0 == id)
            .map(|p| p.1)
    }

    /// Translates and forwards a packet of a known splice; false if none.
    fn fast_path(&mut self, ctx: &mut Ctx<'_>, bytes: &mut Vec<u8>) -> bool {
        let Some((src, dst)) = tcp_tuple(bytes) else {
            return false;
        };
        let now = ctx.now();
        let (id, dir, res) = match self.repl.table_mut().lookup(src, dst) {
            Some((s, dir)) => (s.id, dir, translate(s, dir, bytes)),
            None => return false,
        };
        match res {
            Ok(t) => {
                self.stats.translated += 1;
                let flags = t.flags.0;
                self.teardown
                    .handle_packet(now, id, dir, flags & 0x01 != 0, flags & 0x04 != 0);
                ctx.send_ip(core::mem::take(bytes));
                self.run_teardown(ctx);
            }
            Err(e) => ctx.stats().drop(e.code()),
        }
        true
    }

    fn run_teardown(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        while let Some(a) = self.teardown.poll_action() {
            match a {
                TeardownAction::Delete { id, .. } => {
                    self.repl.delete(now, id);
                    self.teardown.untrack(id);
                }
                TeardownAction::SendFin { id, dir } => {
                    let msg = Message::Fin { id, dir };
                    for &(_, addr) in &self.cfg.peers {
                        send_repl(ctx, &self.codec, self.cfg.id, self.cfg.addr, addr, &msg);
                    }
                }
                TeardownAction::SendActivity { to, ids } => {
                    if let Some(addr) = self.peer_addr(to) {
                        let msg = Message::Activity { ids };
                        send_repl(ctx, &self.codec, self.cfg.id, self.cfg.addr, addr, &msg);
                    }
                }
            }
        }
        self.flush_repl(ctx);
    }

    fn flush_repl(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((to, msg)) = self.repl.poll_transmit() {
            if let Some(addr) = self.peer_addr(to) {
                send_repl(ctx, &self.codec, self.cfg.id, self.cfg.addr, addr, &msg);
            }
        }
        while let Some(ev) = self.repl.poll_event() {
            match ev {
                ReplicatorEvent::Replicated { id, .. } => self.pre.release(id),
                ReplicatorEvent::Installed { id } => {
                    self.teardown.track(ctx.now(), id);
                    if let Some(sp) = self.repl.table().get(id) {
                        self.records.handle_spliced(PreKey {
                            client: sp.client,
                            vip: sp.vip,
                        });
                    }
                }
                ReplicatorEvent::Removed { id } => self.teardown.untrack(id),
                ReplicatorEvent::Synced { peer } => {
                    self.synced.insert(peer);
                }
                ReplicatorEvent::GaveUp { .. } => ctx.stats().drop("replication: peer gave no ack"),
            }
        }
        self.check_ready(ctx);
    }

    fn check_ready(&mut self, ctx: &mut Ctx<'_>) {
        if self.ready {
            return;
        }
        let settle = self.cfg.heartbeat * (self.cfg.missed + 1);
        self.settled |= ctx.now() - self.started >= settle;
        let live_peers_synced = self
            .detector
            .live()
            .all(|(id, _)| self.synced.contains(&id));
        if ctx.now() - self.started >= settle && live_peers_synced {
            self.ready = true;
            if let Some(b) = &mut self.beat {
                b.set_workload(WORKLOAD);
            }
            self.redirector.set_own_weight(WORKLOAD);
            self.orphans
                .handle_table(ctx.now(), self.redirector.table());
            ctx.note(Note::Synced);
        }
    }

    fn beat(&mut self, ctx: &mut Ctx<'_>) {
        let Some(b) = &mut self.beat else {
            return;
        };
        b.handle_timeout(ctx.now());
        while let Some(hb) = b.poll_transmit() {
            let bytes = hb.encode();
            for &to in self
                .cfg
                .lbs
                .iter()
                .chain(self.cfg.peers.iter().map(|p| &p.1))
            {
                send_udp(ctx, self.cfg.addr, to, HB_PORT, &bytes);
            }
        }
    }

    fn membership(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let mut changed = false;
        while let Some(ev) = self.detector.poll_event() {
            changed = true;
            match ev {
                DetectorEvent::ProxyUp { id, weight } => {
                    self.redirector.proxy_up(id, weight);
                    self.teardown.proxy_up(now, id);
                    self.repl.handle_peer_up(now, id);
                    self.records.handle_owner_up(id);
                }
                DetectorEvent::ProxyDown { id } => {
                    self.redirector.proxy_down(id);
                    self.teardown.proxy_down(now, id);
                    self.repl.handle_peer_down(id);
                    self.records.handle_owner_down(now, id);
                    self.synced.remove(&id);
                }
                DetectorEvent::WeightChanged { id, weight } => {
                    self.redirector.proxy_up(id, weight);
                }
            }
        }
        if changed {
            self.orphans.handle_table(now, self.redirector.table());
        }
        self.flush_repl(ctx);
    }

    fn control(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        let d = match udp::parse(bytes) {
            Ok(d) => d,
            Err(e) => {
                ctx.stats().drop(e.reason());
                return;
            }
        };
        let now = ctx.now();
        match d.dst.port() {
            HB_PORT => {
                if self.detector.handle_datagram(now, d.payload).is_err() {
                    ctx.stats().drop("proxy: bad heartbeat");
                }
                self.membership(ctx);
            }
            REPL_PORT => match self.codec.decode(d.payload) {
                Ok(env) => {
                    match env.msg {
                        Message::Fin { id, dir } => self.teardown.handle_fin(now, id, dir),
                        Message::Activity { ids } => self.teardown.handle_activity(now, &ids),
                        Message::PreSplice { add, remove } => {
                            self.records.handle_message(now, env.sender, &add, &remove)
                        }
                        msg => self.repl.handle_message(now, env.sender, msg),
                    }
                    self.flush_repl(ctx);
                }
                Err(_) => ctx.stats().drop("proxy: bad replication message"),
            },
            _ => ctx.stats().drop("proxy: udp to unknown port"),
        }
    }

    /// Whether a packet with no splice and no socket here, in a slot this
    /// proxy owns, starts a connection. Other client segments are orphans
    /// (`proto::orphan`): reset once the slot is settled, else dropped.
    fn accepts_unknown(&mut self, ctx: &mut Ctx<'_>, dst: SocketAddrV4, bytes: &[u8]) -> bool {
        if dst != self.cfg.vip {
            ctx.stats().drop("proxy: segment of unknown connection");
            return false;
        }
        let p = match tcpip::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                ctx.stats().drop(e.reason());
                return false;
            }
        };
        let seg = OrphanSegment {
            src: p.src,
            dst: p.dst,
            seq: p.seg.seq.0,
            ack: p.seg.ack.0,
            flags: tcp_flags(bytes),
            payload_len: p.seg.payload.len() as u32,
        };
        match self.orphans.decide(ctx.now(), &seg) {
            OrphanVerdict::Accept => true,
            OrphanVerdict::Reset(r) => {
                if self.send_reset(ctx, &r) {
                    self.stats.orphan_resets += 1;
                }
                false
            }
            OrphanVerdict::Drop(d) => {
                ctx.stats().drop(d.reason());
                false
            }
        }
    }

    /// Sends `r`; false if it could not be emitted (counted as a drop).
    fn send_reset(&mut self, ctx: &mut Ctx<'_>, r: &Reset) -> bool {
        let seg: Segment<&[u8]> = Segment {
            src_port: r.from.port(),
            dst_port: r.to.port(),
            seq: SeqNum(r.seq),
            ack: SeqNum(0),
            flags: Flags::RST,
            window: 0,
            options: Default::default(),
            payload: &[],
        };
        let bytes = tcpip::emit(*r.from.ip(), *r.to.ip(), &seg);
        if bytes.is_empty() {
            ctx.stats().drop("proxy: orphan reset could not be emitted");
            return false;
        }
        ctx.send_ip(bytes);
        true
    }

    /// Announces the pre-splice path's accepted and ended connections to
    /// the peer proxies (not the agents: they never own a slot).
    fn announce_records(&mut self, ctx: &mut Ctx<'_>) {
        let (accepted, ended) = self.pre.take_records();
        for r in accepted {
            self.records.record(r);
        }
        for k in ended {
            self.records.forget(k);
        }
        while let Some(msg) = self.records.poll_transmit() {
            for &(_, addr) in &self.cfg.peers {
                self.stats.record_messages += 1;
                send_repl(ctx, &self.codec, self.cfg.id, self.cfg.addr, addr, &msg);
            }
        }
    }

    /// Resets the idle clients of dead peers whose slots settled here.
    fn reset_recorded(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if self.records.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        let table = self.repl.table();
        self.records.handle_timeout(now, &self.orphans, |k| {
            table.peek(k.client, k.vip).is_some()
        });
        while let Some(r) = self.records.poll_reset() {
            if self.send_reset(ctx, &r) {
                self.stats.record_resets += 1;
            }
        }
    }

    /// Installs a splice built by the pre-splice path and replays the
    /// packets held back while it was being built.
    fn install(&mut self, ctx: &mut Ctx<'_>, splice: Splice, held: Vec<Vec<u8>>) {
        let now = ctx.now();
        let id = splice.id;
        if self.repl.create(now, splice).is_err() {
            ctx.stats().drop("proxy: splice table refused a new splice");
            return;
        }
        self.stats.splices_created += 1;
        self.teardown.track(now, id);
        self.flush_repl(ctx);
        for mut p in held {
            self.stats.replayed += 1;
            if !self.fast_path(ctx, &mut p) {
                ctx.stats().drop("proxy: held packet matches no splice");
            }
        }
    }
}

impl Node for Proxy {
    fn kind(&self) -> &'static str {
        "proxy"
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        self.started = now;
        self.teardown = Teardown::new(now, self.cfg.id, self.cfg.teardown);
        self.orphans = OrphanGuard::new(now, self.cfg.id, self.orphans.config());
        self.orphans.handle_table(now, self.redirector.table());
        let epoch = ctx.rng().next_u32();
        self.pre.start(ctx.rng().next_u32());
        self.beat = Some(HeartbeatSender::new(
            now,
            self.cfg.id,
            epoch,
            self.cfg.heartbeat,
            0,
        ));
        for &(a, _) in &self.cfg.agents {
            self.repl.handle_peer_up(now, a);
        }
        self.beat(ctx);
        self.flush_repl(ctx);
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, iface: IfaceId, frame: Frame) {
        if frame.kind != FrameKind::Ip {
            return;
        }
        let mut bytes = frame.bytes;
        if bytes.get(16..20) == Some(&self.cfg.addr.octets()[..]) {
            self.control(ctx, &bytes);
            return;
        }
        if self.fast_path(ctx, &mut bytes) {
            return;
        }
        let Some((src, dst)) = tcp_tuple(&bytes) else {
            ctx.stats().drop("proxy: not tcp");
            return;
        };
        let has_local_socket = self
            .pre
            .has_socket(src, dst, *self.cfg.vip.ip(), self.cfg.ssa);
        let redirected = self.cfg.peer_nodes.contains(&frame.origin);
        let decision = self.redirector.decide(&Unmatched {
            src,
            dst,
            has_local_socket,
            redirected,
        });
        match decision {
            RedirectDecision::Local => {
                if !has_local_socket && !self.accepts_unknown(ctx, dst, &bytes) {
                    return;
                }
                let built = self.pre.handle(ctx, &self.cfg, self.repl.table(), bytes);
                self.announce_records(ctx);
                if let Some((splice, held)) = built {
                    self.install(ctx, splice, held);
                }
            }
            RedirectDecision::Redirect(owner) => match self.peer_addr(owner) {
                Some(addr) => {
                    self.stats.redirected += 1;
                    ctx.send_to(iface, addr, bytes);
                }
                None => ctx.stats().drop("proxy: redirect to unknown proxy"),
            },
            RedirectDecision::Drop(r) => ctx.stats().drop(owner_reason(r)),
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        self.detector.handle_timeout(now);
        self.membership(ctx);
        if self.repl.poll_timeout().is_some_and(|t| t <= now) {
            self.repl.handle_timeout(now);
        }
        if self.teardown.poll_timeout() <= now {
            self.teardown.handle_timeout(now);
        }
        self.run_teardown(ctx);
        self.beat(ctx);
        let built = self.pre.handle_timeout(ctx, &self.cfg, self.repl.table());
        self.announce_records(ctx);
        for (splice, held) in built {
            self.install(ctx, splice, held);
        }
        self.reset_recorded(ctx);
        self.check_ready(ctx);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        // Until ready, wake once when the settle time has passed (readiness
        // is re-checked on every event after that).
        let settle = self.started + self.cfg.heartbeat * (self.cfg.missed + 1);
        let settle = (!self.ready && !self.settled).then_some(settle);
        [
            self.detector.poll_timeout(),
            self.repl.poll_timeout(),
            Some(self.teardown.poll_timeout()),
            self.beat.as_ref().map(|b| b.poll_timeout()),
            self.pre.poll_timeout(),
            self.records.poll_timeout(),
            settle,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn service_time(&self, frame: &Frame, default: Duration) -> Duration {
        if self.cfg.cost_per_byte.is_zero() {
            return default;
        }
        default + self.cfg.cost_per_byte * frame.bytes.len() as u32
    }

    fn crash(&mut self) {
        // Counters survive (they are the experimenter's, not the machine's).
        let stats = self.stats;
        *self = Proxy::new(self.cfg.clone());
        self.stats = stats;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

//! The control plane of a proxy or agent around its data plane: the
//! replication [`Replicator`] (authenticated UDP datagrams to and from the
//! configured peers), splice [`Teardown`] fed by what the data plane saw
//! (`splice_seen`), and the [`SpliceSink`] kept equal to the replicated
//! table. [`Control`] is the synchronous core (time passed in, datagrams
//! out); [`run`] is its tokio loop.
//!
//! Peer liveness: proxies send each other (and their agents) heartbeats
//! (`proto::heartbeat`, FTHB v1) on the replication socket, told apart from
//! replication datagrams by their magic; a [`FailureDetector`] per node
//! turns them into up/down events. A peer is up from its first heartbeat
//! (its table is then pulled, and it pulls ours when it sees us), down
//! after three missed beats, and down-then-up when it restarts (new epoch),
//! so its replicas resync. Heartbeats are not authenticated: a forged one
//! can only make a dead peer look alive (changes to it then wait for acks
//! that never come, bounded by the retransmission budget). In the daemons
//! ([`ReplicationIo`]) the socket is read on its own thread, which stamps
//! each datagram on arrival and reports watermarks (`crate::heartbeat`),
//! and the beats leave from a thread of their own, both at raised
//! priority: a control loop busy with a burst of splice creations neither
//! misses its peers' beats nor stops sending its own, and the detector
//! blames a peer only for silence the receiver listened through
//! (`FailureDetector::handle_listened`). A peer wrongly declared down
//! costs every splice created meanwhile its replica there.
//!
//! Client-side pre-splice routing: a proxy with [`ClientRouting`] announces
//! its workload factor in its peer heartbeats (the same `W_i` it sends the
//! lb) and keeps the data plane's client-owner table equal to the lb's
//! weighted slot table (`proto::lb::SlotTable`) over itself and the peers
//! it sees up, so a client packet the lb sends elsewhere than to the
//! proxy holding the connection (membership or weights changed while it
//! was being spliced) goes to the slot's owner. Its own slots whose owner
//! has not changed for `proto::orphan`'s grace are written as
//! `OWNER_SETTLED`: there the data plane marks orphaned client ACKs (a
//! pre-splice connection of a dead proxy, or a stale one) so that the
//! kernel's reset passes the proxy's reset filter and the client fails
//! fast instead of hanging (docs/daemons.md).
//!
//! Agents (split-splice, `agent = true` peers) are receive-only: a proxy
//! sends them its own creates and deletes (unacknowledged; a lost one only
//! means the backend's packets take the path through a proxy) and answers
//! their snapshot requests, but they never count as the ack a creation
//! waits for and never own a splice's teardown. In agent mode, [`Control`]
//! installs only the splices of its backend, and drops an entry on its own
//! once its data plane saw no packet of it for the teardown's `idle` time:
//! a proxy's delete that never arrived (lost datagram, partition) then
//! cannot leak the entry. Dropping a splice that is still in use is safe:
//! the backend's packets then take the path through a proxy, which still
//! holds it.

use crate::heartbeat::{BeatThread, Received};
use crate::metrics::{Counter, Gauge, Registry};
use crate::proxy::ports::PortAllocator;
use crate::sink::{Seen, SpliceSink};
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use ftsplice_proto::detector::{DetectorConfig, DetectorEvent, FailureDetector};
use ftsplice_proto::heartbeat::{Heartbeat, HeartbeatSender};
use ftsplice_proto::lb::{ProxySet, SlotTable};
use ftsplice_proto::orphan::{OrphanConfig, OrphanGuard, Reset};
use ftsplice_proto::orphan_records::{PreKey, PreRecord, PreRecordConfig, PreRecords};
use ftsplice_proto::replication::codec::{Codec, DecodeError, Key};
use ftsplice_proto::replication::{Message, Replicator, ReplicatorConfig, ReplicatorEvent};
use ftsplice_proto::splice::{Direction, Splice, SpliceId};
use ftsplice_proto::teardown::{CloseReason, Teardown, TeardownAction, TeardownConfig};
use ftsplice_proto::{Instant, ProxyId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The sink shared by the control loop and the accept pipeline.
pub type SharedSink = Arc<Mutex<Box<dyn SpliceSink>>>;

/// Locks the sink; a poisoned lock (a panicking holder) is still usable:
/// the map operations it guards are single syscalls.
pub fn lock(sink: &SharedSink) -> std::sync::MutexGuard<'_, Box<dyn SpliceSink>> {
    sink.lock().unwrap_or_else(|p| p.into_inner())
}

/// One configured replication peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: ProxyId,
    pub addr: SocketAddr,
    /// A split-splice agent (receive-only).
    pub agent: bool,
}

/// Settings of a [`Control`].
#[derive(Clone, Debug)]
pub struct ControlConfig {
    pub me: ProxyId,
    pub peers: Vec<Peer>,
    pub psk: Option<Key>,
    pub teardown: TeardownConfig,
    /// How often `splice_seen` is read.
    pub seen_poll: Duration,
    /// Heartbeat period between peers (down after three missed).
    pub peer_heartbeat: Duration,
    /// Incarnation announced in heartbeats (differs between restarts).
    pub epoch: u32,
    /// Agent mode: receive only, install only splices of this backend.
    pub agent_backend: Option<SocketAddrV4>,
    /// This proxy's SSA (ports of released splices go back to the pool).
    pub ssa: Option<Ipv4Addr>,
    /// Client-side pre-splice routing (proxies; `None` for agents).
    pub clients: Option<ClientRouting>,
}

/// What a proxy needs to build the lb's slot table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientRouting {
    /// The service address clients connect to.
    pub vip: Ipv4Addr,
    /// This proxy's workload factor `W_i` (as in its lb heartbeats).
    pub workload: u32,
}

/// How a creation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Installed locally and acked by `acked_by` (`None`: no peer is up).
    Replicated { acked_by: Option<ProxyId> },
    /// Not installed.
    Failed(String),
}

struct Metrics {
    rx_dropped: Registry,
    resets: Registry,
    records_held: Gauge,
    deleted: Registry,
    active: Gauge,
    peers_up: Gauge,
    ports_in_use: Gauge,
    sent: Counter,
    received: Counter,
    send_errors: Counter,
    install_errors: Counter,
    caught_up: Counter,
}

impl Metrics {
    fn new(r: &Registry) -> Metrics {
        Metrics {
            rx_dropped: r.clone(),
            resets: r.clone(),
            records_held: r.gauge(
                "ftsplice_presplice_records_held",
                "Pre-splice records held for peer proxies (their accepted, unspliced connections)",
                &[],
            ),
            deleted: r.clone(),
            active: r.gauge(
                "ftsplice_splices_active",
                "Splices in this node's table (and data plane)",
                &[],
            ),
            peers_up: r.gauge(
                "ftsplice_replication_peers_up",
                "Proxy peers considered up",
                &[],
            ),
            ports_in_use: r.gauge(
                "ftsplice_ssa_ports_in_use",
                "SSA ports of this proxy's partition held by splices",
                &[],
            ),
            sent: r.counter(
                "ftsplice_replication_sent_total",
                "Replication datagrams sent",
                &[],
            ),
            received: r.counter(
                "ftsplice_replication_received_total",
                "Authenticated replication datagrams received",
                &[],
            ),
            send_errors: r.counter(
                "ftsplice_replication_send_errors_total",
                "Replication datagrams the kernel refused",
                &[],
            ),
            install_errors: r.counter(
                "ftsplice_dataplane_errors_total",
                "Data-plane map operations that failed",
                &[],
            ),
            caught_up: r.counter(
                "ftsplice_replication_caught_up_total",
                "Changes pushed again to a peer back from down (made while it was down)",
                &[],
            ),
        }
    }

    fn dropped(&self, reason: &str) {
        self.rx_dropped
            .counter(
                "ftsplice_replication_dropped_total",
                "Replication datagrams dropped, by reason",
                &[("reason", reason)],
            )
            .inc();
    }

    fn deleted(&self, reason: &str) {
        self.deleted
            .counter(
                "ftsplice_splices_deleted_total",
                "Splices deleted by this node's teardown, by reason",
                &[("reason", reason)],
            )
            .inc();
    }
}

fn decode_reason(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated { .. } => "truncated",
        DecodeError::BadMagic => "bad_magic",
        DecodeError::UnsupportedVersion(_) => "version",
        DecodeError::UnknownType(_) => "unknown_type",
        DecodeError::MissingTag | DecodeError::UnexpectedTag | DecodeError::BadTag => "auth",
        _ => "malformed",
    }
}

/// The synchronous control core of one node.
pub struct Control {
    cfg: ControlConfig,
    peers: BTreeMap<ProxyId, Peer>,
    replicator: Replicator,
    teardown: Teardown,
    codec: Codec,
    beats: Option<HeartbeatSender>,
    detector: FailureDetector,
    sink: SharedSink,
    ports: Option<Arc<Mutex<PortAllocator>>>,
    /// Splices in the data plane, with what it had seen of each at the
    /// last poll.
    tracked: HashMap<SpliceId, (Splice, Seen)>,
    next_seen_poll: Instant,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    created: VecDeque<(SpliceId, Option<ProxyId>)>,
    /// Agent mode: when each table entry was installed or last carried a
    /// packet (idle aging).
    agent_active: HashMap<SpliceId, Instant>,
    /// This proxy and the peers up, with their workload factors: the
    /// members of the lb's slot table as this proxy sees them.
    members: ProxySet,
    /// `members` changed since the client-owner table was written.
    clients_stale: bool,
    /// When each slot of the client-owner table last changed owner.
    orphans: OrphanGuard,
    /// The next own slot to leave its grace (the table is rewritten then).
    next_settle: Option<Instant>,
    /// Pre-splice records: this proxy's announced to its peers, theirs
    /// held to reset their idle clients if they die.
    records: PreRecords,
    metrics: Metrics,
}

impl Control {
    pub fn new(
        now: Instant,
        cfg: ControlConfig,
        sink: SharedSink,
        ports: Option<Arc<Mutex<PortAllocator>>>,
        registry: &Registry,
    ) -> Control {
        let me = cfg.me;
        let workload = cfg.clients.map_or(100, |c| c.workload);
        let mut members = ProxySet::new();
        members.upsert(me, workload);
        let detector = DetectorConfig {
            interval: cfg.peer_heartbeat,
            missed: 3,
            hold: 0,
        };
        Control {
            orphans: OrphanGuard::new(now, me, OrphanConfig::for_detector(detector)),
            next_settle: None,
            records: PreRecords::new(me, PreRecordConfig::default()),
            peers: cfg.peers.iter().map(|p| (p.id, *p)).collect(),
            replicator: Replicator::new(ReplicatorConfig::new(me)),
            teardown: Teardown::new(now, me, cfg.teardown),
            codec: Codec::new(cfg.psk),
            // Agents only listen.
            beats: cfg
                .agent_backend
                .is_none()
                .then(|| HeartbeatSender::new(now, me, cfg.epoch, cfg.peer_heartbeat, workload)),
            detector: FailureDetector::new(detector),
            sink,
            ports,
            tracked: HashMap::new(),
            next_seen_poll: now + cfg.seen_poll,
            out: VecDeque::new(),
            created: VecDeque::new(),
            agent_active: HashMap::new(),
            members,
            clients_stale: cfg.clients.is_some(),
            metrics: Metrics::new(registry),
            cfg,
        }
    }

    fn is_agent(&self) -> bool {
        self.cfg.agent_backend.is_some()
    }

    /// Hands this node's peer heartbeats to the caller, who then sends
    /// them (to [`Self::heartbeat_targets`]) from its own thread; the
    /// control no longer queues them. `None` for agents (they only listen)
    /// or when already taken.
    pub fn take_heartbeats(&mut self) -> Option<HeartbeatSender> {
        self.beats.take()
    }

    /// Where peer heartbeats go: every configured peer, agents included.
    pub fn heartbeat_targets(&self) -> Vec<SocketAddr> {
        self.peers.values().map(|p| p.addr).collect()
    }

    /// The peer heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        self.cfg.peer_heartbeat
    }

    /// The socket reader has handed over every datagram that arrived
    /// before `at` (datagrams come with their arrival time): peers are
    /// declared down only for silence up to such a watermark from now on.
    pub fn handle_listened(&mut self, at: Instant) {
        self.detector.handle_listened(at);
    }

    /// The replicated table.
    pub fn table(&self) -> &ftsplice_proto::splice::table::SpliceTable {
        self.replicator.table()
    }

    fn peer_up(&mut self, now: Instant, p: ProxyId) {
        let before = self.replicator.stats().caught_up;
        self.replicator.handle_peer_up(now, p);
        let pushed = self.replicator.stats().caught_up - before;
        self.metrics.caught_up.add(pushed);
        tracing::info!(
            peer = p.0,
            pushed,
            "replication peer up: pulling its table, pushing the changes it missed"
        );
        if !self.is_agent() {
            self.teardown.proxy_up(now, p);
        }
        self.records.handle_owner_up(p);
    }

    fn peer_down(&mut self, now: Instant, p: ProxyId) {
        if self.replicator.peers().any(|q| q == p) {
            tracing::warn!(peer = p.0, "replication peer down: heartbeats missed");
            self.replicator.handle_peer_down(p);
            if !self.is_agent() {
                self.teardown.proxy_down(now, p);
            }
            self.records.handle_owner_down(now, p);
        }
    }

    /// Installs a splice this proxy built and replicates it; the outcome
    /// comes later from [`Self::poll_created`].
    pub fn create(&mut self, now: Instant, splice: Splice) -> Result<(), String> {
        if let Err(e) = crate::control::lock(&self.sink).install(&splice) {
            self.metrics.install_errors.inc();
            return Err(format!("data plane refused the splice: {e}"));
        }
        if let Err(e) = self.replicator.create(now, splice.clone()) {
            let _ = lock(&self.sink).remove(splice.id);
            return Err(format!("splice table: {e}"));
        }
        self.teardown.track(now, splice.id);
        self.tracked
            .insert(splice.id, (splice.clone(), Seen::default()));
        self.send_to_agents(&Message::Create(splice));
        Ok(())
    }

    /// This proxy accepted a client connection: announce its record to the
    /// peer proxies (`proto::orphan_records`).
    pub fn accepted(&mut self, rec: PreRecord) {
        self.records.record(rec);
        self.flush_records();
    }

    /// This proxy's connection ended or is relayed without a splice.
    pub fn ended(&mut self, key: PreKey) {
        self.records.forget(key);
        self.flush_records();
    }

    fn flush_records(&mut self) {
        let proxies: Vec<ProxyId> = self
            .peers
            .values()
            .filter(|p| !p.agent)
            .map(|p| p.id)
            .collect();
        while let Some(msg) = self.records.poll_transmit() {
            for &p in &proxies {
                self.send(p, &msg);
            }
        }
    }

    /// The next reset of a dead peer's idle client to send (from a raw
    /// socket with the orphan mark: `crate::resets`).
    pub fn poll_reset(&mut self) -> Option<Reset> {
        self.records.poll_reset()
    }

    /// Pre-splice records held for `peer`.
    pub fn records_held(&self, peer: ProxyId) -> usize {
        self.records.held(peer)
    }

    /// Creations whose replication ended: (id, first peer that acked).
    pub fn poll_created(&mut self) -> Option<(SpliceId, Option<ProxyId>)> {
        self.created.pop_front()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    fn send(&mut self, to: ProxyId, msg: &Message) {
        let Some(peer) = self.peers.get(&to).copied() else {
            return;
        };
        match self.codec.encode(self.cfg.me, msg) {
            Ok(bytes) => self.out.push_back((peer.addr, bytes)),
            Err(e) => tracing::error!(error = %e, "replication message not encodable"),
        }
    }

    fn send_to_agents(&mut self, msg: &Message) {
        let agents: Vec<ProxyId> = self
            .peers
            .values()
            .filter(|p| p.agent)
            .map(|p| p.id)
            .collect();
        for a in agents {
            self.send(a, msg);
        }
    }

    /// One datagram from the replication socket: a peer's heartbeat or a
    /// replication message.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) {
        if data.starts_with(b"FTHB") {
            match Heartbeat::decode(data) {
                Ok(hb) if self.peers.get(&hb.id).is_some_and(|p| !p.agent) => {
                    self.detector.handle_heartbeat(now, &hb)
                }
                Ok(_) => self.metrics.dropped("unknown_peer"),
                Err(_) => self.metrics.dropped("bad_heartbeat"),
            }
            return;
        }
        let env = match self.codec.decode(data) {
            Ok(env) => env,
            Err(e) => {
                self.metrics.dropped(decode_reason(&e));
                tracing::debug!(error = %e, "replication datagram dropped");
                return;
            }
        };
        let Some(peer) = self.peers.get(&env.sender).copied() else {
            self.metrics.dropped("unknown_peer");
            tracing::debug!(
                sender = env.sender.0,
                "replication datagram from an unconfigured id"
            );
            return;
        };
        self.metrics.received.inc();
        if peer.agent {
            // Agents ask for snapshots, ack what we send them (ignored) and
            // report the backend half they relay.
            match env.msg {
                Message::SnapshotRequest { from } => self.serve_snapshot(peer.id, from),
                Message::Fin { id, dir } => self.teardown.handle_fin(now, id, dir),
                Message::Activity { ids } => self.teardown.handle_activity(now, &ids),
                _ => {}
            }
            return;
        }
        match env.msg {
            Message::Fin { id, dir } if !self.is_agent() => self.teardown.handle_fin(now, id, dir),
            Message::Activity { ids } if !self.is_agent() => {
                self.teardown.handle_activity(now, &ids)
            }
            Message::PreSplice { add, remove } => {
                if !self.is_agent() {
                    self.records.handle_message(now, peer.id, &add, &remove);
                }
            }
            msg => self.replicator.handle_message(now, peer.id, msg),
        }
    }

    fn serve_snapshot(&mut self, to: ProxyId, from: SpliceId) {
        let chunk = self.replicator.config().snapshot_chunk.max(1);
        let mut splices: Vec<Splice> = self
            .replicator
            .table()
            .range_from(from)
            .take(chunk + 1)
            .cloned()
            .collect();
        let last = splices.len() <= chunk;
        if !last {
            splices.pop();
        }
        self.send(to, &Message::Snapshot { splices, last });
    }

    /// The next deadline of any timer.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_seen_poll;
        if let Some(b) = &self.beats {
            t = t.min(b.poll_timeout());
        }
        if let Some(d) = self.detector.poll_timeout() {
            t = t.min(d);
        }
        if let Some(r) = self.replicator.poll_timeout() {
            t = t.min(r);
        }
        if !self.is_agent() {
            t = t.min(self.teardown.poll_timeout());
        }
        if let Some(s) = self.next_settle {
            t = t.min(s);
        }
        if let Some(r) = self.records.poll_timeout() {
            t = t.min(r);
        }
        t
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.detector.handle_timeout(now);
        if let Some(b) = self.beats.as_mut() {
            b.handle_timeout(now);
            if let Some(hb) = b.poll_transmit() {
                let bytes = hb.encode();
                for p in self.peers.values() {
                    self.out.push_back((p.addr, bytes.to_vec()));
                }
            }
        }
        self.replicator.handle_timeout(now);
        if now >= self.next_seen_poll {
            self.next_seen_poll = now + self.cfg.seen_poll;
            self.poll_seen(now);
            if self.is_agent() {
                self.age_agent_entries(now);
            }
        }
        if !self.is_agent() {
            self.teardown.handle_timeout(now);
        }
        if self.next_settle.is_some_and(|s| s <= now) {
            self.next_settle = None;
            self.clients_stale = true;
        }
        if self.records.poll_timeout().is_some_and(|t| t <= now) {
            let table = self.replicator.table();
            self.records.handle_timeout(now, &self.orphans, |k| {
                table.peek(k.client, k.vip).is_some()
            });
        }
    }

    /// Feeds what the data plane relayed since the last poll to teardown
    /// (an agent reports it to the proxies instead: it relays the
    /// backend's half, FINs included, which no proxy sees).
    fn poll_seen(&mut self, now: Instant) {
        let ids: Vec<SpliceId> = self.tracked.keys().copied().collect();
        let sink = lock(&self.sink);
        let fresh: Vec<(SpliceId, Seen)> = ids
            .into_iter()
            .filter_map(|id| sink.seen(id).map(|s| (id, s)))
            .collect();
        drop(sink);
        for (id, new) in fresh {
            let Some(entry) = self.tracked.get_mut(&id) else {
                continue;
            };
            let old = entry.1;
            if new == old {
                continue;
            }
            entry.1 = new;
            let c2s = Direction::ClientToServer;
            if self.is_agent() {
                self.agent_active.insert(id, now);
                self.report_to_proxies(id, old, new);
                continue;
            }
            if new.rst && !old.rst {
                self.teardown.handle_packet(now, id, c2s, false, true);
                continue;
            }
            if new.fin_c2s && !old.fin_c2s {
                self.teardown.handle_packet(now, id, c2s, true, false);
            }
            if new.fin_s2c && !old.fin_s2c {
                self.teardown
                    .handle_packet(now, id, Direction::ServerToClient, true, false);
            }
            if new.packets != old.packets {
                self.teardown.handle_packet(now, id, c2s, false, false);
            }
        }
    }

    /// An agent's report of what it relayed: FIN notices (a RST counts as
    /// FINs both ways: the proxies' linger then ends the splice) and
    /// activity, to every proxy that is up.
    fn report_to_proxies(&mut self, id: SpliceId, old: Seen, new: Seen) {
        let mut msgs = Vec::new();
        let rst = new.rst && !old.rst;
        if rst || (new.fin_c2s && !old.fin_c2s) {
            msgs.push(Message::Fin {
                id,
                dir: Direction::ClientToServer,
            });
        }
        if rst || (new.fin_s2c && !old.fin_s2c) {
            msgs.push(Message::Fin {
                id,
                dir: Direction::ServerToClient,
            });
        }
        if new.packets != old.packets {
            msgs.push(Message::Activity { ids: vec![id] });
        }
        let up: Vec<ProxyId> = self.replicator.peers().collect();
        for m in &msgs {
            for &p in &up {
                self.send(p, m);
            }
        }
    }

    /// Agent mode: drops the entries idle for the teardown's `idle` time
    /// from the table and the data plane, locally (nothing is replicated:
    /// the proxies own the splice's life).
    fn age_agent_entries(&mut self, now: Instant) {
        let idle = self.cfg.teardown.idle;
        let old: Vec<SpliceId> = self
            .agent_active
            .iter()
            .filter(|(_, &t)| now.saturating_since(t) >= idle)
            .map(|(&id, _)| id)
            .collect();
        for id in old {
            self.agent_active.remove(&id);
            let Some(s) = self.replicator.table_mut().remove_any(id) else {
                continue;
            };
            if self.tracked.contains_key(&id) {
                tracing::info!(
                    splice = id.0,
                    client = %s.client,
                    idle_ms = idle.as_millis() as u64,
                    "splice idle: dropped by the agent (its delete may have been lost)"
                );
                self.metrics.deleted("idle");
                self.uninstall(&s);
            }
        }
    }

    /// A peer proxy joined (with its weight) or left the slot table.
    fn member(&mut self, id: ProxyId, weight: Option<u32>) {
        if id == self.cfg.me || self.cfg.clients.is_none() {
            return;
        }
        let changed = match weight {
            Some(w) => self.members.upsert(id, w),
            None => self.members.remove(id),
        };
        self.clients_stale |= changed;
    }

    /// Writes the client-owner table for the current members, own slots
    /// out of their grace as settled.
    fn route_clients(&mut self, now: Instant) {
        let Some(c) = self.cfg.clients else {
            return;
        };
        self.clients_stale = false;
        let table = SlotTable::build(&self.members);
        self.orphans.handle_table(now, &table);
        let peers = &self.peers;
        let me = self.cfg.me;
        let mut owners = ftsplice_bpf::lb::owner_addrs(&table, me, |id| {
            match peers.get(&id).map(|p| p.addr.ip()) {
                Some(std::net::IpAddr::V4(a)) => Some(a),
                _ => None,
            }
        });
        let orphans = &self.orphans;
        ftsplice_bpf::lb::mark_settled(&mut owners, &table, me, |k| orphans.settled_at(k) <= now);
        self.next_settle = table
            .slots()
            .iter()
            .enumerate()
            .filter(|&(_, &id)| id == me)
            .map(|(k, _)| orphans.settled_at(k))
            .filter(|&at| at > now)
            .min();
        let members: Vec<String> = self
            .members
            .iter()
            .map(|(id, w)| format!("{}:{w}", id.0))
            .collect();
        match lock(&self.sink).route_clients(c.vip, &owners) {
            Ok(()) => tracing::info!(members = %members.join(","), "client-owner table updated"),
            Err(e) => {
                self.metrics.install_errors.inc();
                tracing::error!(error = %e, "client-owner table not written");
            }
        }
    }

    /// Removes a splice from the data plane and gives its port back.
    fn uninstall(&mut self, s: &Splice) {
        self.tracked.remove(&s.id);
        self.teardown.untrack(s.id);
        if let Err(e) = lock(&self.sink).remove(s.id) {
            self.metrics.install_errors.inc();
            tracing::error!(splice = s.id.0, error = %e, "data plane removal failed");
        }
        if self.cfg.ssa == Some(*s.ssa.ip()) {
            if let Some(ports) = &self.ports {
                ports
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .release(s.ssa.port());
            }
        }
    }

    /// Applies what the state machines decided: datagrams, data-plane
    /// changes, deletions. Call after every input.
    pub fn process(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            // Events first: a replica is in the data plane before its ack
            // leaves.
            while let Some(ev) = self.replicator.poll_event() {
                progress = true;
                self.on_replicator_event(now, ev);
            }
            while let Some((to, msg)) = self.replicator.poll_transmit() {
                progress = true;
                self.send(to, &msg);
            }
            while let Some(a) = self.teardown.poll_action() {
                progress = true;
                self.on_teardown(now, a);
            }
            while let Some(ev) = self.detector.poll_event() {
                progress = true;
                match ev {
                    DetectorEvent::ProxyUp { id, weight } => {
                        self.member(id, Some(weight));
                        self.peer_up(now, id)
                    }
                    DetectorEvent::ProxyDown { id } => {
                        self.member(id, None);
                        self.peer_down(now, id)
                    }
                    DetectorEvent::WeightChanged { id, weight } => self.member(id, Some(weight)),
                }
            }
            if !progress {
                break;
            }
        }
        if self.clients_stale {
            self.route_clients(now);
        }
        self.metrics
            .active
            .set(self.replicator.table().len() as i64);
        self.metrics
            .peers_up
            .set(self.replicator.peers().count() as i64);
        let held: usize = self.peers.keys().map(|&p| self.records.held(p)).sum();
        self.metrics.records_held.set(held as i64);
        if let Some(p) = &self.ports {
            let n = p.lock().unwrap_or_else(|p| p.into_inner()).in_use();
            self.metrics.ports_in_use.set(n as i64);
        }
    }

    fn on_replicator_event(&mut self, now: Instant, ev: ReplicatorEvent) {
        match ev {
            ReplicatorEvent::Replicated { id, acked_by, .. } => {
                self.created.push_back((id, acked_by));
            }
            ReplicatorEvent::Installed { id } => {
                let Some(s) = self.replicator.table().get(id).cloned() else {
                    return;
                };
                if self.is_agent() {
                    // Every entry ages, installed or not (other backends').
                    self.agent_active.insert(id, now);
                }
                if self.cfg.agent_backend.is_some_and(|b| b != s.backend) {
                    return;
                }
                match lock(&self.sink).install(&s) {
                    Ok(()) => {
                        tracing::debug!(splice = id.0, client = %s.client, "replica installed")
                    }
                    Err(e) => {
                        self.metrics.install_errors.inc();
                        tracing::error!(splice = id.0, error = %e, "replica not installed");
                    }
                }
                if !self.is_agent() {
                    self.teardown.track(now, id);
                }
                self.records.handle_spliced(PreKey {
                    client: s.client,
                    vip: s.vip,
                });
                let seen = self.tracked.get(&id).map(|t| t.1).unwrap_or_default();
                self.tracked.insert(id, (s, seen));
            }
            ReplicatorEvent::Removed { id } => {
                self.agent_active.remove(&id);
                if let Some((s, _)) = self.tracked.get(&id).cloned() {
                    tracing::info!(splice = id.0, client = %s.client, "splice deleted by a peer");
                    self.uninstall(&s);
                }
            }
            ReplicatorEvent::Synced { peer } => {
                tracing::info!(
                    peer = peer.0,
                    splices = self.replicator.table().len(),
                    "snapshot pulled"
                );
            }
            ReplicatorEvent::GaveUp { id, peer } => {
                tracing::warn!(
                    peer = peer.0,
                    splice = id.0,
                    "peer heartbeats but did not answer within the retransmission budget"
                );
            }
        }
    }

    fn on_teardown(&mut self, now: Instant, a: TeardownAction) {
        match a {
            TeardownAction::Delete { id, reason } => {
                let why = match reason {
                    CloseReason::Reset => "reset",
                    CloseReason::Closed => "closed",
                    CloseReason::Idle => "idle",
                };
                if let Some(old) = self.replicator.delete(now, id) {
                    tracing::info!(splice = id.0, client = %old.client, reason = why, "splice deleted");
                    self.metrics.deleted(why);
                    self.uninstall(&old);
                    let version = old.version.wrapping_add(1);
                    self.send_to_agents(&Message::Delete { id, version });
                }
            }
            TeardownAction::SendFin { id, dir } => {
                let live: Vec<ProxyId> = self.replicator.peers().collect();
                for p in live {
                    self.send(p, &Message::Fin { id, dir });
                }
            }
            TeardownAction::SendActivity { to, ids } => {
                self.send(to, &Message::Activity { ids });
            }
        }
    }

    /// Counts a datagram the kernel refused.
    /// Counts a reset of a dead peer's idle client as sent or failed.
    pub fn reset_sent(&self, r: &Reset, sent: Option<std::io::Result<()>>) {
        let result = match &sent {
            Some(Ok(())) => {
                tracing::info!(client = %r.to, seq = r.seq, "reset a dead peer's idle pre-splice client");
                "sent"
            }
            Some(Err(e)) => {
                tracing::warn!(client = %r.to, error = %e, "orphan reset not sent");
                "failed"
            }
            None => "no_socket",
        };
        self.metrics
            .resets
            .counter(
                "ftsplice_orphan_record_resets_total",
                "Idle clients of dead peers reset from their pre-splice records, by result",
                &[("result", result)],
            )
            .inc();
    }

    pub fn send_failed(&self) {
        self.metrics.send_errors.inc();
    }

    /// Counts a datagram sent.
    pub fn sent(&self) {
        self.metrics.sent.inc();
    }
}

/// Requests from the accept pipeline.
pub enum Command {
    Create {
        splice: Splice,
        reply: oneshot::Sender<CreateOutcome>,
    },
    /// A client connection accepted (its pre-splice record).
    Accepted(PreRecord),
    /// A connection that ended or is relayed without a splice.
    Ended(PreKey),
}

/// The replication socket of a daemon: read on a thread of its own (each
/// datagram stamped on arrival, watermarks when found empty), peer beats
/// sent from another, replication datagrams sent by the control loop
/// without blocking. The threads stop when this is dropped.
pub struct ReplicationIo {
    sock: std::net::UdpSocket,
    rx: mpsc::UnboundedReceiver<Received>,
    /// The reader and the beat sender (agents send no beats).
    threads: (BeatThread, Option<BeatThread>),
}

/// Largest replication datagram read.
const MAX_DATAGRAM: usize = 65_536;

impl ReplicationIo {
    /// Starts the reader on `sock` and, unless `ctl` is an agent, the
    /// beat thread with `ctl`'s heartbeats.
    pub fn start(sock: std::net::UdpSocket, ctl: &mut Control) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let tick = ctl.heartbeat_interval() / 2;
        let reader = crate::heartbeat::spawn_receiver_sized(
            sock.try_clone()?,
            tick,
            MAX_DATAGRAM,
            "repl-recv",
            tx,
        )?;
        let beats = match ctl.take_heartbeats() {
            // Beats are not counted with the lb ones (own registry).
            Some(hb) => Some(crate::heartbeat::spawn_sender(
                sock.try_clone()?,
                ctl.heartbeat_targets(),
                hb,
                crate::metrics::Registry::new(),
            )?),
            None => None,
        };
        Ok(ReplicationIo {
            sock,
            rx,
            threads: (reader, beats),
        })
    }
}

/// Runs `ctl` until `cmds` closes: commands, datagrams from `io` (if
/// replication is configured) and timers.
pub async fn run(mut ctl: Control, io: Option<ReplicationIo>, mut cmds: mpsc::Receiver<Command>) {
    let mut waiting: HashMap<SpliceId, oneshot::Sender<CreateOutcome>> = HashMap::new();
    let mut resets: Option<crate::resets::ResetSender> = None;
    let (sock, mut rx, _threads) = match io {
        Some(io) => (Some(io.sock), Some(io.rx), Some(io.threads)),
        None => (None, None, None),
    };
    loop {
        let now = crate::clock::now();
        ctl.process(now);
        while let Some((id, acked_by)) = ctl.poll_created() {
            if let Some(tx) = waiting.remove(&id) {
                let _ = tx.send(CreateOutcome::Replicated { acked_by });
            }
        }
        while let Some(r) = ctl.poll_reset() {
            if resets.is_none() {
                match crate::resets::ResetSender::open() {
                    Ok(s) => resets = Some(s),
                    Err(e) => tracing::error!(error = %e, "no raw socket for orphan resets"),
                }
            }
            let sent = resets.as_ref().map(|s| s.send(&r));
            ctl.reset_sent(&r, sent);
        }
        while let Some((to, bytes)) = ctl.poll_transmit() {
            let Some(s) = &sock else { continue };
            match ftsplice_linux::udp::send_to_nowait(s, &bytes, to) {
                Ok(_) => ctl.sent(),
                Err(e) => {
                    ctl.send_failed();
                    tracing::debug!(%to, error = %e, "replication datagram not sent");
                }
            }
        }
        let deadline = ctl.poll_timeout();
        let recv = async {
            match rx.as_mut() {
                Some(r) => r.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(Command::Accepted(rec)) => ctl.accepted(rec),
                Some(Command::Ended(key)) => ctl.ended(key),
                Some(Command::Create { splice, reply }) => {
                    let id = splice.id;
                    match ctl.create(crate::clock::now(), splice) {
                        Ok(()) => {
                            waiting.insert(id, reply);
                        }
                        Err(e) => {
                            let _ = reply.send(CreateOutcome::Failed(e));
                        }
                    }
                }
            },
            m = recv => match m {
                Some(m) => {
                    handle_received(&mut ctl, m);
                    // Everything queued meanwhile, in arrival order.
                    while let Some(m) = rx.as_mut().and_then(|r| r.try_recv().ok()) {
                        handle_received(&mut ctl, m);
                    }
                }
                None => {
                    tracing::error!("the replication reader thread stopped");
                    rx = None;
                }
            },
            _ = tokio::time::sleep(crate::clock::until(deadline)) => {
                ctl.handle_timeout(crate::clock::now());
            }
        }
    }
}

fn handle_received(ctl: &mut Control, m: Received) {
    match m {
        Received::Datagram { at, data, .. } => ctl.handle_datagram(at, &data),
        Received::Listened(at) => ctl.handle_listened(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_bpf::bpf_abi::OWNER_SETTLED;
    use ftsplice_proto::splice::WindowScales;
    use std::collections::BTreeMap;

    const KEY: Key = [7; 32];
    const SSA: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 9);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 10);

    /// An in-memory data plane whose `seen` the test sets.
    #[derive(Default)]
    struct MemState {
        installed: BTreeMap<SpliceId, Splice>,
        seen: HashMap<SpliceId, Seen>,
        clients: Option<(Ipv4Addr, Vec<Ipv4Addr>)>,
    }

    #[derive(Clone, Default)]
    struct MemSink(Arc<Mutex<MemState>>);

    impl MemSink {
        fn ids(&self) -> Vec<SpliceId> {
            self.0.lock().unwrap().installed.keys().copied().collect()
        }
        fn set_seen(&self, id: SpliceId, s: Seen) {
            self.0.lock().unwrap().seen.insert(id, s);
        }
    }

    impl SpliceSink for MemSink {
        fn route_clients(
            &mut self,
            vip: Ipv4Addr,
            owners: &[Ipv4Addr],
        ) -> Result<(), crate::sink::SinkError> {
            self.0.lock().unwrap().clients = Some((vip, owners.to_vec()));
            Ok(())
        }
        fn install(&mut self, s: &Splice) -> Result<(), crate::sink::SinkError> {
            self.0.lock().unwrap().installed.insert(s.id, s.clone());
            Ok(())
        }
        fn hold(&mut self, s: &Splice) -> Result<(), crate::sink::SinkError> {
            self.install(s)
        }
        fn remove(&mut self, id: SpliceId) -> Result<(), crate::sink::SinkError> {
            let mut st = self.0.lock().unwrap();
            st.installed.remove(&id);
            st.seen.remove(&id);
            Ok(())
        }
        fn ts_seen(&self, _: SocketAddrV4, _: SocketAddrV4) -> Option<u32> {
            None
        }
        fn forget_ts(&mut self, _: SocketAddrV4, _: SocketAddrV4) {}
        fn seen(&self, id: SpliceId) -> Option<Seen> {
            self.0.lock().unwrap().seen.get(&id).copied()
        }
        fn counters(&self) -> Vec<(&'static str, u64)> {
            Vec::new()
        }
        fn kind(&self) -> &'static str {
            "memory"
        }
    }

    fn addr(id: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 8, id as u8), 7100))
    }

    struct Node {
        ctl: Control,
        sink: MemSink,
        ports: Arc<Mutex<PortAllocator>>,
        addr: SocketAddr,
        metrics: Registry,
    }

    fn node(me: u16, peers: &[(u16, bool)], key: Key, agent_backend: Option<SocketAddrV4>) -> Node {
        let cfg = ControlConfig {
            me: ProxyId(me),
            peers: peers
                .iter()
                .map(|&(id, agent)| Peer {
                    id: ProxyId(id),
                    addr: addr(id),
                    agent,
                })
                .collect(),
            psk: Some(key),
            teardown: TeardownConfig {
                linger: Duration::from_millis(100),
                idle: Duration::from_secs(5),
                tick: Duration::from_millis(10),
                ..TeardownConfig::default()
            },
            seen_poll: Duration::from_millis(10),
            peer_heartbeat: Duration::from_millis(10),
            epoch: u32::from(me),
            agent_backend,
            ssa: Some(SSA),
            clients: agent_backend.is_none().then_some(ClientRouting {
                vip: VIP,
                workload: 100 * u32::from(me),
            }),
        };
        let sink = MemSink::default();
        let shared: SharedSink = Arc::new(Mutex::new(Box::new(sink.clone())));
        let ports = Arc::new(Mutex::new(PortAllocator::new(
            40000 + me * 100..=40000 + me * 100 + 99,
        )));
        let metrics = Registry::new();
        let ctl = Control::new(Instant::ZERO, cfg, shared, Some(ports.clone()), &metrics);
        Node {
            ctl,
            sink,
            ports,
            addr: addr(me),
            metrics,
        }
    }

    /// Runs every node's timers at `now` and delivers datagrams until the
    /// network is quiet.
    fn step(now: Instant, nodes: &mut [&mut Node]) {
        step_lossy(now, nodes, &|_: &[u8]| false)
    }

    /// [`step`], losing the datagrams `lost` picks.
    fn step_lossy(now: Instant, nodes: &mut [&mut Node], lost: &dyn Fn(&[u8]) -> bool) {
        for n in nodes.iter_mut() {
            n.ctl.handle_timeout(now);
        }
        for _ in 0..100 {
            let mut moved = false;
            let mut inflight = Vec::new();
            for n in nodes.iter_mut() {
                n.ctl.process(now);
                while let Some(d) = n.ctl.poll_transmit() {
                    inflight.push(d);
                }
            }
            for (to, bytes) in inflight {
                if lost(&bytes) {
                    continue;
                }
                if let Some(n) = nodes.iter_mut().find(|n| n.addr == to) {
                    moved = true;
                    n.ctl.handle_datagram(now, &bytes);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("replication never went quiet");
    }

    fn run(from_ms: u64, to_ms: u64, nodes: &mut [&mut Node]) -> Instant {
        let mut t = from_ms;
        while t <= to_ms {
            step(Instant::from_millis(t), nodes);
            t += 5;
        }
        Instant::from_millis(to_ms)
    }

    fn splice(creator: u16, n: u64, port: u16, backend: u8) -> Splice {
        let sa = |a: [u8; 4], p| SocketAddrV4::new(Ipv4Addr::from(a), p);
        Splice {
            id: SpliceId::compose(ProxyId(creator), n),
            version: 1,
            client: sa([198, 18, 1, n as u8], 5000),
            vip: sa([198, 18, 0, 10], 80),
            ssa: SocketAddrV4::new(SSA, port),
            backend: sa([198, 18, 3, backend], 80),
            seq_delta: 7,
            ack_delta: 9,
            ts: None,
            wscale: WindowScales::default(),
            sack_ok: true,
        }
    }

    fn metric(r: &Registry, series: &str) -> i64 {
        r.render()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }

    #[test]
    fn peers_come_up_by_heartbeats_and_a_create_is_acked_and_installed() {
        let mut a = node(1, &[(2, false)], KEY, None);
        let mut b = node(2, &[(1, false)], KEY, None);
        let now = run(0, 50, &mut [&mut a, &mut b]);
        assert_eq!(metric(&a.metrics, "ftsplice_replication_peers_up "), 1);
        let port = a.ports.lock().unwrap().allocate().unwrap();
        let s = splice(1, 1, port, 2);
        a.ctl.create(now, s.clone()).unwrap();
        step(now, &mut [&mut a, &mut b]);
        assert_eq!(a.ctl.poll_created(), Some((s.id, Some(ProxyId(2)))));
        assert_eq!(a.sink.ids(), [s.id]);
        assert_eq!(b.sink.ids(), [s.id], "the replica is in B's data plane");
    }

    #[test]
    fn a_splice_made_while_a_peer_was_falsely_down_reaches_it_when_it_is_back() {
        let mut a = node(1, &[(2, false)], KEY, None);
        let mut b = node(2, &[(1, false)], KEY, None);
        let mut now = run(0, 50, &mut [&mut a, &mut b]);
        // B's beats stop reaching A (B still hears A): A declares B down,
        // B never sees A go.
        let from_b = |d: &[u8]| Heartbeat::decode(d).is_ok_and(|h| h.id == ProxyId(2));
        for t in (55..=120).step_by(5) {
            now = Instant::from_millis(t);
            step_lossy(now, &mut [&mut a, &mut b], &from_b);
        }
        assert_eq!(metric(&a.metrics, "ftsplice_replication_peers_up "), 0);
        assert_eq!(metric(&b.metrics, "ftsplice_replication_peers_up "), 1);
        let port = a.ports.lock().unwrap().allocate().unwrap();
        let s = splice(1, 1, port, 2);
        a.ctl.create(now, s.clone()).unwrap();
        step_lossy(now, &mut [&mut a, &mut b], &from_b);
        assert_eq!(a.ctl.poll_created(), Some((s.id, None)), "no peer to ack");
        assert_eq!(b.sink.ids(), [], "not sent to a peer believed down");
        // B's beats get through again: A pushes what B missed.
        run(125, 200, &mut [&mut a, &mut b]);
        assert_eq!(metric(&a.metrics, "ftsplice_replication_peers_up "), 1);
        assert_eq!(b.sink.ids(), [s.id], "B holds the replica");
        assert_eq!(
            metric(&a.metrics, "ftsplice_replication_caught_up_total "),
            1
        );
        assert_eq!(
            a.ctl.poll_created(),
            None,
            "its creation is not reported again"
        );
    }

    #[test]
    fn client_owner_tables_are_the_lbs_weighted_table_on_every_proxy() {
        let mut a = node(1, &[(2, false), (3, true)], KEY, None);
        let mut b = node(2, &[(1, false)], KEY, None);
        // Alone: every slot is its own (and in its grace).
        a.ctl.process(Instant::ZERO);
        let (vip, owners) = a.sink.0.lock().unwrap().clients.clone().unwrap();
        assert_eq!(vip, VIP);
        assert!(owners.iter().all(|o| o.is_unspecified()));
        let grace = OrphanConfig::for_detector(a.ctl.detector.config()).grace;
        let now = run(0, 50, &mut [&mut a, &mut b]);
        // Both up, weights 100 and 200 (from the peer heartbeats): each
        // proxy holds the lb's table, with its own slots as 0.0.0.0.
        let mut set = ProxySet::new();
        set.upsert(ProxyId(1), 100);
        set.upsert(ProxyId(2), 200);
        let table = SlotTable::build(&set);
        let ip = |id: u16| match addr(id).ip() {
            std::net::IpAddr::V4(a) => a,
            std::net::IpAddr::V6(_) => unreachable!(),
        };
        for (n, me, other) in [(&a, 1u16, 2u16), (&b, 2, 1)] {
            let (_, owners) = n.sink.0.lock().unwrap().clients.clone().unwrap();
            assert_eq!(owners.len(), ftsplice_proto::lb::SLOTS);
            for (k, o) in owners.iter().enumerate() {
                let want = if table.get(k) == Some(ProxyId(me)) {
                    Ipv4Addr::UNSPECIFIED
                } else {
                    ip(other)
                };
                assert_eq!(*o, want, "proxy {me} slot {k}");
            }
        }
        assert!(now < Instant::ZERO + grace, "{now:?}: still in the grace");
        // B goes silent: A takes every slot back.
        let mut later = now;
        for _ in 0..10 {
            later += Duration::from_millis(10);
            a.ctl.handle_timeout(later);
            a.ctl.process(later);
        }
        let (_, owners) = a.sink.0.lock().unwrap().clients.clone().unwrap();
        assert!(owners
            .iter()
            .all(|o| *o == Ipv4Addr::UNSPECIFIED || *o == OWNER_SETTLED));
        // A's slots settle one grace after their last change: the ones it
        // always had first, B's one grace after B was declared down.
        let settled = |o: &[Ipv4Addr]| o.iter().filter(|a| **a == OWNER_SETTLED).count();
        let down_at = later;
        let deadline = down_at + grace + Duration::from_millis(10);
        let mut t = later;
        let mut counts = Vec::new();
        while t < deadline {
            t = a
                .ctl
                .poll_timeout()
                .min(deadline)
                .max(t + Duration::from_millis(1));
            a.ctl.handle_timeout(t);
            a.ctl.process(t);
            let (_, o) = a.sink.0.lock().unwrap().clients.clone().unwrap();
            counts.push(settled(&o));
        }
        let own_before = (0..ftsplice_proto::lb::SLOTS)
            .filter(|&k| table.get(k) == Some(ProxyId(1)))
            .count();
        assert!(counts.contains(&own_before), "{counts:?} {own_before}");
        assert_eq!(counts.last(), Some(&ftsplice_proto::lb::SLOTS));
    }

    #[test]
    fn fins_both_ways_delete_everywhere_after_the_linger_and_free_the_port() {
        let mut a = node(1, &[(2, false)], KEY, None);
        let mut b = node(2, &[(1, false)], KEY, None);
        let now = run(0, 50, &mut [&mut a, &mut b]);
        let port = a.ports.lock().unwrap().allocate().unwrap();
        let s = splice(1, 1, port, 2);
        a.ctl.create(now, s.clone()).unwrap();
        step(now, &mut [&mut a, &mut b]);
        // A relays the client's FIN, B the backend's.
        a.sink.set_seen(
            s.id,
            Seen {
                packets: 10,
                fin_c2s: true,
                ..Seen::default()
            },
        );
        b.sink.set_seen(
            s.id,
            Seen {
                packets: 4,
                fin_s2c: true,
                ..Seen::default()
            },
        );
        run(55, 120, &mut [&mut a, &mut b]);
        assert_eq!(a.sink.ids(), [s.id], "kept during the linger");
        run(125, 300, &mut [&mut a, &mut b]);
        assert!(a.sink.ids().is_empty() && b.sink.ids().is_empty());
        assert_eq!(a.ports.lock().unwrap().in_use(), 0, "port released");
        let deleted = metric(
            &a.metrics,
            "ftsplice_splices_deleted_total{reason=\"closed\"}",
        ) + metric(
            &b.metrics,
            "ftsplice_splices_deleted_total{reason=\"closed\"}",
        );
        assert_eq!(deleted, 1, "exactly one owner deletes");
    }

    #[test]
    fn a_reset_deletes_at_once_and_idle_splices_expire() {
        let mut a = node(1, &[], KEY, None);
        let now = run(0, 10, &mut [&mut a]);
        let (p1, p2) = {
            let mut p = a.ports.lock().unwrap();
            (p.allocate().unwrap(), p.allocate().unwrap())
        };
        let (s1, s2) = (splice(1, 1, p1, 2), splice(1, 2, p2, 2));
        a.ctl.create(now, s1.clone()).unwrap();
        a.ctl.create(now, s2.clone()).unwrap();
        step(now, &mut [&mut a]);
        assert_eq!(
            a.ctl.poll_created(),
            Some((s1.id, None)),
            "no peers: no ack"
        );
        a.sink.set_seen(
            s1.id,
            Seen {
                packets: 3,
                rst: true,
                ..Seen::default()
            },
        );
        run(15, 40, &mut [&mut a]);
        assert_eq!(a.sink.ids(), [s2.id]);
        assert_eq!(
            metric(
                &a.metrics,
                "ftsplice_splices_deleted_total{reason=\"reset\"}"
            ),
            1
        );
        // No packet for the idle time (5 s): gone.
        run(4000, 5100, &mut [&mut a]);
        assert!(a.sink.ids().is_empty());
        assert_eq!(
            metric(
                &a.metrics,
                "ftsplice_splices_deleted_total{reason=\"idle\"}"
            ),
            1
        );
        assert_eq!(a.ports.lock().unwrap().in_use(), 0);
    }

    #[test]
    fn a_wrong_key_is_refused_and_counted() {
        let mut a = node(1, &[(2, false)], KEY, None);
        let mut b = node(2, &[(1, false)], [8; 32], None);
        let now = run(0, 50, &mut [&mut a, &mut b]);
        let s = splice(1, 1, 40100, 2);
        a.ctl.create(now, s.clone()).unwrap();
        run(50, 3000, &mut [&mut a, &mut b]);
        assert!(b.sink.ids().is_empty());
        assert!(
            metric(
                &b.metrics,
                "ftsplice_replication_dropped_total{reason=\"auth\"}"
            ) > 0
        );
        // B never acks; A gives up after its retransmission budget.
        assert_eq!(a.ctl.poll_created(), Some((s.id, None)));
    }

    #[test]
    fn a_silent_peer_goes_down_and_its_restart_resyncs() {
        let mut a = node(1, &[(2, false)], KEY, None);
        let mut b = node(2, &[(1, false)], KEY, None);
        let now = run(0, 50, &mut [&mut a, &mut b]);
        let s = splice(1, 1, 40100, 2);
        a.ctl.create(now, s.clone()).unwrap();
        step(now, &mut [&mut a, &mut b]);
        // B dies: A alone for a while.
        run(55, 200, &mut [&mut a]);
        assert_eq!(metric(&a.metrics, "ftsplice_replication_peers_up "), 0);
        // B restarts empty (new epoch) and pulls A's table.
        let mut b2 = node(2, &[(1, false)], KEY, None);
        b2.ctl.cfg.epoch = 99;
        b2.ctl.beats = Some(HeartbeatSender::new(
            Instant::from_millis(200),
            ProxyId(2),
            99,
            Duration::from_millis(10),
            100,
        ));
        drop(b);
        run(200, 300, &mut [&mut a, &mut b2]);
        assert_eq!(metric(&a.metrics, "ftsplice_replication_peers_up "), 1);
        assert_eq!(b2.sink.ids(), [s.id], "snapshot pulled on join");
    }

    #[test]
    fn an_agent_gets_only_its_backends_splices() {
        let backend = SocketAddrV4::new(Ipv4Addr::new(198, 18, 3, 2), 80);
        let mut a = node(1, &[(100, true)], KEY, None);
        // Two splices exist before the agent starts (snapshot), one after
        // (create sent to the agent).
        let now = run(0, 20, &mut [&mut a]);
        let mine = splice(1, 1, 40100, 2);
        let other = splice(1, 2, 40101, 3);
        a.ctl.create(now, mine.clone()).unwrap();
        a.ctl.create(now, other.clone()).unwrap();
        step(now, &mut [&mut a]);
        // Acks come only from proxies: with none, creations end unacked.
        assert_eq!(a.ctl.poll_created(), Some((mine.id, None)));
        let mut agent = node(100, &[(1, false)], KEY, Some(backend));
        let now = run(25, 80, &mut [&mut a, &mut agent]);
        assert_eq!(agent.sink.ids(), [mine.id]);
        let later = splice(1, 3, 40102, 2);
        a.ctl.create(now, later.clone()).unwrap();
        step(now, &mut [&mut a, &mut agent]);
        assert_eq!(agent.sink.ids(), [mine.id, later.id]);
        // A's teardown of `mine` reaches the agent.
        a.sink.set_seen(
            mine.id,
            Seen {
                packets: 1,
                rst: true,
                ..Seen::default()
            },
        );
        run(85, 120, &mut [&mut a, &mut agent]);
        assert_eq!(agent.sink.ids(), [later.id]);
        // Split splice: only the agent sees the backend's FIN; it tells
        // the proxy, whose teardown then ends the splice everywhere.
        a.sink.set_seen(
            later.id,
            Seen {
                packets: 5,
                fin_c2s: true,
                ..Seen::default()
            },
        );
        agent.sink.set_seen(
            later.id,
            Seen {
                packets: 9,
                fin_s2c: true,
                ..Seen::default()
            },
        );
        run(125, 400, &mut [&mut a, &mut agent]);
        assert_eq!(a.sink.ids(), [other.id], "proxy deleted after the linger");
        assert!(agent.sink.ids().is_empty());
    }

    /// A proxy's delete of a split splice is lost on its way to the agent:
    /// the agent drops the entry once idle, and keeps active ones.
    #[test]
    fn an_agent_ages_out_an_entry_whose_delete_was_lost() {
        let backend = SocketAddrV4::new(Ipv4Addr::new(198, 18, 3, 2), 80);
        let mut a = node(1, &[(100, true)], KEY, None);
        let mut agent = node(100, &[(1, false)], KEY, Some(backend));
        let now = run(0, 30, &mut [&mut a, &mut agent]);
        let gone = splice(1, 1, 40100, 2);
        let busy = splice(1, 2, 40101, 2);
        a.ctl.create(now, gone.clone()).unwrap();
        a.ctl.create(now, busy.clone()).unwrap();
        step(now, &mut [&mut a, &mut agent]);
        assert_eq!(agent.sink.ids(), [gone.id, busy.id]);
        // The client resets `gone`: A deletes it, the delete is lost.
        a.sink.set_seen(
            gone.id,
            Seen {
                packets: 1,
                rst: true,
                ..Seen::default()
            },
        );
        let codec = std::cell::RefCell::new(Codec::new(Some(KEY)));
        let deletes = std::cell::Cell::new(0);
        let lost = |b: &[u8]| {
            let del = matches!(
                codec.borrow_mut().decode(b).map(|e| e.msg),
                Ok(Message::Delete { .. })
            );
            deletes.set(deletes.get() + u32::from(del));
            del
        };
        let mut t = 35;
        while t <= 100 {
            step_lossy(Instant::from_millis(t), &mut [&mut a, &mut agent], &lost);
            t += 5;
        }
        assert_eq!(deletes.get(), 1, "the one delete sent to the agent");
        assert_eq!(a.sink.ids(), [busy.id]);
        assert_eq!(agent.sink.ids(), [gone.id, busy.id], "the entry leaked");
        // `busy` carries backend packets (seen by the agent) all along;
        // `gone` carries none. Idle is 5 s in these nodes.
        let mut t = 105;
        let mut packets = 0;
        while t <= 5_300 {
            packets += 1;
            agent.sink.set_seen(
                busy.id,
                Seen {
                    packets,
                    ..Seen::default()
                },
            );
            let now = run(t, t + 95, &mut [&mut a, &mut agent]);
            if now < Instant::from_millis(4_900) {
                assert!(agent.sink.ids().contains(&gone.id), "aged too early");
            }
            t += 100;
        }
        assert_eq!(agent.sink.ids(), [busy.id], "the idle entry aged out");
        assert!(agent.ctl.table().get(gone.id).is_none());
        assert!(agent.ctl.table().get(busy.id).is_some());
        assert_eq!(
            metric(
                &agent.metrics,
                "ftsplice_splices_deleted_total{reason=\"idle\"}"
            ),
            1
        );
    }
}

//! The control plane of a proxy or agent around its data plane: the
//! replication [`Replicator`] (authenticated UDP datagrams to and from the
//! configured peers), splice [`Teardown`] fed by what the data plane saw
//! (`splice_seen`), and the [`SpliceSink`] kept equal to the replicated
//! table. [`Control`] is the synchronous core (time passed in, datagrams
//! out); [`run`] is its tokio loop.
//!
//! Peer liveness comes from replication traffic itself: every configured
//! proxy peer counts as up at start (it is asked for a snapshot), a peer
//! that exhausts a retransmission budget ([`ReplicatorEvent::GaveUp`]) goes
//! down, and any authenticated message from a peer that is down brings it
//! back up (with a fresh snapshot pull both ways).
//!
//! Agents (split-splice, `agent = true` peers) are receive-only: a proxy
//! sends them its own creates and deletes (unacknowledged; a lost one only
//! means the backend's packets take the path through a proxy) and answers
//! their snapshot requests, but they never count as the ack a creation
//! waits for and never own a splice's teardown. In agent mode, [`Control`]
//! installs only the splices of its backend.

use crate::metrics::{Counter, Gauge, Registry};
use crate::proxy::ports::PortAllocator;
use crate::sink::{Seen, SpliceSink};
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use ftsplice_proto::replication::codec::{Codec, DecodeError, Key};
use ftsplice_proto::replication::{Message, Replicator, ReplicatorConfig, ReplicatorEvent};
use ftsplice_proto::splice::{Direction, Splice, SpliceId};
use ftsplice_proto::teardown::{CloseReason, Teardown, TeardownAction, TeardownConfig};
use ftsplice_proto::{Instant, ProxyId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
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
    /// Agent mode: receive only, install only splices of this backend.
    pub agent_backend: Option<SocketAddrV4>,
    /// This proxy's SSA (ports of released splices go back to the pool).
    pub ssa: Option<Ipv4Addr>,
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
    deleted: Registry,
    active: Gauge,
    peers_up: Gauge,
    ports_in_use: Gauge,
    sent: Counter,
    received: Counter,
    send_errors: Counter,
    install_errors: Counter,
}

impl Metrics {
    fn new(r: &Registry) -> Metrics {
        Metrics {
            rx_dropped: r.clone(),
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
    sink: SharedSink,
    ports: Option<Arc<Mutex<PortAllocator>>>,
    /// Splices in the data plane, with what it had seen of each at the
    /// last poll.
    tracked: HashMap<SpliceId, (Splice, Seen)>,
    next_seen_poll: Instant,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    created: VecDeque<(SpliceId, Option<ProxyId>)>,
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
        let mut c = Control {
            peers: cfg.peers.iter().map(|p| (p.id, *p)).collect(),
            replicator: Replicator::new(ReplicatorConfig::new(me)),
            teardown: Teardown::new(now, me, cfg.teardown),
            codec: Codec::new(cfg.psk),
            sink,
            ports,
            tracked: HashMap::new(),
            next_seen_poll: now + cfg.seen_poll,
            out: VecDeque::new(),
            created: VecDeque::new(),
            metrics: Metrics::new(registry),
            cfg,
        };
        let proxies: Vec<ProxyId> = c
            .peers
            .values()
            .filter(|p| !p.agent)
            .map(|p| p.id)
            .collect();
        for p in proxies {
            c.peer_up(now, p);
        }
        c
    }

    fn is_agent(&self) -> bool {
        self.cfg.agent_backend.is_some()
    }

    /// The replicated table.
    pub fn table(&self) -> &ftsplice_proto::splice::table::SpliceTable {
        self.replicator.table()
    }

    fn peer_up(&mut self, now: Instant, p: ProxyId) {
        tracing::info!(peer = p.0, "replication peer up: pulling its table");
        self.replicator.handle_peer_up(now, p);
        if !self.is_agent() {
            self.teardown.proxy_up(now, p);
        }
    }

    fn peer_down(&mut self, now: Instant, p: ProxyId) {
        if self.replicator.peers().any(|q| q == p) {
            tracing::warn!(
                peer = p.0,
                "replication peer down: no answer within the retransmission budget"
            );
            self.replicator.handle_peer_down(p);
            if !self.is_agent() {
                self.teardown.proxy_down(now, p);
            }
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

    /// One datagram from the replication socket.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) {
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
            // Agents only ask for snapshots (and ack what we send them).
            if let Message::SnapshotRequest { from } = env.msg {
                self.serve_snapshot(peer.id, from);
            }
            return;
        }
        if !self.replicator.peers().any(|p| p == peer.id) {
            self.peer_up(now, peer.id);
        }
        match env.msg {
            Message::Fin { id, dir } if !self.is_agent() => self.teardown.handle_fin(now, id, dir),
            Message::Activity { ids } if !self.is_agent() => {
                self.teardown.handle_activity(now, &ids)
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
        if let Some(r) = self.replicator.poll_timeout() {
            t = t.min(r);
        }
        if !self.is_agent() {
            t = t.min(self.teardown.poll_timeout());
        }
        t
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.replicator.handle_timeout(now);
        if now >= self.next_seen_poll {
            self.next_seen_poll = now + self.cfg.seen_poll;
            if !self.is_agent() {
                self.poll_seen(now);
            }
        }
        if !self.is_agent() {
            self.teardown.handle_timeout(now);
        }
    }

    /// Feeds what the data plane relayed since the last poll to teardown.
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
            while let Some((to, msg)) = self.replicator.poll_transmit() {
                progress = true;
                self.send(to, &msg);
            }
            while let Some(ev) = self.replicator.poll_event() {
                progress = true;
                self.on_replicator_event(now, ev);
            }
            while let Some(a) = self.teardown.poll_action() {
                progress = true;
                self.on_teardown(now, a);
            }
            if !progress {
                break;
            }
        }
        self.metrics
            .active
            .set(self.replicator.table().len() as i64);
        self.metrics
            .peers_up
            .set(self.replicator.peers().count() as i64);
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
                let seen = self.tracked.get(&id).map(|t| t.1).unwrap_or_default();
                self.tracked.insert(id, (s, seen));
            }
            ReplicatorEvent::Removed { id } => {
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
                tracing::warn!(peer = peer.0, splice = id.0, "peer did not answer");
                self.peer_down(now, peer);
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
}

/// Runs `ctl` until `cmds` closes: commands, datagrams on `sock` (if
/// replication is configured) and timers.
pub async fn run(mut ctl: Control, sock: Option<UdpSocket>, mut cmds: mpsc::Receiver<Command>) {
    let mut waiting: HashMap<SpliceId, oneshot::Sender<CreateOutcome>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let now = crate::clock::now();
        ctl.process(now);
        while let Some((id, acked_by)) = ctl.poll_created() {
            if let Some(tx) = waiting.remove(&id) {
                let _ = tx.send(CreateOutcome::Replicated { acked_by });
            }
        }
        if let Some(s) = &sock {
            while let Some((to, bytes)) = ctl.poll_transmit() {
                match s.send_to(&bytes, to).await {
                    Ok(_) => ctl.sent(),
                    Err(e) => {
                        ctl.send_failed();
                        tracing::debug!(%to, error = %e, "replication datagram not sent");
                    }
                }
            }
        } else {
            while ctl.poll_transmit().is_some() {}
        }
        let deadline = ctl.poll_timeout();
        let recv = async {
            match &sock {
                Some(s) => s.recv_from(&mut buf).await.map(|(n, _)| n),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
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
            r = recv => match r {
                Ok(n) => ctl.handle_datagram(crate::clock::now(), &buf[..n]),
                Err(e) => tracing::warn!(error = %e, "replication socket error"),
            },
            _ = tokio::time::sleep(crate::clock::until(deadline)) => {
                ctl.handle_timeout(crate::clock::now());
            }
        }
    }
}

//! The proxy tier's control plane end to end, without a network simulator:
//! heartbeats → failure detectors → LB choice and proxy membership;
//! splice creation → replication (through the authenticated codec) →
//! lookups on every replica; a proxy crash, a joiner's resync, and
//! teardown by FIN/linger and RST converging on every replica.
//!
//! This is also the reference wiring for the simulator and the daemons.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use ftsplice_proto::detector::{DetectorConfig, DetectorEvent, FailureDetector};
use ftsplice_proto::heartbeat::HeartbeatSender;
use ftsplice_proto::lb::{Balancer, LbMode};
use ftsplice_proto::replication::{Codec, Message, Replicator, ReplicatorConfig, ReplicatorEvent};
use ftsplice_proto::splice::{Direction, Splice, SpliceId, WindowScales};
use ftsplice_proto::teardown::{Teardown, TeardownAction, TeardownConfig};
use ftsplice_proto::{Instant, ProxyId};

const KEY: [u8; 32] = [9; 32];
const HB: Duration = Duration::from_millis(100);

struct Proxy {
    id: ProxyId,
    alive: bool,
    hb: HeartbeatSender,
    peers: FailureDetector,
    rep: Replicator,
    td: Teardown,
    codec: Codec,
    replicated: Vec<SpliceId>,
}

impl Proxy {
    fn new(now: Instant, id: u16) -> Self {
        let id = ProxyId(id);
        let cfg = TeardownConfig {
            linger: Duration::from_secs(2),
            idle: Duration::from_secs(30),
            tick: Duration::from_millis(100),
            activity_chunk: 100,
        };
        Proxy {
            id,
            alive: true,
            hb: HeartbeatSender::new(now, id, u32::from(id.0), HB, 100),
            peers: FailureDetector::new(DetectorConfig {
                interval: HB,
                missed: 3,
                hold: 0,
            }),
            rep: Replicator::new(ReplicatorConfig::new(id)),
            td: Teardown::new(now, id, cfg),
            codec: Codec::new(Some(KEY)),
            replicated: Vec::new(),
        }
    }
}

struct Tier {
    now: Instant,
    lb_detector: FailureDetector,
    lb: Balancer,
    proxies: Vec<Proxy>,
}

fn addr(a: u8, b: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 18, a, b), port)
}

fn splice(creator: ProxyId, n: u16) -> Splice {
    Splice {
        id: SpliceId::compose(creator, u64::from(n)),
        version: 1,
        client: addr(1, 1, 10_000 + n),
        vip: addr(0, 100, 80),
        ssa: addr(0, 200, 20_000 + n),
        backend: addr(2, 1, 8080),
        seq_delta: u32::from(n) * 1000,
        ack_delta: 7,
        ts: None,
        wscale: WindowScales::default(),
        sack_ok: true,
    }
}

impl Tier {
    fn new(n: u16) -> Self {
        let now = Instant::ZERO;
        Tier {
            now,
            lb_detector: FailureDetector::new(DetectorConfig {
                interval: HB,
                missed: 3,
                hold: 0,
            }),
            lb: Balancer::new(LbMode::FlowHash),
            proxies: (1..=n).map(|i| Proxy::new(now, i)).collect(),
        }
    }

    fn idx(&self, id: ProxyId) -> usize {
        self.proxies.iter().position(|p| p.id == id).unwrap()
    }

    /// Advances time by 1 ms steps, delivering every message instantly.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(1);
            self.step();
        }
    }

    fn step(&mut self) {
        let now = self.now;
        // Heartbeats to the LB and to every other proxy.
        let mut beats = Vec::new();
        for p in self.proxies.iter_mut().filter(|p| p.alive) {
            p.hb.handle_timeout(now);
            while let Some(hb) = p.hb.poll_transmit() {
                beats.push((p.id, hb.encode()));
            }
        }
        for (from, b) in &beats {
            self.lb_detector.handle_datagram(now, b).unwrap();
            for p in self.proxies.iter_mut().filter(|p| p.alive && p.id != *from) {
                p.peers.handle_datagram(now, b).unwrap();
            }
        }
        self.lb_detector.handle_timeout(now);
        while let Some(ev) = self.lb_detector.poll_event() {
            self.lb.apply(&ev);
        }
        for p in self.proxies.iter_mut().filter(|p| p.alive) {
            p.peers.handle_timeout(now);
            while let Some(ev) = p.peers.poll_event() {
                match ev {
                    DetectorEvent::ProxyUp { id, .. } => {
                        p.rep.handle_peer_up(now, id);
                        p.td.proxy_up(now, id);
                    }
                    DetectorEvent::ProxyDown { id } => {
                        p.rep.handle_peer_down(id);
                        p.td.proxy_down(now, id);
                    }
                    DetectorEvent::WeightChanged { .. } => {}
                }
            }
            p.rep.handle_timeout(now);
            p.td.handle_timeout(now);
        }
        // Replication and teardown traffic until quiet.
        loop {
            let mut wire: Vec<(ProxyId, Vec<u8>)> = Vec::new();
            for p in self.proxies.iter_mut().filter(|p| p.alive) {
                while let Some(a) = p.td.poll_action() {
                    match a {
                        TeardownAction::Delete { id, .. } => {
                            p.rep.delete(now, id);
                        }
                        TeardownAction::SendFin { id, dir } => {
                            let peers: Vec<ProxyId> = p.rep.peers().collect();
                            for to in peers {
                                wire.push((
                                    to,
                                    p.codec.encode(p.id, &Message::Fin { id, dir }).unwrap(),
                                ));
                            }
                        }
                        TeardownAction::SendActivity { to, ids } => {
                            wire.push((
                                to,
                                p.codec.encode(p.id, &Message::Activity { ids }).unwrap(),
                            ));
                        }
                    }
                }
                while let Some((to, msg)) = p.rep.poll_transmit() {
                    wire.push((to, p.codec.encode(p.id, &msg).unwrap()));
                }
                while let Some(ev) = p.rep.poll_event() {
                    match ev {
                        ReplicatorEvent::Replicated { id, .. } => p.replicated.push(id),
                        ReplicatorEvent::Installed { id } => p.td.track(now, id),
                        ReplicatorEvent::Removed { id } => p.td.untrack(id),
                        _ => {}
                    }
                }
            }
            if wire.is_empty() {
                break;
            }
            for (to, bytes) in wire {
                let Some(p) = self.proxies.iter_mut().find(|p| p.id == to && p.alive) else {
                    continue;
                };
                let env = p.codec.decode(&bytes).unwrap();
                match env.msg {
                    Message::Fin { id, dir } => p.td.handle_fin(now, id, dir),
                    Message::Activity { ids } => p.td.handle_activity(now, &ids),
                    msg => p.rep.handle_message(now, env.sender, msg),
                }
            }
        }
    }

    fn create(&mut self, at: ProxyId, n: u16) -> SpliceId {
        let now = self.now;
        let i = self.idx(at);
        let p = &mut self.proxies[i];
        let s = splice(at, n);
        p.rep.create(now, s.clone()).unwrap();
        p.td.track(now, s.id);
        s.id
    }

    fn relay(&mut self, at: ProxyId, id: SpliceId, dir: Direction, fin: bool, rst: bool) {
        let now = self.now;
        let i = self.idx(at);
        let p = &mut self.proxies[i];
        let s = p
            .rep
            .table()
            .get(id)
            .cloned()
            .expect("splice missing at relaying proxy");
        let (src, dst) = s.incoming_tuple(dir);
        assert_eq!(
            p.rep.table_mut().lookup(src, dst).map(|(s, d)| (s.id, d)),
            Some((id, dir))
        );
        p.td.handle_packet(now, id, dir, fin, rst);
    }

    fn holders(&self, id: SpliceId) -> Vec<ProxyId> {
        self.proxies
            .iter()
            .filter(|p| p.alive && p.rep.table().get(id).is_some())
            .map(|p| p.id)
            .collect()
    }
}

#[test]
fn proxy_tier_survives_crash_resyncs_joiner_and_tears_down_everywhere() {
    let mut t = Tier::new(3);
    t.run_for(Duration::from_millis(50));
    assert_eq!(t.lb.proxies().len(), 3);

    // p1 creates 30 splices; each is acked by a peer before p1 would close
    // its sockets, and every proxy can relay every splice.
    let ids: Vec<SpliceId> = (0..30).map(|n| t.create(ProxyId(1), n)).collect();
    t.run_for(Duration::from_millis(5));
    assert_eq!(t.proxies[0].replicated, ids);
    for &id in &ids {
        assert_eq!(t.holders(id), [ProxyId(1), ProxyId(2), ProxyId(3)]);
    }

    // p1 crashes. The LB and the peers detect it within 2t..3t, then no
    // packet is sent to it and the splices stay usable on p2 and p3.
    let crash = t.now;
    t.proxies[0].alive = false;
    let mut detected = None;
    while detected.is_none() {
        t.run_for(Duration::from_millis(1));
        if !t.lb.proxies().contains(ProxyId(1)) {
            detected = Some(t.now - crash);
        }
    }
    let d = detected.unwrap();
    assert!(d >= 2 * HB && d <= 3 * HB, "detected after {d:?}");
    for port in 0..200 {
        let chosen =
            t.lb.choose(t.now, addr(1, 1, 10_000 + port), addr(0, 100, 80))
                .unwrap();
        assert_ne!(chosen, ProxyId(1));
    }
    t.relay(ProxyId(2), ids[0], Direction::ClientToServer, false, false);
    t.relay(ProxyId(3), ids[0], Direction::ServerToClient, false, false);

    // p4 joins and pulls the table from its peers.
    t.proxies.push(Proxy::new(t.now, 4));
    t.run_for(Duration::from_millis(300));
    assert_eq!(t.lb.proxies().len(), 3);
    let p4 = &t.proxies[3];
    assert_eq!(p4.rep.table().len(), 30);
    assert_eq!(
        t.proxies[1].rep.table().iter().collect::<Vec<_>>(),
        p4.rep.table().iter().collect::<Vec<_>>()
    );

    // A connection closes: client FIN through p2, server FIN through p4,
    // final ACK through p3. After the linger its owner deletes it and the
    // deletion reaches every replica.
    let closing = ids[1];
    t.relay(ProxyId(2), closing, Direction::ClientToServer, true, false);
    t.run_for(Duration::from_millis(2));
    t.relay(ProxyId(4), closing, Direction::ServerToClient, true, false);
    t.relay(ProxyId(3), closing, Direction::ClientToServer, false, false);
    t.run_for(Duration::from_millis(1_500));
    assert_eq!(
        t.holders(closing).len(),
        3,
        "deleted before the linger ended"
    );
    t.run_for(Duration::from_millis(700));
    assert!(
        t.holders(closing).is_empty(),
        "still held by {:?}",
        t.holders(closing)
    );

    // A reset through p3 deletes at once everywhere.
    let reset = ids[2];
    t.relay(ProxyId(3), reset, Direction::ServerToClient, false, true);
    t.run_for(Duration::from_millis(1));
    assert!(t.holders(reset).is_empty());

    // Nothing else was lost, and no codec error happened.
    for p in t.proxies.iter().filter(|p| p.alive) {
        assert_eq!(p.rep.table().len(), 28, "{:?}", p.id);
        let s = p.codec.stats();
        assert_eq!((s.truncated, s.malformed, s.auth_failed), (0, 0, 0));
    }
}

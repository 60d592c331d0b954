//! Building the simulated service: one switched LAN (like the paper's
//! testbed) with a client host, an lb (optionally a backup), a second lb
//! owning the shared splice address toward the backend, N proxies and one
//! backend server (optionally with a split-splice agent); or the direct
//! client–server baseline on the same LAN.

use crate::engine::sim::{NodeOpts, Sim};
use crate::net::link::LinkConfig;
use crate::net::node::NodeId;
use crate::roles::agent::Agent;
use crate::roles::endpoint::{Endpoint, Role};
use crate::roles::http::{BodyOpts, Job, Method};
use crate::roles::lb::{Lb, LbConfig, LbRole};
use crate::roles::proxy::{Proxy, ProxyConfig};
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::detector::DetectorConfig;
use ftsplice_proto::lb::LbMode;
use ftsplice_proto::owner::PortPartitions;
use ftsplice_proto::teardown::TeardownConfig;
use ftsplice_proto::{Instant, ProxyId};

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
pub const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
pub const LB_BACKUP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
pub const LB_SSA: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub const SSA: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 200);
pub const HTTP: u16 = 80;
/// Replication id of the backend's split-splice agent.
pub const AGENT_ID: ProxyId = ProxyId(1000);

/// Everything a scenario can vary.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    /// Concurrent client connections.
    pub conns: usize,
    pub method: Method,
    /// Body bytes per request.
    pub size: u64,
    /// Requests per connection (keep-alive series).
    pub requests: u32,
    /// Proxies configured (some may start powered off).
    pub proxies: usize,
    /// Proxies powered on at the start (the rest join later).
    pub proxies_up: usize,
    pub lb_backup: bool,
    /// Split splice: the backend runs an agent.
    pub split: bool,
    pub lb_mode: LbMode,
    pub heartbeat: Duration,
    pub missed: u32,
    /// Every LAN link (the switch ports).
    pub lan: LinkConfig,
    /// Per-packet processing cost of proxies / lbs / the backend's agent.
    pub proxy_cpu: Duration,
    pub lb_cpu: Duration,
    /// When the clients start.
    pub start: Instant,
    /// The client's and the backend's own links (default: `lan`); the
    /// studies put the client–proxy and proxy–server delays here.
    pub client_link: Option<LinkConfig>,
    pub server_link: Option<LinkConfig>,
    /// Proxy CPU time per datagram byte, on top of `proxy_cpu`.
    pub proxy_cpu_per_byte: Duration,
    /// Packets a proxy queues for its CPU before dropping.
    pub proxy_queue: usize,
    /// CPU time of the backend's split-splice agent per rewritten packet.
    pub agent_cpu: Duration,
    /// TCP of every host and proxy.
    pub tcp: ftsplice_tcp::Config,
    /// How the HTTP bodies are produced and checked.
    pub body: BodyOpts,
}

impl Params {
    /// The defaults of the fault scenarios: 1 Gbit/s LAN with 20 µs per
    /// link and 2 MB switch-port queues (smaller ones lock single flows out
    /// for seconds when 100 connections slow-start at once), proxies
    /// costing 2 µs per packet, lbs 1 µs, 10 ms heartbeats.
    pub fn new(seed: u64, conns: usize, method: Method, size: u64) -> Params {
        Params {
            seed,
            conns,
            method,
            size,
            requests: 1,
            proxies: 2,
            proxies_up: 2,
            lb_backup: false,
            split: false,
            lb_mode: LbMode::FlowHash,
            heartbeat: Duration::from_millis(10),
            missed: 3,
            lan: LinkConfig::gigabit(Duration::from_micros(20)).with_queue(2 << 20),
            proxy_cpu: Duration::from_micros(2),
            lb_cpu: Duration::from_micros(1),
            start: Instant::from_millis(50),
            client_link: None,
            server_link: None,
            proxy_cpu_per_byte: Duration::ZERO,
            proxy_queue: 4096,
            agent_cpu: Duration::ZERO,
            tcp: ftsplice_tcp::Config::default(),
            body: BodyOpts::default(),
        }
    }

    fn client_link(&self) -> LinkConfig {
        self.client_link.unwrap_or(self.lan)
    }

    fn server_link(&self) -> LinkConfig {
        self.server_link.unwrap_or(self.lan)
    }

    fn jobs(&self) -> Vec<Job> {
        (0..self.conns as u64)
            .map(|i| Job {
                id: i + 1,
                method: self.method,
                size: self.size,
                requests: self.requests,
                seed: self.seed.wrapping_mul(0x100_0000_01B3) ^ i,
            })
            .collect()
    }
}

/// A built network and the ids scenarios need.
pub struct Topology {
    pub sim: Sim,
    pub switch: NodeId,
    pub client: NodeId,
    pub server: NodeId,
    pub lb: Option<NodeId>,
    pub lb_backup: Option<NodeId>,
    pub lb_ssa: Option<NodeId>,
    pub proxies: Vec<NodeId>,
    pub conns: usize,
}

fn host(
    sim: &mut Sim,
    sw: NodeId,
    name: &str,
    node: impl crate::Node,
    opts: NodeOpts,
    addr: Ipv4Addr,
    lan: LinkConfig,
) -> NodeId {
    let id = sim.add_node(name, node, opts);
    let i = sim.add_iface(id, addr, 24);
    sim.attach(sw, id, i, lan);
    id
}

/// The switch, the client (its connections to `target`) and the backend
/// server (running a split-splice agent for `agent_members` if given): the
/// part every topology shares, built in the same order so node and link ids
/// (and their random streams) stay put.
fn client_and_server(
    p: &Params,
    target: SocketAddrV4,
    agent_members: Option<&[(ProxyId, Ipv4Addr)]>,
) -> (Sim, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(p.seed);
    let sw = sim.add_switch("switch");
    let role = Role::Client {
        target,
        jobs: p.jobs(),
        start: p.start,
        first_port: 10_000,
    };
    let client = host(
        &mut sim,
        sw,
        "client",
        Endpoint::new(CLIENT, role, p.tcp.clone()).with_body_opts(p.body),
        NodeOpts::default(),
        CLIENT,
        p.client_link(),
    );
    let mut server_ep =
        Endpoint::new(SERVER, Role::Server { port: HTTP }, p.tcp.clone()).with_body_opts(p.body);
    if let Some(members) = agent_members {
        server_ep = server_ep
            .with_agent(Agent::new(AGENT_ID, SERVER, members.to_vec()))
            .with_agent_cost(p.agent_cpu);
    }
    let server = host(
        &mut sim,
        sw,
        "server",
        server_ep,
        NodeOpts::default(),
        SERVER,
        p.server_link(),
    );
    (sim, sw, client, server)
}

/// Client and server on the switch, nothing in between.
pub fn direct(p: &Params) -> Topology {
    let (sim, sw, client, server) = client_and_server(p, SocketAddrV4::new(SERVER, HTTP), None);
    Topology {
        sim,
        switch: sw,
        client,
        server,
        lb: None,
        lb_backup: None,
        lb_ssa: None,
        proxies: Vec::new(),
        conns: p.conns,
    }
}

/// The spliced service: client -> lb (VIP) -> proxies -> server, server ->
/// lb (SSA) -> proxies -> client, or server -> client via its agent.
pub fn spliced(p: &Params) -> Topology {
    let tcp = p.tcp.clone();
    let ids: Vec<ProxyId> = (1..=p.proxies as u16).map(ProxyId).collect();
    let addrs: Vec<Ipv4Addr> = (0..p.proxies as u8)
        .map(|i| Ipv4Addr::new(10, 0, 0, 31 + i))
        .collect();
    let members: Vec<(ProxyId, Ipv4Addr)> =
        ids.iter().copied().zip(addrs.iter().copied()).collect();
    let detector = DetectorConfig {
        interval: p.heartbeat,
        missed: p.missed,
        // The lbs hold verdicts during common silences, like the daemon.
        hold: ftsplice_proto::detector::LB_HOLD,
    };
    let vip = SocketAddrV4::new(VIP, HTTP);
    let (mut sim, sw, client, server) = client_and_server(p, vip, p.split.then_some(&members[..]));

    let lb_opts = NodeOpts::cpu(p.lb_cpu, 4096);
    let mk_lb = |addr, service, role| {
        Lb::new(LbConfig {
            addr,
            service,
            proxies: members.clone(),
            mode: p.lb_mode,
            detector,
            role,
        })
    };
    let backup = p.lb_backup.then_some(LB_BACKUP);
    let lb = host(
        &mut sim,
        sw,
        "lb",
        mk_lb(LB, VIP, LbRole::Primary { backup }),
        lb_opts,
        LB,
        p.lan,
    );
    let lb_backup = p.lb_backup.then(|| {
        host(
            &mut sim,
            sw,
            "lb-backup",
            mk_lb(LB_BACKUP, VIP, LbRole::Backup),
            lb_opts,
            LB_BACKUP,
            p.lan,
        )
    });
    let lb_ssa = host(
        &mut sim,
        sw,
        "lb-ssa",
        mk_lb(LB_SSA, SSA, LbRole::Primary { backup: None }),
        lb_opts,
        LB_SSA,
        p.lan,
    );

    let mut lbs = vec![LB, LB_SSA];
    lbs.extend(backup);
    let partitions = match PortPartitions::even(&ids, 20_000, 60_000) {
        Ok(pp) => pp,
        Err(e) => panic!("port partitions for {} proxies: {e}", ids.len()),
    };
    let first_node = sim.node_ids().count() as u32;
    let proxy_nodes: Vec<NodeId> = (0..p.proxies as u32)
        .map(|i| NodeId(first_node + i))
        .collect();
    let mut proxies = Vec::new();
    for (k, (&id, &addr)) in ids.iter().zip(&addrs).enumerate() {
        let cfg = ProxyConfig {
            id,
            addr,
            vip,
            ssa: SSA,
            peers: members.iter().copied().filter(|m| m.0 != id).collect(),
            peer_nodes: proxy_nodes
                .iter()
                .copied()
                .filter(|&n| n != proxy_nodes[k])
                .collect(),
            agents: if p.split {
                vec![(AGENT_ID, SERVER)]
            } else {
                Vec::new()
            },
            lbs: lbs.clone(),
            partitions: partitions.clone(),
            backends: vec![SocketAddrV4::new(SERVER, HTTP)],
            heartbeat: p.heartbeat,
            missed: p.missed,
            tcp: tcp.clone(),
            teardown: TeardownConfig {
                linger: Duration::from_secs(1),
                idle: Duration::from_secs(60),
                tick: Duration::from_millis(100),
                activity_chunk: 170,
            },
            cost_per_byte: p.proxy_cpu_per_byte,
        };
        let opts = NodeOpts {
            cpu_per_packet: p.proxy_cpu,
            cpu_queue: p.proxy_queue,
            start_down: k >= p.proxies_up,
        };
        let n = host(
            &mut sim,
            sw,
            &format!("proxy{}", k + 1),
            Proxy::new(cfg),
            opts,
            addr,
            p.lan,
        );
        debug_assert_eq!(n, proxy_nodes[k]);
        proxies.push(n);
    }
    // The service addresses live behind their lbs until someone announces.
    for (addr, node) in [(VIP, lb), (SSA, lb_ssa)] {
        let link = (0..sim.link_count() as u32)
            .map(crate::net::link::LinkId)
            .find(|&l| sim.link(l).ends[0].node == node);
        if let Some(l) = link {
            sim.switch_learn(sw, addr, l);
        }
    }
    Topology {
        sim,
        switch: sw,
        client,
        server,
        lb: Some(lb),
        lb_backup,
        lb_ssa: Some(lb_ssa),
        proxies,
        conns: p.conns,
    }
}

impl Topology {
    /// Client connections that have an outcome.
    pub fn finished(&self) -> usize {
        self.sim.stats().conns().len()
    }

    /// Runs until every client connection has an outcome or `limit`, then
    /// records the unfinished ones as broken.
    pub fn run(&mut self, limit: Instant) {
        let conns = self.conns;
        self.sim.run_while(limit, Duration::from_millis(10), |s| {
            s.stats().conns().len() >= conns
        });
        let client = self.client;
        self.sim
            .poke::<Endpoint, _>(client, |e, ctx| e.abandon_all(ctx));
    }
}

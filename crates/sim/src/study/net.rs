//! One study network and one run of it: a client, `n` spliced proxies and a
//! server on a switch, each on its own link (the client's carries the
//! client–proxy delay, the server's the proxy–server delay).

use crate::engine::sim::{NodeOpts, Sim};
use crate::net::link::{LinkConfig, LinkId};
use crate::net::node::NodeId;
use crate::study::host::{Addrs, Direction, Host, Transfer};
use crate::study::splicer::Splicer;
use core::net::Ipv4Addr;
use core::time::Duration;
use ftsplice_proto::Instant;

/// How the client reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// C-S: straight through the switch.
    Direct,
    /// C-LB-nP-S: both directions through the proxies.
    Spliced,
    /// C-LB-nP-S*: requests/ACKs through the proxies, responses straight
    /// from the server's agent.
    Split,
}

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct Point {
    pub seed: u64,
    pub path: Path,
    pub proxies: usize,
    pub dir: Direction,
    pub conns: u16,
    pub bytes_per_conn: u64,
    /// Total offered load of the client in bits/s (0: unpaced).
    pub offered_bps: u64,
    pub link_bps: u64,
    pub client_delay: Duration,
    pub server_delay: Duration,
    /// CPU time per packet at each proxy.
    pub proxy_cost: Duration,
    /// Additional proxy CPU time per datagram byte.
    pub proxy_per_byte: Duration,
    /// Initial congestion window in segments (None: Linux's 10). DSN'06's
    /// connections are long established, so it starts at the buffer size.
    pub initial_cwnd: Option<usize>,
    /// CPU time per segment the server's agent splices (split only).
    pub agent_cost: Duration,
    /// Crash proxy 0 at this instant; the survivors take over its traffic
    /// at `crash + detect`.
    pub crash: Option<(Instant, Duration)>,
    /// Round-robin every packet over the proxies (the papers' LB) rather
    /// than pinning connections by flow hash.
    pub spray: bool,
    /// Give up at this simulated time.
    pub limit: Duration,
}

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Transfer times (handshake done to last byte received), seconds.
    pub times: Vec<f64>,
    /// Connections that did not finish within the limit.
    pub unfinished: usize,
    /// First handshake to last byte, seconds.
    pub span: f64,
    /// Payload bytes received over `span`, in Mbit/s.
    pub mbps: f64,
    pub events: u64,
    /// Frames dropped anywhere, by reason.
    pub drops: Vec<(String, u64)>,
    /// Segments the senders retransmitted.
    pub retransmits: u64,
}

impl Outcome {
    pub fn avg(&self) -> f64 {
        if self.times.is_empty() {
            return 0.0;
        }
        self.times.iter().sum::<f64>() / self.times.len() as f64
    }
    pub fn min(&self) -> f64 {
        self.times.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub fn max(&self) -> f64 {
        self.times.iter().copied().fold(0.0, f64::max)
    }
}

/// Packets a proxy queues for its CPU before dropping (Linux's
/// `netdev_max_backlog`).
pub const BACKLOG: usize = 1000;

/// How often the driver checks whether every transfer finished.
const CHECK: Duration = Duration::from_millis(10);

fn addrs() -> Addrs {
    Addrs {
        client: Ipv4Addr::new(10, 0, 0, 1),
        server: Ipv4Addr::new(10, 0, 2, 1),
        vip: Ipv4Addr::new(10, 0, 0, 10),
    }
}

/// Builds and runs one point to completion (or its limit).
pub fn run(p: &Point) -> Outcome {
    let a = addrs();
    let mut sim = Sim::new(p.seed);
    let sw = sim.add_switch("switch");
    let link = |delay: Duration| LinkConfig::gigabit(delay).with_bandwidth(p.link_bps);
    let proxies: Vec<Ipv4Addr> = if p.path == Path::Direct {
        Vec::new()
    } else {
        (0..p.proxies)
            .map(|i| Ipv4Addr::new(10, 0, 1, 1 + i as u8))
            .collect()
    };
    let mut client = Host::client(a.clone(), p.dir, p.conns, p.bytes_per_conn, p.offered_bps);
    client.gateways = proxies.clone();
    client.spray = p.spray;
    let agent_cost = if p.path == Path::Split {
        p.agent_cost
    } else {
        Duration::ZERO
    };
    let mut server = Host::server(
        a.clone(),
        p.dir,
        p.conns,
        p.bytes_per_conn,
        p.offered_bps,
        agent_cost,
    );
    let mut tcp = ftsplice_tcp::Config::default();
    if let Some(w) = p.initial_cwnd {
        tcp.initial_cwnd = w;
    }
    client.set_tcp_config(tcp.clone());
    server.set_tcp_config(tcp);
    server.gateways = proxies.clone();
    server.agent = p.path == Path::Split;
    server.spray = p.spray;
    let c = sim.add_node("client", client, NodeOpts::default());
    let ci = sim.add_iface(c, a.client, 16);
    sim.attach(sw, c, ci, link(p.client_delay));
    let s = sim.add_node("server", server, NodeOpts::default());
    let si = sim.add_iface(s, a.server, 16);
    sim.attach(sw, s, si, link(p.server_delay));
    let mut px: Vec<(NodeId, LinkId)> = Vec::new();
    for (i, &addr) in proxies.iter().enumerate() {
        let mut splicer = Splicer::new(a.clone());
        splicer.per_byte = p.proxy_per_byte;
        let n = sim.add_node(
            &format!("proxy{}", i + 1),
            splicer,
            NodeOpts::cpu(p.proxy_cost, BACKLOG),
        );
        let ni = sim.add_iface(n, addr, 16);
        let l = sim.attach(sw, n, ni, link(Duration::ZERO));
        px.push((n, l));
    }
    let end = Instant::ZERO + p.limit;
    let total = usize::from(p.conns);
    let done = |sim: &Sim| -> bool {
        let recv = if p.dir == Direction::Put { s } else { c };
        sim.node::<Host>(recv)
            .map(|h| h.completed() >= total)
            .unwrap_or(true)
    };
    if let (Some((at, detect)), Some(&(dead, _))) = (p.crash, px.first()) {
        sim.schedule(at, crate::Fault::Crash(dead));
        sim.run_while(at + detect, CHECK, |sim| done(sim));
        // The LB (and the server's route) drop the dead proxy; the survivor
        // answers for the addresses it owned (its splices are replicated).
        let dead_addr = proxies[0];
        if let Some(&(_, survivor_link)) = px.get(1) {
            sim.switch_learn(sw, dead_addr, survivor_link);
        }
        for node in [c, s] {
            if let Some(h) = sim.node_mut::<Host>(node) {
                h.gateways.retain(|&g| g != dead_addr);
            }
        }
    }
    sim.run_while(end, CHECK, |sim| done(sim));
    if std::env::var_os("FTSPLICE_STUDY_DEBUG").is_some() {
        for i in 0..sim.link_count() {
            let l = sim.link(LinkId(i as u32));
            eprintln!(
                "link {i} {}->{} drops {:?} / {:?}",
                sim.node_name(l.ends[0].node),
                sim.node_name(l.ends[1].node),
                l.dirs[0].stats,
                l.dirs[1].stats
            );
        }
    }
    let recv = if p.dir == Direction::Put { s } else { c };
    let send = if p.dir == Direction::Put { c } else { s };
    let started: Vec<Transfer> = sim
        .node::<Host>(send)
        .map(|h| h.transfers())
        .unwrap_or_default();
    let got: Vec<Transfer> = sim
        .node::<Host>(recv)
        .map(|h| h.transfers())
        .unwrap_or_default();
    // Timing starts at the client's handshake completion of the same
    // connection (both maps are ordered by client port).
    let client_side = if p.dir == Direction::Put {
        &started
    } else {
        &got
    };
    let server_side = if p.dir == Direction::Put {
        &got
    } else {
        &started
    };
    let mut times = Vec::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::ZERO;
    let mut bytes = 0u64;
    for (cl, sv) in client_side.iter().zip(server_side.iter()) {
        let r = if p.dir == Direction::Put { sv } else { cl };
        bytes += r.received;
        if let (Some(s0), Some(d)) = (cl.started, r.done) {
            times.push((d - s0).as_secs_f64());
            first = Some(first.map_or(s0, |f| f.min(s0)));
            last = last.max(d);
        }
    }
    let span = first.map_or(0.0, |f| (last - f).as_secs_f64());
    Outcome {
        unfinished: total - times.len(),
        times,
        span,
        mbps: if span > 0.0 {
            bytes as f64 * 8.0 / span / 1e6
        } else {
            0.0
        },
        events: sim.events(),
        drops: sim
            .stats()
            .drops()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        retransmits: sim.node::<Host>(send).map(|h| h.retransmits()).unwrap_or(0),
    }
}

/// Runs every point on two threads and returns the outcomes in the points'
/// order (so the result does not depend on scheduling).
pub fn run_all(points: &[Point], threads: usize) -> Vec<Outcome> {
    let threads = threads.max(1);
    let mut out: Vec<Option<Outcome>> = vec![None; points.len()];
    // Biggest points first so the two threads finish together; results
    // are stored by index, so the order does not change the output.
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| {
        let p = &points[i];
        core::cmp::Reverse(u64::from(p.conns) * p.bytes_per_conn)
    });
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&i) = order.get(k) else { break };
                let Some(p) = points.get(i) else { break };
                let o = run(p);
                if let Ok(mut r) = results.lock() {
                    r.push((i, o));
                }
            });
        }
    });
    for (i, o) in results.into_inner().unwrap_or_default() {
        out[i] = Some(o);
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

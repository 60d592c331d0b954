//! One point of a study on the real simulator roles: the scenario topology
//! (client, lb + lb-ssa, n proxies with pre-splice, replication and
//! `proto::splice::translate`, one backend, optionally its split-splice
//! agent; or client and server alone) with the study's link delays, costs
//! and workload, run to completion; and a two-thread runner that merges
//! points in order so the output never depends on scheduling.

use crate::engine::fault::Fault;
use crate::net::link::LinkConfig;
use crate::roles::http::{BodyOpts, Method};
use crate::scenario::topology::{direct, spliced, Params, Topology};
use crate::stats::{Note, Outcome as ConnOutcome};
use core::time::Duration;
use ftsplice_proto::lb::LbMode;
use ftsplice_proto::Instant;

/// How the client reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// C-S: straight through the switch.
    Direct,
    /// C-LB-nP-S: both directions through lb and proxies.
    Spliced,
    /// C-LB-nP-S*: requests and ACKs through lb and proxies, responses
    /// straight from the backend's agent.
    Split,
}

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct Point {
    pub seed: u64,
    pub path: Path,
    pub proxies: usize,
    pub method: Method,
    pub conns: usize,
    pub bytes_per_conn: u64,
    /// Total offered load of the sending application in bits/s, shared
    /// evenly by the connections (0: unpaced).
    pub offered_bps: u64,
    pub link_bps: u64,
    /// Delay of the client's link (client–proxy) and of the backend's link
    /// (proxy–server); every other link has none.
    pub client_delay: Duration,
    pub server_delay: Duration,
    /// Proxy CPU time per packet (the splicing cost) and per datagram byte.
    pub proxy_cost: Duration,
    pub proxy_per_byte: Duration,
    /// Initial congestion window in segments (None: Linux's 10).
    pub initial_cwnd: Option<usize>,
    /// CPU time the backend's agent spends per rewritten packet.
    pub agent_cost: Duration,
    pub lb_mode: LbMode,
    /// Heartbeat interval of proxies and lbs (3 missed beats = down).
    pub heartbeat: Duration,
    /// Crash proxy 1 this long after the clients start.
    pub crash_after: Option<Duration>,
    /// Give up this long after the clients start.
    pub limit: Duration,
}

/// Packets a proxy queues for its CPU before dropping (Linux's
/// `netdev_max_backlog`).
pub const BACKLOG: usize = 1000;

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Per completed connection: connect to last response byte, seconds.
    pub times: Vec<f64>,
    /// Connections that did not complete (broken or out of time).
    pub unfinished: usize,
    /// Connections whose bytes did not arrive intact.
    pub corrupted: usize,
    /// First connect to last completion, seconds.
    pub span: f64,
    /// Body bytes of completed connections over `span`, Mbit/s.
    pub mbps: f64,
    /// Steady-state goodput: the middle 80 % of the payload (from 10 % to
    /// 90 % of the bytes received, interpolated in the 10 ms goodput
    /// buckets) over the time it took, Mbit/s. Excludes connection setup
    /// and the tail, for DSN'06's "already established and spliced"
    /// connections.
    pub flowing_mbps: f64,
    /// How long after the crash the VIP's lb declared proxy 1 dead.
    pub detected_after: Option<f64>,
    pub events: u64,
    /// Frames dropped anywhere.
    pub drops: u64,
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

    /// Sample standard deviation of the times.
    pub fn std_dev(&self) -> f64 {
        let n = self.times.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.avg();
        let ss: f64 = self.times.iter().map(|t| (t - m) * (t - m)).sum();
        (ss / (n - 1) as f64).sqrt()
    }
}

/// When the clients start: after the proxies have settled (4 beats) and
/// announced themselves ready in a beat the lbs have seen.
pub fn start_time(heartbeat: Duration) -> Instant {
    Instant::ZERO + heartbeat * 5 + Duration::from_millis(50)
}

fn params(p: &Point) -> Params {
    let mut q = Params::new(p.seed, p.conns, p.method, p.bytes_per_conn);
    q.proxies = p.proxies.max(1);
    q.proxies_up = q.proxies;
    q.split = p.path == Path::Split;
    q.lb_mode = p.lb_mode;
    // The papers' lb is never the bottleneck; a free lb also saves the
    // simulator one CPU-queue event per packet and lb.
    q.lb_cpu = Duration::ZERO;
    q.heartbeat = p.heartbeat;
    q.missed = 3;
    let lan = LinkConfig::gigabit(Duration::ZERO).with_bandwidth(p.link_bps);
    q.lan = lan;
    q.client_link = Some(LinkConfig {
        delay: p.client_delay,
        ..lan
    });
    q.server_link = Some(LinkConfig {
        delay: p.server_delay,
        ..lan
    });
    q.proxy_cpu = p.proxy_cost;
    q.proxy_cpu_per_byte = p.proxy_per_byte;
    q.proxy_queue = BACKLOG;
    q.agent_cpu = p.agent_cost;
    if let Some(w) = p.initial_cwnd {
        q.tcp.initial_cwnd = w;
    }
    // A paced PUT (DSN'06) starts its body once the connection is spliced
    // (100-continue), like the slides' "already established and spliced"
    // connections, instead of bursting what was produced meanwhile.
    q.body = BodyOpts {
        verify: false,
        rate_bps: p.offered_bps / p.conns.max(1) as u64,
        expect_continue: p.offered_bps > 0,
    };
    q.start = start_time(p.heartbeat);
    q
}

/// Builds and runs one point to completion (or its limit).
pub fn run(p: &Point) -> Outcome {
    let q = params(p);
    let mut t: Topology = match p.path {
        Path::Direct => direct(&q),
        Path::Spliced | Path::Split => spliced(&q),
    };
    let crash = p.crash_after.map(|d| q.start + d);
    if let (Some(at), Some(&victim)) = (crash, t.proxies.first()) {
        t.sim.schedule(at, Fault::Crash(victim));
    }
    t.run(q.start + p.limit);
    measure(&t, p, crash)
}

fn measure(t: &Topology, p: &Point, crash: Option<Instant>) -> Outcome {
    let stats = t.sim.stats();
    // Diagnostics of one point (drops, links, proxies, TCP connections).
    if std::env::var_os("FTSPLICE_STUDY_DEBUG").is_some() {
        eprintln!("{p:?}: drops {:?}", stats.drops());
        for i in 0..t.sim.link_count() {
            let l = t.sim.link(crate::LinkId(i as u32));
            eprintln!(
                "  link {}: {:?} / {:?}",
                t.sim.node_name(l.ends[0].node),
                l.dirs[0].stats,
                l.dirs[1].stats
            );
        }
        for &px in &t.proxies {
            if let Some(x) = t.sim.node::<crate::roles::proxy::Proxy>(px) {
                eprintln!(
                    "  proxy {:?} splices {} pre {}",
                    x.stats,
                    x.splices(),
                    x.presplicing()
                );
            }
        }
        if let Some(e) = t.sim.node::<crate::roles::endpoint::Endpoint>(t.client) {
            for c in e.conn_stats() {
                eprintln!("  client conn {c:?}");
            }
        }
        if let Some(e) = t.sim.node::<crate::roles::endpoint::Endpoint>(t.server) {
            for c in e.conn_stats() {
                eprintln!("  server conn {c:?}");
            }
        }
    }
    let mut times = Vec::new();
    let (mut first, mut last) = (None::<Instant>, Instant::ZERO);
    let (mut bytes, mut corrupted) = (0u64, 0usize);
    for c in stats.conns() {
        match c.outcome {
            ConnOutcome::Completed => {
                times.push((c.end - c.start).as_secs_f64());
                bytes += c.bytes;
                first = Some(first.map_or(c.start, |f| f.min(c.start)));
                last = last.max(c.end);
            }
            ConnOutcome::Corrupted => corrupted += 1,
            ConnOutcome::Broken => {}
        }
    }
    let span = first.map_or(0.0, |f| (last - f).as_secs_f64());
    let flowing_mbps = steady_mbps(stats.goodput_series(), stats.bucket_us() as f64 / 1e6);
    let detected_after = crash.and_then(|at| {
        let victim = t.sim.net(*t.proxies.first()?).addr(crate::IfaceId(0))?;
        let lb = t.lb?;
        stats
            .notes()
            .iter()
            .find(|n| n.node == lb && n.at >= at && n.note == Note::PeerDead(victim))
            .map(|n| (n.at - at).as_secs_f64())
    });
    let mbps = |secs: f64| {
        if secs > 0.0 {
            bytes as f64 * 8.0 / secs / 1e6
        } else {
            0.0
        }
    };
    Outcome {
        unfinished: p.conns - times.len(),
        corrupted,
        mbps: mbps(span),
        flowing_mbps,
        times,
        span,
        detected_after,
        events: t.sim.events(),
        drops: stats.drops().values().sum(),
    }
}

/// Goodput between 10 % and 90 % of the bytes of `series` (bytes per bucket
/// of `bucket` seconds), with linear interpolation inside buckets.
pub fn steady_mbps(series: &[u64], bucket: f64) -> f64 {
    let total: u64 = series.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let at = |frac: f64| -> f64 {
        let want = total as f64 * frac;
        let mut sum = 0.0;
        for (i, &b) in series.iter().enumerate() {
            let next = sum + b as f64;
            if next >= want && b > 0 {
                return (i as f64 + (want - sum) / b as f64) * bucket;
            }
            sum = next;
        }
        series.len() as f64 * bucket
    };
    let secs = at(0.9) - at(0.1);
    if secs > 0.0 {
        total as f64 * 0.8 * 8.0 / secs / 1e6
    } else {
        0.0
    }
}

/// Runs every point on `threads` threads and returns the outcomes in the
/// points' order (so the result does not depend on scheduling).
pub fn run_all(points: &[Point], threads: usize) -> Vec<Outcome> {
    let threads = threads.max(1);
    // Biggest points first so the threads finish together; results are
    // stored by index, so the order does not change the output.
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| {
        let p = &points[i];
        core::cmp::Reverse(p.conns as u64 * p.bytes_per_conn)
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
    let mut out: Vec<Option<Outcome>> = vec![None; points.len()];
    for (i, o) in results.into_inner().unwrap_or_default() {
        out[i] = Some(o);
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_ignores_setup_and_tail() {
        // 10 idle buckets, 100 buckets of 1250 bytes (1 Mbit/s at 10 ms),
        // a straggling tail.
        let mut s = vec![0u64; 10];
        s.extend([1250u64; 100]);
        s.extend([0, 0, 0, 10]);
        let r = steady_mbps(&s, 0.01);
        assert!((r - 1.0).abs() < 0.01, "{r}");
        assert_eq!(steady_mbps(&[], 0.01), 0.0);
    }

    #[test]
    fn start_waits_for_ready_proxies() {
        let t = start_time(Duration::from_secs(1));
        assert!(t > Instant::ZERO + Duration::from_secs(4));
    }
}

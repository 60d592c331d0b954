//! One point of a study on the real simulator roles: the scenario topology
//! (client, lb + lb-ssa, n proxies with pre-splice, replication and
//! `proto::splice::translate`, one backend, optionally its split-splice
//! agent; or client and server alone) with the study's link delays, costs
//! and workload, run to completion; and a runner that spreads points (and
//! points derived from another point's outcome) over worker threads and
//! merges them in order so the output never depends on scheduling.

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
    run_plan(points, None, threads).0
}

/// Points derived from the outcome of another point (SRDS'06 Table 4 fails
/// a proxy at half the no-failure run's average time).
pub type FollowUp<'a> = (usize, &'a (dyn Fn(&Outcome) -> Vec<Point> + Sync));

/// Runs `points` on `threads` threads, and, if `follow` is `(i, make)`, the
/// points `make` builds from point `i`'s outcome as soon as it is known
/// (point `i` runs first, so its follow-ups overlap the rest instead of
/// waiting for the whole sweep). Returns the outcomes of `points` and of the
/// follow-ups, each in order: the output does not depend on scheduling.
pub fn run_plan(
    points: &[Point],
    follow: Option<FollowUp<'_>>,
    threads: usize,
) -> (Vec<Outcome>, Vec<Outcome>) {
    use std::sync::{Condvar, Mutex, PoisonError};

    #[derive(Clone, Copy)]
    enum Job {
        Base(usize),
        Extra(usize),
    }
    struct State {
        /// (priority, job): biggest first so the threads finish together.
        queue: Vec<(u64, Job)>,
        running: usize,
        extra: Vec<Point>,
        base_out: Vec<Option<Outcome>>,
        extra_out: Vec<Option<Outcome>>,
    }
    let cost = |p: &Point| p.conns as u64 * p.bytes_per_conn;
    let trigger = follow.map(|f| f.0);
    let queue = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let prio = if Some(i) == trigger {
                u64::MAX
            } else {
                cost(p)
            };
            (prio, Job::Base(i))
        })
        .collect();
    let state = Mutex::new(State {
        queue,
        running: 0,
        extra: Vec::new(),
        base_out: vec![None; points.len()],
        extra_out: Vec::new(),
    });
    let wake = Condvar::new();
    let panicked = Mutex::new(None);
    let worker = || {
        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            // Highest priority, earliest queued among equals.
            let best = st
                .queue
                .iter()
                .enumerate()
                .max_by_key(|(k, (prio, _))| (*prio, core::cmp::Reverse(*k)))
                .map(|(k, _)| k);
            let Some(k) = best else {
                if st.running == 0 {
                    return;
                }
                st = wake.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let (_, job) = st.queue.remove(k);
            let p = match job {
                Job::Base(i) => points.get(i).cloned(),
                Job::Extra(i) => st.extra.get(i).cloned(),
            };
            let Some(p) = p else { continue };
            st.running += 1;
            drop(st);
            // A panicking point must not leave the others waiting for it:
            // record it and re-raise it once every thread has stopped.
            let o = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&p))) {
                Ok(o) => o,
                Err(e) => {
                    *panicked.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    Outcome::default()
                }
            };
            let more = match (job, follow) {
                (Job::Base(i), Some((t, make))) if i == t => make(&o),
                _ => Vec::new(),
            };
            st = state.lock().unwrap_or_else(PoisonError::into_inner);
            st.running -= 1;
            match job {
                Job::Base(i) => st.base_out[i] = Some(o),
                Job::Extra(i) => st.extra_out[i] = Some(o),
            }
            for q in more {
                let i = st.extra.len();
                st.queue.push((cost(&q), Job::Extra(i)));
                st.extra.push(q);
                st.extra_out.push(None);
            }
            wake.notify_all();
        }
    };
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            sc.spawn(worker);
        }
    });
    if let Some(e) = panicked
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        std::panic::resume_unwind(e);
    }
    let st = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    let done = |v: Vec<Option<Outcome>>| v.into_iter().map(Option::unwrap_or_default).collect();
    (done(st.base_out), done(st.extra_out))
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
    fn follow_ups_run_from_their_trigger_and_come_back_in_order() {
        let tiny = |seed, conns| {
            let mut p =
                crate::study::srds06::point(seed, "C-S", Method::Put, 20_000, 1_000_000_000);
            p.conns = conns;
            p
        };
        let points = [tiny(1, 3), tiny(2, 4), tiny(3, 2)];
        // Follow-ups of point 1 depend on its outcome.
        let make = |o: &Outcome| vec![tiny(10 + o.times.len() as u64, 2), tiny(20, 1)];
        let alone: Vec<Outcome> = points.iter().map(run).collect();
        let want_extra: Vec<Outcome> = make(&alone[1]).iter().map(run).collect();
        for threads in [1, 2, 3] {
            let (base, extra) = run_plan(&points, Some((1, &make)), threads);
            assert_eq!(base, alone, "{threads} threads");
            assert_eq!(extra, want_extra, "{threads} threads");
        }
        assert_eq!(run_all(&points, 2), alone);
    }

    #[test]
    fn start_waits_for_ready_proxies() {
        let t = start_time(Duration::from_secs(1));
        assert!(t > Instant::ZERO + Duration::from_secs(4));
    }
}

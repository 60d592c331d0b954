//! The named scenarios of `ftsplice sim run`: a topology, a workload, the
//! faults, and the report. Each is a function of its [`Options`] only, so
//! the same seed gives the same report byte for byte.
//!
//! | name | what happens | must hold |
//! |---|---|---|
//! | `proxy-crash` | N concurrent PUTs through lb + 2 proxies; proxy1 crashes when half the bytes arrived | completed = N, broken = corrupted = 0 |
//! | `lb-crash` | same with a backup lb; the primary lb crashes halfway, the backup takes the VIP | same |
//! | `split-splice` | N concurrent GETs, the backend's agent sends responses straight to the client; the same workload client–server direct in the same run | throughput ≥ 0.97 × direct |
//! | `scale-out` | N concurrent PUTs through 2 proxies; a third boots a third of the way in, pulls the splice tables and takes load | nothing broken, proxy3 relays packets |
//! | `presplice-crash` | N concurrent PUTs; proxy1 crashes 300 µs after the clients start, while many connections are in their pre-splice phase (`presplice_crash`) | none hangs: each completes or is reset (measured, not in the demo) |
//! | `backend-crash` | a webmail client (paper's Action 1/2) over a LAN/WAN link; the primary backend crashes at one of 4 points; the logger replays on the alternate and re-splices (`backend_crash`) | broken = corrupted = 0 (deterministic), failover ≪ client-retry baseline |

pub mod backend_crash;
pub mod presplice_crash;
pub mod topology;

use crate::engine::fault::Fault;
use crate::report::svg::{goodput_series, run_plot, Plot};
use crate::report::Report;
use crate::roles::agent::Agent;
use crate::roles::endpoint::Endpoint;
use crate::roles::http::Method;
use crate::roles::proxy::Proxy;
use core::time::Duration;
use ftsplice_proto::Instant;
use std::io::Write;
use topology::{direct, spliced, Params, Topology};

/// Scenario names, in demo order.
pub const NAMES: [&str; 5] = [
    "proxy-crash",
    "lb-crash",
    "split-splice",
    "scale-out",
    "backend-crash",
];

/// Scenarios whose fault knowingly costs connections: they measure how
/// the loss shows (`ftsplice sim run` runs them; the demo does not, since
/// it requires every connection to survive).
pub const MEASURED: [&str; 1] = ["presplice-crash"];

/// How to run a scenario.
pub struct Options {
    pub seed: u64,
    /// Concurrent connections (the paper: 100).
    pub conns: usize,
    /// Body bytes per connection (the paper: 10 MB).
    pub size: u64,
    /// Capture the client's link to this pcap stream.
    pub pcap: Option<Box<dyn Write>>,
}

impl Options {
    /// The full-size run: 100 connections of 10 MB.
    pub fn full(seed: u64) -> Options {
        Options {
            seed,
            conns: 100,
            size: 10_000_000,
            pcap: None,
        }
    }
}

/// A finished scenario.
pub struct Run {
    pub report: Report,
    pub plot: Plot,
}

/// Simulated time after which a scenario gives up on unfinished connections.
fn limit(o: &Options) -> Instant {
    // 20x the time the bytes need at 1 Gbit/s, plus slack for the faults.
    let ideal_ms = (o.conns as u64 * o.size * 8) / 1_000_000;
    Instant::from_millis(10_000 + ideal_ms * 20)
}

/// Every connection is spliced (none is in its pre-splice phase, whose
/// sockets live only on one proxy: see `proto::owner`'s known limit).
fn all_spliced(conns: usize, proxies: &[crate::NodeId], s: &crate::Sim) -> bool {
    let (mut created, mut pre) = (0, 0);
    for &p in proxies {
        if let Some(px) = s.node::<Proxy>(p) {
            created += px.stats.splices_created;
            pre += px.presplicing();
        }
    }
    created as usize >= conns && pre == 0
}

/// Runs until `fraction` of the workload's bytes arrived and every
/// connection is spliced (or `limit`).
fn run_to(t: &mut Topology, o: &Options, fraction: f64) {
    let mark = (o.conns as u64 * o.size) as f64 * fraction;
    let lim = limit(o);
    let (conns, proxies) = (t.conns, t.proxies.clone());
    t.sim.run_while(lim, Duration::from_millis(1), |s| {
        s.stats().goodput_series().iter().sum::<u64>() as f64 >= mark
            && all_spliced(conns, &proxies, s)
    });
}

fn run_to_half(t: &mut Topology, o: &Options) {
    run_to(t, o, 0.5);
}

fn prepare(t: &mut Topology, o: &mut Options) -> Result<(), String> {
    if let Some(w) = o.pcap.take() {
        // The client's link is the first attached.
        t.sim
            .capture(crate::net::link::LinkId(0), w)
            .map_err(|e| format!("pcap: {e}"))?;
    }
    Ok(())
}

fn finish(name: &str, mut t: Topology, o: &Options) -> Run {
    t.run(limit(o));
    report_run(name, t)
}

/// The report and plot of a topology that has run to its end.
fn report_run(name: &str, mut t: Topology) -> Run {
    let _ = t.sim.flush_capture();
    let mut report = crate::report::from_sim(name, &t.sim);
    report
        .details
        .insert("sim_events".into(), t.sim.events() as f64);
    report
        .details
        .insert("sim_seconds".into(), t.sim.now().as_secs_f64());
    for (i, &p) in t.proxies.iter().enumerate() {
        if let Some(px) = t.sim.node::<Proxy>(p) {
            report.details.insert(
                format!("proxy{}_translated", i + 1),
                px.stats.translated as f64,
            );
        }
    }
    let plot = run_plot(&report, t.sim.stats());
    Run { report, plot }
}

fn params(o: &Options, method: Method) -> Params {
    Params::new(o.seed, o.conns, method, o.size)
}

fn proxy_crash(mut o: Options) -> Result<Run, String> {
    let mut t = spliced(&params(&o, Method::Put));
    prepare(&mut t, &mut o)?;
    run_to_half(&mut t, &o);
    t.sim.inject(Fault::Crash(t.proxies[0]));
    Ok(finish("proxy-crash", t, &o))
}

fn lb_crash(mut o: Options) -> Result<Run, String> {
    let mut p = params(&o, Method::Put);
    p.lb_backup = true;
    let mut t = spliced(&p);
    prepare(&mut t, &mut o)?;
    run_to_half(&mut t, &o);
    let lb = t.lb.ok_or("lb-crash: topology has no lb")?;
    t.sim.inject(Fault::Crash(lb));
    Ok(finish("lb-crash", t, &o))
}

fn split_splice(mut o: Options) -> Result<Run, String> {
    let mut base = direct(&params(&o, Method::Get));
    base.run(limit(&o));
    let baseline = crate::report::from_sim("direct", &base.sim);
    let mut p = params(&o, Method::Get);
    p.split = true;
    let mut t = spliced(&p);
    prepare(&mut t, &mut o)?;
    let mut run = finish("split-splice", t, &o);
    run.report.baseline_throughput_mbps = Some(baseline.throughput_mbps);
    if baseline.throughput_mbps > 0.0 {
        let ratio = run.report.throughput_mbps / baseline.throughput_mbps;
        run.report
            .details
            .insert("ratio_to_direct".into(), (ratio * 1e4).round() / 1e4);
    }
    run.plot.series.push(goodput_series(
        base.sim.stats(),
        100_000,
        "client-server direct",
    ));
    run.plot.series[0].name = "split splice".into();
    Ok(run)
}

/// Agent statistics of a split-splice topology (for tests).
pub fn agent_translated(t: &Topology) -> u64 {
    t.sim
        .node::<Endpoint>(t.server)
        .and_then(Endpoint::agent)
        .map_or(0, |a: &Agent| a.translated)
}

fn scale_out(mut o: Options) -> Result<Run, String> {
    let mut p = params(&o, Method::Put);
    p.proxies = 3;
    p.proxies_up = 2;
    let mut t = spliced(&p);
    prepare(&mut t, &mut o)?;
    run_to(&mut t, &o, 1.0 / 3.0);
    t.sim.inject(Fault::Restart(t.proxies[2]));
    Ok(finish("scale-out", t, &o))
}

/// Runs scenario `name`.
pub fn run(name: &str, o: Options) -> Result<Run, String> {
    match name {
        "proxy-crash" => proxy_crash(o),
        "lb-crash" => lb_crash(o),
        "split-splice" => split_splice(o),
        "scale-out" => scale_out(o),
        "backend-crash" => Ok(backend_crash::scenario(&backend_crash::BackendCrash::new(
            o.seed,
        ))),
        "presplice-crash" => presplice_crash::scenario(o, Method::Put),
        _ => Err(format!(
            "unknown scenario {name:?} (known: {}, {})",
            NAMES.join(", "),
            MEASURED.join(", ")
        )),
    }
}

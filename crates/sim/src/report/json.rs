//! Builds the report of a simulated run ([`from_sim`]). The report type is
//! `ftsplice_report`'s, shared with the namespace testbed.
//!
//! All fault times are milliseconds since the start of the run, on one
//! timeline: `detected_ms` is when the first node noticed (a failure
//! detector declared the victim dead, or a backup took over its address),
//! `recovered_ms` when the last connection that stalled around the fault
//! moved payload again (never earlier than detection). Only deterministic
//! values go in: the same build and seed give byte-identical JSON.

use crate::engine::fault::{Fault, FaultRecord};
use crate::engine::sim::Sim;
use crate::stats::{Note, Outcome, Stats};
use ftsplice_report::round_ms as ms;
pub use ftsplice_report::{percentile, Connections, FaultReport, Latency, Report};
use std::collections::BTreeMap;

/// Builds a report from a finished run: connections and latency from the
/// endpoints' records, faults from the engine's log (repairs such as
/// restarts are listed too) matched with nodes' notes and stalls.
pub fn from_sim(scenario: &str, sim: &Sim) -> Report {
    let stats = sim.stats();
    let mut c = Connections::default();
    let mut lat = Vec::new();
    let (mut first, mut last, mut bytes) = (u64::MAX, 0u64, 0u64);
    for r in stats.conns() {
        c.total += 1;
        let outcome = match r.outcome {
            Outcome::Completed if !stats.conn_verified(r) => Outcome::Corrupted,
            o => o,
        };
        match outcome {
            Outcome::Completed => {
                c.completed += 1;
                lat.push(
                    (r.end.as_micros() - r.start.as_micros().min(r.end.as_micros())) as f64 / 1e3,
                );
            }
            Outcome::Broken => c.broken += 1,
            Outcome::Corrupted => c.corrupted += 1,
        }
        first = first.min(r.start.as_micros());
        last = last.max(r.end.as_micros());
        bytes += r.bytes;
    }
    lat.sort_by(f64::total_cmp);
    let span_us = last.saturating_sub(first);
    let throughput = if span_us == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / span_us as f64
    };
    let faults = sim
        .faults()
        .iter()
        .map(|f| fault_report(sim, stats, f))
        .collect();
    Report {
        scenario: scenario.to_string(),
        mode: "sim".to_string(),
        seed: sim.seed(),
        connections: c,
        faults,
        throughput_mbps: (throughput * 100.0).round() / 100.0,
        latency_ms: Latency {
            p50: ms(percentile(&lat, 50.0)),
            p99: ms(percentile(&lat, 99.0)),
        },
        baseline_throughput_mbps: None,
        details: BTreeMap::new(),
    }
}

fn fault_report(sim: &Sim, stats: &Stats, f: &FaultRecord) -> FaultReport {
    let at = f.at.as_micros();
    let detected = match &f.fault {
        Fault::Crash(n) => {
            let addrs: Vec<_> = sim.net(*n).ifaces.iter().map(|i| i.addr).collect();
            stats
                .notes()
                .iter()
                .filter(|r| r.at.as_micros() >= at)
                .find(|r| match &r.note {
                    Note::PeerDead(a) => addrs.contains(a),
                    Note::Takeover(_) => r.node != *n,
                    _ => false,
                })
                .map(|r| r.at.as_micros())
        }
        Fault::Restart(n) => stats
            .notes()
            .iter()
            .filter(|r| r.at.as_micros() >= at)
            .find(|r| match &r.note {
                Note::PeerAlive(a) => sim.net(*n).ifaces.iter().any(|i| i.addr == *a),
                Note::Synced => r.node == *n,
                _ => false,
            })
            .map(|r| r.at.as_micros()),
        _ => None,
    };
    let recovered = if matches!(
        f.fault,
        Fault::Crash(_) | Fault::LinkDown(_) | Fault::Partition(_)
    ) {
        let stall_end = stats
            .stalls()
            .iter()
            .filter(|s| {
                s.from.as_micros() <= detected.unwrap_or(at).max(at) && s.to.as_micros() > at
            })
            .map(|s| s.to.as_micros())
            .max();
        match (detected, stall_end) {
            (Some(d), Some(s)) => Some(d.max(s)),
            (d, s) => d.or(s),
        }
    } else {
        None
    };
    FaultReport {
        kind: f.fault.kind().to_string(),
        target: f.target.clone(),
        at_ms: ms(at as f64 / 1e3),
        detected_ms: detected.map(|t| ms(t as f64 / 1e3)),
        recovered_ms: recovered.map(|t| ms(t as f64 / 1e3)),
    }
}

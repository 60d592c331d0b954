//! The report every scenario run prints with `--json`:
//!
//! `{"scenario", "mode", "seed", "connections": {"total", "completed",
//! "broken", "corrupted"}, "faults": [{"kind", "target", "at_ms",
//! "detected_ms", "recovered_ms"}], "throughput_mbps", "latency_ms": {"p50",
//! "p99"}}` plus optional `baseline_throughput_mbps` (a reference
//! configuration measured in the same run) and `details` (scenario-specific
//! numbers).
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
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Connections {
    pub total: u64,
    pub completed: u64,
    pub broken: u64,
    pub corrupted: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultReport {
    pub kind: String,
    pub target: String,
    pub at_ms: f64,
    pub detected_ms: Option<f64>,
    pub recovered_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub scenario: String,
    pub mode: String,
    pub seed: u64,
    pub connections: Connections,
    pub faults: Vec<FaultReport>,
    pub throughput_mbps: f64,
    pub latency_ms: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_throughput_mbps: Option<f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, f64>,
}

/// Rounds to microsecond precision so the printed numbers stay short.
fn ms(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

/// Nearest-rank percentile of sorted values (`q` in 0..=100).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// Builds a report from a finished run: connections and latency from
    /// the endpoints' records, faults from the engine's log (repairs such as
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
                        (r.end.as_micros() - r.start.as_micros().min(r.end.as_micros())) as f64
                            / 1e3,
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

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn json_has_the_design_fields_in_order() {
        let r = Report {
            scenario: "x".into(),
            mode: "sim".into(),
            seed: 1,
            connections: Connections::default(),
            faults: vec![],
            throughput_mbps: 1.5,
            latency_ms: Latency::default(),
            baseline_throughput_mbps: None,
            details: BTreeMap::new(),
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"scenario":"x","mode":"sim","seed":1,"connections":{"total":0,"completed":0,"broken":0,"corrupted":0},"faults":[],"throughput_mbps":1.5,"latency_ms":{"p50":0.0,"p99":0.0}}"#
        );
    }
}

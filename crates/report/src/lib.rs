//! The report every scenario run prints, simulated (`mode: "sim"`) or on
//! the namespace testbed (`mode: "testbed"`): one type, so the two cannot
//! drift.
//!
//! `{"scenario", "mode", "seed", "connections": {"total", "completed",
//! "broken", "corrupted"}, "faults": [{"kind", "target", "at_ms",
//! "detected_ms", "recovered_ms"}], "throughput_mbps", "latency_ms": {"p50",
//! "p99"}}` plus optional `baseline_throughput_mbps` (a reference
//! configuration measured in the same run) and `details` (scenario-specific
//! numbers, e.g. the client-visible stall).
//!
//! Fault times are milliseconds since the start of the run, on one
//! timeline: `detected_ms` is when the first node noticed (a failure
//! detector declared the victim dead, or a backup took over its address),
//! `recovered_ms` when the last connection that stalled around the fault
//! moved payload again (never earlier than detection).

pub mod table;

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    pub total: u64,
    pub completed: u64,
    pub broken: u64,
    pub corrupted: u64,
}

impl Connections {
    /// Every connection completed intact.
    pub fn all_intact(&self) -> bool {
        self.completed == self.total && self.broken == 0 && self.corrupted == 0
    }
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

impl Report {
    /// An empty report of `scenario` in `mode` ("sim" or "testbed").
    pub fn new(scenario: &str, mode: &str, seed: u64) -> Report {
        Report {
            scenario: scenario.to_string(),
            mode: mode.to_string(),
            seed,
            connections: Connections::default(),
            faults: Vec::new(),
            throughput_mbps: 0.0,
            latency_ms: Latency::default(),
            baseline_throughput_mbps: None,
            details: BTreeMap::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human table ([`table::render`]).
    pub fn table(&self) -> String {
        table::render(self)
    }
}

/// Rounds milliseconds to microsecond precision so printed numbers stay short.
pub fn round_ms(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

/// Nearest-rank percentile of sorted values (`q` in 0..=100); 0 for none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50 and p99 of unsorted values.
pub fn latency(values: &[f64]) -> Latency {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Latency {
        p50: round_ms(percentile(&v, 50.0)),
        p99: round_ms(percentile(&v, 99.0)),
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
        let l = latency(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((l.p50, l.p99), (3.0, 5.0));
    }

    #[test]
    fn json_has_the_design_fields_in_order() {
        let r = Report::new("x", "sim", 1);
        let j = serde_json::to_string(&Report {
            throughput_mbps: 1.5,
            ..r
        })
        .unwrap();
        assert_eq!(
            j,
            r#"{"scenario":"x","mode":"sim","seed":1,"connections":{"total":0,"completed":0,"broken":0,"corrupted":0},"faults":[],"throughput_mbps":1.5,"latency_ms":{"p50":0.0,"p99":0.0}}"#
        );
    }

    #[test]
    fn optional_fields_appear_when_set() {
        let mut r = Report::new("proxy-crash", "testbed", 0);
        r.baseline_throughput_mbps = Some(2.0);
        r.details.insert("stall_ms".into(), 12.5);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["mode"], "testbed");
        assert_eq!(v["baseline_throughput_mbps"], 2.0);
        assert_eq!(v["details"]["stall_ms"], 12.5);
    }

    #[test]
    fn intact_means_every_connection_completed() {
        let mut c = Connections {
            total: 3,
            completed: 3,
            ..Connections::default()
        };
        assert!(c.all_intact());
        c.completed = 2;
        c.broken = 1;
        assert!(!c.all_intact());
    }
}

//! The scenario report of DESIGN.md, printed as JSON (`--json`) or a table.

use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    pub total: u64,
    pub completed: u64,
    pub broken: u64,
    pub corrupted: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fault {
    pub kind: String,
    pub at_ms: u64,
    pub detected_ms: Option<u64>,
    pub recovered_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub scenario: String,
    pub mode: &'static str,
    pub seed: u64,
    pub connections: Connections,
    pub faults: Vec<Fault>,
    pub throughput_mbps: f64,
    pub latency_ms: Latency,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn table(&self) -> String {
        let c = &self.connections;
        format!(
            "scenario {} ({})\n  connections: {} total, {} completed, {} broken, {} corrupted\n  throughput: {:.1} Mbit/s\n  latency: p50 {:.2} ms, p99 {:.2} ms\n  faults: {}\n",
            self.scenario,
            self.mode,
            c.total,
            c.completed,
            c.broken,
            c.corrupted,
            self.throughput_mbps,
            self.latency_ms.p50,
            self.latency_ms.p99,
            self.faults.len()
        )
    }
}

/// The `q`-quantile (0..=1) of `xs` by nearest rank; 0 for none.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_design_fields() {
        let r = Report {
            scenario: "baseline".into(),
            mode: "testbed",
            seed: 0,
            connections: Connections {
                total: 2,
                completed: 2,
                broken: 0,
                corrupted: 0,
            },
            faults: vec![],
            throughput_mbps: 1.5,
            latency_ms: Latency { p50: 1.0, p99: 2.0 },
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["scenario"], "baseline");
        assert_eq!(v["mode"], "testbed");
        assert_eq!(v["connections"]["completed"], 2);
        assert_eq!(v["latency_ms"]["p99"], 2.0);
        assert!(v["faults"].as_array().unwrap().is_empty());
        assert!(r.table().contains("2 completed"));
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let xs = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&xs, 0.5), 3.0);
        assert_eq!(quantile(&xs, 0.99), 5.0);
        assert_eq!(quantile(&xs, 0.0), 1.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}

//! The human-readable summary of a [`Report`].

use crate::Report;
use std::fmt::Write;

fn opt_delta(t: Option<f64>, from: f64) -> String {
    t.map_or_else(|| "-".to_string(), |t| format!("+{:.1} ms", t - from))
}

/// Renders `r` as an aligned text table.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.connections;
    let _ = writeln!(
        s,
        "scenario     {} ({}, seed {})",
        r.scenario, r.mode, r.seed
    );
    let _ = writeln!(
        s,
        "connections  {} total, {} completed, {} broken, {} corrupted",
        c.total, c.completed, c.broken, c.corrupted
    );
    let _ = write!(s, "throughput   {:.1} Mbit/s", r.throughput_mbps);
    if let Some(b) = r.baseline_throughput_mbps {
        let ratio = if b > 0.0 { r.throughput_mbps / b } else { 0.0 };
        let _ = write!(s, " (baseline {b:.1} Mbit/s, ratio {ratio:.3})");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "latency      p50 {:.1} ms, p99 {:.1} ms",
        r.latency_ms.p50, r.latency_ms.p99
    );
    if !r.faults.is_empty() {
        let _ = writeln!(
            s,
            "faults       {:<10} {:<10} {:>10} {:>12} {:>12}",
            "kind", "target", "at", "detected", "recovered"
        );
        for f in &r.faults {
            let _ = writeln!(
                s,
                "             {:<10} {:<10} {:>7.1} ms {:>12} {:>12}",
                f.kind,
                f.target,
                f.at_ms,
                opt_delta(f.detected_ms, f.at_ms),
                opt_delta(f.recovered_ms, f.at_ms)
            );
        }
    }
    for (k, v) in &r.details {
        let _ = writeln!(s, "{k:<12} {v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Connections, FaultReport, Latency};
    use std::collections::BTreeMap;

    #[test]
    fn shows_fault_delays_relative_to_the_fault() {
        let r = Report {
            scenario: "proxy-crash".into(),
            mode: "sim".into(),
            seed: 3,
            connections: Connections {
                total: 2,
                completed: 2,
                broken: 0,
                corrupted: 0,
            },
            faults: vec![FaultReport {
                kind: "crash".into(),
                target: "proxy1".into(),
                at_ms: 1000.0,
                detected_ms: Some(1030.5),
                recovered_ms: None,
            }],
            throughput_mbps: 900.0,
            latency_ms: Latency { p50: 1.0, p99: 2.0 },
            baseline_throughput_mbps: Some(1000.0),
            details: BTreeMap::new(),
        };
        let t = render(&r);
        assert!(t.contains("2 completed, 0 broken"), "{t}");
        assert!(t.contains("+30.5 ms"), "{t}");
        assert!(t.contains("ratio 0.900"), "{t}");
    }
}

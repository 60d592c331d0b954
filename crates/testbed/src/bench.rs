//! `ftsplice bench throughput`: one iperf3 stream (server to client,
//! `iperf3 -R`, the direction a web server's responses take) over the same
//! system shape through each path, in one run:
//!
//! - (a) direct: client -> backend over the switch;
//! - (b) kernel IP forwarding: through the router host (one hop);
//! - (c) HAProxy in TCP mode on its own host;
//! - (d) ftsplice: lb + proxy splice (backend -> SSA gateway -> proxy ->
//!   client on the way back);
//! - (e) ftsplice split splice: responses leave the backend through the
//!   agent straight to the client.
//!
//! Goals: (d) >= 0.9 x (b), (e) >= 0.97 x (a). A path that cannot run (a
//! daemon missing or failing) is reported with its error, never a number.

use crate::haproxy;
use crate::iperf::{client_json, parse_received_mbps, IperfServer};
use crate::system::plan::{HTTP_PORT, IPERF_PORT};
use crate::system::{ServiceKind, Spec, System};
use anyhow::Result;
use serde::Serialize;
use std::net::SocketAddrV4;
use std::path::Path;

/// One path's measurement.
#[derive(Clone, Debug, Serialize)]
pub struct PathResult {
    pub path: String,
    pub label: String,
    pub gbps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A goal `num >= factor x den`.
#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub name: String,
    pub ratio: Option<f64>,
    pub target: f64,
    pub met: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub secs: u32,
    pub direction: String,
    pub paths: Vec<PathResult>,
    pub goals: Vec<Goal>,
}

const PATHS: [(&str, &str); 5] = [
    ("a", "direct"),
    ("b", "kernel IP forwarding hop"),
    ("c", "HAProxy TCP mode"),
    ("d", "ftsplice lb + proxy splice"),
    ("e", "ftsplice split splice"),
];

fn measure(sys: &System, server_ns: usize, target: SocketAddrV4, secs: u32) -> Result<f64> {
    let srv = IperfServer::start_any(
        sys.ns(server_ns),
        SocketAddrV4::new(sys.plan.backend(0), IPERF_PORT),
    )?;
    let out = client_json(sys.ns(sys.nodes.clients[0]), target, secs, true, None);
    drop(srv);
    Ok(parse_received_mbps(&out?)? / 1e3)
}

fn record(paths: &mut Vec<PathResult>, key: &str, r: Result<f64>) {
    let label = PATHS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, l)| *l)
        .to_string();
    let (gbps, error) = match r {
        Ok(g) => (Some((g * 1000.0).round() / 1000.0), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    paths.push(PathResult {
        path: key.into(),
        label,
        gbps,
        error,
    });
}

fn splice_path(bin: &Path, secs: u32, split: bool) -> Result<f64> {
    let mut spec = Spec::new(bin);
    spec.service = ServiceKind::Iperf;
    spec.split = split;
    let mut sys = System::up(spec)?;
    let b0 = sys.nodes.backends[0];
    let vip = SocketAddrV4::new(sys.plan.vip(), HTTP_PORT);
    let r = measure(&sys, b0, vip, secs);
    sys.check()?;
    r
}

/// Runs every path for `secs` seconds each.
pub fn throughput(bin: &Path, secs: u32) -> Result<BenchReport> {
    let mut paths = reference_paths(bin, secs)?;
    record(&mut paths, "d", splice_path(bin, secs, false));
    record(&mut paths, "e", splice_path(bin, secs, true));
    Ok(BenchReport::new(secs, paths))
}

/// Paths (a), (b), (c): no ftsplice daemon involved.
pub fn reference_paths(bin: &Path, secs: u32) -> Result<Vec<PathResult>> {
    let mut paths = Vec::new();
    {
        let mut spec = Spec::new(bin);
        spec.daemons = false;
        spec.bench_hosts = true;
        spec.service = ServiceKind::Iperf;
        let sys = System::up(spec)?;
        let b0 = sys.nodes.backends[0];
        let p = &sys.plan;
        let direct = SocketAddrV4::new(p.backend(0), IPERF_PORT);
        record(&mut paths, "a", measure(&sys, b0, direct, secs));
        let routed = SocketAddrV4::new(p.routed_backend(), IPERF_PORT);
        record(&mut paths, "b", measure(&sys, b0, routed, secs));
        let hap = SocketAddrV4::new(p.haproxy(), IPERF_PORT);
        let r = sys
            .nodes
            .haproxy
            .ok_or_else(|| anyhow::anyhow!("no HAProxy host"))
            .and_then(|h| haproxy::start(sys.ns(h), &sys.run.path, hap, direct))
            .and_then(|_proc| measure(&sys, b0, hap, secs));
        record(&mut paths, "c", r);
    }
    Ok(paths)
}

impl BenchReport {
    /// The report of `paths` with the goal ratios computed.
    pub fn new(secs: u32, paths: Vec<PathResult>) -> BenchReport {
        let g = |k: &str| paths.iter().find(|p| p.path == k).and_then(|p| p.gbps);
        let goal = |name: &str, num: Option<f64>, den: Option<f64>, target: f64| {
            let ratio = match (num, den) {
                (Some(n), Some(d)) if d > 0.0 => Some((n / d * 1000.0).round() / 1000.0),
                _ => None,
            };
            Goal {
                name: name.into(),
                ratio,
                target,
                met: ratio.map(|r| r >= target),
            }
        };
        let goals = vec![
            goal("(d)/(b)", g("d"), g("b"), 0.9),
            goal("(e)/(a)", g("e"), g("a"), 0.97),
            goal("(c)/(b)", g("c"), g("b"), 0.0),
        ];
        BenchReport {
            secs,
            direction: "server to client (iperf3 -R), one TCP stream".into(),
            paths,
            goals,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn table(&self) -> String {
        let mut s = format!("throughput, {} s per path, {}\n", self.secs, self.direction);
        for p in &self.paths {
            match (p.gbps, &p.error) {
                (Some(g), _) => {
                    s.push_str(&format!("  ({}) {:<28} {g:>8.3} Gbit/s\n", p.path, p.label))
                }
                (None, e) => s.push_str(&format!(
                    "  ({}) {:<28}   FAILED: {}\n",
                    p.path,
                    p.label,
                    e.as_deref().unwrap_or("?")
                )),
            }
        }
        for g in &self.goals {
            let r = g.ratio.map_or("-".into(), |r| format!("{r:.3}"));
            let verdict = match (g.met, g.target > 0.0) {
                (_, false) => "(reference)".to_string(),
                (Some(true), _) => format!("goal >= {} met", g.target),
                (Some(false), _) => format!("goal >= {} NOT met", g.target),
                (None, _) => format!("goal >= {}: not measured", g.target),
            };
            s.push_str(&format!("  {:<8} {r:>6}  {verdict}\n", g.name));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_numbers_failures_and_goals() {
        let r = BenchReport {
            secs: 1,
            direction: "x".into(),
            paths: vec![
                PathResult {
                    path: "a".into(),
                    label: "direct".into(),
                    gbps: Some(10.0),
                    error: None,
                },
                PathResult {
                    path: "e".into(),
                    label: "split".into(),
                    gbps: None,
                    error: Some("agent exited".into()),
                },
            ],
            goals: vec![Goal {
                name: "(e)/(a)".into(),
                ratio: None,
                target: 0.97,
                met: None,
            }],
        };
        let t = r.table();
        assert!(t.contains("10.000 Gbit/s"), "{t}");
        assert!(t.contains("FAILED: agent exited"), "{t}");
        assert!(t.contains("not measured"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["paths"][1]["gbps"], serde_json::Value::Null);
    }
}

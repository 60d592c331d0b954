//! `ftsplice bench throughput`: one TCP stream, server to client (the
//! direction a web server's responses take), over the same system shape
//! through each path, in one run:
//!
//! - (a) direct: client -> backend over the switch;
//! - (b) kernel IP forwarding: through the router host (one hop);
//! - (c) HAProxy in TCP mode on its own host;
//! - (d) ftsplice: lb + proxy splice (backend -> SSA gateway -> proxy ->
//!   client on the way back);
//! - (e) ftsplice split splice: responses leave the backend through the
//!   agent straight to the client.
//!
//! Each path is measured with two unmodified tools: `iperf3 -R` and a
//! `curl` GET of a large (sparse) file from nginx. The proxies splice
//! connections after reading an HTTP request head, so iperf3 (not HTTP)
//! only runs through them if they route non-HTTP connections; the curl
//! column always does. Goals, per tool: (d) >= 0.9 x (b), (e) >= 0.97 x (a).
//! A path that cannot run is reported with its error, never a number.

use crate::haproxy;
use crate::iperf::{client_json, parse_received_mbps, IperfServer};
use crate::system::plan::{HTTP_PORT, IPERF_PORT};
use crate::system::{ServiceKind, Spec, System, BIG_FILE};
use anyhow::{bail, Context, Result};
use ftsplice_linux::NetNs;
use serde::Serialize;
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Command, Stdio};

/// The two measuring tools.
pub const TOOLS: [&str; 2] = ["iperf3", "http"];

/// One path's measurements, Gbit/s per tool.
#[derive(Clone, Debug, Serialize)]
pub struct PathResult {
    pub path: String,
    pub label: String,
    pub iperf3_gbps: Option<f64>,
    pub http_gbps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iperf3_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_error: Option<String>,
}

impl PathResult {
    pub fn gbps(&self, tool: &str) -> Option<f64> {
        if tool == "iperf3" {
            self.iperf3_gbps
        } else {
            self.http_gbps
        }
    }
}

/// A goal `ratio >= target` for one tool.
#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub name: String,
    pub tool: String,
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

/// Bytes of the sparse file the HTTP measurement downloads (far more than
/// any run moves: curl stops after `secs`).
const BIG: u64 = 1 << 40;

fn iperf(sys: &System, target: SocketAddrV4, secs: u32) -> Result<f64> {
    let b0 = sys.nodes.backends[0];
    let srv = IperfServer::start_any(
        sys.ns(b0),
        SocketAddrV4::new(sys.plan.backend(0), IPERF_PORT),
    )?;
    let out = client_json(sys.ns(sys.nodes.clients[0]), target, secs, true, None);
    drop(srv);
    Ok(parse_received_mbps(&out?)? / 1e3)
}

/// `curl` GETs the sparse file for `secs` seconds; Gbit/s.
pub fn http(ns: &NetNs, target: SocketAddrV4, secs: u32) -> Result<f64> {
    let url = format!("http://{target}/{BIG_FILE}");
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name(), "curl", "-s", "-o", "/dev/null"])
        .args(["--max-time", &secs.to_string()])
        .args([
            "-w",
            "%{speed_download} %{size_download} %{http_code}",
            &url,
        ])
        .stdin(Stdio::null())
        .output()
        .context("starting curl (is it installed? see scripts/setup.sh)")?;
    // 28: stopped by --max-time, the normal end here.
    let code = out.status.code();
    if code != Some(0) && code != Some(28) {
        bail!("curl {url} exited with {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    parse_curl(&text).with_context(|| format!("curl {url}: {text}"))
}

/// `speed_download size_download http_code` -> Gbit/s.
fn parse_curl(text: &str) -> Result<f64> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let (Some(speed), Some(size), Some(code)) = (f.first(), f.get(1), f.get(2)) else {
        bail!("unexpected curl output");
    };
    if *code != "200" {
        bail!("HTTP status {code}");
    }
    let size: f64 = size.parse()?;
    if size <= 0.0 {
        bail!("nothing downloaded");
    }
    Ok(speed.parse::<f64>()? * 8.0 / 1e9)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn result(key: &str, iperf: Result<f64>, http: Result<f64>) -> PathResult {
    let label = PATHS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, l)| *l)
        .to_string();
    let split = |r: Result<f64>| match r {
        Ok(g) => (Some(round3(g)), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let (iperf3_gbps, iperf3_error) = split(iperf);
    let (http_gbps, http_error) = split(http);
    PathResult {
        path: key.into(),
        label,
        iperf3_gbps,
        http_gbps,
        iperf3_error,
        http_error,
    }
}

/// An ftsplice path: one system splicing to iperf3, one to nginx.
fn splice_path(bin: &Path, secs: u32, split: bool) -> PathResult {
    let run = |service: ServiceKind| -> Result<f64> {
        let mut spec = Spec::new(bin);
        spec.service = service;
        spec.split = split;
        spec.big_file = Some(BIG);
        let mut sys = System::up(spec)?;
        let vip = SocketAddrV4::new(sys.plan.vip(), HTTP_PORT);
        let r = match service {
            ServiceKind::Iperf => iperf(&sys, vip, secs),
            ServiceKind::Http => http(sys.ns(sys.nodes.clients[0]), vip, secs),
        };
        sys.check()?;
        r
    };
    let key = if split { "e" } else { "d" };
    result(key, run(ServiceKind::Iperf), run(ServiceKind::Http))
}

/// Runs every path for `secs` seconds per tool.
pub fn throughput(bin: &Path, secs: u32) -> Result<BenchReport> {
    let mut paths = reference_paths(bin, secs)?;
    paths.push(splice_path(bin, secs, false));
    paths.push(splice_path(bin, secs, true));
    Ok(BenchReport::new(secs, paths))
}

/// Paths (a), (b), (c): no ftsplice daemon involved.
pub fn reference_paths(bin: &Path, secs: u32) -> Result<Vec<PathResult>> {
    let mut spec = Spec::new(bin);
    spec.daemons = false;
    spec.bench_hosts = true;
    spec.big_file = Some(BIG);
    let sys = System::up(spec)?;
    let p = &sys.plan;
    let client = sys.ns(sys.nodes.clients[0]);
    let on = |ip, port| SocketAddrV4::new(ip, port);
    let mut paths = Vec::new();
    for (key, ip) in [("a", p.backend(0)), ("b", p.routed_backend())] {
        paths.push(result(
            key,
            iperf(&sys, on(ip, IPERF_PORT), secs),
            http(client, on(ip, HTTP_PORT), secs),
        ));
    }
    let hap = sys.nodes.haproxy.context("no HAProxy host")?;
    let relays = [
        (on(p.haproxy(), IPERF_PORT), on(p.backend(0), IPERF_PORT)),
        (on(p.haproxy(), HTTP_PORT), on(p.backend(0), HTTP_PORT)),
    ];
    match haproxy::start(sys.ns(hap), &sys.run.path, &relays) {
        Ok(_proc) => paths.push(result(
            "c",
            iperf(&sys, relays[0].0, secs),
            http(client, relays[1].0, secs),
        )),
        Err(e) => {
            let msg = format!("{e:#}");
            paths.push(result("c", Err(anyhow::anyhow!("{msg}")), Err(e)));
        }
    }
    Ok(paths)
}

impl BenchReport {
    /// The report of `paths` with the goal ratios computed per tool.
    pub fn new(secs: u32, paths: Vec<PathResult>) -> BenchReport {
        let g = |k: &str, tool: &str| {
            paths
                .iter()
                .find(|p| p.path == k)
                .and_then(|p| p.gbps(tool))
        };
        let mut goals = Vec::new();
        for tool in TOOLS {
            for (name, num, den, target) in [
                ("(d)/(b)", "d", "b", 0.9),
                ("(e)/(a)", "e", "a", 0.97),
                ("(c)/(b)", "c", "b", 0.0),
            ] {
                let ratio = match (g(num, tool), g(den, tool)) {
                    (Some(n), Some(d)) if d > 0.0 => Some(round3(n / d)),
                    _ => None,
                };
                goals.push(Goal {
                    name: name.into(),
                    tool: tool.into(),
                    ratio,
                    target,
                    met: ratio.map(|r| r >= target),
                });
            }
        }
        BenchReport {
            secs,
            direction: "server to client, one TCP stream (iperf3 -R; curl GET)".into(),
            paths,
            goals,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn table(&self) -> String {
        let mut s = format!(
            "throughput, {} s per path and tool, {}\n  {:<32} {:>14} {:>14}\n",
            self.secs, self.direction, "path", "iperf3 Gbit/s", "http Gbit/s"
        );
        let cell = |g: Option<f64>| g.map_or("FAILED".to_string(), |g| format!("{g:.3}"));
        for p in &self.paths {
            s.push_str(&format!(
                "  ({}) {:<28} {:>14} {:>14}\n",
                p.path,
                p.label,
                cell(p.iperf3_gbps),
                cell(p.http_gbps)
            ));
        }
        for g in &self.goals {
            let r = g.ratio.map_or("-".into(), |r| format!("{r:.3}"));
            let verdict = match (g.met, g.target > 0.0) {
                (_, false) => "(reference)".to_string(),
                (Some(true), _) => format!("goal >= {} met", g.target),
                (Some(false), _) => format!("goal >= {} NOT met", g.target),
                (None, _) => format!("goal >= {}: not measured", g.target),
            };
            s.push_str(&format!(
                "  {:<8} {:<7} {r:>6}  {verdict}\n",
                g.name, g.tool
            ));
        }
        for p in &self.paths {
            for (tool, e) in [("iperf3", &p.iperf3_error), ("http", &p.http_error)] {
                if let Some(e) = e {
                    let short: String = e.lines().take(4).collect::<Vec<_>>().join(" | ");
                    s.push_str(&format!("  ({}) {tool} failed: {short}\n", p.path));
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_curl_write_out() {
        assert_eq!(parse_curl("125000000.0 1000 200").unwrap(), 1.0);
        assert!(parse_curl("0 0 200").is_err());
        assert!(parse_curl("100 100 404").is_err());
        assert!(parse_curl("").is_err());
    }

    #[test]
    fn table_shows_numbers_failures_and_goals() {
        let paths = vec![
            result("a", Ok(10.0), Ok(9.0)),
            result("e", Err(anyhow::anyhow!("agent exited")), Ok(9.0)),
        ];
        let r = BenchReport::new(1, paths);
        let t = r.table();
        assert!(t.contains("10.000"), "{t}");
        assert!(t.contains("(e) iperf3 failed: agent exited"), "{t}");
        assert!(t.contains("not measured"), "{t}");
        let e_a_http = r
            .goals
            .iter()
            .find(|g| g.name == "(e)/(a)" && g.tool == "http")
            .unwrap();
        assert_eq!(e_a_http.ratio, Some(1.0));
        assert_eq!(e_a_http.met, Some(true));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["paths"][1]["iperf3_gbps"], serde_json::Value::Null);
    }
}

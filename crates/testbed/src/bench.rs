//! `ftsplice bench throughput`: one TCP stream, server to client (the
//! direction a web server's responses take), through each path of the same
//! system shape, measured in one run:
//!
//! - (a) direct: client -> backend over the switch;
//! - (b) kernel IP forwarding: through the router host (one hop);
//! - (c) HAProxy in TCP mode on its own host;
//! - (d) ftsplice: lb + proxy splice (backend -> SSA gateway -> proxy ->
//!   client on the way back);
//! - (e) ftsplice split splice: responses leave the backend through the
//!   agent straight to the client.
//!
//! Two systems stay up for the whole run: one with the ftsplice daemons and
//! the bench hosts (router, HAProxy) for (a) to (d), and one with split
//! splice agents for (e); both get the same veth offloads (by default the
//! veth defaults: TSO/GSO and checksum offload on). Every path is measured
//! with the same tool (`iperf3 -R`, or a `curl` GET of a large sparse file
//! from nginx) in `rounds` rounds; each round runs the five paths one after
//! the other, starting at a different path each round, so that a burst of
//! load on the machine does not always hit the same path. The report gives
//! every sample, each path's median and range, and each goal ratio per round
//! (a round's paths ran within seconds of each other) with its median and
//! range, and the machine's load average at the start of every round. Goals:
//! (d) >= 0.9 x (b), (e) >= 0.97 x (a), judged on the median.
//! A path that cannot run is reported with its error, never a number.

use crate::haproxy;
use crate::iperf::{client_json, parse_received_mbps, IperfServer};
use crate::system::plan::{HTTP_PORT, IPERF_PORT};
use crate::system::process::Proc;
use crate::system::{ServiceKind, Spec, System, BIG_FILE};
use anyhow::{bail, Context, Result};
use ftsplice_linux::{NetNs, Offloads};
use serde::Serialize;
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Command, Stdio};

/// What measures a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    /// `iperf3 -c -R` against an iperf3 server on the backend.
    Iperf3,
    /// `curl` GET of a sparse file from nginx on the backend.
    Http,
}

impl Tool {
    pub fn parse(s: &str) -> Result<Tool> {
        match s {
            "iperf3" => Ok(Tool::Iperf3),
            "http" => Ok(Tool::Http),
            _ => bail!("unknown tool '{s}' (iperf3 or http)"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Iperf3 => "iperf3",
            Tool::Http => "http",
        }
    }

    fn port(self) -> u16 {
        match self {
            Tool::Iperf3 => IPERF_PORT,
            Tool::Http => HTTP_PORT,
        }
    }
}

/// How the bench runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seconds per measurement.
    pub secs: u32,
    /// Rounds over all five paths.
    pub rounds: u32,
    pub tool: Tool,
    pub offloads: Offloads,
    /// The proxies' heartbeat interval (3 misses declare one dead). The
    /// bench measures throughput, not failover: at 10 ms, a machine this
    /// busy delays beats by over 30 ms, the lbs empty their tables, and a
    /// path stalls for reasons the data plane has no part in.
    pub heartbeat_ms: u64,
    /// Seconds of one unmeasured run per path before the rounds (ARP
    /// caches, page cache, lazily started daemon paths).
    pub warmup_secs: u32,
}

impl Options {
    pub fn new(tool: Tool) -> Options {
        Options {
            secs: 5,
            rounds: 5,
            tool,
            offloads: Offloads::Default,
            heartbeat_ms: 100,
            warmup_secs: 1,
        }
    }
}

/// Median and range of some samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some(Spread {
            median: round3(median),
            min: round3(s[0]),
            max: round3(s[n - 1]),
        })
    }
}

/// One path's measurements: Gbit/s per round (`None` where it failed).
#[derive(Clone, Debug, Serialize)]
pub struct PathResult {
    pub path: String,
    pub label: String,
    pub gbps: Vec<Option<f64>>,
    pub spread: Option<Spread>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl PathResult {
    fn new(key: &str) -> PathResult {
        PathResult {
            path: key.into(),
            label: label(key).into(),
            gbps: Vec::new(),
            spread: None,
            errors: Vec::new(),
        }
    }

    fn push(&mut self, r: Result<f64>) {
        match r {
            Ok(g) => self.gbps.push(Some(round3(g))),
            Err(e) => {
                self.gbps.push(None);
                self.errors.push(format!("{e:#}"));
            }
        }
        let ok: Vec<f64> = self.gbps.iter().flatten().copied().collect();
        self.spread = Spread::of(&ok);
    }
}

/// A goal `ratio >= target`, the ratio taken per round.
#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub name: String,
    pub ratios: Vec<Option<f64>>,
    pub spread: Option<Spread>,
    /// 0 for a reference ratio without a goal.
    pub target: f64,
    /// Whether the median ratio meets the target.
    pub met: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub tool: Tool,
    pub secs: u32,
    pub rounds: u32,
    pub direction: String,
    pub offloads: String,
    pub heartbeat_ms: u64,
    pub paths: Vec<PathResult>,
    pub goals: Vec<Goal>,
    /// The machine's 1-minute load average at the start of each round and
    /// after the last (`None` where unreadable): other work sharing the
    /// CPUs, which every throughput figure here depends on.
    pub load: Vec<Option<f64>>,
}

const PATHS: [(&str, &str); 5] = [
    ("a", "direct"),
    ("b", "kernel IP forwarding hop"),
    ("c", "HAProxy TCP mode"),
    ("d", "ftsplice lb + proxy splice"),
    ("e", "ftsplice split splice"),
];

/// (name, numerator, denominator, target); target 0: a reference ratio.
const GOALS: [(&str, &str, &str, f64); 3] = [
    ("(d)/(b)", "d", "b", 0.9),
    ("(e)/(a)", "e", "a", 0.97),
    ("(c)/(b)", "c", "b", 0.0),
];

fn label(key: &str) -> &'static str {
    PATHS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, l)| *l)
}

/// Bytes of the sparse file the HTTP measurement downloads (far more than
/// any run moves: curl stops after `secs`).
const BIG: u64 = 1 << 40;

/// `iperf3 -R` from client 0 of `sys` to `target`, served by backend 0.
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

/// One measurement with `tool` from client 0 of `sys` to `target`.
fn measure(sys: &System, tool: Tool, target: SocketAddrV4, secs: u32) -> Result<f64> {
    match tool {
        Tool::Iperf3 => iperf(sys, target, secs),
        Tool::Http => http(sys.ns(sys.nodes.clients[0]), target, secs),
    }
}

/// The systems of one bench run: `main` carries (a) to (d), `split` (e).
struct Systems {
    // Field order is drop order: HAProxy before its system.
    haproxy: Result<Proc>,
    main: System,
    split: Result<System>,
}

fn spec(bin: &Path, o: &Options) -> Spec {
    let mut spec = Spec::new(bin);
    spec.big_file = Some(BIG);
    spec.offloads = o.offloads;
    spec.heartbeat_ms = o.heartbeat_ms;
    spec.service = match o.tool {
        Tool::Http => ServiceKind::Http,
        Tool::Iperf3 => ServiceKind::Iperf,
    };
    spec
}

impl Systems {
    /// `daemons`: start the ftsplice daemons (false: paths (a) to (c) only).
    fn up(bin: &Path, o: &Options, daemons: bool) -> Result<Systems> {
        let mut m = spec(bin, o);
        m.bench_hosts = true;
        m.daemons = daemons;
        let main = System::up(m).context("the system of paths (a) to (d)")?;
        let split = if daemons {
            let mut s = spec(bin, o);
            s.split = true;
            System::up(s).context("the split-splice system of path (e)")
        } else {
            Err(anyhow::anyhow!("not started"))
        };
        let p = &main.plan;
        let hap = main.nodes.haproxy.context("no HAProxy host")?;
        let port = o.tool.port();
        let relay = [(
            SocketAddrV4::new(p.haproxy(), port),
            SocketAddrV4::new(p.backend(0), port),
        )];
        let haproxy = haproxy::start(main.ns(hap), &main.run.path, &relay);
        Ok(Systems {
            haproxy,
            main,
            split,
        })
    }

    fn run(&mut self, key: &str, o: &Options) -> Result<f64> {
        let port = o.tool.port();
        let on = |ip| SocketAddrV4::new(ip, port);
        let p = &self.main.plan;
        let r = match key {
            "a" => measure(&self.main, o.tool, on(p.backend(0)), o.secs),
            "b" => measure(&self.main, o.tool, on(p.routed_backend()), o.secs),
            "c" => match &self.haproxy {
                Ok(_) => measure(&self.main, o.tool, on(p.haproxy()), o.secs),
                Err(e) => Err(anyhow::anyhow!("HAProxy did not start: {e:#}")),
            },
            "d" => self.splice(false, o),
            "e" => self.splice(true, o),
            _ => bail!("no path ({key})"),
        };
        self.main.check()?;
        r
    }

    fn splice(&mut self, split: bool, o: &Options) -> Result<f64> {
        let sys = if split {
            self.split.as_mut().map_err(|e| anyhow::anyhow!("{e:#}"))?
        } else {
            &mut self.main
        };
        if !sys.spec.daemons {
            bail!("the ftsplice daemons are not running");
        }
        // The proxies splice VIP:80 to nginx (an HTTP route), or VIP:5201
        // to iperf3 on backend:5201 (an L4 route).
        let vip = SocketAddrV4::new(sys.plan.vip(), o.tool.port());
        let r = measure(sys, o.tool, vip, o.secs);
        sys.check()?;
        r
    }
}

/// Runs `o.rounds` rounds over the five paths (with `daemons` false, only
/// (a) to (c): the paths that need no ftsplice binary).
pub fn run(bin: &Path, o: &Options, daemons: bool) -> Result<BenchReport> {
    let mut sys = Systems::up(bin, o, daemons)?;
    let keys: Vec<&str> = PATHS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| daemons || !matches!(*k, "d" | "e"))
        .collect();
    let mut paths: Vec<PathResult> = keys.iter().map(|k| PathResult::new(k)).collect();
    if o.warmup_secs > 0 {
        let warm = Options {
            secs: o.warmup_secs,
            ..o.clone()
        };
        for k in &keys {
            // A failure here shows again in the rounds.
            let _ = sys.run(k, &warm);
        }
    }
    let mut load = Vec::new();
    for round in 0..o.rounds as usize {
        load.push(ftsplice_linux::load_average());
        for i in 0..keys.len() {
            let k = (round + i) % keys.len();
            let r = sys.run(keys[k], o);
            paths[k].push(r);
        }
    }
    load.push(ftsplice_linux::load_average());
    let mut report = BenchReport::new(o, paths);
    report.load = load;
    Ok(report)
}

/// The full bench: every path, with the daemons.
pub fn throughput(bin: &Path, o: &Options) -> Result<BenchReport> {
    run(bin, o, true)
}

fn offloads_text(o: Offloads) -> &'static str {
    match o {
        Offloads::Default => "veth defaults: TSO, GSO and checksum offload on, GRO off",
        Offloads::Off => "all off (tx, rx, tso, gso, gro)",
    }
}

impl BenchReport {
    /// The report of `paths`, with each goal ratio per round.
    pub fn new(o: &Options, paths: Vec<PathResult>) -> BenchReport {
        let samples = |k: &str| paths.iter().find(|p| p.path == k).map(|p| &p.gbps);
        let mut goals = Vec::new();
        for (name, num, den, target) in GOALS {
            let ratios: Vec<Option<f64>> = match (samples(num), samples(den)) {
                (Some(n), Some(d)) => n
                    .iter()
                    .zip(d)
                    .map(|(n, d)| match (n, d) {
                        (Some(n), Some(d)) if *d > 0.0 => Some(round3(n / d)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let ok: Vec<f64> = ratios.iter().flatten().copied().collect();
            let spread = Spread::of(&ok);
            goals.push(Goal {
                name: name.into(),
                ratios,
                spread,
                target,
                met: spread.map(|s| s.median >= target),
            });
        }
        BenchReport {
            tool: o.tool,
            secs: o.secs,
            rounds: o.rounds,
            direction: "server to client, one TCP stream".into(),
            offloads: offloads_text(o.offloads).into(),
            heartbeat_ms: o.heartbeat_ms,
            paths,
            goals,
            load: Vec::new(),
        }
    }

    pub fn path(&self, key: &str) -> Option<&PathResult> {
        self.paths.iter().find(|p| p.path == key)
    }

    pub fn goal(&self, name: &str) -> Option<&Goal> {
        self.goals.iter().find(|g| g.name == name)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn table(&self) -> String {
        let mut s = format!(
            "throughput, {}, {} x {} s per path, {}; offloads: {}; heartbeats {} ms\n  {:<32} {:>8} {:>17}   samples\n",
            self.tool.name(),
            self.rounds,
            self.secs,
            self.direction,
            self.offloads,
            self.heartbeat_ms,
            "path (Gbit/s)",
            "median",
            "range"
        );
        let num = |g: Option<f64>| g.map_or("-".to_string(), |g| format!("{g:.3}"));
        let range = |s: Option<Spread>| {
            s.map_or("-".to_string(), |s| format!("{:.3}..{:.3}", s.min, s.max))
        };
        for p in &self.paths {
            let samples: Vec<String> = p.gbps.iter().map(|g| num(*g)).collect();
            s.push_str(&format!(
                "  ({}) {:<28} {:>8} {:>17}   {}\n",
                p.path,
                p.label,
                p.spread
                    .map_or("FAILED".into(), |x| format!("{:.3}", x.median)),
                range(p.spread),
                samples.join(" ")
            ));
        }
        for g in &self.goals {
            let verdict = match (g.met, g.target > 0.0) {
                (_, false) => "(reference)".to_string(),
                (Some(true), _) => format!("goal >= {} met", g.target),
                (Some(false), _) => format!("goal >= {} NOT met", g.target),
                (None, _) => format!("goal >= {}: not measured", g.target),
            };
            let per_round: Vec<String> = g.ratios.iter().map(|r| num(*r)).collect();
            s.push_str(&format!(
                "  {:<30} {:>8} {:>17}   {}  {verdict}\n",
                g.name,
                num(g.spread.map(|x| x.median)),
                range(g.spread),
                per_round.join(" ")
            ));
        }
        if !self.load.is_empty() {
            let l: Vec<String> = self
                .load
                .iter()
                .map(|l| l.map_or("-".into(), |l| format!("{l:.2}")))
                .collect();
            s.push_str(&format!(
                "  load average (1 min) at each round's start and the end: {}\n",
                l.join(" ")
            ));
        }
        for p in &self.paths {
            if let Some(e) = p.errors.first() {
                let short: String = e.lines().take(4).collect::<Vec<_>>().join(" | ");
                s.push_str(&format!(
                    "  ({}) failed {} of {} times, first: {short}\n",
                    p.path,
                    p.errors.len(),
                    p.gbps.len()
                ));
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
    fn spread_is_median_and_range() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of(&[f64::NAN, 1.0]).unwrap().median, 1.0);
    }

    fn path(key: &str, samples: &[Result<f64, &str>]) -> PathResult {
        let mut p = PathResult::new(key);
        for s in samples {
            p.push(s.map_err(|e| anyhow::anyhow!("{e}")));
        }
        p
    }

    #[test]
    fn goals_are_ratios_per_round_judged_on_the_median() {
        let o = Options::new(Tool::Http);
        let paths = vec![
            path("a", &[Ok(10.0), Ok(8.0), Ok(9.0)]),
            path("b", &[Ok(10.0), Ok(10.0), Ok(10.0)]),
            path("d", &[Ok(9.5), Ok(8.0), Ok(9.2)]),
            path("e", &[Err("agent exited"), Ok(8.0), Ok(8.1)]),
        ];
        let mut r = BenchReport::new(&o, paths);
        r.load = vec![Some(1.5), None, Some(0.25), Some(2.0)];
        let d = r.goal("(d)/(b)").unwrap();
        assert_eq!(d.ratios, vec![Some(0.95), Some(0.8), Some(0.92)]);
        assert_eq!(d.spread.unwrap().median, 0.92);
        assert_eq!(d.met, Some(true));
        let e = r.goal("(e)/(a)").unwrap();
        assert_eq!(e.ratios, vec![None, Some(1.0), Some(0.9)]);
        assert_eq!(e.spread.unwrap().median, 0.95);
        assert_eq!(e.met, Some(false));
        // (c) was not measured: no ratio, no verdict.
        let c = r.goal("(c)/(b)").unwrap();
        assert!(c.ratios.is_empty() && c.met.is_none());
        let t = r.table();
        assert!(
            t.contains("(e) failed 1 of 3 times, first: agent exited"),
            "{t}"
        );
        assert!(t.contains("goal >= 0.9 met"), "{t}");
        assert!(t.contains("goal >= 0.97 NOT met"), "{t}");
        assert!(t.contains("0.800..0.950"), "{t}");
        assert!(t.contains("the end: 1.50 - 0.25 2.00"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["paths"][3]["gbps"][0], serde_json::Value::Null);
        assert_eq!(v["tool"], "http");
        assert_eq!(v["goals"][0]["spread"]["median"], 0.92);
        assert_eq!(v["load"][1], serde_json::Value::Null);
        assert_eq!(v["load"][3], 2.0);
    }
}

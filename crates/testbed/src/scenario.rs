//! Scenarios on the namespace system with the real daemons, each printing
//! the DESIGN.md report (mode "testbed"):
//!
//! - `proxy-crash`: concurrent PUTs through the VIP, `kill -9` of proxy 1
//!   halfway; every stored file must hash to what its client sent;
//! - `lb-crash`: the same load, the primary lb killed halfway, the backup
//!   takes the VIP over;
//! - `split-splice`: concurrent GETs through the VIP with agents on the
//!   backends (responses bypass the proxies), against direct GETs;
//! - `stream`: one long PUT through the splice, the proxy carrying it
//!   killed halfway (the `iperf` scenario with an HTTP client, which the
//!   proxies can route);
//! - `iperf`: one long iperf3 stream (server to client) through the
//!   splice, the proxy carrying it killed halfway; the proxies splice
//!   iperf3's connections (control and data) through an L4 route on
//!   VIP:5201 (no request head). Its report: the stream completed or broke,
//!   the received rate, and the stall around the kill from iperf3's 100 ms
//!   intervals.
//!
//! Faults are injected by the load's progress, not by time ([`due`]):
//! "halfway" is when half the payload moved and every running connection
//! moved at least a quarter of its body or 1 MiB (so each is spliced, not
//! in its pre-splice phase, which splice replication does not protect:
//! ARCHITECTURE.md; before its splice a proxy reads only the request head,
//! so a client cannot get far past it); a straggler cannot hold the fault back past three
//! quarters of the payload. The report says where the fault hit
//! (`fault_load_fraction`, `fault_ended`, `fault_forced`), and a scenario
//! fails if the fault did not hit while the load was running (the load had
//! ended, or no transfer moved a byte after it). Fault times are ms since
//! the load started; `detected_ms` comes from the daemons' JSON logs (the
//! lb's "proxy down", the backup's "taking over"), `recovered_ms` and the
//! stall from the clients' payload timelines ([`crate::timeline`]);
//! `false_proxy_downs` counts the lbs' "proxy down" events for proxies that
//! were alive.

use crate::body::digest;
use crate::iperf::{client_command, parse_intervals, parse_received_mbps, IperfServer};
use crate::load::{self, Load, Progress, Request, Transfer};
use crate::logscan;
use crate::system::plan::{HTTP_PORT, IPERF_PORT};
use crate::system::{ServiceKind, Spec, System};
use crate::{timeline, verify};
use anyhow::{bail, Context, Result};
use ftsplice_report::{latency, round_ms, FaultReport, Report};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const NAMES: [&str; 5] = ["proxy-crash", "lb-crash", "split-splice", "stream", "iperf"];

/// Scenario sizes; [`Options::new`] gives the numbers, tests use
/// small ones.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `ftsplice` binary the daemons run from.
    pub bin: PathBuf,
    pub seed: u64,
    pub conns: u64,
    pub size: u64,
    pub proxies: usize,
    pub clients: usize,
    pub heartbeat_ms: u64,
    /// Length of the iperf scenario's stream.
    pub iperf_secs: u32,
    /// Bytes of the stream scenario's one PUT.
    pub stream_size: u64,
    /// A transfer stuck this long is broken.
    pub timeout: Duration,
    /// Keep the run directory (configs, daemon logs).
    pub keep: bool,
}

impl Options {
    pub fn new(bin: PathBuf) -> Options {
        Options {
            bin,
            seed: 1,
            conns: 100,
            size: 10_000_000,
            proxies: 2,
            clients: 4,
            heartbeat_ms: 10,
            iperf_secs: 10,
            stream_size: 1_000_000_000,
            timeout: Duration::from_secs(60),
            keep: false,
        }
    }
}

/// Runs scenario `name`.
pub fn run(name: &str, o: &Options) -> Result<Report> {
    match name {
        "proxy-crash" => put_with_fault(name, o, Victim::Proxy(0)),
        "lb-crash" => put_with_fault(name, o, Victim::Lb),
        "split-splice" => split_splice(o),
        "stream" => stream(o),
        "iperf" => iperf(o),
        other => bail!("unknown scenario '{other}' (known: {})", NAMES.join(", ")),
    }
}

#[derive(Clone, Copy, Debug)]
enum Victim {
    /// Proxy index (id = index + 1).
    Proxy(usize),
    Lb,
}

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Brings the system up, keeping its run directory if asked.
fn up(s: Spec, o: &Options) -> Result<System> {
    let mut sys = System::up(s)?;
    if o.keep {
        sys.run.keep = true;
        eprintln!("run directory (configs, logs): {}", sys.run.path.display());
    }
    Ok(sys)
}

fn spec(o: &Options) -> Spec {
    let mut s = Spec::new(&o.bin);
    s.proxies = o.proxies;
    s.clients = o.clients;
    s.heartbeat_ms = o.heartbeat_ms;
    s
}

/// Where the load is, read from its [`Progress`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadPoint {
    /// Payload bytes moved, of `total`.
    pub bytes: u64,
    pub total: u64,
    /// Transfers ended (completed or not), of `conns`.
    pub ended: u64,
    pub conns: u64,
    /// Bytes of the running transfer that moved the fewest (`u64::MAX`
    /// when none runs).
    pub slowest: u64,
}

impl LoadPoint {
    fn read(p: &Progress, total: u64, conns: u64) -> LoadPoint {
        LoadPoint {
            bytes: p.bytes(),
            total,
            ended: p.ended(),
            conns,
            slowest: p.min_conn(),
        }
    }

    /// Fraction of the payload moved.
    pub fn fraction(&self) -> f64 {
        self.bytes as f64 / self.total.max(1) as f64
    }

    /// Whether the load is over (nothing left to hit).
    pub fn over(&self) -> bool {
        self.ended >= self.conns || self.bytes >= self.total
    }
}

/// When to inject the fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Wait,
    /// Halfway, every running transfer past [`spliced_after`].
    Now,
    /// Three quarters of the payload moved and a straggler still below a
    /// quarter: inject anyway rather than let the load run out.
    Forced,
}

/// Bytes after which a transfer of `per_conn` bytes counts as spliced: a
/// quarter of its body, at most 1 MiB.
pub fn spliced_after(per_conn: u64) -> u64 {
    (per_conn / 4).min(1 << 20)
}

/// The fault-injection rule (module docs) for transfers of `per_conn`
/// bytes each.
pub fn due(at: &LoadPoint, per_conn: u64) -> Due {
    if at.over() {
        return Due::Wait;
    }
    let f = at.fraction();
    if f >= 0.5 && at.slowest >= spliced_after(per_conn) {
        Due::Now
    } else if f >= 0.75 {
        Due::Forced
    } else {
        Due::Wait
    }
}

/// Waits until the fault is [`due`] or `limit` passes, checking the
/// daemons meanwhile; fails if the load ended first.
fn wait_halfway(
    sys: &mut System,
    p: &Progress,
    conns: u64,
    per_conn: u64,
    limit: Duration,
) -> Result<Due> {
    let total = conns * per_conn;
    let deadline = Instant::now() + limit;
    loop {
        let at = LoadPoint::read(p, total, conns);
        match due(&at, per_conn) {
            Due::Wait => {}
            d => return Ok(d),
        }
        sys.check()?;
        if at.over() {
            bail!(
                "the load ended before the fault could be injected ({} of {total} bytes, \
                 {} of {conns} transfers ended): make it larger",
                at.bytes,
                at.ended
            );
        }
        if Instant::now() > deadline {
            bail!(
                "load not halfway after {limit:?}: {} of {total} bytes moved, slowest connection {} bytes",
                at.bytes,
                at.slowest
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Where a fault hit: the time and the load's progress read right before
/// the kill is sent.
#[derive(Clone, Copy, Debug)]
struct FaultPoint {
    at_ms: f64,
    load: LoadPoint,
    due: Due,
}

impl FaultPoint {
    fn before_kill(t0: Instant, p: &Progress, conns: u64, per_conn: u64, due: Due) -> Self {
        FaultPoint {
            at_ms: t0.elapsed().as_secs_f64() * 1e3,
            load: LoadPoint::read(p, conns * per_conn, conns),
            due,
        }
    }

    /// Fails unless the fault hit a running load: some transfer had not
    /// ended at the kill, and some transfer moved payload (or got its
    /// response) after it.
    fn check_hit(&self, ts: &[Transfer]) -> Result<()> {
        if self.load.ended >= self.load.conns {
            bail!(
                "the fault at {:.1} ms came after the load ended ({} of {} transfers ended): \
                 the scenario did not test the fault",
                self.at_ms,
                self.load.ended,
                self.load.conns
            );
        }
        let moved_after = ts
            .iter()
            .any(|t| t.moves.last().is_some_and(|&m| m > self.at_ms));
        if !moved_after {
            bail!(
                "no transfer moved payload after the fault at {:.1} ms: the scenario did not test the fault",
                self.at_ms
            );
        }
        Ok(())
    }

    fn report(&self, r: &mut Report) {
        let d = &mut r.details;
        d.insert(
            "fault_load_fraction".into(),
            (self.load.fraction() * 1e4).round() / 1e4,
        );
        d.insert("fault_ended".into(), self.load.ended as f64);
        d.insert(
            "fault_forced".into(),
            f64::from(u8::from(self.due == Due::Forced)),
        );
    }
}

/// Kills `victim`; returns (its daemon name, fault kind).
fn kill(sys: &mut System, victim: Victim) -> Result<String> {
    let name = match victim {
        Victim::Proxy(i) => format!("proxy{}", i + 1),
        Victim::Lb => sys.active_lb()?.to_string(),
    };
    sys.daemon(&name)?.kill9()?;
    Ok(name)
}

/// When the failure was noticed (ms on the run timeline): the lb's (or
/// gateway's) "proxy down" for a proxy, the backup's takeover for the lb.
/// A short load can end before the detector fires: wait up to 3 s for it.
fn detected(sys: &mut System, victim: Victim, t0_unix: f64, at_ms: f64) -> Option<f64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let d = detected_now(sys, victim, t0_unix, at_ms);
        if d.is_some() || Instant::now() > deadline {
            return d;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn detected_now(sys: &mut System, victim: Victim, t0_unix: f64, at_ms: f64) -> Option<f64> {
    let after = t0_unix + at_ms;
    let found = match victim {
        Victim::Proxy(i) => {
            let id = format!("\"proxy\":{}", i + 1);
            ["lb", "gw"]
                .iter()
                .filter_map(|d| {
                    let log = sys.daemon(d).ok()?.log();
                    logscan::first_event(&log, after, &["proxy down", &id])
                })
                .reduce(f64::min)
        }
        Victim::Lb => ["lb", "lb2"]
            .iter()
            .filter_map(|d| {
                let log = sys.daemon(d).ok()?.log();
                logscan::first_event(&log, after, &["taking over"])
            })
            .reduce(f64::min),
    };
    found.map(|t| round_ms(t - t0_unix))
}

fn fault_report(
    sys: &mut System,
    victim: Victim,
    target: String,
    t0_unix: f64,
    at_ms: f64,
    ts: &[Transfer],
    r: &mut Report,
) {
    let detected_ms = detected(sys, victim, t0_unix, at_ms);
    // The window the fault's effects fall in: until a second past its
    // detection (past one 200 ms retransmission timeout and a backoff).
    let until = detected_ms.unwrap_or(at_ms) + 1000.0;
    let recovered_ms = timeline::recovered_ms(ts, at_ms, until)
        .map(|t| round_ms(detected_ms.map_or(t, |d| t.max(d))));
    r.faults.push(FaultReport {
        kind: "crash".into(),
        target,
        at_ms: round_ms(at_ms),
        detected_ms,
        recovered_ms,
    });
    r.details.insert(
        "stall_ms".into(),
        round_ms(timeline::stall_ms(ts, at_ms, until)),
    );
    let killed = match victim {
        Victim::Proxy(i) => u16::try_from(i + 1).ok(),
        Victim::Lb => None,
    };
    let false_downs: usize = ["lb", "lb2", "gw"]
        .iter()
        .filter_map(|d| Some(sys.daemon(d).ok()?.log()))
        .map(|log| logscan::false_downs(&log, killed, t0_unix + at_ms))
        .sum();
    r.details
        .insert("false_proxy_downs".into(), false_downs as f64);
    r.details.insert(
        "normal_gap_ms".into(),
        round_ms(timeline::normal_gap_ms(ts, at_ms)),
    );
}

/// Throughput and latency of finished transfers.
fn summarize(ts: &[Transfer], r: &mut Report) {
    let (first, last) = ts.iter().fold((f64::MAX, 0.0f64), |(a, b), t| {
        (a.min(t.start_ms), b.max(t.end_ms))
    });
    let bytes: u64 = ts.iter().map(|t| t.bytes).sum();
    let span = (last - first).max(1e-3);
    r.throughput_mbps = (bytes as f64 * 8.0 / (span * 1e3) * 100.0).round() / 100.0;
    let lat: Vec<f64> = ts
        .iter()
        .filter(|t| t.status.is_ok())
        .map(|t| t.end_ms - t.start_ms)
        .collect();
    r.latency_ms = latency(&lat);
}

fn put_with_fault(name: &str, o: &Options, victim: Victim) -> Result<Report> {
    let mut sys = up(spec(o), o)?;
    let load = Load {
        target: SocketAddrV4::new(sys.plan.vip(), HTTP_PORT),
        conns: o.conns,
        request: Request::Put {
            size: o.size,
            seed: o.seed,
        },
        timeout: o.timeout,
    };
    let progress = Arc::new(Progress::new(o.conns));
    let (t0, t0_unix) = (Instant::now(), unix_ms(SystemTime::now()));
    let handles = load::start(&sys.clients(), &load, &progress, t0);
    let fault = wait_halfway(&mut sys, &progress, o.conns, o.size, o.timeout).and_then(|due| {
        let point = FaultPoint::before_kill(t0, &progress, o.conns, o.size, due);
        Ok((point, kill(&mut sys, victim)?))
    });
    let ts = load::join(handles);
    if fault.is_err() {
        eprintln!("{name}: transfers: {}", verify::failures(&ts, 5));
        note_gaps(name, &ts, f64::MAX);
    }
    let (point, target) = fault?;
    point.check_hit(&ts)?;
    sys.check()?;
    let mut r = Report::new(name, "testbed", o.seed);
    r.connections = verify::puts(&ts, &sys.nginx[0].dir().join("www").join("up"));
    summarize(&ts, &mut r);
    point.report(&mut r);
    fault_report(&mut sys, victim, target, t0_unix, point.at_ms, &ts, &mut r);
    note_failures(&ts, &r);
    if r.details.get("normal_gap_ms").is_some_and(|&g| g > 1000.0) {
        note_gaps(name, &ts, point.at_ms);
    }
    Ok(r)
}

/// Puts the longest gaps before `at` on stderr: which connection (client
/// port, for the daemons' logs) stopped moving, after how many writes.
fn note_gaps(name: &str, ts: &[Transfer], at: f64) {
    for (conn, port, moves, from, to) in timeline::longest_gaps(ts, at, 5) {
        eprintln!(
            "{name}: conn {conn} (client port {port}) silent {:.0} ms after {moves} moves, \
             {from:.0} -> {to:.0} ms",
            to - from
        );
    }
}

/// Puts the first broken transfers' reasons on stderr (the report has
/// counts only).
fn note_failures(ts: &[Transfer], r: &Report) {
    if r.connections.broken > 0 {
        eprintln!(
            "{}: broken transfers: {}",
            r.scenario,
            verify::failures(ts, 5)
        );
    }
}

fn split_splice(o: &Options) -> Result<Report> {
    let files: Vec<Vec<u8>> = (0..4)
        .map(|i| crate::body::Body::new(o.seed, i, o.size).to_vec())
        .collect();
    let want: Vec<[u8; 32]> = (0..4).map(|i| digest(o.seed, i, o.size)).collect();
    let mut s = spec(o);
    s.split = true;
    s.files = files;
    let mut sys = up(s, o)?;
    let get = |target: SocketAddrV4| Load {
        target,
        conns: o.conns,
        request: Request::Get { files: 4 },
        timeout: o.timeout,
    };
    // The same GETs straight from the backend first: the reference.
    let progress = Arc::new(Progress::new(o.conns));
    let direct = SocketAddrV4::new(sys.plan.backend(0), HTTP_PORT);
    let base = load::join(load::start(
        &sys.clients(),
        &get(direct),
        &progress,
        Instant::now(),
    ));
    let mut base_r = Report::new("direct", "testbed", o.seed);
    summarize(&base, &mut base_r);
    let progress = Arc::new(Progress::new(o.conns));
    let vip = SocketAddrV4::new(sys.plan.vip(), HTTP_PORT);
    let ts = load::join(load::start(
        &sys.clients(),
        &get(vip),
        &progress,
        Instant::now(),
    ));
    sys.check()?;
    // Responses must really have bypassed the proxies: the agents
    // translated them.
    // The agents publish their data-plane counters periodically: poll.
    let agents_translated = |sys: &System| -> f64 {
        (0..sys.plan.backends)
            .filter_map(|b| {
                let addr =
                    SocketAddrV4::new(sys.plan.backend(b), crate::system::plan::METRICS_PORT);
                let m = crate::system::scrape(sys.ns(sys.nodes.backends[b]), addr)?;
                crate::system::metric_with(
                    &m,
                    "ftsplice_dataplane_packets",
                    "reason=\"translated\"",
                )
            })
            .sum::<f64>()
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut translated = agents_translated(&sys);
    while translated == 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        translated = agents_translated(&sys);
    }
    if translated == 0.0 {
        bail!("split-splice: the agents translated no packet (responses went through the proxies)");
    }
    let mut r = Report::new("split-splice", "testbed", o.seed);
    r.details
        .insert("agent_translated_packets".into(), translated);
    r.connections = verify::gets(&ts, &want);
    summarize(&ts, &mut r);
    r.baseline_throughput_mbps = Some(base_r.throughput_mbps);
    if base_r.throughput_mbps > 0.0 {
        r.details.insert(
            "ratio_to_direct".into(),
            (r.throughput_mbps / base_r.throughput_mbps * 1e4).round() / 1e4,
        );
    }
    note_failures(&ts, &r);
    Ok(r)
}

/// The client port of the busiest connection from `ns` to `to` (by bytes
/// received), from `ss -tni`.
fn busiest_port(sys: &System, client: usize, to: SocketAddrV4) -> Result<u16> {
    let out = sys.ns(client).exec(
        "ss",
        &["-Htni", "state", "established", "dst", &to.to_string()],
    )?;
    parse_busiest_port(&out)
        .with_context(|| format!("no connection to {to} in `ss` output:\n{out}"))
}

/// `ss -Htni` lists a connection line (`0 0 local peer`) followed by an
/// indented info line with `bytes_received:N` and `bytes_acked:N`; the
/// busiest moved the most in either direction.
fn parse_busiest_port(ss: &str) -> Option<u16> {
    let mut best: Option<(u64, u16)> = None;
    let mut port: Option<u16> = None;
    for line in ss.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Info lines are indented; connection lines are not.
        if !line.starts_with(char::is_whitespace) && f.len() >= 4 {
            port = f[2].rsplit(':').next().and_then(|p| p.parse().ok());
            continue;
        }
        let count = |key: &str| {
            f.iter()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let rx = count("bytes_received:") + count("bytes_acked:");
        if let Some(p) = port.take() {
            if best.is_none_or(|(b, _)| rx >= b) {
                best = Some((rx, p));
            }
        }
    }
    best.map(|(_, p)| p)
}

fn stream(o: &Options) -> Result<Report> {
    let mut s = spec(o);
    s.clients = 1;
    let mut sys = up(s, o)?;
    let vip = SocketAddrV4::new(sys.plan.vip(), HTTP_PORT);
    let load = Load {
        target: vip,
        conns: 1,
        request: Request::Put {
            size: o.stream_size,
            seed: o.seed,
        },
        timeout: o.timeout,
    };
    let progress = Arc::new(Progress::new(1));
    let (t0, t0_unix) = (Instant::now(), unix_ms(SystemTime::now()));
    let handles = load::start(&sys.clients(), &load, &progress, t0);
    let client = sys.nodes.clients[0];
    // The proxy carrying the stream is found as soon as it spliced it, so
    // the kill follows the halfway point at once.
    let fault = stream_owner(&mut sys, &progress, client, vip, o.timeout).and_then(|owner| {
        let due = wait_halfway(&mut sys, &progress, 1, o.stream_size, o.timeout)?;
        let point = FaultPoint::before_kill(t0, &progress, 1, o.stream_size, due);
        kill(&mut sys, Victim::Proxy(owner))?;
        Ok((point, owner))
    });
    let ts = load::join(handles);
    let (point, owner) = fault?;
    point.check_hit(&ts)?;
    let at_ms = point.at_ms;
    sys.check()?;
    let mut r = Report::new("stream", "testbed", o.seed);
    r.connections = verify::puts(&ts, &sys.nginx[0].dir().join("www").join("up"));
    summarize(&ts, &mut r);
    point.report(&mut r);
    let target = format!("proxy{}", owner + 1);
    fault_report(
        &mut sys,
        Victim::Proxy(owner),
        target,
        t0_unix,
        at_ms,
        &ts,
        &mut r,
    );
    note_failures(&ts, &r);
    Ok(r)
}

/// The proxy that spliced the one connection of a running load from
/// client namespace `client` (waits for the connection and its splice log).
fn stream_owner(
    sys: &mut System,
    p: &Progress,
    client: usize,
    vip: SocketAddrV4,
    limit: Duration,
) -> Result<usize> {
    let deadline = Instant::now() + limit;
    loop {
        sys.check()?;
        let found = busiest_port(sys, client, vip).and_then(|port| {
            let c = SocketAddrV4::new(sys.plan.client(0), port);
            splicer_of(sys, c)
        });
        match found {
            Ok(owner) => return Ok(owner),
            Err(e) if p.finished() || Instant::now() > deadline => {
                return Err(e.context("finding the proxy that spliced the stream"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The proxy (index) that spliced the connection from `client`: the one
/// that logged it (`"spliced"` with its address), which with flow hashing
/// also carries its client-to-backend packets.
fn splicer_of(sys: &mut System, client: SocketAddrV4) -> Result<usize> {
    let needle = format!("\"client\":\"{client}\"");
    for i in 0..sys.plan.proxies {
        let log = sys.daemon(&format!("proxy{}", i + 1))?.log();
        if log
            .lines()
            .any(|l| l.contains("\"spliced\"") && l.contains(&needle))
        {
            return Ok(i);
        }
    }
    bail!("no proxy logged splicing {client}")
}

fn iperf(o: &Options) -> Result<Report> {
    let mut s = spec(o);
    s.service = ServiceKind::Iperf;
    s.clients = 1;
    let mut sys = up(s, o)?;
    let b0 = sys.nodes.backends[0];
    let srv = IperfServer::start_any(
        sys.ns(b0),
        SocketAddrV4::new(sys.plan.backend(0), IPERF_PORT),
    )?;
    let vip = SocketAddrV4::new(sys.plan.vip(), IPERF_PORT);
    let client = sys.nodes.clients[0];
    let secs = o.iperf_secs.max(2);
    let (t0, t0_unix) = (Instant::now(), unix_ms(SystemTime::now()));
    let child = client_command(sys.ns(client), vip, secs, true, Some(0.1))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting iperf3")?;
    // Halfway through the stream.
    std::thread::sleep(Duration::from_millis(u64::from(secs) * 500));
    let fault = (|| -> Result<(f64, usize)> {
        sys.check()?;
        let port = busiest_port(&sys, client, vip)?;
        let owner = {
            let c = SocketAddrV4::new(sys.plan.client(0), port);
            splicer_of(&mut sys, c)?
        };
        let at = t0.elapsed().as_secs_f64() * 1e3;
        kill(&mut sys, Victim::Proxy(owner))?;
        Ok((at, owner))
    })();
    let out = child
        .wait_with_output()
        .context("waiting for iperf3")
        .and_then(|o| {
            if o.status.success() {
                Ok(String::from_utf8_lossy(&o.stdout).into_owned())
            } else {
                bail!(
                    "iperf3 exited with {}: {}{}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim(),
                    String::from_utf8_lossy(&o.stdout)
                        .chars()
                        .take(500)
                        .collect::<String>()
                )
            }
        });
    drop(srv);
    let (at_ms, owner) = fault?;
    let mut r = Report::new("iperf", "testbed", o.seed);
    r.connections.total = 1;
    let (mbps, ivs) = match out.and_then(|j| Ok((parse_received_mbps(&j)?, parse_intervals(&j)?))) {
        Ok(v) => v,
        Err(e) => {
            r.connections.broken = 1;
            eprintln!("iperf: stream broke: {e:#}");
            (0.0, Vec::new())
        }
    };
    if r.connections.broken == 0 {
        r.connections.completed = 1;
    }
    r.throughput_mbps = (mbps * 100.0).round() / 100.0;
    // The stream's timeline: one "move" per interval that carried data.
    let t = Transfer {
        conn: 0,
        local_port: 0,
        status: Ok(200),
        start_ms: 0.0,
        end_ms: ivs.last().map_or(0.0, |i| i.0 * 1e3),
        bytes: 0,
        digest: [0; 32],
        moves: ivs
            .iter()
            .filter(|i| i.1 > 0.0)
            .map(|i| i.0 * 1e3)
            .collect(),
    };
    let victim = Victim::Proxy(owner);
    let target = format!("proxy{}", owner + 1);
    fault_report(&mut sys, victim, target, t0_unix, at_ms, &[t], &mut r);
    r.details.insert("interval_ms".into(), 100.0);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_due_by_progress_and_never_after_the_load() {
        let per = 1_000;
        let at = |bytes: u64, ended: u64, slowest: u64| LoadPoint {
            bytes,
            total: 10 * per,
            ended,
            conns: 10,
            slowest,
        };
        assert_eq!(due(&at(4_999, 0, 400), per), Due::Wait);
        assert_eq!(due(&at(5_000, 0, 250), per), Due::Now);
        // A straggler below a quarter holds the fault back...
        assert_eq!(due(&at(7_000, 3, 100), per), Due::Wait);
        // ...but not past three quarters.
        assert_eq!(due(&at(7_500, 5, 100), per), Due::Forced);
        // Nothing is due once the load is over.
        assert_eq!(due(&at(10_000, 9, u64::MAX), per), Due::Wait);
        assert_eq!(due(&at(9_000, 10, u64::MAX), per), Due::Wait);
        assert!(at(9_000, 10, 0).over());
        assert_eq!(at(2_500, 0, 0).fraction(), 0.25);
        assert_eq!(spliced_after(10_000_000), 1 << 20);
        assert_eq!(spliced_after(2_000_000), 500_000);
        // Every transfer still running is past its quarter: due.
        assert_eq!(due(&at(6_000, 9, u64::MAX), per), Due::Now);
    }

    #[test]
    fn a_fault_must_hit_a_running_load() {
        let t = |moves: Vec<f64>| Transfer {
            conn: 0,
            local_port: 0,
            status: Ok(201),
            start_ms: 0.0,
            end_ms: moves.last().copied().unwrap_or(0.0),
            bytes: 1,
            digest: [0; 32],
            moves,
        };
        let point = |ended| FaultPoint {
            at_ms: 100.0,
            load: LoadPoint {
                bytes: 500,
                total: 1_000,
                ended,
                conns: 2,
                slowest: 300,
            },
            due: Due::Now,
        };
        assert!(point(0).check_hit(&[t(vec![50.0, 150.0])]).is_ok());
        let e = point(2).check_hit(&[t(vec![50.0, 150.0])]).unwrap_err();
        assert!(e.to_string().contains("after the load ended"), "{e}");
        // Every byte written but the response still to come: it hit.
        let mut all_sent = point(0);
        all_sent.load.bytes = 1_000;
        assert!(all_sent.check_hit(&[t(vec![50.0, 150.0])]).is_ok());
        let e = point(0).check_hit(&[t(vec![50.0, 90.0])]).unwrap_err();
        assert!(e.to_string().contains("no transfer moved"), "{e}");
        let mut r = Report::new("x", "testbed", 1);
        point(1).report(&mut r);
        assert_eq!(r.details["fault_load_fraction"], 0.5);
        assert_eq!(r.details["fault_ended"], 1.0);
        assert_eq!(r.details["fault_forced"], 0.0);
    }

    #[test]
    fn finds_the_busiest_connection() {
        let ss = "0      0      198.18.0.51:40000 198.18.0.10:80\n\
                  \t cubic wscale:7,7 bytes_received:100 segs_out:3\n\
                  0      0      198.18.0.51:40002 198.18.0.10:80\n\
                  \t cubic bytes_received:90000000 segs_out:3\n";
        assert_eq!(parse_busiest_port(ss), Some(40002));
        assert_eq!(parse_busiest_port(""), None);
    }
}

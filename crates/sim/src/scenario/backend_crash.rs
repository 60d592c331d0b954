//! `backend-crash`: the backend fault-tolerance paper's evaluation (§6) in
//! the simulator. A webmail client (Action 1 or Action 2) behind a WAN
//! link of the chosen RTT talks to the primary backend through the logger
//! (the backends' gateway); the primary crashes at one of the four crash
//! points, the logger detects it, replays on the alternate and re-splices.
//! The *baseline* is the paper's traditional architecture on the same
//! path: no logging, the client heartbeats the server (1/5/10 s for
//! LAN/WAN-MIT/WAN-SG RTTs), declares it dead after 3 missed beats and
//! re-issues the unanswered request to the alternate.
//!
//! Failover time is the paper's: the run's duration with the crash minus
//! the same run's duration without it (both simulated here, same seed).
//!
//! ```text
//! client --(WAN, rtt/2 each way)-- logger ==switch== primary (b1), alternate (b2)
//! 10.0.0.1                 10.0.0.2 | 10.0.1.1        10.0.1.10       10.0.1.11
//!                                   | 10.0.2.1 -- aux mail store 10.0.2.10
//! ```

use super::Run;
use crate::engine::fault::Fault;
use crate::engine::sim::{NodeOpts, Sim};
use crate::net::link::LinkConfig;
use crate::net::node::{NodeId, Route};
use crate::report::svg::run_plot;
use crate::report::Report;
use crate::roles::logger::resplice::Status;
use crate::roles::logger::{LoggerNode, LoggerNodeConfig};
use crate::roles::webmail::app::{self, Action};
use crate::roles::webmail::aux::MailStore;
use crate::roles::webmail::backend::{Backend, BackendConfig, CrashPlan, CrashPoint};
use crate::roles::webmail::client::{Client, ClientConfig, Retry};
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::Instant;
use ftsplice_recovery::detector::DetectorConfig;
use ftsplice_recovery::log::LogLimits;
use ftsplice_recovery::logger::LoggerConfig;
use std::sync::Arc;

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const LOGGER_FRONT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const LOGGER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
pub const PRIMARY: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
pub const ALTERNATE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
pub const LOGGER_AUX: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
pub const AUX: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 10);

/// The paper's client RTTs: LAN, WAN-MIT, WAN-SG.
pub const RTTS_MS: [f64; 3] = [0.25, 79.0, 260.0];

/// One `backend-crash` configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackendCrash {
    pub seed: u64,
    pub action: Action,
    pub point: CrashPoint,
    pub rtt_ms: f64,
    /// The traditional client-detects-and-retries architecture.
    pub baseline: bool,
    /// The crashed transaction is the non-deterministic `/status.php`
    /// (crash point forced to mid-response, where the client already has
    /// bytes the alternate cannot reproduce).
    pub nondeterministic: bool,
    /// The primary's session-state pushes leave this late (0 in the
    /// paper's LAN, where T_L = T_S = T_A): makes the alternate lag so
    /// update transactions are replayed.
    pub state_lag_ms: u64,
    /// Bytes the logger may hold per connection (both directions).
    pub log_per_conn: usize,
}

impl BackendCrash {
    pub fn new(seed: u64) -> BackendCrash {
        BackendCrash {
            seed,
            action: Action::Action2,
            point: CrashPoint::BeforeResponse,
            rtt_ms: 79.0,
            baseline: false,
            nondeterministic: false,
            state_lag_ms: 0,
            log_per_conn: LogLimits::default().per_conn,
        }
    }

    /// The crashed transaction: Action 1's app.js (48 kB) of the 16th set,
    /// Action 2's second mail submission (a 3 kB POST).
    pub fn crash_tx(&self) -> u64 {
        match self.action {
            Action::Action1 => 64,
            Action::Action2 => 18,
        }
    }

    fn point(&self) -> CrashPoint {
        if self.nondeterministic {
            CrashPoint::MidResponse
        } else {
            self.point
        }
    }

    pub fn name(&self) -> String {
        format!(
            "backend-crash/{}/{}/rtt{}{}{}{}",
            self.action.name(),
            self.point().name(),
            self.rtt_ms,
            if self.baseline { "/baseline" } else { "" },
            if self.nondeterministic {
                "/nondeterministic"
            } else {
                ""
            },
            if self.state_lag_ms > 0 {
                format!("/lag{}", self.state_lag_ms)
            } else {
                String::new()
            }
        )
    }

    /// The paper's client heartbeat for this RTT (§6.3).
    fn heartbeat(&self) -> Duration {
        if self.rtt_ms < 1.0 {
            Duration::from_secs(1)
        } else if self.rtt_ms < 100.0 {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(10)
        }
    }

    /// Action 1 with the detector's conservative defaults, Action 2 with
    /// aggressive values (the paper: detection in 1-2 s vs ~500 ms). Both
    /// confirm a timeout with a probe, so a response gap of a WAN round
    /// trip (the backend waiting for acks) is not taken for a crash.
    fn detector(&self) -> DetectorConfig {
        let base = DetectorConfig {
            confirm: true,
            probe_timeout: Duration::from_millis(100),
            ..DetectorConfig::default()
        };
        match self.action {
            Action::Action1 => base,
            Action::Action2 => DetectorConfig {
                floor: Duration::from_millis(100),
                initial_first_byte: Duration::from_millis(500),
                initial_gap: Duration::from_millis(500),
                idle_interval: Duration::from_secs(1),
                probe_timeout: Duration::from_millis(50),
                ..base
            },
        }
    }
}

/// TCP of every host here: Linux defaults.
fn tcp() -> ftsplice_tcp::Config {
    ftsplice_tcp::Config::default()
}

struct Net {
    sim: Sim,
    client: NodeId,
    logger: NodeId,
    primary: NodeId,
    aux: NodeId,
}

const START: Instant = Instant::from_millis(10);

fn build(o: &BackendCrash, crash: bool) -> Net {
    let mut sim = Sim::new(o.seed);
    let lan = LinkConfig::gigabit(Duration::from_micros(20));
    // Two LAN links each way between logger and backend.
    let one_way_us = ((o.rtt_ms * 1000.0 / 2.0) as u64)
        .saturating_sub(40)
        .max(10);
    let wan = LinkConfig::gigabit(Duration::from_micros(one_way_us))
        .with_bandwidth(100_000_000)
        .with_queue(1 << 20);
    let status_at = o.nondeterministic.then(|| o.crash_tx() as usize - 1);
    let requests = app::requests(o.action, status_at);
    let client = sim.add_node(
        "client",
        Client::new(ClientConfig {
            addr: CLIENT,
            server: SocketAddrV4::new(PRIMARY, 80),
            requests,
            reference_server: "b1",
            start: START,
            tcp: tcp(),
            retry: o.baseline.then(|| Retry {
                heartbeat: o.heartbeat(),
                missed: 3,
                alternate: ALTERNATE,
            }),
            id: 1,
        }),
        NodeOpts::default(),
    );
    let ci = sim.add_iface(client, CLIENT, 24);
    sim.add_route(
        client,
        Route {
            net: Ipv4Addr::UNSPECIFIED,
            len: 0,
            iface: ci,
            gateway: Some(LOGGER_FRONT),
        },
    );
    let logger = sim.add_node(
        "logger",
        LoggerNode::new(LoggerNodeConfig {
            addr: LOGGER,
            primary: SocketAddrV4::new(PRIMARY, 80),
            alternate: SocketAddrV4::new(ALTERNATE, 80),
            logger: LoggerConfig {
                detector: o.detector(),
                limits: LogLimits {
                    per_conn: o.log_per_conn,
                    ..LogLimits::default()
                },
                ..LoggerConfig::default()
            },
            table: Arc::new(app::tag_table()),
            tcp: tcp(),
            passive: o.baseline,
            aux: Some(AUX),
        }),
        NodeOpts::default(),
    );
    let lf = sim.add_iface(logger, LOGGER_FRONT, 24);
    let lb = sim.add_iface(logger, LOGGER, 24);
    sim.connect((client, ci), (logger, lf), wan, wan);
    let la = sim.add_iface(logger, LOGGER_AUX, 24);
    let aux = sim.add_node("aux", MailStore::new(AUX), NodeOpts::default());
    let ai = sim.add_iface(aux, AUX, 24);
    sim.add_route(
        aux,
        Route {
            net: Ipv4Addr::UNSPECIFIED,
            len: 0,
            iface: ai,
            gateway: Some(LOGGER_AUX),
        },
    );
    sim.connect((logger, la), (aux, ai), lan, lan);
    let sw = sim.add_switch("switch");
    sim.attach(sw, logger, lb, lan);
    let mut backend = |name: &'static str, addr, alternate, crash: Option<CrashPlan>| {
        let n = sim.add_node(
            name,
            Backend::new(BackendConfig {
                addr,
                name,
                alternate,
                apply_on_push: o.baseline,
                tcp: tcp(),
                crash,
                push_delay: Duration::from_millis(o.state_lag_ms),
                aux: Some(AUX),
            }),
            NodeOpts::default(),
        );
        let i = sim.add_iface(n, addr, 24);
        sim.add_route(
            n,
            Route {
                net: Ipv4Addr::UNSPECIFIED,
                len: 0,
                iface: i,
                gateway: Some(LOGGER),
            },
        );
        sim.attach(sw, n, i, lan);
        n
    };
    let plan = crash.then(|| CrashPlan {
        tx: o.crash_tx(),
        point: o.point(),
    });
    let primary = backend("b1", PRIMARY, Some(ALTERNATE), plan);
    backend("b2", ALTERNATE, None, None);
    Net {
        sim,
        client,
        logger,
        primary,
        aux,
    }
}

const LIMIT: Instant = Instant::from_secs(900);

fn client_done(s: &Sim, c: NodeId) -> bool {
    s.node::<Client>(c)
        .is_some_and(|c| c.result.finished.is_some())
}

/// Runs the client to the end; with `crash`, cuts the primary's power when
/// it reaches the crash point. Returns the net and the crash time.
fn run_once(o: &BackendCrash, crash: bool) -> (Net, Option<Instant>) {
    let mut n = build(o, crash);
    let mut at = None;
    if crash {
        while n.sim.now() < LIMIT && !client_done(&n.sim, n.client) {
            if !n.sim.step() {
                break;
            }
            let now = n.sim.now();
            if n.sim
                .node::<Backend>(n.primary)
                .is_some_and(|b| b.crash_due(now))
            {
                n.sim.inject(Fault::Crash(n.primary));
                at = Some(now);
                break;
            }
        }
    }
    let c = n.client;
    n.sim
        .run_while(LIMIT, Duration::from_millis(10), |s| client_done(s, c));
    (n, at)
}

fn secs(t: Option<Instant>, from: Option<Instant>) -> f64 {
    match (t, from) {
        (Some(t), Some(f)) => t.as_micros().saturating_sub(f.as_micros()) as f64 / 1e6,
        _ => f64::NAN,
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs one configuration (the failure-free run, then the crash run) and
/// builds the report of the crash run.
pub fn run(o: &BackendCrash) -> Report {
    scenario(o).report
}

/// [`run`] with the client's goodput plot of the crash run.
pub fn scenario(o: &BackendCrash) -> Run {
    let (clean, _) = run_once(o, false);
    let (n, crashed_at) = run_once(o, true);
    let mut report = crate::report::from_sim(&o.name(), &n.sim);
    let cl = n.sim.node::<Client>(n.client);
    let clean_client = clean.sim.node::<Client>(clean.client);
    let run_s = cl.map_or(f64::NAN, |c| secs(c.result.finished, c.result.started));
    let clean_s = clean_client.map_or(f64::NAN, |c| secs(c.result.finished, c.result.started));
    let d = &mut report.details;
    d.insert("rtt_ms".into(), o.rtt_ms);
    d.insert("crash_tx".into(), o.crash_tx() as f64);
    d.insert("crashed".into(), f64::from(u8::from(crashed_at.is_some())));
    d.insert("run_s".into(), r3(run_s));
    d.insert("run_s_no_failure".into(), r3(clean_s));
    d.insert("failover_s".into(), r3(run_s - clean_s));
    if let Some(c) = cl {
        d.insert("client_resets".into(), f64::from(c.result.resets));
        d.insert("client_reconnects".into(), f64::from(c.result.reconnects));
        d.insert("responses".into(), c.result.answered as f64);
        // Recovered: the first response the client completed after the
        // failure was detected (earlier ones were already on their way).
        if let Some(f) = report.faults.first_mut() {
            let det = f.detected_ms.map(|ms| (ms * 1e3) as u64);
            let after = det.and_then(|d| c.answer_times.iter().find(|t| t.as_micros() > d));
            f.recovered_ms = after.map(|t| r3(t.as_micros() as f64 / 1e3));
        }
    }
    if let Some(l) = n.sim.node::<LoggerNode>(n.logger) {
        d.insert("logger_probes".into(), l.stats.probes as f64);
        d.insert("logger_withheld".into(), l.stats.segments_withheld as f64);
        d.insert("aux_answered_from_log".into(), l.stats.aux_answered as f64);
        d.insert("aux_mismatches".into(), l.stats.aux_mismatches as f64);
        d.insert("logger_recovered".into(), l.stats.recovered as f64);
        d.insert("logger_resets".into(), l.stats.resets as f64);
        if let Some(dr) = l.drivers().next() {
            if let Some(cp) = dr.recovery().crash_point() {
                d.insert("t_l".into(), cp.t_l as f64);
                d.insert("p".into(), cp.p as f64);
                d.insert(
                    "resent_bytes".into(),
                    (cp.resend.end - cp.resend.start) as f64,
                );
            }
            if let Some(pl) = dr.recovery().replay_plan() {
                d.insert("t_s".into(), pl.t_s as f64);
                d.insert("t_a".into(), pl.t_a as f64);
                d.insert("t_r".into(), pl.t_r as f64);
                d.insert("replayed".into(), pl.replay.len() as f64);
                d.insert("skipped".into(), pl.skipped.len() as f64);
            }
            d.insert(
                "mismatch_reset".into(),
                f64::from(u8::from(matches!(
                    dr.status,
                    Status::Reset(ftsplice_recovery::recovery::ResetReason::Mismatch { .. })
                ))),
            );
        }
    }
    if let Some(m) = n.sim.node::<MailStore>(n.aux) {
        d.insert("aux_mails".into(), m.mails.len() as f64);
        let distinct: std::collections::BTreeSet<&[u8]> =
            m.mails.iter().map(|(_, b)| b.as_slice()).collect();
        d.insert(
            "aux_duplicate_mails".into(),
            (m.mails.len() - distinct.len()) as f64,
        );
    }
    if let (Some(at), Some(f)) = (crashed_at, report.faults.first()) {
        if let Some(det) = f.detected_ms {
            d.insert("detect_ms".into(), r3(det - at.as_micros() as f64 / 1e3));
        }
    }
    let plot = run_plot(&report, n.sim.stats());
    Run { report, plot }
}

/// One row of the grid: our failover and the baseline's.
#[derive(Clone, Debug, PartialEq)]
pub struct GridRow {
    pub action: Action,
    pub point: CrashPoint,
    pub rtt_ms: f64,
    pub ours: Report,
    pub baseline: Report,
}

/// All 4 crash points x 3 RTTs x 2 actions, ours and the baseline.
pub fn grid(seed: u64) -> Vec<GridRow> {
    let mut rows = Vec::new();
    for action in [Action::Action1, Action::Action2] {
        for rtt_ms in RTTS_MS {
            for point in CrashPoint::ALL {
                let o = BackendCrash {
                    seed,
                    action,
                    point,
                    rtt_ms,
                    ..BackendCrash::new(seed)
                };
                let ours = run(&o);
                let baseline = run(&BackendCrash {
                    baseline: true,
                    ..o
                });
                rows.push(GridRow {
                    action,
                    point,
                    rtt_ms,
                    ours,
                    baseline,
                });
            }
        }
    }
    rows
}

fn detail(r: &Report, k: &str) -> f64 {
    r.details.get(k).copied().unwrap_or(f64::NAN)
}

/// The grid as a table like the paper's Tables 2 and 3.
pub fn render_grid(rows: &[GridRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:<16} {:>7} | {:>9} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} | broken/corrupt",
        "action",
        "crash point",
        "rtt ms",
        "no-fail s",
        "fail s",
        "failover",
        "detect",
        "trad no-f",
        "trad fail",
        "failover",
    );
    for r in rows {
        let (o, b) = (&r.ours, &r.baseline);
        let _ = writeln!(
            s,
            "{:<8} {:<16} {:>7} | {:>9.2} {:>9.2} {:>9.2} {:>7.0} | {:>9.2} {:>9.2} {:>9.2} | {}/{} trad {}/{}",
            r.action.name(),
            r.point.name(),
            r.rtt_ms,
            detail(o, "run_s_no_failure"),
            detail(o, "run_s"),
            detail(o, "failover_s"),
            detail(o, "detect_ms"),
            detail(b, "run_s_no_failure"),
            detail(b, "run_s"),
            detail(b, "failover_s"),
            o.connections.broken,
            o.connections.corrupted,
            b.connections.broken,
            b.connections.corrupted,
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_what_ran() {
        let mut o = BackendCrash::new(1);
        assert_eq!(o.name(), "backend-crash/action2/before-response/rtt79");
        o.nondeterministic = true;
        o.baseline = true;
        assert_eq!(
            o.name(),
            "backend-crash/action2/mid-response/rtt79/baseline/nondeterministic"
        );
    }

    #[test]
    fn heartbeats_follow_the_paper() {
        let mut o = BackendCrash::new(1);
        for (rtt, hb) in [(0.25, 1), (79.0, 5), (260.0, 10)] {
            o.rtt_ms = rtt;
            assert_eq!(o.heartbeat(), Duration::from_secs(hb));
        }
    }
}

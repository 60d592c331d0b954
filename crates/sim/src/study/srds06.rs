//! SRDS'06 §8 (fault-tolerant scalable TCP splice), Tables 2–6, beside the
//! paper's numbers: 100 concurrent PUTs (Tables 2, 3) and GETs (Tables 5, 6)
//! for C-S, C-LB-nP-S (n = 1..4) and split splice (C-LB-P-S*), and Table 4:
//! C-LB-2P-S on 100 Mbit/s with proxy 1 failing halfway, detected by the
//! heartbeat failure detector after 3 missed beats (5 s, 1 s, 200 ms, and
//! ours, 10 ms). The lb is the real one (flow hash; the paper's was round
//! robin per packet) and detection is its own heartbeat failure detector.
//!
//! Proxy cost calibration: 5 µs per packet plus [`PER_BYTE_NS`] ns per byte
//! of datagram, so that one proxy carries about the paper's 125 Mbit/s of
//! PUT data while the ACK stream of split splice (small packets) costs it
//! little — the paper's split splice reaches C-S throughput through a single
//! proxy, which a per-packet-only cost cannot reproduce.

use crate::roles::http::Method;
use crate::study::point::{self, Outcome, Path, Point};
use crate::study::{Scale, StudyOutput};
use core::time::Duration;
use ftsplice_proto::lb::LbMode;
use std::fmt::Write;

/// Proxy CPU time per packet (ns).
pub const PER_PACKET_NS: u64 = 5_000;
/// Proxy CPU time per datagram byte (ns); see the module comment.
pub const PER_BYTE_NS: u64 = 55;
/// Concurrent connections, as in the paper.
pub const CONNS: usize = 100;
/// At [`Scale::Budget`], Tables 2, 3, 5 and 6 move `size / SHRINK` bytes
/// per connection (the paper's 1 GB and 5 GB per point do not fit the
/// 2-minute sweep budget); throughput is size-independent in steady state,
/// times scale ~linearly. [`Scale::Paper`] moves the paper's sizes.
pub const SHRINK: u64 = 10;

/// One row of the paper: avg, min, max seconds and Mbit/s.
type PaperRow = (&'static str, f64, f64, f64, f64);

const TABLE2: [PaperRow; 5] = [
    ("C-S", 8.14, 5.38, 8.93, 895.0),
    ("C-LB-P-S", 59.56, 43.74, 64.17, 125.0),
    ("C-LB-2P-S", 34.27, 24.55, 36.90, 217.0),
    ("C-LB-3P-S", 24.74, 18.22, 28.25, 283.0),
    ("C-LB-4P-S", 20.47, 14.91, 23.88, 335.0),
];
const TABLE3: [PaperRow; 5] = [
    ("C-S", 43.10, 38.31, 44.87, 892.0),
    ("C-LB-P-S", 307.25, 266.25, 318.73, 126.0),
    ("C-LB-2P-S", 177.12, 160.49, 182.94, 219.0),
    ("C-LB-3P-S", 129.19, 107.86, 138.25, 289.0),
    ("C-LB-4P-S", 106.87, 92.83, 112.07, 357.0),
];
const TABLE5: [PaperRow; 3] = [
    ("C-S", 8.14, 5.38, 8.93, 895.0),
    ("C-LB-P-S", 59.56, 43.74, 64.17, 125.0),
    ("C-LB-P-S*", 8.69, 4.51, 9.23, 866.0),
];
const TABLE6: [PaperRow; 3] = [
    ("C-S", 43.10, 38.31, 44.87, 892.0),
    ("C-LB-P-S", 307.25, 266.25, 318.73, 126.0),
    ("C-LB-P-S*", 43.26, 35.34, 44.99, 889.0),
];
/// A row of Table 4: (interval label, avg, min, max, std dev, total,
/// Mbit/s).
type FailRow = (&'static str, f64, f64, f64, f64, f64, f64);

const TABLE4: [FailRow; 4] = [
    ("no failure", 79.76, 46.35, 89.37, 8.18, 89.46, 93.76),
    ("5 s", 90.54, 54.66, 142.07, 8.86, 142.14, 59.02),
    ("1 s", 85.69, 55.88, 97.88, 5.51, 97.95, 85.64),
    ("200 ms", 82.20, 45.30, 94.42, 5.70, 94.48, 88.79),
];

/// Heartbeat intervals of Table 4 (the paper's three and ours).
pub const HEARTBEATS: [(&str, Duration); 4] = [
    ("5 s", Duration::from_secs(5)),
    ("1 s", Duration::from_secs(1)),
    ("200 ms", Duration::from_millis(200)),
    ("10 ms (ours)", Duration::from_millis(10)),
];

fn config(name: &str) -> (Path, usize) {
    match name {
        "C-S" => (Path::Direct, 0),
        "C-LB-P-S*" => (Path::Split, 1),
        _ => {
            let n = name
                .strip_prefix("C-LB-")
                .and_then(|r| r.strip_suffix("P-S"))
                .map_or(1, |d| d.parse().unwrap_or(1));
            (Path::Spliced, n)
        }
    }
}

/// The paper's setup for one configuration.
pub fn point(seed: u64, name: &str, method: Method, bytes: u64, link_bps: u64) -> Point {
    let (path, proxies) = config(name);
    Point {
        seed,
        path,
        proxies,
        method,
        conns: CONNS,
        bytes_per_conn: bytes,
        offered_bps: 0,
        link_bps,
        // One LAN switch: tens of microseconds each way.
        client_delay: Duration::from_micros(50),
        server_delay: Duration::from_micros(50),
        proxy_cost: Duration::from_nanos(PER_PACKET_NS),
        proxy_per_byte: Duration::from_nanos(PER_BYTE_NS),
        initial_cwnd: None,
        agent_cost: Duration::from_micros(2),
        // The real lb's flow hash (see docs/studies.md: per-packet round
        // robin, the paper's lb, breaks pre-splice with 4+ proxies).
        lb_mode: LbMode::FlowHash,
        // Table 4 sets its own; elsewhere beats only find proxies alive.
        heartbeat: Duration::from_millis(200),
        crash_after: None,
        limit: Duration::from_secs(900),
    }
}

fn std_dev(o: &Outcome) -> f64 {
    o.std_dev()
}

fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn row_json(name: &str, paper: Option<&PaperRow>, o: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "config": name,
        "ours": {
            "avg_s": r2(o.avg()), "min_s": r2(o.min()), "max_s": r2(o.max()),
            "mbps": r2(o.mbps), "unfinished": o.unfinished, "corrupted": o.corrupted,
            "drops": o.drops,
        },
        "paper": paper.map(|p| serde_json::json!({
            "avg_s": p.1, "min_s": p.2, "max_s": p.3, "mbps": p.4,
        })),
    })
}

struct Table {
    title: String,
    dir: Method,
    bytes: u64,
    rows: &'static [PaperRow],
}

/// Runs Tables 2–6.
pub fn run(seed: u64, scale: Scale, threads: usize) -> StudyOutput {
    let (shrink, t4_bytes) = match scale {
        Scale::Paper => (1, 10_000_000),
        Scale::Budget => (SHRINK, 10_000_000),
        Scale::Quick => (200, 200_000),
    };
    let tables = [
        Table {
            title: "Table 2: 100 concurrent PUTs of 10 MB".into(),
            dir: Method::Put,
            bytes: 10_000_000 / shrink,
            rows: &TABLE2,
        },
        Table {
            title: "Table 3: 100 concurrent PUTs of 50 MB".into(),
            dir: Method::Put,
            bytes: 50_000_000 / shrink,
            rows: &TABLE3,
        },
        Table {
            title: "Table 5: 100 concurrent GETs of 10 MB".into(),
            dir: Method::Get,
            bytes: 10_000_000 / shrink,
            rows: &TABLE5,
        },
        Table {
            title: "Table 6: 100 concurrent GETs of 50 MB".into(),
            dir: Method::Get,
            bytes: 50_000_000 / shrink,
            rows: &TABLE6,
        },
    ];
    let mut points = Vec::new();
    for t in &tables {
        for r in t.rows {
            points.push(point(seed, r.0, t.dir, t.bytes, 1_000_000_000));
        }
    }
    let base4 = point(seed, "C-LB-2P-S", Method::Put, t4_bytes, 100_000_000);
    points.push(base4.clone());
    let outs = point::run_all(&points, threads);
    let no_failure = outs.last().cloned().unwrap_or_default();
    // Table 4: fail proxy 1 at half the no-failure average transfer time;
    // proxies and lbs beat at the row's interval.
    let crash = Duration::from_secs_f64(no_failure.avg() / 2.0);
    let fail_points: Vec<Point> = HEARTBEATS
        .iter()
        .map(|&(_, hb)| Point {
            crash_after: Some(crash),
            heartbeat: hb,
            ..base4.clone()
        })
        .collect();
    let fails = point::run_all(&fail_points, threads);
    let events: u64 = outs.iter().chain(fails.iter()).map(|o| o.events).sum();

    let mut text = String::new();
    let mut json_tables = Vec::new();
    let mut it = outs.iter();
    for t in &tables {
        let _ = writeln!(
            text,
            "SRDS'06 {} (ours: {} per connection)",
            t.title,
            mb(t.bytes)
        );
        let _ = writeln!(
            text,
            "{:<11} | {:>7} {:>7} {:>7} {:>6} | {:>7} {:>7} {:>7} {:>6}",
            "config", "paper", "min", "max", "Mbps", "ours", "min", "max", "Mbps"
        );
        let mut rows = Vec::new();
        for r in t.rows {
            let o = it.next().cloned().unwrap_or_default();
            let _ = writeln!(
                text,
                "{:<11} | {:>7.2} {:>7.2} {:>7.2} {:>6.0} | {:>7.2} {:>7.2} {:>7.2} {:>6.0}{}",
                r.0,
                r.1,
                r.2,
                r.3,
                r.4,
                o.avg(),
                o.min(),
                o.max(),
                o.mbps,
                if o.unfinished > 0 {
                    format!("  ({} unfinished)", o.unfinished)
                } else {
                    String::new()
                }
            );
            rows.push(row_json(r.0, Some(r), &o));
        }
        text.push('\n');
        json_tables.push(serde_json::json!({
            "title": t.title, "bytes_per_conn": t.bytes, "rows": rows,
        }));
    }
    let _ = writeln!(
        text,
        "SRDS'06 Table 4: 100 concurrent PUTs of {} through 2 proxies on 100 Mbit/s, proxy 1 fails at {:.2} s",
        mb(t4_bytes),
        crash.as_secs_f64()
    );
    let _ = writeln!(
        text,
        "{:<13} | {:>6} {:>6} {:>6} {:>5} {:>6} {:>5} | {:>6} {:>6} {:>6} {:>5} {:>6} {:>5} {:>7}",
        "heartbeat",
        "paper",
        "min",
        "max",
        "sd",
        "total",
        "Mbps",
        "ours",
        "min",
        "max",
        "sd",
        "total",
        "Mbps",
        "detect"
    );
    let mut rows4 = Vec::new();
    let all4: Vec<(&str, &Outcome)> = core::iter::once(("no failure", &no_failure))
        .chain(HEARTBEATS.iter().zip(fails.iter()).map(|(h, o)| (h.0, o)))
        .collect();
    for (label, o) in all4 {
        let det = o.detected_after;
        let paper = TABLE4.iter().find(|p| p.0 == label);
        let p = |f: fn(&FailRow) -> f64| paper.map_or("-".to_string(), |r| format!("{:.2}", f(r)));
        let _ = writeln!(
            text,
            "{:<13} | {:>6} {:>6} {:>6} {:>5} {:>6} {:>5} | {:>6.2} {:>6.2} {:>6.2} {:>5.2} {:>6.2} {:>5.1} {:>7}",
            label,
            p(|r| r.1),
            p(|r| r.2),
            p(|r| r.3),
            p(|r| r.4),
            p(|r| r.5),
            p(|r| r.6),
            o.avg(),
            o.min(),
            o.max(),
            std_dev(o),
            o.span,
            o.mbps,
            det.map_or("-".to_string(), |d| format!("{d:.3}s"))
        );
        rows4.push(serde_json::json!({
            "heartbeat": label,
            "detect_s": det.map(|d| (d * 1000.0).round() / 1000.0),
            "ours": {
                "avg_s": r2(o.avg()), "min_s": r2(o.min()), "max_s": r2(o.max()),
                "sd_s": r2(std_dev(o)), "total_s": r2(o.span), "mbps": r2(o.mbps),
                "unfinished": o.unfinished, "corrupted": o.corrupted, "drops": o.drops,
            },
            "paper": paper.map(|r| serde_json::json!({
                "avg_s": r.1, "min_s": r.2, "max_s": r.3, "sd_s": r.4, "total_s": r.5, "mbps": r.6,
            })),
        }));
    }
    text.push('\n');
    StudyOutput {
        table: text,
        json: serde_json::json!({
            "proxy_cost": { "per_packet_ns": PER_PACKET_NS, "per_byte_ns": PER_BYTE_NS },
            "shrink": shrink,
            "tables": json_tables,
            "table4": { "crash_after_s": r2(crash.as_secs_f64()), "bytes_per_conn": t4_bytes, "rows": rows4 },
        }),
        plots: Vec::new(),
        events,
    }
}

fn mb(b: u64) -> String {
    if b >= 1_000_000 {
        format!("{} MB", b / 1_000_000)
    } else {
        format!("{} kB", b / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_parse() {
        assert_eq!(config("C-S"), (Path::Direct, 0));
        assert_eq!(config("C-LB-3P-S"), (Path::Spliced, 3));
        assert_eq!(config("C-LB-P-S"), (Path::Spliced, 1));
        assert_eq!(config("C-LB-P-S*"), (Path::Split, 1));
    }
}

//! SRDS'06 §8 (fault-tolerant scalable TCP splice), Tables 2–6, beside the
//! paper's numbers: 100 concurrent PUTs (Tables 2, 3) and GETs (Tables 5, 6)
//! for C-S, C-LB-nP-S (n = 1..4) and split splice (C-LB-P-S*), and Table 4:
//! C-LB-2P-S on 100 Mbit/s with proxy 1 failing halfway, detected by the
//! heartbeat failure detector after 3 missed beats (5 s, 1 s, 200 ms, and
//! ours, 10 ms). The lb is the real one in the paper's mode (§7.1: round
//! robin, 40 packets to a proxy before switching to the next, so every
//! connection's packets cross every proxy) and detection is its own
//! heartbeat failure detector.
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
/// Packets the paper's lb sends to one proxy before the next (§7.1).
pub const BURST: u32 = 40;
/// Concurrent connections, as in the paper.
pub const CONNS: usize = 100;
/// At [`Scale::Budget`], Tables 2, 3, 5 and 6 move `size / SHRINK` bytes
/// per connection (the paper's 1 GB and 5 GB per point do not fit the
/// 2-minute sweep budget); throughput is size-independent in steady state,
/// times scale ~linearly. [`Scale::Paper`] moves the paper's sizes.
pub const SHRINK: u64 = 10;

/// One row of the paper: configuration, then avg, min, max seconds and
/// Mbit/s.
type PaperRow = (&'static str, [f64; 4]);

const TABLE2: [PaperRow; 5] = [
    ("C-S", [8.14, 5.38, 8.93, 895.0]),
    ("C-LB-P-S", [59.56, 43.74, 64.17, 125.0]),
    ("C-LB-2P-S", [34.27, 24.55, 36.90, 217.0]),
    ("C-LB-3P-S", [24.74, 18.22, 28.25, 283.0]),
    ("C-LB-4P-S", [20.47, 14.91, 23.88, 335.0]),
];
const TABLE3: [PaperRow; 5] = [
    ("C-S", [43.10, 38.31, 44.87, 892.0]),
    ("C-LB-P-S", [307.25, 266.25, 318.73, 126.0]),
    ("C-LB-2P-S", [177.12, 160.49, 182.94, 219.0]),
    ("C-LB-3P-S", [129.19, 107.86, 138.25, 289.0]),
    ("C-LB-4P-S", [106.87, 92.83, 112.07, 357.0]),
];
const TABLE5: [PaperRow; 3] = [
    ("C-S", [8.14, 5.38, 8.93, 895.0]),
    ("C-LB-P-S", [59.56, 43.74, 64.17, 125.0]),
    ("C-LB-P-S*", [8.69, 4.51, 9.23, 866.0]),
];
const TABLE6: [PaperRow; 3] = [
    ("C-S", [43.10, 38.31, 44.87, 892.0]),
    ("C-LB-P-S", [307.25, 266.25, 318.73, 126.0]),
    ("C-LB-P-S*", [43.26, 35.34, 44.99, 889.0]),
];
/// A row of Table 4: interval label, then avg, min, max, std dev, total
/// seconds and Mbit/s.
type FailRow = (&'static str, [f64; 6]);

const TABLE4: [FailRow; 4] = [
    ("no failure", [79.76, 46.35, 89.37, 8.18, 89.46, 93.76]),
    ("5 s", [90.54, 54.66, 142.07, 8.86, 142.14, 59.02]),
    ("1 s", [85.69, 55.88, 97.88, 5.51, 97.95, 85.64]),
    ("200 ms", [82.20, 45.30, 94.42, 5.70, 94.48, 88.79]),
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
        // The paper's lb (§7.1): round robin, 40 packets per proxy.
        lb_mode: LbMode::BurstSpray { burst: BURST },
        // Table 4 sets its own; elsewhere beats only find proxies alive.
        heartbeat: Duration::from_millis(200),
        crash_after: None,
        limit: Duration::from_secs(900),
    }
}

fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The columns of a table: Tables 2, 3, 5 and 6 show times and Mbit/s;
/// Table 4 (failover) also the standard deviation, the total time and how
/// long detection took.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Columns {
    Transfer,
    Failover,
}

/// One row: its label, the paper's numbers in the columns' order (none for
/// our extra rows) and our outcome.
struct Row<'a> {
    label: &'a str,
    paper: Option<&'a [f64]>,
    ours: &'a Outcome,
}

/// Writes a table's header and rows (ours beside the paper's) to `text` and
/// returns the rows as JSON.
fn table(text: &mut String, cols: Columns, rows: &[Row<'_>]) -> Vec<serde_json::Value> {
    let fail = cols == Columns::Failover;
    let names: &[&str] = if fail {
        &["min", "max", "sd", "total", "Mbps"]
    } else {
        &["min", "max", "Mbps"]
    };
    let _ = write!(
        text,
        "{:<13} | {:>7}",
        if fail { "heartbeat" } else { "config" },
        "paper"
    );
    for n in names {
        let _ = write!(text, " {n:>7}");
    }
    let _ = write!(text, " | {:>7}", "ours");
    for n in names {
        let _ = write!(text, " {n:>7}");
    }
    text.push_str(if fail { "  detect\n" } else { "\n" });
    let mut json = Vec::new();
    for r in rows {
        let o = r.ours;
        let ours: Vec<f64> = if fail {
            vec![o.avg(), o.min(), o.max(), o.std_dev(), o.span, o.mbps]
        } else {
            vec![o.avg(), o.min(), o.max(), o.mbps]
        };
        let _ = write!(text, "{:<13} |", r.label);
        for k in 0..ours.len() {
            match r.paper.and_then(|p| p.get(k)) {
                Some(v) => {
                    let _ = write!(text, " {v:>7.2}");
                }
                None => {
                    let _ = write!(text, " {:>7}", "-");
                }
            }
        }
        text.push_str(" |");
        for v in &ours {
            let _ = write!(text, " {v:>7.2}");
        }
        if fail {
            let det = o.detected_after;
            let _ = write!(
                text,
                " {:>7}",
                det.map_or("-".to_string(), |d| format!("{d:.3}s"))
            );
        }
        if o.unfinished > 0 {
            let _ = write!(text, "  ({} unfinished)", o.unfinished);
        }
        text.push('\n');
        let keys: &[&str] = if fail {
            &["avg_s", "min_s", "max_s", "sd_s", "total_s", "mbps"]
        } else {
            &["avg_s", "min_s", "max_s", "mbps"]
        };
        let mut ours_json = serde_json::json!({
            "unfinished": o.unfinished, "corrupted": o.corrupted, "drops": o.drops,
        });
        let mut paper_json = serde_json::Map::new();
        for (k, key) in keys.iter().enumerate() {
            ours_json[*key] = serde_json::json!(r2(ours[k]));
            if let Some(v) = r.paper.and_then(|p| p.get(k)) {
                paper_json.insert((*key).to_string(), serde_json::json!(v));
            }
        }
        let mut row = serde_json::json!({
            "ours": ours_json,
            "paper": r.paper.map(|_| serde_json::Value::Object(paper_json)),
        });
        if fail {
            row["heartbeat"] = serde_json::json!(r.label);
            row["detect_s"] =
                serde_json::json!(o.detected_after.map(|d| (d * 1000.0).round() / 1000.0));
        } else {
            row["config"] = serde_json::json!(r.label);
        }
        json.push(row);
    }
    text.push('\n');
    json
}

struct Table {
    title: &'static str,
    dir: Method,
    bytes: u64,
    rows: &'static [PaperRow],
}

/// Bytes per connection of Tables 2, 3, 5, 6 are divided by `shrink`;
/// Table 4 moves `t4_bytes`.
fn sizes(scale: Scale) -> (u64, u64) {
    match scale {
        Scale::Paper => (1, 10_000_000),
        Scale::Budget => (SHRINK, 10_000_000),
        Scale::Quick => (200, 200_000),
    }
}

fn tables(scale: Scale) -> [Table; 4] {
    let (shrink, _) = sizes(scale);
    [
        Table {
            title: "Table 2: 100 concurrent PUTs of 10 MB",
            dir: Method::Put,
            bytes: 10_000_000 / shrink,
            rows: &TABLE2,
        },
        Table {
            title: "Table 3: 100 concurrent PUTs of 50 MB",
            dir: Method::Put,
            bytes: 50_000_000 / shrink,
            rows: &TABLE3,
        },
        Table {
            title: "Table 5: 100 concurrent GETs of 10 MB",
            dir: Method::Get,
            bytes: 10_000_000 / shrink,
            rows: &TABLE5,
        },
        Table {
            title: "Table 6: 100 concurrent GETs of 50 MB",
            dir: Method::Get,
            bytes: 50_000_000 / shrink,
            rows: &TABLE6,
        },
    ]
}

/// The points of Tables 2, 3, 5 and 6, then Table 4's no-failure run
/// (last; [`failure_points`] derive from its outcome).
pub fn points(seed: u64, scale: Scale) -> Vec<Point> {
    let mut points = Vec::new();
    for t in &tables(scale) {
        for r in t.rows {
            points.push(point(seed, r.0, t.dir, t.bytes, 1_000_000_000));
        }
    }
    points.push(table4_point(seed, scale));
    points
}

fn table4_point(seed: u64, scale: Scale) -> Point {
    point(seed, "C-LB-2P-S", Method::Put, sizes(scale).1, 100_000_000)
}

/// Table 4 fails proxy 1 at half the no-failure average transfer time.
fn crash_after(no_failure: &Outcome) -> Duration {
    Duration::from_secs_f64(no_failure.avg() / 2.0)
}

/// Table 4's failure runs: proxy 1 crashes at half the no-failure run's
/// average time; proxies and lbs beat at the row's interval.
pub fn failure_points(seed: u64, scale: Scale, no_failure: &Outcome) -> Vec<Point> {
    let base = table4_point(seed, scale);
    HEARTBEATS
        .iter()
        .map(|&(_, hb)| Point {
            crash_after: Some(crash_after(no_failure)),
            heartbeat: hb,
            ..base.clone()
        })
        .collect()
}

/// Runs Tables 2–6.
pub fn run(seed: u64, scale: Scale, threads: usize) -> StudyOutput {
    let points = points(seed, scale);
    let make = |o: &Outcome| failure_points(seed, scale, o);
    let (outs, fails) = point::run_plan(&points, Some((points.len() - 1, &make)), threads);
    render(scale, &outs, &fails)
}

/// Tables 2–6 from the outcomes of [`points`] and [`failure_points`].
pub fn render(scale: Scale, outs: &[Outcome], fails: &[Outcome]) -> StudyOutput {
    let (shrink, t4_bytes) = sizes(scale);
    let no_failure = outs.last().cloned().unwrap_or_default();
    let crash = crash_after(&no_failure);
    let events: u64 = outs.iter().chain(fails.iter()).map(|o| o.events).sum();

    let mut text = String::new();
    let mut json_tables = Vec::new();
    let mut it = outs.iter();
    let none = Outcome::default();
    for t in &tables(scale) {
        let _ = writeln!(
            text,
            "SRDS'06 {} (ours: {} per connection)",
            t.title,
            mb(t.bytes)
        );
        let rows: Vec<Row<'_>> = t
            .rows
            .iter()
            .map(|r| Row {
                label: r.0,
                paper: Some(&r.1[..]),
                ours: it.next().unwrap_or(&none),
            })
            .collect();
        let rows = table(&mut text, Columns::Transfer, &rows);
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
    let rows4: Vec<Row<'_>> = core::iter::once(("no failure", &no_failure))
        .chain(HEARTBEATS.iter().zip(fails.iter()).map(|(h, o)| (h.0, o)))
        .map(|(label, o)| Row {
            label,
            paper: TABLE4.iter().find(|p| p.0 == label).map(|p| &p.1[..]),
            ours: o,
        })
        .collect();
    let rows4 = table(&mut text, Columns::Failover, &rows4);
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
        points: outs.len() + fails.len(),
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

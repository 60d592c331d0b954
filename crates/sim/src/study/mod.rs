//! Reproductions of the papers' studies on the simulator: DSN'06's
//! throughput-vs-offered-load curves and SRDS'06's Tables 2–6, run on the
//! real roles (lb, proxies with pre-splice, replication and
//! `proto::splice::translate`, the backend's split-splice agent, HTTP
//! endpoints). Every point is an independent deterministic run; points run
//! on worker threads with results merged in point order.

pub mod dsn06;
pub mod point;
pub mod srds06;

use crate::report::svg::Plot;

/// What a study produces.
#[derive(Debug)]
pub struct StudyOutput {
    /// Human-readable tables (ours beside the paper's).
    pub table: String,
    /// Machine-readable results.
    pub json: serde_json::Value,
    /// SVG plots by file name.
    pub plots: Vec<(String, Plot)>,
    /// Simulator events processed.
    pub events: u64,
    /// Simulation points run.
    pub points: usize,
}

/// Names accepted by [`run`].
pub const NAMES: [&str; 3] = ["dsn06", "srds06-tables", "all"];

/// Sweep size: `Paper` is the papers' sizes and every point they list;
/// `Budget` the sweep that fits the two-minute budget (what
/// `ftsplice sim study` runs by default); `Quick` a reduced sweep for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Paper,
    Budget,
    Quick,
}

/// Runs study `name` with `seed`; `None` for an unknown name.
pub fn run(name: &str, seed: u64, scale: Scale, threads: usize) -> Option<StudyOutput> {
    match name {
        "dsn06" => Some(dsn06::run(seed, scale, threads)),
        "srds06-tables" => Some(srds06::run(seed, scale, threads)),
        "all" => {
            // One pool for both studies, so neither waits for the other's
            // stragglers; Table 4's failure runs start as soon as its
            // no-failure run is done.
            let d = dsn06::points(seed, scale);
            let s = srds06::points(seed, scale);
            let (nd, ns) = (d.len(), s.len());
            let make = |o: &point::Outcome| srds06::failure_points(seed, scale, o);
            let all: Vec<point::Point> = d.into_iter().chain(s).collect();
            let (outs, fails) = point::run_plan(&all, Some((nd + ns - 1, &make)), threads);
            let a = dsn06::render(scale, &outs[..nd]);
            let b = srds06::render(scale, &outs[nd..], &fails);
            let mut plots = a.plots;
            plots.extend(b.plots);
            Some(StudyOutput {
                table: format!("{}\n{}", a.table, b.table),
                json: serde_json::json!({ "dsn06": a.json, "srds06-tables": b.json }),
                plots,
                events: a.events + b.events,
                points: a.points + b.points,
            })
        }
        _ => None,
    }
}

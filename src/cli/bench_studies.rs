//! `ftsplice bench studies [--paper|--quick] [--threads N] [--json]`: runs
//! the full study sweep (`sim study all`) and reports its wall time, the
//! process's CPU time, points and events per second, and the machine's load
//! average before, during and after: the benchmark of issue 4's two-minute
//! budget. On a shared machine the wall time mostly measures the neighbours;
//! CPU seconds and the load say how much of that is ours. `--report DIR`
//! also writes what the sweep found (tables, JSON, SVG plots), so one run
//! gives both the numbers of docs/studies.md and the time it took.

use super::study::load_average;
use anyhow::{bail, Context, Result};
use clap::Args;
use ftsplice_linux::cpu::process_cpu_s;
use ftsplice_sim::study;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// The budget for the full sweep on this 2-core machine.
const BUDGET_S: f64 = 120.0;

#[derive(Args)]
pub struct StudiesArgs {
    /// The papers' sizes and every point they list (the sweep).
    #[arg(long, conflicts_with = "quick")]
    pub paper: bool,
    /// The reduced sweep the tests use.
    #[arg(long)]
    pub quick: bool,
    /// Worker threads running independent points.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the sweep's tables.txt, study.json, bench.json and SVG
    /// plots into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn run(args: &StudiesArgs) -> Result<()> {
    let scale = super::study::scale(args.quick, args.paper);
    let load_before = load_average();
    let cpu_before = process_cpu_s();
    // Sample the load average every second while the sweep runs.
    let (done, stop) = mpsc::channel::<()>();
    let (out, wall, samples) = std::thread::scope(|sc| {
        let sampler = sc.spawn(move || {
            let mut v = Vec::new();
            loop {
                v.extend(load_average());
                match stop.recv_timeout(Duration::from_secs(1)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return v,
                }
            }
        });
        // Wall-clock timing is this command's output, not logic.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let out = study::run("all", args.seed, scale, args.threads);
        let wall = started.elapsed().as_secs_f64();
        let _ = done.send(());
        (out, wall, sampler.join().unwrap_or_default())
    });
    let Some(out) = out else {
        bail!("study \"all\" is missing");
    };
    let cpu = match (cpu_before, process_cpu_s()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let load_after = load_average();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let load_during = mean(&samples);
    let load_max = samples
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let threads = args.threads.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // What the sweep would take alone on the machine: its CPU time spread
    // over the threads it can use (a lower bound: the last point may run
    // alone).
    let idle_estimate = cpu / threads.min(cores) as f64;
    let r = |v: f64| (v * 100.0).round() / 100.0;
    let opt = |v: Option<f64>| v.map(r);
    let report = serde_json::json!({
        "sweep": format!("{scale:?}").to_lowercase(),
        "seed": args.seed,
        "threads": threads,
        "cores": cores,
        "points": out.points,
        "events": out.events,
        "wall_s": r(wall),
        "cpu_s": r(cpu),
        "cpu_per_wall": r(cpu / wall),
        "points_per_s": r(out.points as f64 / wall),
        "events_per_cpu_s": (out.events as f64 / cpu).round(),
        "idle_estimate_s": r(idle_estimate),
        "budget_s": BUDGET_S,
        "wall_within_budget": wall <= BUDGET_S,
        "load_before": opt(load_before),
        "load_during_mean": opt(load_during),
        "load_during_max": opt(load_max),
        "load_after": opt(load_after),
    });
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = [
            ("tables.txt", out.table.clone()),
            ("study.json", serde_json::to_string_pretty(&out.json)?),
            ("bench.json", serde_json::to_string_pretty(&report)?),
        ];
        let plots = out.plots.iter().map(|(n, p)| (n.as_str(), p.render()));
        for (name, body) in files.into_iter().chain(plots) {
            let path = dir.join(name);
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let l = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.2}"));
        println!(
            "study sweep ({:?}, seed {}): {} points, {} events",
            scale, args.seed, out.points, out.events
        );
        println!(
            "wall {wall:.1} s on {threads} threads ({} the {BUDGET_S:.0} s budget), CPU {cpu:.1} s ({:.2} cores busy), {:.2} points/s, {:.0} events per CPU second",
            if wall <= BUDGET_S { "within" } else { "over" },
            cpu / wall,
            out.points as f64 / wall,
            out.events as f64 / cpu
        );
        println!(
            "alone on {} cores: ~{idle_estimate:.0} s (CPU / threads, a lower bound)",
            threads.min(cores)
        );
        println!(
            "load average: {} before, {} mean / {} max during, {} after",
            l(load_before),
            l(load_during),
            l(load_max),
            l(load_after)
        );
    }
    Ok(())
}

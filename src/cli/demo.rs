//! `ftsplice demo`: the full namespace system with faults injected (the
//! testbed scenarios: proxy crash, lb crash, split splice, iperf stream
//! with a proxy killed), then the simulated scenarios, each printing its
//! table and JSON report, and a summary. Fails if any scenario could not
//! run or lost or corrupted a connection. The testbed needs root (run it
//! through `scripts/demo.sh`); `--sim-only` skips it.

use super::sim::{run_one, BackendArgs, RunArgs};
use clap::Args;
use ftsplice_report::Report;
use ftsplice_sim::scenario::NAMES as SIM_NAMES;
use ftsplice_testbed::scenario::{self, Options, NAMES as TESTBED_NAMES};
use std::path::PathBuf;

#[derive(Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent connections per PUT/GET scenario (the paper's 100).
    #[arg(long, default_value_t = 100)]
    pub conns: u64,
    /// Body bytes per connection in the testbed (the paper's 10 MB).
    #[arg(long, default_value_t = 10_000_000)]
    pub size: u64,
    /// Body bytes per connection in the simulator (shorter: the simulated
    /// scenarios repeat the testbed's in virtual time).
    #[arg(long, default_value_t = 2_000_000)]
    pub sim_size: u64,
    /// Seconds of the iperf scenario's stream.
    #[arg(long, default_value_t = 6)]
    pub iperf_secs: u32,
    /// Bytes of the stream scenario's one PUT.
    #[arg(long, default_value_t = 400_000_000)]
    pub stream_size: u64,
    /// Skip the namespace testbed (no root needed).
    #[arg(long)]
    pub sim_only: bool,
    /// Directory for one SVG plot per simulated scenario.
    #[arg(long)]
    pub plot_dir: Option<PathBuf>,
}

/// Why a scenario produced no report: its error, all causes.
type Failure = String;

struct Row {
    name: String,
    mode: &'static str,
    outcome: Result<Report, Failure>,
}

fn intact(r: &Report) -> bool {
    r.connections.all_intact()
}

pub fn main(args: DemoArgs) -> anyhow::Result<()> {
    if let Some(d) = &args.plot_dir {
        std::fs::create_dir_all(d)?;
    }
    let mut rows = Vec::new();
    if !args.sim_only {
        if !ftsplice_linux::is_root() {
            anyhow::bail!(
                "demo: the namespace testbed needs root; run `sudo bash scripts/demo.sh` \
                 (or `ftsplice demo --sim-only`)"
            );
        }
        let mut o = Options::new(std::env::current_exe()?);
        o.seed = args.seed;
        o.conns = args.conns;
        o.size = args.size;
        o.iperf_secs = args.iperf_secs;
        o.stream_size = args.stream_size;
        for name in TESTBED_NAMES {
            println!("=== testbed {name}");
            let outcome = scenario::run(name, &o).map_err(|e| format!("{e:#}"));
            match &outcome {
                Ok(r) => {
                    print!("{}", r.table());
                    println!("{}", r.to_json());
                }
                Err(e) => println!("FAILED: {e}"),
            }
            rows.push(Row {
                name: name.to_string(),
                mode: "testbed",
                outcome,
            });
        }
    }
    for name in SIM_NAMES {
        println!("=== sim {name}");
        let a = RunArgs {
            scenario: name.to_string(),
            seed: args.seed,
            json: true,
            plot: args
                .plot_dir
                .as_ref()
                .map(|d| d.join(format!("{name}.svg"))),
            pcap: None,
            conns: args.conns as usize,
            size: args.sim_size,
            backend: BackendArgs::default(),
        };
        let outcome = run_one(&a)
            .map_err(|e| format!("{e:#}"))
            .map(|(run, wall)| {
                print!("{}", run.report.table());
                println!("wall time    {wall:.2} s");
                println!("{}", run.report.to_json());
                run.report
            });
        if let Err(e) = &outcome {
            println!("FAILED: {e}");
        }
        rows.push(Row {
            name: name.to_string(),
            mode: "sim",
            outcome,
        });
    }
    println!("=== summary");
    println!(
        "{:<14} {:<8} {:>9} {:>7} {:>9} {:>12} {:>10}",
        "scenario", "mode", "completed", "broken", "corrupted", "detected", "stall"
    );
    let mut failed = Vec::new();
    for r in &rows {
        match &r.outcome {
            Ok(rep) => {
                let c = &rep.connections;
                let det = rep
                    .faults
                    .first()
                    .and_then(|f| f.detected_ms.map(|d| d - f.at_ms));
                let stall = rep.details.get("stall_ms");
                println!(
                    "{:<14} {:<8} {:>9} {:>7} {:>9} {:>12} {:>10}",
                    r.name,
                    r.mode,
                    format!("{}/{}", c.completed, c.total),
                    c.broken,
                    c.corrupted,
                    det.map_or("-".into(), |d| format!("+{d:.1} ms")),
                    stall.map_or("-".into(), |s| format!("{s:.1} ms"))
                );
                if !intact(rep) {
                    failed.push(format!("{} {}", r.mode, r.name));
                }
            }
            Err(e) => {
                let first: String = e
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(160)
                    .collect();
                println!("{:<14} {:<8} FAILED: {first}", r.name, r.mode);
                failed.push(format!("{} {}", r.mode, r.name));
            }
        }
    }
    if failed.is_empty() {
        println!("demo: every connection of every scenario survived its fault");
        Ok(())
    } else {
        anyhow::bail!(
            "demo: scenarios failed or lost connections: {}",
            failed.join(", ")
        )
    }
}

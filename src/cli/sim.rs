//! `ftsplice sim run SCENARIO [--seed N] [--json] [--plot FILE.svg] [--pcap FILE]`:
//! runs one simulated scenario and prints its report; `ftsplice sim study
//! NAME` runs a paper study (`super::study`). `backend-crash` takes
//! `--point`, `--rtt-ms`, `--workload`, `--baseline`, `--nondeterministic`
//! and `--state-lag-ms`; `ftsplice sim backend-grid` runs all of its crash
//! points, RTTs and workloads, ours against the client-retry baseline.

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use ftsplice_sim::report::table;
use ftsplice_sim::roles::webmail::app::Action;
use ftsplice_sim::roles::webmail::backend::CrashPoint;
use ftsplice_sim::scenario::backend_crash::{self, BackendCrash};
use ftsplice_sim::scenario::{self, Options, Run, NAMES};
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant as WallClock;

#[derive(Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(Subcommand)]
pub enum SimCommand {
    /// Run a scenario: proxy-crash, lb-crash, split-splice, scale-out,
    /// backend-crash, presplice-crash.
    Run(RunArgs),
    /// List the scenarios.
    List,
    /// Reproduce a paper's study: dsn06, srds06-tables or all.
    Study(super::study::StudyArgs),
    /// backend-crash at every crash point, RTT (0.25/79/260 ms) and
    /// workload (Action 1/2), ours and the client-retry baseline: failover
    /// times like the paper's Tables 2 and 3.
    BackendGrid(GridArgs),
}

#[derive(Args)]
pub struct GridArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print every run's JSON report (one per line) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `backend-crash`.
#[derive(Args, Clone, Debug)]
pub struct BackendArgs {
    /// backend-crash: where the primary crashes: between, mid-request,
    /// before-response, mid-response.
    #[arg(long, default_value = "before-response")]
    pub point: String,
    /// backend-crash: the client's round-trip time (the paper: 0.25, 79, 260).
    #[arg(long, default_value_t = 79.0)]
    pub rtt_ms: f64,
    /// backend-crash: action1 (login screen) or action2 (mail session).
    #[arg(long, default_value = "action2")]
    pub workload: String,
    /// backend-crash: the traditional architecture (client heartbeats,
    /// reconnects and re-issues) instead of the logger.
    #[arg(long)]
    pub baseline: bool,
    /// backend-crash: crash mid-response in a transaction whose response
    /// differs between backends (the client is reset).
    #[arg(long)]
    pub nondeterministic: bool,
    /// backend-crash: delay of the primary's state pushes (forces replays).
    #[arg(long, default_value_t = 0)]
    pub state_lag_ms: u64,
}

impl Default for BackendArgs {
    fn default() -> Self {
        BackendArgs {
            point: "before-response".into(),
            rtt_ms: 79.0,
            workload: "action2".into(),
            baseline: false,
            nondeterministic: false,
            state_lag_ms: 0,
        }
    }
}

impl BackendArgs {
    pub fn config(&self, seed: u64) -> anyhow::Result<BackendCrash> {
        let point = CrashPoint::parse(&self.point).ok_or_else(|| {
            anyhow!(
                "unknown crash point {:?} (between, mid-request, before-response, mid-response)",
                self.point
            )
        })?;
        let action = Action::parse(&self.workload)
            .ok_or_else(|| anyhow!("unknown workload {:?} (action1, action2)", self.workload))?;
        if !(self.rtt_ms > 0.0 && self.rtt_ms <= 10_000.0) {
            anyhow::bail!("--rtt-ms must be in (0, 10000]");
        }
        Ok(BackendCrash {
            seed,
            action,
            point,
            rtt_ms: self.rtt_ms,
            baseline: self.baseline,
            nondeterministic: self.nondeterministic,
            state_lag_ms: self.state_lag_ms,
            ..BackendCrash::new(seed)
        })
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// Scenario name.
    pub scenario: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write goodput over time (with fault markers) as SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Capture the client's link as pcap.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Concurrent connections (default: the paper's 100).
    #[arg(long, default_value_t = 100)]
    pub conns: usize,
    /// Body bytes per connection (default: the paper's 10 MB).
    #[arg(long, default_value_t = 10_000_000)]
    pub size: u64,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Runs one scenario per `args`; returns the run and the wall time.
// The wall clock only measures how long the simulator took; simulated time
// never depends on it.
#[allow(clippy::disallowed_methods)]
pub fn run_one(args: &RunArgs) -> anyhow::Result<(Run, f64)> {
    let pcap = match &args.pcap {
        Some(p) => {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            Some(Box::new(BufWriter::new(f)) as Box<dyn std::io::Write>)
        }
        None => None,
    };
    let opts = Options {
        seed: args.seed,
        conns: args.conns,
        size: args.size,
        pcap,
    };
    let t0 = WallClock::now();
    let run = if args.scenario == "backend-crash" {
        if args.pcap.is_some() {
            anyhow::bail!("backend-crash does not capture pcap");
        }
        backend_crash::scenario(&args.backend.config(args.seed)?)
    } else {
        scenario::run(&args.scenario, opts).map_err(|e| anyhow!(e))?
    };
    let wall = t0.elapsed().as_secs_f64();
    if let Some(p) = &args.plot {
        std::fs::write(p, run.plot.render()).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok((run, wall))
}

pub fn main(args: SimArgs) -> anyhow::Result<()> {
    match args.command {
        SimCommand::List => {
            for n in NAMES.iter().chain(&scenario::MEASURED) {
                println!("{n}");
            }
            Ok(())
        }
        SimCommand::Study(a) => super::study::run(&a),
        SimCommand::BackendGrid(g) => {
            let rows = backend_crash::grid(g.seed);
            if g.json {
                for r in &rows {
                    for rep in [&r.ours, &r.baseline] {
                        println!("{}", serde_json::to_string(rep)?);
                    }
                }
            } else {
                print!("{}", backend_crash::render_grid(&rows));
            }
            Ok(())
        }
        SimCommand::Run(a) => {
            let (run, wall) = run_one(&a)?;
            if a.json {
                println!("{}", run.report.to_json());
            } else {
                print!("{}", table::render(&run.report));
                println!("wall time    {wall:.2} s");
            }
            Ok(())
        }
    }
}

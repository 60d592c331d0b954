//! `ftsplice sim run SCENARIO [--seed N] [--json] [--plot FILE.svg] [--pcap FILE]`:
//! runs one simulated scenario and prints its report; `ftsplice sim study
//! NAME` runs a paper study (`super::study`).

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use ftsplice_sim::report::table;
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
    /// Run a scenario: proxy-crash, lb-crash, split-splice, scale-out.
    Run(RunArgs),
    /// List the scenarios.
    List,
    /// Reproduce a paper's study: dsn06, srds06-tables or all.
    Study(super::study::StudyArgs),
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
    let run = scenario::run(&args.scenario, opts).map_err(|e| anyhow!(e))?;
    let wall = t0.elapsed().as_secs_f64();
    if let Some(p) = &args.plot {
        std::fs::write(p, run.plot.render()).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok((run, wall))
}

pub fn main(args: SimArgs) -> anyhow::Result<()> {
    match args.command {
        SimCommand::List => {
            for n in NAMES {
                println!("{n}");
            }
            Ok(())
        }
        SimCommand::Study(a) => super::study::run(&a),
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

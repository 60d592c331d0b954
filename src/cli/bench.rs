//! `ftsplice bench throughput [--json] [--secs N]`: iperf3 through every
//! path of the namespace system in one run (see `ftsplice_testbed::bench`);
//! `ftsplice bench studies`: the simulator's paper-study sweep time
//! (`super::bench_studies`).

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// (a) direct, (b) kernel forwarding, (c) HAProxy, (d) lb+proxy splice,
    /// (e) split splice: Gbit/s and the goal ratios (needs root).
    Throughput {
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Seconds of iperf3 per path.
        #[arg(long, default_value_t = 10)]
        secs: u32,
    },
    /// The full paper-study sweep on the simulator: wall and CPU time,
    /// points/s, load average (issue 4's two-minute budget).
    Studies(super::bench_studies::StudiesArgs),
}

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.command {
        BenchCommand::Throughput { json, secs } => {
            let bin = std::env::current_exe()?;
            let r = ftsplice_testbed::bench::throughput(&bin, *secs)?;
            if *json {
                println!("{}", r.to_json());
            } else {
                print!("{}", r.table());
            }
            Ok(())
        }
        BenchCommand::Studies(a) => super::bench_studies::run(a),
    }
}

//! `ftsplice bench throughput [--json] [--secs N] [--rounds N] [--tool T]
//! [--offloads on|off]`: one tool through every path of the namespace
//! system, in interleaved rounds (see `ftsplice_testbed::bench`);
//! `ftsplice bench studies`: the simulator's paper-study sweep time
//! (`super::bench_studies`).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use ftsplice_linux::Offloads;
use ftsplice_testbed::bench::{Options, Tool};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// (a) direct, (b) kernel forwarding, (c) HAProxy, (d) lb+proxy splice,
    /// (e) split splice: Gbit/s per round, medians, ranges and the goal
    /// ratios (needs root).
    Throughput {
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Seconds per path and round.
        #[arg(long, default_value_t = 5)]
        secs: u32,
        /// Rounds over the five paths.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// What measures every path: iperf3 (`iperf3 -R`) or http (a curl
        /// GET from nginx).
        #[arg(long, default_value = "iperf3")]
        tool: String,
        /// Veth offloads of every path: on (the veth defaults) or off.
        #[arg(long, default_value = "on")]
        offloads: String,
        /// Proxy heartbeat interval in the systems measured.
        #[arg(long, default_value_t = 100)]
        heartbeat_ms: u64,
    },
    /// The full paper-study sweep on the simulator: wall and CPU time,
    /// points/s, load average (issue 4's two-minute budget).
    Studies(super::bench_studies::StudiesArgs),
}

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.command {
        BenchCommand::Throughput {
            json,
            secs,
            rounds,
            tool,
            offloads,
            heartbeat_ms,
        } => {
            let bin = std::env::current_exe()?;
            let mut o = Options::new(Tool::parse(tool)?);
            o.secs = *secs;
            o.rounds = *rounds;
            o.heartbeat_ms = *heartbeat_ms;
            o.offloads = match offloads.as_str() {
                "on" => Offloads::Default,
                "off" => Offloads::Off,
                other => bail!("--offloads: '{other}' is neither on nor off"),
            };
            if o.rounds == 0 || o.secs == 0 {
                bail!("--rounds and --secs must be at least 1");
            }
            let r = ftsplice_testbed::bench::throughput(&bin, &o)?;
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

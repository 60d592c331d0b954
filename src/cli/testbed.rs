//! `ftsplice testbed run SCENARIO [--json]` and `ftsplice testbed down`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct TestbedArgs {
    #[command(subcommand)]
    pub command: TestbedCommand,
}

#[derive(Subcommand)]
pub enum TestbedCommand {
    /// Build a scenario's namespaces, run it, print its report, tear down.
    Run {
        /// Scenario: `baseline`.
        scenario: String,
        /// Print the JSON report instead of the table.
        #[arg(long)]
        json: bool,
        /// Requests to make.
        #[arg(long, default_value_t = 20)]
        requests: u64,
        /// Size of the fetched file, bytes.
        #[arg(long, default_value_t = 1 << 20)]
        size: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds of iperf3 for the throughput figure (0: GET goodput).
        #[arg(long, default_value_t = 3)]
        iperf_secs: u32,
    },
    /// Remove namespaces left behind by dead testbed/test processes.
    Down,
}

pub fn run(args: &TestbedArgs) -> Result<()> {
    match &args.command {
        TestbedCommand::Run {
            scenario,
            json,
            requests,
            size,
            seed,
            iperf_secs,
        } => {
            let report = match scenario.as_str() {
                "baseline" => {
                    ftsplice_testbed::baseline::run(*requests, *size, *seed, *iperf_secs)?
                }
                other => bail!("unknown scenario '{other}' (available: baseline)"),
            };
            if *json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.table());
            }
            Ok(())
        }
        TestbedCommand::Down => {
            for n in ftsplice_testbed::cleanup::down()? {
                println!("removed namespace {n}");
            }
            Ok(())
        }
    }
}

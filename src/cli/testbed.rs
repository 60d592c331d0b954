//! `ftsplice testbed up [--proxies N] [--split]`, `testbed down` and
//! `testbed run SCENARIO [--json]`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use ftsplice_testbed::system::{Spec, System};

#[derive(Args)]
pub struct TestbedArgs {
    #[command(subcommand)]
    pub command: TestbedCommand,
}

#[derive(Subcommand)]
pub enum TestbedCommand {
    /// Build the full system (switch, clients, lbs, SSA gateway, proxies,
    /// backends with nginx) with its daemons, print how to use it, and
    /// leave it running (`testbed down` removes it).
    Up {
        #[arg(long, default_value_t = 2)]
        proxies: usize,
        /// Run split-splice agents on the backends.
        #[arg(long)]
        split: bool,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 1)]
        backends: usize,
        /// Only the network and servers, no ftsplice daemons.
        #[arg(long)]
        no_daemons: bool,
    },
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
    /// Remove what dead testbed/test processes left: their processes,
    /// namespaces and temp directories.
    Down,
}

pub fn run(args: &TestbedArgs) -> Result<()> {
    match &args.command {
        TestbedCommand::Up {
            proxies,
            split,
            clients,
            backends,
            no_daemons,
        } => {
            let mut spec = Spec::new(&std::env::current_exe()?);
            spec.proxies = *proxies;
            spec.split = *split;
            spec.clients = *clients;
            spec.backends = *backends;
            spec.daemons = !no_daemons;
            spec.files = vec![ftsplice_testbed::body::Body::new(1, 0, 1 << 20).to_vec()];
            let mut sys = System::up(spec)?;
            sys.run.keep = true;
            print!("{}", sys.describe());
            println!("the system stays up; remove it with: ftsplice testbed down");
            // Leave everything running: no Drop guard may tear it down.
            std::mem::forget(sys);
            Ok(())
        }
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
                println!("removed {n}");
            }
            Ok(())
        }
    }
}

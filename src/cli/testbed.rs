//! `ftsplice testbed up [--proxies N] [--split]`, `testbed down` and
//! `testbed run SCENARIO [--json]`.

use anyhow::Result;
use clap::{Args, Subcommand};
use ftsplice_testbed::scenario::{self, Options};
use ftsplice_testbed::system::{Spec, System};
use std::time::Duration;

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
        /// Veth offloads: off (the default) or on (the veth defaults, as
        /// `bench throughput` uses).
        #[arg(long, default_value = "off")]
        offloads: String,
        /// Add the bench's router and HAProxy hosts.
        #[arg(long)]
        bench_hosts: bool,
        /// Proxy heartbeat interval.
        #[arg(long, default_value_t = 10)]
        heartbeat_ms: u64,
    },
    /// Build a scenario's system, run it, print its report, tear down:
    /// proxy-crash, lb-crash, split-splice, stream, iperf (the full system with its
    /// daemons) or baseline (curl through kernel forwarding, no ftsplice).
    Run {
        scenario: String,
        /// Print the JSON report instead of the table.
        #[arg(long)]
        json: bool,
        /// Concurrent connections (baseline: sequential requests).
        #[arg(long, default_value_t = 100)]
        conns: u64,
        /// Body bytes per connection.
        #[arg(long, default_value_t = 10_000_000)]
        size: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 2)]
        proxies: usize,
        /// Client namespaces the connections are spread over.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Proxy heartbeat interval (the lb declares a proxy dead after 3
        /// missed beats).
        #[arg(long, default_value_t = 10)]
        heartbeat_ms: u64,
        /// Seconds of iperf3 (iperf; baseline's throughput figure).
        #[arg(long, default_value_t = 10)]
        iperf_secs: u32,
        /// Bytes of the stream scenario's one PUT.
        #[arg(long, default_value_t = 1_000_000_000)]
        stream_size: u64,
        /// A transfer stuck this long counts as broken.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// Keep the run directory (configs, daemon logs) and print it.
        #[arg(long)]
        keep: bool,
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
            offloads,
            bench_hosts,
            heartbeat_ms,
        } => {
            let mut spec = Spec::new(&std::env::current_exe()?);
            spec.offloads = match offloads.as_str() {
                "on" => ftsplice_linux::Offloads::Default,
                "off" => ftsplice_linux::Offloads::Off,
                other => anyhow::bail!("--offloads: '{other}' is neither on nor off"),
            };
            spec.big_file = Some(1 << 40);
            spec.bench_hosts = *bench_hosts;
            spec.heartbeat_ms = *heartbeat_ms;
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
            conns,
            size,
            seed,
            proxies,
            clients,
            heartbeat_ms,
            iperf_secs,
            stream_size,
            timeout_secs,
            keep,
        } => {
            let report = if scenario == "baseline" {
                ftsplice_testbed::baseline::run(*conns, *size as usize, *seed, *iperf_secs)?
            } else {
                let mut o = Options::new(std::env::current_exe()?);
                o.seed = *seed;
                o.conns = *conns;
                o.size = *size;
                o.proxies = *proxies;
                o.clients = *clients;
                o.heartbeat_ms = *heartbeat_ms;
                o.iperf_secs = *iperf_secs;
                o.stream_size = *stream_size;
                o.timeout = Duration::from_secs(*timeout_secs);
                o.keep = *keep;
                scenario::run(scenario, &o)?
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

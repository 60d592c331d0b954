//! `ftsplice demo`: runs every simulated scenario and prints, per scenario,
//! the human table and the JSON report (the Linux testbed joins later).

use super::sim::{run_one, RunArgs};
use clap::Args;
use ftsplice_sim::report::table;
use ftsplice_sim::scenario::NAMES;
use std::path::PathBuf;

#[derive(Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent connections per scenario.
    #[arg(long, default_value_t = 100)]
    pub conns: usize,
    /// Body bytes per connection.
    #[arg(long, default_value_t = 10_000_000)]
    pub size: u64,
    /// Directory for one SVG plot per scenario.
    #[arg(long)]
    pub plot_dir: Option<PathBuf>,
}

pub fn main(args: DemoArgs) -> anyhow::Result<()> {
    if let Some(d) = &args.plot_dir {
        std::fs::create_dir_all(d)?;
    }
    let mut failed = Vec::new();
    for name in NAMES {
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
            conns: args.conns,
            size: args.size,
        };
        let (run, wall) = run_one(&a)?;
        print!("{}", table::render(&run.report));
        println!("wall time    {wall:.2} s");
        println!("{}", run.report.to_json());
        let c = &run.report.connections;
        if c.broken != 0 || c.corrupted != 0 || c.completed != c.total {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        println!("demo: every connection survived every fault");
        Ok(())
    } else {
        anyhow::bail!("demo: connections lost in {failed:?}")
    }
}

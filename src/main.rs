//! The `ftsplice` binary: one entry point for the daemons (lb, proxy, agent,
//! logger), the simulator, the namespace testbed, benchmarks and the demo.
//! Each subcommand lives in its own module under `src/cli/`.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(name = "ftsplice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the build's version and component crates.
    Version,
    /// The load balancer daemon.
    Lb(cli::daemon::DaemonArgs),
    /// The splicing proxy daemon.
    Proxy(cli::daemon::DaemonArgs),
    /// The backend split-splice agent daemon.
    Agent(cli::daemon::DaemonArgs),
    /// Namespace testbed scenarios with real tools (needs root).
    Testbed(cli::testbed::TestbedArgs),
    /// Benchmarks: the namespace system (needs root), the study sweep.
    Bench(cli::bench::BenchArgs),
    /// The deterministic simulator.
    Sim(cli::sim::SimArgs),
    /// Run every scenario and print the reports.
    Demo(cli::demo::DemoArgs),
    /// Alias of `sim study`.
    #[command(hide = true)]
    Study(cli::study::StudyArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("ftsplice {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Lb(a) => cli::daemon::run(cli::daemon::Role::Lb, &a),
        Command::Proxy(a) => cli::daemon::run(cli::daemon::Role::Proxy, &a),
        Command::Agent(a) => cli::daemon::run(cli::daemon::Role::Agent, &a),
        Command::Testbed(a) => cli::testbed::run(&a),
        Command::Bench(a) => cli::bench::run(&a),
        Command::Sim(a) => cli::sim::main(a),
        Command::Demo(a) => cli::demo::main(a),
        Command::Study(a) => cli::study::run(&a),
    }
}

//! The `ftsplice` binary: one entry point for the daemons (lb, proxy, agent,
//! logger), the simulator, the namespace testbed, benchmarks and the demo.
//! Each subcommand lives in its own module under `src/cli/`.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("ftsplice {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

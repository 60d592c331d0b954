//! `ftsplice sim study NAME [--json] [--plot DIR] [--paper|--quick]` (also
//! `ftsplice study`): runs a paper reproduction (`dsn06`, `srds06-tables`
//! or `all`) on the simulator, prints its tables (or JSON), writes its SVG
//! plots, and reports the sweep's wall time, simulated events and
//! the machine's load average on stderr (the benchmark the 2-minute budget
//! is checked against).

use anyhow::{bail, Context};
use clap::Args;
use ftsplice_sim::study::{self, Scale};
use std::path::PathBuf;

#[derive(Args)]
pub struct StudyArgs {
    /// dsn06, srds06-tables or all.
    pub name: String,
    /// Seed of every simulation point.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the JSON results instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write the SVG plots into this directory.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Worker threads running independent points.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// The reduced sweep the tests use.
    #[arg(long, conflicts_with = "paper")]
    pub quick: bool,
    /// The papers' sizes and every point they list (slower than the
    /// two-minute budget; see docs/studies.md).
    #[arg(long)]
    pub paper: bool,
}

/// The sweep the `--quick`/`--paper` flags select (default: the budget one).
pub fn scale(quick: bool, paper: bool) -> Scale {
    if quick {
        Scale::Quick
    } else if paper {
        Scale::Paper
    } else {
        Scale::Budget
    }
}

/// The 1-minute load average (other work on the machine), if readable.
pub use ftsplice_linux::load_average;

pub fn run(args: &StudyArgs) -> anyhow::Result<()> {
    let scale = scale(args.quick, args.paper);
    let load_before = load_average();
    // Wall-clock timing of the sweep is this command's output, not logic.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let Some(out) = study::run(&args.name, args.seed, scale, args.threads) else {
        bail!(
            "unknown study {:?} (known: {})",
            args.name,
            study::NAMES.join(", ")
        );
    };
    let wall = started.elapsed();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out.json)?);
    } else {
        print!("{}", out.table);
    }
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, plot) in &out.plots {
            let path = dir.join(name);
            std::fs::write(&path, plot.render())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    let load = |l: Option<f64>| l.map_or("?".to_string(), |l| format!("{l:.2}"));
    eprintln!(
        "study {} ({:?}): {} simulated events, wall {:.1} s on {} threads; load average {} before, {} after",
        args.name,
        scale,
        out.events,
        wall.as_secs_f64(),
        args.threads,
        load(load_before),
        load(load_average()),
    );
    Ok(())
}

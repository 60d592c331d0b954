//! Runs the benchmark's representative study point (DSN'06, 4 separate
//! proxies, 510 Mbit/s offered, 50 MB) `N` times (default 3) and prints
//! the simulated events and this thread's CPU time per run, which is what
//! an engine change should be judged by on a shared machine (wall time
//! there mostly measures the neighbours):
//! `cargo run --release -p ftsplice-sim --example study_point -- 5`.

use ftsplice_sim::study::{dsn06, point, Scale};

/// CPU seconds this thread has used (0 where /proc cannot be read).
fn thread_cpu() -> f64 {
    ftsplice_linux::cpu::thread_cpu_s().unwrap_or_default()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let cfg = &dsn06::CONFIGS[0];
    let p = dsn06::point(1, cfg, 510, 4, dsn06::sweep(Scale::Paper).bytes);
    for _ in 0..n {
        let c0 = thread_cpu();
        let o = point::run(&p);
        let cpu = thread_cpu() - c0;
        println!(
            "events {} cpu {:.2} s ({:.0} ns/event) flowing {:.1} Mbit/s unfinished {}",
            o.events,
            cpu,
            cpu * 1e9 / o.events as f64,
            o.flowing_mbps,
            o.unfinished
        );
    }
}

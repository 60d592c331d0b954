//! Runs chosen study points and prints, per point, its simulated events,
//! this thread's CPU time and a digest of its whole outcome, so an engine
//! change can be checked for identical results and timed on a few points
//! instead of a whole sweep:
//! `cargo run --release -p ftsplice-sim --example study_points -- dsn:0:510:4 srds:budget:6`
//! (`dsn:CONFIG:RATE:PROXIES` at paper size, CONFIG indexing
//! `dsn06::CONFIGS`; `srds:SCALE:I` the I-th point of `srds06::points`).

use ftsplice_sim::study::{dsn06, point, srds06, Scale};
use std::hash::{DefaultHasher, Hash, Hasher};

/// CPU seconds this thread has used (0 where /proc cannot be read).
fn thread_cpu() -> f64 {
    ftsplice_linux::cpu::thread_cpu_s().unwrap_or_default()
}

fn parse(spec: &str) -> Option<point::Point> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        ["dsn", c, rate, n] => {
            let cfg = dsn06::CONFIGS.get(c.parse::<usize>().ok()?)?;
            let bytes = dsn06::sweep(Scale::Paper).bytes;
            Some(dsn06::point(
                1,
                cfg,
                rate.parse().ok()?,
                n.parse().ok()?,
                bytes,
            ))
        }
        ["srds", scale, i] => {
            let scale = match *scale {
                "paper" => Scale::Paper,
                "quick" => Scale::Quick,
                _ => Scale::Budget,
            };
            srds06::points(1, scale)
                .get(i.parse::<usize>().ok()?)
                .cloned()
        }
        _ => None,
    }
}

fn main() {
    for spec in std::env::args().skip(1) {
        let Some(p) = parse(&spec) else {
            eprintln!("bad point {spec}");
            continue;
        };
        let c0 = thread_cpu();
        let o = point::run(&p);
        let cpu = thread_cpu() - c0;
        let mut h = DefaultHasher::new();
        format!("{o:?}").hash(&mut h);
        println!(
            "{spec}: events {} cpu {cpu:.2} s ({:.0} ns/event) mbps {:.2} flowing {:.2} unfinished {} digest {:016x}",
            o.events,
            cpu * 1e9 / o.events.max(1) as f64,
            o.mbps,
            o.flowing_mbps,
            o.unfinished,
            h.finish()
        );
    }
}

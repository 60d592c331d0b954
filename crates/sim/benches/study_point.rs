//! One representative point of the paper-scale studies, end to end on the
//! real roles: DSN'06 with 4 separate proxies at 510 Mbit/s offered, the
//! paper's 50 MB over 39 connections (~0.8 M simulated events). The sweep
//! time of `ftsplice bench studies --paper` is ~900 such points; the
//! throughput criterion prints is simulated events per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ftsplice_sim::study::{dsn06, point, Scale};

fn one() -> point::Outcome {
    let cfg = &dsn06::CONFIGS[0];
    let sw = dsn06::sweep(Scale::Paper);
    let p = dsn06::point(1, cfg, 510, 4, sw.bytes);
    point::run(&p)
}

fn study_point(c: &mut Criterion) {
    let o = one();
    assert_eq!(o.unfinished, 0);
    let mut g = c.benchmark_group("study");
    g.throughput(Throughput::Elements(o.events));
    g.sample_size(10);
    g.bench_function("dsn06_separate_4proxies_510mbps_50MB", |b| b.iter(one));
    g.finish();
}

criterion_group!(benches, study_point);
criterion_main!(benches);

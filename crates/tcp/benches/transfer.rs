//! Wall-clock cost of simulated transfers through two endpoints (includes
//! the test harness's stream generation and checking): `cargo bench -p
//! ftsplice-tcp`. Throughput is reported in simulated packets.

#[path = "../tests/harness/mod.rs"]
mod harness;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::{run, BenchCfg, LinkCfg};

fn transfers(c: &mut Criterion) {
    let mut g = c.benchmark_group("transfer_4mb");
    g.sample_size(10);
    for (name, loss, reorder) in [
        ("clean", 0.0, 0.0),
        ("loss1", 0.01, 0.0),
        ("reorder", 0.0, 0.2),
    ] {
        let cfg = BenchCfg {
            up: 4 << 20,
            down: 64 << 10,
            link: LinkCfg {
                loss,
                reorder,
                ..LinkCfg::default()
            },
            ..BenchCfg::default()
        };
        let packets = run(&cfg).packets;
        g.throughput(Throughput::Elements(packets));
        g.bench_function(name, |b| {
            b.iter(|| {
                let out = run(&cfg);
                assert_eq!(out.server.received, cfg.up);
                out.packets
            })
        });
    }
    g.finish();
}

criterion_group!(benches, transfers);
criterion_main!(benches);

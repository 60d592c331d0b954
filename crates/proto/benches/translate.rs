//! Criterion benchmark: ns per packet for in-place splice translation, on a
//! 1460-byte data segment with a timestamp option and on a pure ACK with
//! timestamps and three SACK blocks. Each iteration translates the packet
//! and translates it back (two translations), so the per-packet cost is half
//! the reported time; the round trip keeps the input identical across
//! iterations without a copy.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ftsplice_proto::splice::test_support::{self, PacketSpec};
use ftsplice_proto::splice::{translate, untranslate, Direction, Splice, WindowScales};

/// The shared sample splice with equal window scales, so that translating
/// and translating back restores every byte (rescaling would round).
fn splice() -> Splice {
    Splice {
        wscale: WindowScales {
            client: 7,
            vip: 7,
            ssa: 7,
            backend: 7,
        },
        ..test_support::splice()
    }
}

fn packet(s: &Splice, payload: &[u8], sack: &[(u32, u32)]) -> Vec<u8> {
    test_support::packet(&PacketSpec {
        seq: 1_000_000,
        ack: 2_000_000,
        window: 512,
        ts: Some((12_345, 67_890)),
        sack: sack.to_vec(),
        payload: payload.to_vec(),
        ..PacketSpec::new(s, Direction::ClientToServer)
    })
}

fn bench(c: &mut Criterion) {
    let s = splice();
    let payload = vec![0x5a; 1460 - 12];
    let cases = [
        ("data_1460_ts", packet(&s, &payload, &[])),
        (
            "ack_ts_sack3",
            packet(&s, &[], &[(10, 20), (30, 40), (50, 60)]),
        ),
    ];
    let mut g = c.benchmark_group("translate");
    g.throughput(Throughput::Elements(2));
    for (name, pkt) in cases {
        let mut p = pkt.clone();
        g.bench_function(name, |b| {
            b.iter(|| {
                let dir = Direction::ClientToServer;
                let t = translate(black_box(&s), dir, black_box(&mut p[..]));
                let u = untranslate(black_box(&s), dir, black_box(&mut p[..]));
                black_box((t, u))
            })
        });
        assert_eq!(p, pkt, "round trip restores the packet");
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Criterion benchmark: ns per packet for in-place splice translation, on a
//! 1460-byte data segment with a timestamp option and on a pure ACK with
//! timestamps and three SACK blocks. Each iteration translates the packet
//! and translates it back (two translations), so the per-packet cost is half
//! the reported time; the round trip keeps the input identical across
//! iterations without a copy.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ftsplice_proto::splice::{
    translate, untranslate, Direction, Splice, SpliceId, TsDeltas, WindowScales,
};
use ftsplice_wire::{emit_ipv4_tcp, Ipv4Repr, SackBlocks, TcpFlags, TcpOptions, TcpRepr};

fn splice() -> Splice {
    Splice {
        id: SpliceId(1),
        version: 1,
        client: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 40_000),
        vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 1), 80),
        ssa: SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, 1), 51_000),
        backend: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 5), 8080),
        seq_delta: 0x1234_5678,
        ack_delta: 0xfedc_ba98,
        ts: Some(TsDeltas {
            c2s: 0x1000_0001,
            s2c: 0xf000_0002,
        }),
        wscale: WindowScales {
            client: 7,
            vip: 7,
            ssa: 7,
            backend: 7,
        },
        sack_ok: true,
    }
}

fn packet(s: &Splice, payload: &[u8], sack: &[(u32, u32)]) -> Vec<u8> {
    let (src, dst) = s.incoming_tuple(Direction::ClientToServer);
    let tcp = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        seq: 1_000_000,
        ack: 2_000_000,
        flags: TcpFlags::ACK,
        window: 512,
        urgent: 0,
        options: TcpOptions {
            timestamp: Some((12_345, 67_890)),
            sack: SackBlocks::from_slice(sack).expect("at most 4 blocks"),
            ..TcpOptions::default()
        },
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        protocol: ftsplice_wire::ipv4::PROTO_TCP,
        payload_len: 0,
        ttl: 64,
        ident: 1,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let mut out = Vec::new();
    emit_ipv4_tcp(&ip, &tcp, &mut out).expect("benchmark packet fits");
    out
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

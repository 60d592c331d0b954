//! Per-packet and per-message costs of the control-plane pieces on the fast
//! path: splice-table lookup, the LB's proxy choice per mode, replication
//! encode/decode (with and without the HMAC tag), heartbeat decode and the
//! HTTP request-head parser. `cargo bench -p ftsplice-proto --bench control`.

use core::hint::black_box;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ftsplice_proto::heartbeat::Heartbeat;
use ftsplice_proto::lb::{Balancer, LbMode};
use ftsplice_proto::replication::{codec, Message};
use ftsplice_proto::route::{parse_head, HeadLimits};
use ftsplice_proto::splice::table::SpliceTable;
use ftsplice_proto::splice::{Splice, SpliceId, WindowScales};
use ftsplice_proto::{Instant, ProxyId};

const N: u32 = 10_000;

fn splice(i: u32) -> Splice {
    let c = Ipv4Addr::from_bits(0xc612_0000 | (i >> 8));
    Splice {
        id: SpliceId(u64::from(i)),
        version: 1,
        client: SocketAddrV4::new(c, 1024 + (i & 0xff) as u16),
        vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 255, 1), 80),
        ssa: SocketAddrV4::new(Ipv4Addr::new(198, 18, 255, 2), 1024 + (i % 60_000) as u16),
        backend: SocketAddrV4::new(Ipv4Addr::new(198, 18, 254, (i % 200) as u8), 8080),
        seq_delta: i,
        ack_delta: !i,
        ts: None,
        wscale: WindowScales::default(),
        sack_ok: true,
    }
}

fn table(c: &mut Criterion) {
    let mut t = SpliceTable::new(N as usize);
    let splices: Vec<Splice> = (0..N).map(splice).collect();
    for s in &splices {
        t.insert(s.clone()).unwrap();
    }
    let mut g = c.benchmark_group("splice_table");
    g.throughput(Throughput::Elements(u64::from(N)));
    g.bench_function("lookup_hit_10k", |b| {
        b.iter(|| {
            for s in &splices {
                black_box(t.lookup(s.client, s.vip));
            }
        })
    });
    g.finish();
}

fn lb(c: &mut Criterion) {
    let modes = [
        ("flow_hash", LbMode::FlowHash),
        ("weighted_random", LbMode::WeightedRandom { seed: 1 }),
        ("burst_spray_40", LbMode::BurstSpray { burst: 40 }),
        (
            "flowlet",
            LbMode::Flowlet {
                gap: Duration::from_millis(5),
                seed: 1,
                slots: 4096,
            },
        ),
    ];
    let vip = SocketAddrV4::new(Ipv4Addr::new(198, 18, 255, 1), 80);
    let mut g = c.benchmark_group("lb_choose_4_proxies");
    g.throughput(Throughput::Elements(1_000));
    for (name, mode) in modes {
        let mut b = Balancer::new(mode);
        for i in 1..=4 {
            b.set_proxy(ProxyId(i), 100 * u32::from(i));
        }
        g.bench_function(name, |bench| {
            bench.iter(|| {
                for i in 0..1_000u16 {
                    let src = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), i);
                    black_box(b.choose(Instant::from_micros(u64::from(i)), src, vip));
                }
            })
        });
    }
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let msg = Message::Create(splice(7));
    let key = [3u8; 32];
    let plain = codec::encode(ProxyId(1), &msg, None).unwrap();
    let tagged = codec::encode(ProxyId(1), &msg, Some(&key)).unwrap();
    let hb = Heartbeat {
        id: ProxyId(1),
        epoch: 1,
        seq: 9,
        workload: 100,
    }
    .encode();
    let head = b"PUT /upload/file HTTP/1.1\r\nHost: files.example.com\r\nUser-Agent: curl/8\r\nAccept: */*\r\nContent-Length: 10485760\r\n\r\n";
    let mut g = c.benchmark_group("codecs");
    g.bench_function("replication_encode_create", |b| {
        b.iter(|| codec::encode(ProxyId(1), black_box(&msg), None))
    });
    g.bench_function("replication_decode_create", |b| {
        b.iter(|| codec::decode(black_box(&plain), None))
    });
    g.bench_function("replication_decode_create_hmac", |b| {
        b.iter(|| codec::decode(black_box(&tagged), Some(&key)))
    });
    g.bench_function("heartbeat_decode", |b| {
        b.iter(|| Heartbeat::decode(black_box(&hb)))
    });
    g.bench_function("http_head_parse", |b| {
        b.iter(|| parse_head(black_box(head), &HeadLimits::default()))
    });
    g.finish();
}

criterion_group!(benches, table, lb, codecs);
criterion_main!(benches);

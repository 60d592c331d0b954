//! Simulated packets per second on one core: UDP datagrams crossing
//! blaster -> switch -> sink over 10 Gbit/s links (two link hops, one
//! switch handling and one sink handling per datagram). The throughput
//! criterion prints is link hops (= simulated packet deliveries) per second.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ftsplice_proto::Instant;
use ftsplice_sim::roles::traffic::{Blaster, Sink};
use ftsplice_sim::{LinkConfig, NodeOpts, Sim};

const PACKETS: u64 = 100_000;

fn run() -> u64 {
    let mut sim = Sim::new(1);
    let sw = sim.add_switch("sw");
    let a = Ipv4Addr::new(10, 0, 0, 1);
    let b = Ipv4Addr::new(10, 0, 0, 2);
    let blaster = Blaster::new(
        SocketAddrV4::new(a, 1),
        SocketAddrV4::new(b, 2),
        1500,
        PACKETS,
        9_000_000_000,
    );
    let tx = sim.add_node("tx", blaster, NodeOpts::default());
    let rx = sim.add_node("rx", Sink::default(), NodeOpts::default());
    let ti = sim.add_iface(tx, a, 24);
    let ri = sim.add_iface(rx, b, 24);
    let link = LinkConfig::gigabit(Duration::from_micros(5)).with_bandwidth(10_000_000_000);
    sim.attach(sw, tx, ti, link);
    sim.attach(sw, rx, ri, link);
    sim.run_until(Instant::from_secs(1));
    let got = sim.node::<Sink>(rx).map_or(0, |s| s.packets);
    assert_eq!(got, PACKETS);
    sim.stats().hops
}

fn engine(c: &mut Criterion) {
    let hops = run();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(hops));
    g.sample_size(10);
    g.bench_function("udp_via_switch_hops", |bch| bch.iter(run));
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);

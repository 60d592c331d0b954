//! Engine behaviour end to end with synthetic traffic: links, switch, CPU
//! queues, faults, announcements, timers, captures and determinism.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use ftsplice_proto::Instant;
use ftsplice_sim::net::node::{Ctx, Frame, IfaceId, Node};
use ftsplice_sim::roles::traffic::{Blaster, Sink};
use ftsplice_sim::{Fault, LinkConfig, NodeId, NodeOpts, Sim};
use std::any::Any;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

struct Net {
    sim: Sim,
    blaster: NodeId,
    sink: NodeId,
    sw: NodeId,
}

/// blaster(10.0.0.1) -- switch -- sink(10.0.0.2)
fn net(seed: u64, count: u64, rate_bps: u64, link: LinkConfig, sink_opts: NodeOpts) -> Net {
    let mut sim = Sim::new(seed);
    let sw = sim.add_switch("sw");
    let b = Blaster::new(
        SocketAddrV4::new(ip(1), 1),
        SocketAddrV4::new(ip(2), 2),
        1500,
        count,
        rate_bps,
    );
    let blaster = sim.add_node("blaster", b, NodeOpts::default());
    let sink = sim.add_node("sink", Sink::default(), sink_opts);
    let bi = sim.add_iface(blaster, ip(1), 24);
    let si = sim.add_iface(sink, ip(2), 24);
    sim.attach(sw, blaster, bi, link);
    sim.attach(sw, sink, si, link);
    Net {
        sim,
        blaster,
        sink,
        sw,
    }
}

fn gig() -> LinkConfig {
    LinkConfig::gigabit(Duration::from_micros(10))
}

fn sink(n: &Net) -> &Sink {
    n.sim.node::<Sink>(n.sink).unwrap()
}

#[test]
fn packets_cross_a_switch_with_exact_timing() {
    let mut n = net(1, 1, 100_000_000, gig(), NodeOpts::default());
    n.sim.run_until(Instant::from_millis(1));
    assert_eq!(sink(&n).packets, 1);
    // Two hops of (1538 B at 1 Gbit/s = 12.304 µs) + 10 µs.
    assert_eq!(sink(&n).last, Some(Instant::from_micros(44)));
    assert_eq!(n.sim.stats().hops, 2);
}

#[test]
fn a_slow_link_caps_throughput_and_drops_at_the_tail() {
    let link = gig().with_bandwidth(100_000_000).with_queue(30_000);
    let mut n = net(1, 2_000, 1_000_000_000, link, NodeOpts::default());
    n.sim.run_until(Instant::from_millis(500));
    let got = sink(&n).packets;
    // The 1 Gbit/s sender outruns a 100 Mbit/s link ~10x.
    assert!((150..300).contains(&got), "{got}");
    assert_eq!(n.sim.stats().drop_count("link: queue full"), 2_000 - got);
}

#[test]
fn cpu_cost_turns_a_node_into_a_bounded_queue() {
    let opts = NodeOpts::cpu(Duration::from_micros(25), 10);
    let mut n = net(1, 1_000, 1_000_000_000, gig(), opts);
    n.sim.run_until(Instant::from_millis(100));
    let got = sink(&n).packets;
    // Arrivals every 12.3 µs, service 25 µs: about half get through.
    assert!((480..520).contains(&got), "{got}");
    assert_eq!(
        n.sim.stats().drop_count("node: cpu queue full"),
        1_000 - got
    );
}

#[test]
fn crash_drops_traffic_and_state_restart_recovers() {
    let mut n = net(1, 1_000, 12_000_000, gig(), NodeOpts::default());
    n.sim
        .schedule(Instant::from_millis(200), Fault::Crash(n.sink));
    n.sim
        .schedule(Instant::from_millis(400), Fault::Restart(n.sink));
    n.sim.run_until(Instant::from_millis(300));
    assert!(!n.sim.is_up(n.sink));
    let down = n.sim.stats().drop_count("node: down");
    assert!((99..=101).contains(&down), "{down}");
    n.sim.run_until(Instant::from_millis(2_000));
    // Crash wiped the counters: only what arrived after the restart counts.
    let after = sink(&n).packets;
    assert!((550..650).contains(&after), "{after}");
    assert_eq!(n.sim.faults().len(), 2);
    assert_eq!(n.sim.faults()[0].target, "sink");
}

#[test]
fn link_down_loses_frames_in_flight_and_until_up() {
    let link = LinkConfig::gigabit(Duration::from_millis(5));
    let mut n = net(1, 1_000, 12_000_000, link, NodeOpts::default());
    let l = ftsplice_sim::LinkId(1); // switch -> sink
    n.sim
        .schedule(Instant::from_millis(100), Fault::LinkDown(l));
    n.sim.schedule(Instant::from_millis(200), Fault::LinkUp(l));
    n.sim.run_until(Instant::from_millis(2_000));
    let got = sink(&n).packets;
    // ~105 ms worth (100 down + 5 in flight) of 1 packet/ms lost.
    assert!((890..900).contains(&got), "{got}");
}

#[test]
fn partitions_cut_and_heal() {
    let mut n = net(1, 1_000, 12_000_000, gig(), NodeOpts::default());
    let (b, s) = (n.blaster, n.sink);
    n.sim.schedule(
        Instant::from_millis(100),
        Fault::Partition(vec![vec![b], vec![s]]),
    );
    n.sim.schedule(Instant::from_millis(300), Fault::Heal);
    n.sim.run_until(Instant::from_millis(2_000));
    assert!((790..810).contains(&sink(&n).packets));
    assert!(n.sim.stats().drop_count("partition") >= 190);
}

#[test]
fn an_announcement_moves_an_address_to_another_port() {
    let mut n = net(1, 1_000, 12_000_000, gig(), NodeOpts::default());
    let other = n
        .sim
        .add_node("other", Sink::default(), NodeOpts::default());
    let oi = n.sim.add_iface(other, ip(3), 24);
    n.sim.attach(n.sw, other, oi, gig());
    n.sim.run_until(Instant::from_millis(500));
    n.sim
        .poke::<Sink, _>(other, |_, ctx| ctx.announce(IfaceId(0), ip(2)));
    n.sim.run_until(Instant::from_millis(2_000));
    let (a, b) = (sink(&n).packets, n.sim.node::<Sink>(other).unwrap().packets);
    assert_eq!(a + b, 1_000);
    assert!((495..505).contains(&a), "{a} {b}");
}

#[test]
fn same_seed_same_run_different_seed_different_losses() {
    let run = |seed| {
        let mut n = net(
            seed,
            5_000,
            100_000_000,
            gig().with_loss(0.05),
            NodeOpts::default(),
        );
        n.sim.run_until(Instant::from_secs(1));
        (
            sink(&n).packets,
            n.sim.events(),
            n.sim.stats().drops().clone(),
        )
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).0, run(8).0);
}

/// A node that always says its timer is due.
struct Greedy(u64);
impl Node for Greedy {
    fn kind(&self) -> &'static str {
        "greedy"
    }
    fn handle_frame(&mut self, _: &mut Ctx<'_>, _: IfaceId, _: Frame) {}
    fn handle_timeout(&mut self, _: &mut Ctx<'_>) {
        self.0 += 1;
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(Instant::ZERO)
    }
    fn crash(&mut self) {}
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[test]
fn a_node_cannot_spin_the_clock() {
    let mut sim = Sim::new(1);
    let g = sim.add_node("g", Greedy(0), NodeOpts::default());
    sim.run_until(Instant::from_millis(1));
    let fired = sim.node::<Greedy>(g).unwrap().0;
    assert!((1_000..=1_002).contains(&fired), "{fired}");
}

#[test]
fn capture_writes_one_record_per_frame_on_the_link() {
    let mut n = net(1, 10, 100_000_000, gig(), NodeOpts::default());
    let buf = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    struct W(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl std::io::Write for W {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    n.sim
        .capture(ftsplice_sim::LinkId(1), Box::new(W(buf.clone())))
        .unwrap();
    n.sim.run_until(Instant::from_millis(10));
    n.sim.flush_capture().unwrap();
    assert_eq!(buf.borrow().len(), 24 + 10 * (16 + 1500));
}

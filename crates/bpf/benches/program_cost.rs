//! Criterion benchmark: the kernel's own time per run (BPF_PROG_TEST_RUN
//! with `repeat`, syscall excluded) of the programs on the hot packets of
//! a bulk download through a split splice: `agent_egress` on a data
//! segment (a GSO packet of 40 x 1448 bytes), `proxy_ingress` and `lb_tc`
//! on the client's ACK (timestamps, no SACK). The splice maps the 4-tuple
//! to itself, so every run translates (a run sees what the previous one
//! wrote), and its destination is a permanent neighbour: the FIB lookup
//! (or the next-hop cache) succeeds and the verdict is a redirect. These
//! are warm-cache figures; `bpftool prog show` (`run_time_ns / run_cnt`
//! with `kernel.bpf_stats_enabled=1`) gives the cold ones of a live run
//! (docs/daemons.md, "Throughput"). Needs root; prints why and measures
//! nothing otherwise.

use common::{forwarding_veth_ns, set_neighbour, ts_option, Seg};
use criterion::{criterion_group, criterion_main, Criterion};
use ftsplice_bpf::bpf_abi::{
    LbCfg, LbSlot, SpliceKey, SpliceVal, DIR_S2C, FLAG_SACK, FLAG_TS, LB_MODE_FLOW,
};
use ftsplice_bpf::{LbPlane, SplicePlane, SpliceRole};
use ftsplice_linux::is_root;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::time::Duration;

/// The frames' test helpers, shared with the integration tests.
#[path = "../tests/common/mod.rs"]
mod common;

/// An ACK-flagged Ethernet/IPv4/TCP frame with valid checksums carrying
/// `payload` filler bytes.
fn frame(src: SocketAddrV4, dst: SocketAddrV4, options: &[u8], payload: usize) -> Vec<u8> {
    Seg {
        seq: 1_000_000,
        ack: 2_000_000,
        window: 512,
        options: options.to_vec(),
        payload: vec![0x5a; payload],
        ..Seg::new(src, dst)
    }
    .frame()
}

/// A splice direction from `src -> dst` to itself.
fn identity(src: SocketAddrV4, dst: SocketAddrV4, dir: u8) -> (SpliceKey, SpliceVal) {
    let key = SpliceKey {
        saddr: src.ip().octets(),
        daddr: dst.ip().octets(),
        sport: src.port().to_be_bytes(),
        dport: dst.port().to_be_bytes(),
    };
    let val = SpliceVal {
        saddr: key.saddr,
        daddr: key.daddr,
        sport: key.sport,
        dport: key.dport,
        seq_add: 0x1000,
        ack_add: 0x2000,
        tsval_add: 7,
        tsecr_add: 9,
        wscale_in: 7,
        wscale_out: 7,
        flags: FLAG_TS | FLAG_SACK,
        dir,
        version: 1,
        splice_id: 42,
    };
    (key, val)
}

/// `struct __sk_buff` with gso_segs/gso_size set (offsets as in the
/// loader's `test_run_gso`).
fn gso_ctx(segs: u32, size: u32) -> Vec<u8> {
    let mut ctx = vec![0u8; 192];
    ctx[164..168].copy_from_slice(&segs.to_ne_bytes());
    ctx[176..180].copy_from_slice(&size.to_ne_bytes());
    ctx
}

fn bench(c: &mut Criterion) {
    if !is_root() {
        eprintln!("program_cost: needs root (BPF_PROG_TEST_RUN); nothing measured");
        return;
    }
    let ns = forwarding_veth_ns("cost", "198.18.70.1/24");
    set_neighbour(&ns, "198.18.70.2", "02:00:00:00:00:09");
    set_neighbour(&ns, "198.18.70.3", "02:00:00:00:00:0a");
    // Test runs use the calling thread's namespace and criterion stays on
    // this one: a worker in the namespace runs them on request.
    let (req_tx, req_rx) = mpsc::channel::<(Prog, u32)>();
    let (rep_tx, rep_rx) = mpsc::channel::<Duration>();
    let worker = ns.spawn(move || serve(&req_rx, &rep_tx));
    let mut g = c.benchmark_group("bpf_program_run");
    g.measurement_time(Duration::from_secs(2));
    for (name, prog) in [
        ("proxy_ingress/ack", Prog::Proxy),
        ("agent_egress/gso_data", Prog::Agent),
        ("lb_tc/ack", Prog::Lb),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let n = u32::try_from(iters).unwrap_or(u32::MAX);
                req_tx.send((prog, n)).expect("worker alive");
                rep_rx.recv().expect("worker answers") * n
            })
        });
    }
    g.finish();
    drop(req_tx);
    worker.join().expect("worker").expect("namespace");
}

#[derive(Clone, Copy)]
enum Prog {
    Proxy,
    Agent,
    Lb,
}

/// Loads the three programs and answers each `(program, repeat)` with the
/// kernel's mean time per run, until the requests end.
fn serve(req: &mpsc::Receiver<(Prog, u32)>, rep: &mpsc::Sender<Duration>) {
    let client = SocketAddrV4::new(Ipv4Addr::new(198, 18, 70, 2), 40000);
    let vip = SocketAddrV4::new(Ipv4Addr::new(198, 18, 70, 3), 5201);
    // NOP, NOP, timestamp: what Linux puts on every segment.
    let ts = ts_option(12345, 67890);
    let ack = frame(client, vip, &ts, 0);
    let data = frame(vip, client, &ts, 1448);
    let ctx = gso_ctx(40, 1448);
    let mut proxy = SplicePlane::load(SpliceRole::Proxy).expect("proxy object");
    let (k, v) = identity(client, vip, 0);
    proxy.insert(k, v).expect("splice");
    let mut agent = SplicePlane::load(SpliceRole::Agent).expect("agent object");
    let (k, v) = identity(vip, client, DIR_S2C);
    agent.insert(k, v).expect("splice");
    let mut lb = LbPlane::load().expect("lb object");
    let slot = LbSlot {
        dmac: [2, 0, 0, 0, 0, 0x31],
        smac: [2, 0, 0, 0, 0, 0x02],
        ifindex: 1,
    };
    let cfg = LbCfg {
        vip: vip.ip().octets(),
        nslots: 0,
        mode: LB_MODE_FLOW,
        burst: 0,
        peer_dev: 0,
    };
    lb.configure(cfg, &[slot]).expect("lb table");
    while let Ok((prog, n)) = req.recv() {
        let (_, d) = match prog {
            Prog::Proxy => proxy.test_run_repeat("proxy_ingress", &ack, None, n),
            Prog::Agent => agent.test_run_repeat("agent_egress", &data, Some(&ctx), n),
            Prog::Lb => lb.test_run_tc_repeat(&ack, n),
        }
        .expect("test run");
        if rep.send(d).is_err() {
            return;
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The namespace system without daemons (root; CI is root): the switch
//! carries concurrent PUTs and GETs between clients and nginx intact (the
//! load generator and verifier the scenarios use), and the bench's
//! reference paths (a) direct, (b) kernel forwarding, (c) HAProxy measure
//! with both tools (iperf3, curl).

#![allow(clippy::disallowed_methods)] // real processes on the wall clock

use ftsplice_linux::skip_unless_root;
use ftsplice_testbed::body::{digest, Body};
use ftsplice_testbed::load::{self, Load, Progress, Request};
use ftsplice_testbed::system::plan::HTTP_PORT;
use ftsplice_testbed::system::{Spec, System};
use ftsplice_testbed::{bench, verify};
use std::net::SocketAddrV4;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn spec() -> Spec {
    let mut s = Spec::new(Path::new("/nonexistent/ftsplice"));
    s.daemons = false;
    s.clients = 2;
    s
}

#[test]
fn switch_carries_concurrent_puts_and_gets_intact() {
    if skip_unless_root("switch_carries_concurrent_puts_and_gets_intact") {
        return;
    }
    let mut spec = spec();
    spec.files = (0..3)
        .map(|i| Body::new(9, i, 100_000 + i).to_vec())
        .collect();
    let sys = System::up(spec).unwrap();
    let target = SocketAddrV4::new(sys.plan.backend(0), HTTP_PORT);
    let clients = sys.clients();
    let progress = Arc::new(Progress::new(12));
    let put = Load {
        target,
        conns: 12,
        request: Request::Put {
            size: 300_000,
            seed: 5,
        },
        timeout: Duration::from_secs(20),
    };
    let t0 = Instant::now();
    let ts = load::join(load::start(&clients, &put, &progress, t0));
    let up = sys.nginx[0].dir().join("www").join("up");
    let c = verify::puts(&ts, &up);
    assert!(c.all_intact(), "{c:?}: {}", verify::failures(&ts, 3));
    assert_eq!(progress.bytes(), 12 * 300_000);
    assert_eq!(progress.min_conn(), u64::MAX, "none runs");
    assert!(progress.finished());
    assert!(ts.iter().all(|t| t.digest == digest(5, t.conn, 300_000)));
    assert!(ts.iter().all(|t| t.moves.len() >= 300_000 / (16 * 1024)));
    // A stored file that differs is caught.
    std::fs::write(up.join("3.bin"), b"tampered").unwrap();
    assert_eq!(verify::puts(&ts, &up).corrupted, 1);

    let get = Load {
        request: Request::Get { files: 3 },
        conns: 9,
        ..put
    };
    let progress = Arc::new(Progress::new(9));
    let ts = load::join(load::start(&clients, &get, &progress, t0));
    let want: Vec<[u8; 32]> = (0..3).map(|i| digest(9, i, 100_000 + i)).collect();
    let c = verify::gets(&ts, &want);
    assert!(c.all_intact(), "{c:?}: {}", verify::failures(&ts, 3));
}

#[test]
fn bench_reference_paths_measure_throughput() {
    if skip_unless_root("bench_reference_paths_measure_throughput") {
        return;
    }
    // Paths (a) to (c) need no ftsplice binary; both tools, offloads on
    // (the bench's default), one short round each.
    for tool in [bench::Tool::Http, bench::Tool::Iperf3] {
        let mut o = bench::Options::new(tool);
        o.secs = 1;
        o.rounds = 1;
        o.warmup_secs = 0;
        let r = bench::run(Path::new("/nonexistent/ftsplice"), &o, false).unwrap();
        assert_eq!(r.paths.len(), 3, "{tool:?}");
        for p in &r.paths {
            let g = p
                .spread
                .unwrap_or_else(|| panic!("{} {tool:?}: {p:?}", p.label))
                .median;
            assert!(g > 0.01, "{} {tool:?}: {g} Gbit/s", p.label);
        }
        assert!(
            r.goal("(d)/(b)").unwrap().met.is_none(),
            "(d) was not measured"
        );
        assert!(r.goal("(c)/(b)").unwrap().spread.is_some(), "(c)/(b) was");
        assert!(r.table().contains("HAProxy"));
    }
}

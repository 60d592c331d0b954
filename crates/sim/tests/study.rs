//! The paper studies on a reduced sweep: same seed gives identical JSON,
//! more proxies never lose throughput at a saturating rate, split splice
//! keeps up with direct, and the failover table's detection times fall in
//! (2t, 3t].

use core::time::Duration;
use ftsplice_sim::study::host::Direction;
use ftsplice_sim::study::net::{run, run_all, Path};
use ftsplice_sim::study::{self, dsn06, srds06, Scale};

#[test]
fn same_seed_same_json_whatever_the_thread_count() {
    let a = study::run("dsn06", 7, Scale::Quick, 2).unwrap();
    let b = study::run("dsn06", 7, Scale::Quick, 1).unwrap();
    assert_eq!(a.json.to_string(), b.json.to_string());
    assert_eq!(a.table, b.table);
}

#[test]
fn more_proxies_never_reduce_throughput_at_a_saturating_rate() {
    let out = dsn06::run(3, Scale::Quick, 2);
    let sep = &out.json["configs"]["separate"];
    let at = |n: &str| -> f64 {
        sep[n]
            .as_array()
            .and_then(|pts| pts.last())
            .and_then(|p| p["achieved_mbps"].as_f64())
            .unwrap()
    };
    let (one, two, four) = (at("1"), at("2"), at("4"));
    // 750 Mbit/s offered saturates one 25 µs proxy (~300 Mbit/s of data
    // with its ACKs) but not four.
    assert!(one < 450.0, "one proxy {one}");
    assert!(two >= one * 0.95, "{one} -> {two}");
    assert!(four >= two * 0.95, "{two} -> {four}");
    assert!(four > one * 1.5, "{one} -> {four}");
}

#[test]
fn split_splice_keeps_up_with_direct() {
    let direct = srds06::point(5, "C-S", Direction::Get, 300_000, 1_000_000_000);
    let split = srds06::point(5, "C-LB-P-S*", Direction::Get, 300_000, 1_000_000_000);
    let spliced = srds06::point(5, "C-LB-P-S", Direction::Get, 300_000, 1_000_000_000);
    let o = run_all(&[direct, split, spliced], 2);
    assert!(o.iter().all(|o| o.unfinished == 0));
    assert!(
        o[1].mbps >= 0.97 * o[0].mbps,
        "split {} vs direct {}",
        o[1].mbps,
        o[0].mbps
    );
    assert!(
        o[2].mbps < 0.5 * o[0].mbps,
        "one spliced proxy is the bottleneck"
    );
}

#[test]
fn proxy_crash_is_survived_after_detection() {
    let mut p = srds06::point(9, "C-LB-2P-S", Direction::Put, 100_000, 100_000_000);
    p.conns = 20;
    let base = run(&p);
    assert_eq!(base.unfinished, 0);
    let crash = ftsplice_proto::Instant::ZERO + Duration::from_secs_f64(base.avg() / 2.0);
    let t = Duration::from_millis(200);
    let d = srds06::detection_delay(9, t, crash);
    assert!(d > 2 * t && d <= 3 * t, "{d:?}");
    p.crash = Some((crash, d));
    let failed = run(&p);
    assert_eq!(failed.unfinished, 0, "every connection completes");
    assert!(failed.max() > base.max(), "the outage costs time");
    assert!(matches!(p.path, Path::Spliced));
}

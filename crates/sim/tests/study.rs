//! The paper studies on the real roles, at a reduced sweep: same seed gives
//! identical JSON whatever the thread count, more proxies carry more at a
//! saturating rate, split splice keeps up with direct, and a proxy crash
//! detected by the lb's heartbeats (Table 4) completes every connection.

use core::time::Duration;
use ftsplice_sim::roles::http::Method;
use ftsplice_sim::study::point::{run, run_all, Path};
use ftsplice_sim::study::{self, dsn06, srds06, Scale};

#[test]
fn same_seed_same_json_whatever_the_thread_count() {
    let a = study::run("dsn06", 7, Scale::Quick, 2).unwrap();
    let b = study::run("dsn06", 7, Scale::Quick, 1).unwrap();
    assert_eq!(a.json.to_string(), b.json.to_string());
    assert_eq!(a.table, b.table);
}

#[test]
fn more_proxies_carry_more_until_the_offered_rate() {
    let out = dsn06::run(3, Scale::Quick, 2);
    let sep = &out.json["configs"]["separate"];
    let at = |n: &str, k: usize| -> f64 {
        sep[n]
            .as_array()
            .and_then(|pts| pts.get(k))
            .and_then(|p| p["achieved_mbps"].as_f64())
            .unwrap()
    };
    // 150 Mbit/s offered: every proxy count delivers it.
    for n in ["1", "2", "4"] {
        assert!(at(n, 0) > 130.0, "{n} proxies at 150: {}", at(n, 0));
    }
    // 750 Mbit/s saturates one 25 µs proxy (~310 Mbit/s of data with its
    // ACKs) but not four.
    let (one, two, four) = (at("1", 1), at("2", 1), at("4", 1));
    assert!(one < 450.0, "one proxy {one}");
    assert!(two > one * 1.3, "{one} -> {two}");
    assert!(four > two * 1.1, "{two} -> {four}");
    assert!(four > 600.0, "four proxies {four}");
}

#[test]
fn split_splice_keeps_up_with_direct() {
    // Large enough that start-up (pre-splice, then the agent taking over
    // the responses) is a small part of the transfer.
    let direct = srds06::point(5, "C-S", Method::Get, 2_000_000, 1_000_000_000);
    let split = srds06::point(5, "C-LB-P-S*", Method::Get, 2_000_000, 1_000_000_000);
    let mut spliced = srds06::point(5, "C-LB-P-S", Method::Get, 200_000, 1_000_000_000);
    spliced.conns = 20;
    let o = run_all(&[direct, split, spliced], 2);
    assert!(o.iter().all(|o| o.unfinished == 0 && o.corrupted == 0));
    assert!(
        o[1].flowing_mbps >= 0.9 * o[0].flowing_mbps,
        "split {} vs direct {}",
        o[1].flowing_mbps,
        o[0].flowing_mbps
    );
    assert!(
        o[2].flowing_mbps < 0.5 * o[0].flowing_mbps,
        "one spliced proxy is the bottleneck: {} vs {}",
        o[2].flowing_mbps,
        o[0].flowing_mbps
    );
}

#[test]
fn proxy_crash_detected_by_heartbeats_completes_every_connection() {
    let mut p = srds06::point(9, "C-LB-2P-S", Method::Put, 200_000, 100_000_000);
    p.conns = 20;
    let base = run(&p);
    assert_eq!(base.unfinished, 0);
    let t = Duration::from_millis(200);
    p.heartbeat = t;
    p.crash_after = Some(Duration::from_secs_f64(base.avg() / 2.0));
    let failed = run(&p);
    assert_eq!(failed.unfinished, 0, "every connection completes");
    assert_eq!(failed.corrupted, 0);
    let d = failed
        .detected_after
        .expect("the lb declares the proxy dead");
    let (lo, hi) = (2.0 * t.as_secs_f64(), 3.0 * t.as_secs_f64() + 0.01);
    assert!(d > lo && d <= hi, "detected after {d} s");
    assert!(failed.max() > base.max(), "the outage costs time");
    assert!(matches!(p.path, Path::Spliced));
}

#[test]
fn all_in_one_pool_matches_each_study_alone() {
    // `all` runs both studies' points in one pool, Table 4's failure runs
    // starting as soon as their no-failure run is known: same numbers as
    // each study run alone on one thread.
    let all = study::run("all", 4, Scale::Quick, 2).unwrap();
    let d = study::run("dsn06", 4, Scale::Quick, 1).unwrap();
    let s = study::run("srds06-tables", 4, Scale::Quick, 1).unwrap();
    assert_eq!(all.json["dsn06"], d.json);
    assert_eq!(all.json["srds06-tables"], s.json);
    assert_eq!(all.table, format!("{}\n{}", d.table, s.table));
    assert_eq!(all.points, d.points + s.points);
    assert_eq!(all.events, d.events + s.events);
}

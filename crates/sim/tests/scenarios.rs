//! The four scenarios end to end with their invariants, and determinism.
//! Sizes are reduced (20 connections of 1 MB) so the suite stays fast; full
//! size runs (100 x 10 MB) of `proxy-crash` and `split-splice` check the
//! paper's setting (about 15 s each with the sim crates optimised).

use ftsplice_sim::scenario::{run, Options};

fn small(seed: u64) -> Options {
    Options {
        seed,
        conns: 20,
        size: 1_000_000,
        pcap: None,
    }
}

fn assert_all_completed(name: &str, o: Options) -> ftsplice_sim::scenario::Run {
    let r = run(name, o).unwrap();
    let c = &r.report.connections;
    assert_eq!(
        (c.total, c.completed, c.broken, c.corrupted),
        (20, 20, 0, 0),
        "{}",
        r.report.to_json()
    );
    r
}

#[test]
fn proxy_crash_breaks_nothing() {
    let r = assert_all_completed("proxy-crash", small(1));
    let f = &r.report.faults;
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind.as_str(), f[0].target.as_str()),
        ("crash", "proxy1")
    );
    // 10 ms heartbeats, 3 missed: detected within 20..=30 ms (+ delays).
    let d = f[0].detected_ms.unwrap() - f[0].at_ms;
    assert!((19.0..=32.0).contains(&d), "detected after {d} ms");
    assert!(f[0].recovered_ms.unwrap() >= f[0].detected_ms.unwrap());
    // Both proxies carried traffic before the crash, the survivor after.
    assert!(r.report.details["proxy1_translated"] > 0.0);
    assert!(r.report.details["proxy2_translated"] > 0.0);
}

#[test]
fn lb_crash_backup_takes_the_vip() {
    let r = assert_all_completed("lb-crash", small(2));
    let f = &r.report.faults[0];
    assert_eq!((f.kind.as_str(), f.target.as_str()), ("crash", "lb"));
    let d = f.detected_ms.unwrap() - f.at_ms;
    assert!((19.0..=32.0).contains(&d), "takeover after {d} ms");
}

#[test]
fn split_splice_matches_direct_throughput() {
    let r = assert_all_completed("split-splice", small(3));
    let base = r.report.baseline_throughput_mbps.unwrap();
    assert!(base > 500.0, "{base}");
    assert!(
        r.report.throughput_mbps >= 0.97 * base,
        "{} vs {base}",
        r.report.throughput_mbps
    );
}

#[test]
fn scale_out_third_proxy_takes_load() {
    let r = assert_all_completed("scale-out", small(4));
    assert_eq!(r.report.faults[0].kind, "restart");
    assert!(
        r.report.details["proxy3_translated"] > 0.0,
        "{:?}",
        r.report.details
    );
}

#[test]
fn same_seed_gives_byte_identical_reports() {
    for name in ["proxy-crash", "split-splice"] {
        let a = run(name, small(9)).unwrap().report.to_json();
        let b = run(name, small(9)).unwrap().report.to_json();
        assert_eq!(a, b);
        let c = run(name, small(10)).unwrap().report.to_json();
        assert_ne!(a, c, "a different seed should change something");
    }
}

#[test]
fn unknown_scenario_is_an_error() {
    assert!(run("nope", small(1)).is_err());
}

#[test]
fn full_size_proxy_crash() {
    let r = run("proxy-crash", Options::full(1)).unwrap();
    let c = &r.report.connections;
    assert_eq!(
        (c.total, c.completed, c.broken, c.corrupted),
        (100, 100, 0, 0),
        "{}",
        r.report.to_json()
    );
}

#[test]
fn full_size_split_splice() {
    let r = run("split-splice", Options::full(1)).unwrap();
    let c = &r.report.connections;
    assert_eq!(
        (c.total, c.completed, c.broken, c.corrupted),
        (100, 100, 0, 0)
    );
    let base = r.report.baseline_throughput_mbps.unwrap();
    assert!(
        r.report.throughput_mbps >= 0.97 * base,
        "{}",
        r.report.to_json()
    );
}

//! `presplice-crash`: a proxy crashing while it owns pre-splice connections
//! leaves none of them hanging: each completes (its SYN is retried on the
//! survivor) or is reset by the survivor (`proto::orphan`) soon after the
//! survivor's slot table settles.

use core::time::Duration;
use ftsplice_sim::roles::http::Method;
use ftsplice_sim::scenario::presplice_crash::{scenario_at, CRASH_AFTER};
use ftsplice_sim::scenario::{run, Options};

fn opts(seed: u64) -> Options {
    Options {
        seed,
        conns: 100,
        size: 200_000,
        pcap: None,
    }
}

#[test]
fn put_clients_complete_or_fail_fast_none_hangs() {
    let (r, t) = scenario_at(opts(1), Method::Put, CRASH_AFTER).unwrap();
    let json = r.report.to_json();
    println!("{json}");
    assert_eq!(t.hung, 0, "{json}");
    assert_eq!(t.corrupted, 0, "{json}");
    assert_eq!(t.completed + t.failed_fast, 100, "{json}");
    assert!(r.report.details["presplice_at_crash"] > 0.0, "{json}");
    // Exactly the crashed proxy's pre-splice connections are lost.
    assert_eq!(
        t.failed_fast as f64, r.report.details["presplice_at_crash"],
        "{json}"
    );
    assert!(
        t.failed_fast > 0,
        "the crash should catch some pre-splice connections: {json}"
    );
    assert!(
        r.report.details["orphan_resets"] >= t.failed_fast as f64,
        "{json}"
    );
    // Detection (~30 ms), the grace (120 ms), then the client's next
    // retransmission (RTO doubling from 200 ms): well under a second.
    assert!(t.fail_fast_max < Duration::from_secs(1), "{json}");
}

#[test]
fn scenario_is_reachable_by_name_and_deterministic() {
    let a = run("presplice-crash", opts(2)).unwrap().report.to_json();
    let b = run("presplice-crash", opts(2)).unwrap().report.to_json();
    assert_eq!(a, b);
}

#[test]
fn get_clients_lose_only_the_crashed_proxys_presplice_connections() {
    // Idle GET clients (request head acknowledged, waiting for the
    // response) send nothing the survivor could answer with a reset: they
    // hang (docs/ARCHITECTURE.md, "Orphaned pre-splice connections").
    let (r, t) = scenario_at(opts(1), Method::Get, CRASH_AFTER).unwrap();
    let json = r.report.to_json();
    let pre = r.report.details["presplice_at_crash"] as usize;
    assert!(pre > 0, "{json}");
    assert_eq!(t.failed_fast + t.hung, pre, "{json}");
    assert_eq!(t.completed, 100 - pre, "{json}");
    assert!(t.failed_fast > 0, "{json}");
}

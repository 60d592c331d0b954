//! `presplice-crash`: a proxy crashing while it owns pre-splice connections
//! leaves none of them hanging: each completes (its SYN is retried on the
//! survivor) or is reset by the survivor soon after the survivor's slot
//! table settles: from the dead proxy's pre-splice records
//! (`proto::orphan_records`, which also reach idle GET clients) or in
//! answer to the client's next segment (`proto::orphan`).

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
    // Reset from the dead proxy's pre-splice records (or, for a client
    // whose record was lost, in answer to its next segment).
    let d = &r.report.details;
    assert!(
        d["orphan_resets"] + d["record_resets"] >= t.failed_fast as f64,
        "{json}"
    );
    assert!(d["record_resets"] > 0.0, "{json}");
    // One record datagram per accept and peer (one peer here).
    assert!(d["record_messages"] >= 100.0, "{json}");
    // Detection (~30 ms) and the grace (120 ms): the records need no
    // client retransmission (without them: the client's next one, ~200 ms).
    assert!(t.fail_fast_max < Duration::from_millis(200), "{json}");
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
    // response) send nothing the survivor could answer: the survivor
    // resets them from the dead proxy's pre-splice records
    // (`proto::orphan_records`), so none hangs.
    let (r, t) = scenario_at(opts(1), Method::Get, CRASH_AFTER).unwrap();
    let json = r.report.to_json();
    println!("{json}");
    let pre = r.report.details["presplice_at_crash"] as usize;
    assert!(pre > 0, "{json}");
    assert_eq!(t.hung, 0, "{json}");
    assert_eq!(t.failed_fast, pre, "{json}");
    assert_eq!(t.completed, 100 - pre, "{json}");
    assert!(r.report.details["record_resets"] > 0.0, "{json}");
    // Detection (~30 ms) and the grace (120 ms): the records need no
    // retransmission from the client.
    assert!(t.fail_fast_max < Duration::from_millis(200), "{json}");
}

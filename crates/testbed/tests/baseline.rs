//! The baseline scenario really runs (root; CI is root): curl through a
//! kernel-forwarding router to nginx, every body intact, and an iperf3
//! stream over the same path.

use ftsplice_linux::skip_unless_root;

#[test]
fn baseline_fetches_every_file_intact() {
    if skip_unless_root("baseline_fetches_every_file_intact") {
        return;
    }
    let r = ftsplice_testbed::baseline::run(5, 256 * 1024, 7, 1).unwrap();
    assert_eq!(r.connections.total, 5);
    assert_eq!(r.connections.completed, 5, "{}", r.table());
    assert_eq!((r.connections.broken, r.connections.corrupted), (0, 0));
    assert!(r.throughput_mbps > 0.0);
    assert!(r.latency_ms.p99 >= r.latency_ms.p50);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["scenario"], "baseline");
}

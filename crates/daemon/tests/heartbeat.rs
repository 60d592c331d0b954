//! The heartbeat drivers over real UDP in a namespace: a proxy's sender
//! thread at a 10 ms interval is seen up by the lb's receiver thread, and
//! declared down after 3 missed beats once it stops. Prints the measured
//! detection time.

use ftsplice_daemon::clock;
use ftsplice_daemon::heartbeat::{run_receiver, spawn_sender};
use ftsplice_daemon::metrics::Registry;
use ftsplice_linux::{skip_unless_root, NetNs};
use ftsplice_proto::detector::{DetectorConfig, DetectorEvent, FailureDetector};
use ftsplice_proto::heartbeat::HeartbeatSender;
use ftsplice_proto::ProxyId;
use std::net::UdpSocket;
use std::time::Duration;

#[test]
fn proxy_up_then_down_within_the_bound() {
    if skip_unless_root("proxy_up_then_down_within_the_bound") {
        return;
    }
    let ns = NetNs::new("hb").unwrap();
    ns.ip(&["addr", "add", "198.18.70.1/32", "dev", "lo"])
        .unwrap();
    let detected = ns
        .run(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let rx = UdpSocket::bind("198.18.70.1:0").unwrap();
                let lb = rx.local_addr().unwrap();
                let tx = UdpSocket::bind("198.18.70.1:0").unwrap();
                let metrics = Registry::new();
                let interval = Duration::from_millis(10);
                let det = FailureDetector::new(DetectorConfig {
                    interval,
                    missed: 3,
                    hold: 0,
                });
                let (evtx, mut evrx) = tokio::sync::mpsc::channel(16);
                let recv = tokio::spawn(run_receiver(rx, det, evtx, metrics.clone()));
                let hb = HeartbeatSender::new(clock::now(), ProxyId(4), 1, interval, 100);
                let send = spawn_sender(tx, vec![lb], hb, metrics.clone()).unwrap();
                let ev = tokio::time::timeout(Duration::from_secs(2), evrx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    ev,
                    DetectorEvent::ProxyUp {
                        id: ProxyId(4),
                        weight: 100
                    }
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(send);
                let killed = clock::now();
                let ev = tokio::time::timeout(Duration::from_secs(2), evrx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                let detected = clock::now() - killed;
                assert_eq!(ev, DetectorEvent::ProxyDown { id: ProxyId(4) });
                let text = metrics.render();
                assert!(text.contains("ftsplice_live_proxies 0"), "{text}");
                assert!(!text.contains("ftsplice_heartbeats_received_total 0\n"));
                recv.abort();
                detected
            })
        })
        .unwrap();
    println!(
        "proxy failure detected {} ms after its last heartbeat sender stopped",
        detected.as_millis()
    );
    // 3 missed beats at 10 ms; generous slack for a loaded CI machine.
    assert!(detected < Duration::from_millis(500), "{detected:?}");
}

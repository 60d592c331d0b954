//! Heartbeat drivers over UDP: the proxy's sender (to the lb and its
//! backups) and the lb's receiver feeding the [`FailureDetector`], whose
//! up/down/weight events go to the caller (the lb's proxy set). Bad
//! datagrams are counted by reason and dropped.

use crate::clock;
use crate::metrics::Registry;
use ftsplice_proto::detector::{DetectorEvent, FailureDetector};
use ftsplice_proto::heartbeat::{HeartbeatError, HeartbeatSender};
use std::net::SocketAddr;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Sends `sender`'s heartbeats to every target until the task is dropped.
pub async fn run_sender(
    sock: UdpSocket,
    targets: Vec<SocketAddr>,
    mut sender: HeartbeatSender,
    metrics: Registry,
) {
    let sent = metrics.counter(
        "ftsplice_heartbeats_sent_total",
        "Heartbeat datagrams sent",
        &[],
    );
    let failed = metrics.counter(
        "ftsplice_heartbeat_send_errors_total",
        "Heartbeat datagrams the kernel refused",
        &[],
    );
    loop {
        tokio::time::sleep(clock::until(sender.poll_timeout())).await;
        sender.handle_timeout(clock::now());
        while let Some(hb) = sender.poll_transmit() {
            let bytes = hb.encode();
            for t in &targets {
                match sock.send_to(&bytes, t).await {
                    Ok(_) => sent.inc(),
                    Err(e) => {
                        failed.inc();
                        tracing::warn!(target_addr = %t, error = %e, "heartbeat not sent");
                    }
                }
            }
        }
    }
}

fn reason(e: &HeartbeatError) -> &'static str {
    match e {
        HeartbeatError::Truncated(_) => "truncated",
        HeartbeatError::BadMagic => "bad_magic",
        HeartbeatError::UnsupportedVersion(_) => "version",
        HeartbeatError::LengthMismatch { .. } => "length",
        HeartbeatError::ReservedBits => "reserved_bits",
    }
}

/// Receives heartbeats on `sock`, runs the detector, and forwards its
/// events to `events` until the task is dropped or the receiver closes.
pub async fn run_receiver(
    sock: UdpSocket,
    mut detector: FailureDetector,
    events: mpsc::Sender<DetectorEvent>,
    metrics: Registry,
) {
    let received = metrics.counter(
        "ftsplice_heartbeats_received_total",
        "Valid heartbeat datagrams received",
        &[],
    );
    let live = metrics.gauge("ftsplice_live_proxies", "Proxies the lb considers up", &[]);
    let mut buf = [0u8; 512];
    loop {
        let timeout = detector.poll_timeout();
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => match detector.handle_datagram(clock::now(), &buf[..n]) {
                    Ok(()) => received.inc(),
                    Err(e) => {
                        metrics
                            .counter(
                                "ftsplice_heartbeats_dropped_total",
                                "Heartbeat datagrams dropped, by reason",
                                &[("reason", reason(&e))],
                            )
                            .inc();
                        tracing::debug!(%from, error = %e, "heartbeat dropped");
                    }
                },
                Err(e) => tracing::warn!(error = %e, "heartbeat socket error"),
            },
            _ = tokio::time::sleep(timeout.map_or(std::time::Duration::from_secs(3600), clock::until)) => {
                detector.handle_timeout(clock::now());
            }
        }
        while let Some(ev) = detector.poll_event() {
            match ev {
                DetectorEvent::ProxyUp { id, weight } => {
                    tracing::info!(proxy = id.0, weight, "proxy up");
                    live.add(1);
                }
                DetectorEvent::ProxyDown { id } => {
                    tracing::warn!(proxy = id.0, "proxy down: heartbeats missed");
                    live.add(-1);
                }
                DetectorEvent::WeightChanged { id, weight } => {
                    tracing::debug!(proxy = id.0, weight, "proxy weight changed");
                }
            }
            if events.send(ev).await.is_err() {
                return;
            }
        }
    }
}

//! The lb's ARP thread. It finds the proxies' MACs: it sends ARP requests
//! for every proxy address (quickly while some are unknown, then every
//! `resolve_interval`) and reports each (address, MAC) it reads from any ARP
//! packet a proxy sends, so a changed MAC is noticed at the next request or
//! announcement. And while the lb is active it answers ARP requests for the
//! service address itself: the address is never configured on the lb's
//! interface, so a dead or standby lb's kernel neither answers for it nor
//! resets connections to it.

use ftsplice_linux::arp::{ArpOp, ArpPacket, ArpSocket, BROADCAST};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Request period while some proxy's MAC is unknown.
const EAGER: Duration = Duration::from_millis(100);

/// What the ARP thread needs.
pub struct ArpTask {
    pub sock: Arc<ArpSocket>,
    /// Our MAC and address on the interface (the requests' sender fields).
    pub me: ([u8; 6], Ipv4Addr),
    pub vip: Ipv4Addr,
    /// Set while the lb is active: answer ARP for `vip`.
    pub answer: Arc<AtomicBool>,
    pub proxies: Vec<Ipv4Addr>,
    pub interval: Duration,
    pub learned: UnboundedSender<(Ipv4Addr, [u8; 6])>,
    pub stop: Arc<AtomicBool>,
}

/// Runs until `stop` is set or the receiver is gone.
pub fn run(t: ArpTask) {
    let ArpTask {
        sock,
        me,
        vip,
        answer,
        proxies,
        interval,
        learned,
        stop,
    } = t;
    let mut known: BTreeMap<Ipv4Addr, [u8; 6]> = BTreeMap::new();
    let mut next_request = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_request {
            for &p in &proxies {
                if let Err(e) = sock.send(&ArpPacket::request(me.0, me.1, p), BROADCAST) {
                    tracing::warn!(proxy_addr = %p, error = %e, "ARP request not sent");
                }
            }
            let all_known = proxies.iter().all(|p| known.contains_key(p));
            next_request = now
                + if all_known {
                    interval
                } else {
                    EAGER.min(interval)
                };
        }
        let wait = next_request
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match sock.recv(wait) {
            Ok(Some(pkt)) => {
                if pkt.op == ArpOp::Request
                    && pkt.target_ip == vip
                    && pkt.sender_ip != vip
                    && pkt.sender_mac != me.0
                    && answer.load(Ordering::Relaxed)
                {
                    let reply = ArpPacket {
                        op: ArpOp::Reply,
                        sender_mac: me.0,
                        sender_ip: vip,
                        target_mac: pkt.sender_mac,
                        target_ip: pkt.sender_ip,
                    };
                    if let Err(e) = sock.send(&reply, pkt.sender_mac) {
                        tracing::warn!(error = %e, "ARP reply for the service address not sent");
                    }
                }
                let (ip, mac) = (pkt.sender_ip, pkt.sender_mac);
                if mac == [0; 6] || mac == BROADCAST || !proxies.contains(&ip) {
                    continue;
                }
                if known.get(&ip) != Some(&mac) {
                    known.insert(ip, mac);
                    if learned.send((ip, mac)).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "ARP socket error");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

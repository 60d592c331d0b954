//! The lb XDP program through BPF_PROG_TEST_RUN: it picks the slot the Rust
//! mirror of its flow hash predicts, rewrites only the MACs, sprays bursts
//! round the table, and passes what is not for the service address.

mod common;

use common::*;
use ftsplice_bpf::bpf_abi::{LbCfg, LB_MODE_FLOW, LB_MODE_SPRAY};
use ftsplice_bpf::lb::{flow_hash, slot_table, ProxyTarget};
use ftsplice_bpf::{Counter, LbPlane};
use ftsplice_linux::{pin_current_thread, skip_unless_root, NetNs};
use std::net::{Ipv4Addr, SocketAddrV4};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SMAC: [u8; 6] = [2, 0xaa, 0, 0, 0, 1];

fn proxies() -> Vec<ProxyTarget> {
    vec![
        ProxyTarget {
            mac: [2, 0xbb, 0, 0, 0, 1],
            weight: 1,
        },
        ProxyTarget {
            mac: [2, 0xbb, 0, 0, 0, 2],
            weight: 2,
        },
    ]
}

fn cfg(mode: u32, burst: u32) -> LbCfg {
    LbCfg {
        vip: VIP.octets(),
        nslots: 0,
        mode,
        burst,
    }
}

/// Runs `body` with a loaded lb inside a fresh namespace, where the test
/// run's ingress device is that namespace's loopback (ifindex 1).
fn with_lb<T: Send>(body: impl FnOnce(&mut LbPlane) -> T + Send) -> T {
    let ns = NetNs::new("lb").unwrap();
    ns.run(|| body(&mut LbPlane::load().unwrap())).unwrap()
}

#[test]
fn flow_hash_mode_matches_the_rust_mirror_and_rewrites_only_macs() {
    if skip_unless_root("flow_hash_mode_matches_the_rust_mirror_and_rewrites_only_macs") {
        return;
    }
    let table = slot_table(&proxies(), SMAC, 1);
    with_lb(|lb| {
        lb.configure(cfg(LB_MODE_FLOW, 0), &table).unwrap();
        let mut seen = std::collections::HashSet::new();
        for port in 1000..1064u16 {
            let client = SocketAddrV4::new(Ipv4Addr::new(198, 18, 7, 9), port);
            let input = Seg::new(client, SocketAddrV4::new(VIP, 80)).frame();
            let r = lb.test_run(&input).unwrap();
            assert_eq!(r.retval, XDP_TX);
            let h = flow_hash(
                u32::from(*client.ip()),
                u32::from(VIP),
                u32::from(port) << 16 | 80,
            );
            let want = table[(h % table.len() as u32) as usize];
            assert_eq!(r.packet[..6], want.dmac, "port {port}");
            assert_eq!(r.packet[6..12], SMAC);
            assert_eq!(r.packet[12..], input[12..], "only MACs change");
            seen.insert(want.dmac);
            // The same flow sticks.
            assert_eq!(lb.test_run(&input).unwrap().packet, r.packet);
        }
        assert_eq!(seen.len(), 2, "flows spread over both proxies");
        assert_eq!(lb.counters().unwrap().get(Counter::LbSent), 128);
    });
}

#[test]
fn spray_mode_sends_bursts_round_the_table() {
    if skip_unless_root("spray_mode_sends_bursts_round_the_table") {
        return;
    }
    let table = slot_table(&proxies(), SMAC, 1);
    let input = Seg::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 7, 9), 5555),
        SocketAddrV4::new(VIP, 80),
    )
    .frame();
    with_lb(|lb| {
        // The burst counter is per CPU: stay on one.
        pin_current_thread(0).unwrap();
        lb.configure(cfg(LB_MODE_SPRAY, 3), &table).unwrap();
        let picks: Vec<[u8; 6]> = (0..12)
            .map(|_| {
                let p = lb.test_run(&input).unwrap().packet;
                p[..6].try_into().unwrap()
            })
            .collect();
        for (i, mac) in picks.iter().enumerate() {
            assert_eq!(*mac, table[i / 3].dmac, "packet {i}");
        }
    });
}

#[test]
fn other_traffic_and_empty_table_pass_to_the_stack() {
    if skip_unless_root("other_traffic_and_empty_table_pass_to_the_stack") {
        return;
    }
    let table = slot_table(&proxies(), SMAC, 1);
    let to_vip = Seg::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 7, 9), 5555),
        SocketAddrV4::new(VIP, 80),
    )
    .frame();
    let elsewhere = Seg::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 7, 9), 5555),
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
    )
    .frame();
    let mut arp = to_vip.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    with_lb(|lb| {
        lb.configure(cfg(LB_MODE_FLOW, 0), &table).unwrap();
        for (input, why) in [(elsewhere, Counter::LbNotVip), (arp, Counter::NotIpv4)] {
            let r = lb.test_run(&input).unwrap();
            assert_eq!((r.retval, &r.packet), (XDP_PASS, &input));
            assert_eq!(lb.counters().unwrap().get(why), 1);
        }
        lb.configure(cfg(LB_MODE_FLOW, 0), &[]).unwrap();
        let r = lb.test_run(&to_vip).unwrap();
        assert_eq!((r.retval, &r.packet), (XDP_PASS, &to_vip));
        assert_eq!(lb.counters().unwrap().get(Counter::LbNoProxy), 1);
    });
}

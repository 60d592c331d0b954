//! The lb program (its XDP entry, and in the flow-hash and pass/drop checks
//! its TC entry too) through BPF_PROG_TEST_RUN: it sends every flow to the
//! proxy the Rust model predicts (`proto::lb::SlotTable`, the simulator's
//! `Balancer` in flow-hash mode and, with equal weights, the pre-splice
//! owner), over random proxy sets and tuples; it rewrites only the MACs,
//! sprays bursts round the table, and passes what is not for the service
//! address.

mod common;

use common::*;
use ftsplice_bpf::bpf_abi::{
    LbCfg, LbSlot, LB_MODE_FLOW, LB_MODE_PORT, LB_MODE_RANDOM, LB_MODE_SPRAY, LB_PORTS,
};
use ftsplice_bpf::lb::slot_table;
use ftsplice_bpf::{Counter, LbPlane};
use ftsplice_linux::{pin_current_thread, skip_unless_root, NetNs};
use ftsplice_proto::lb::{Balancer, LbMode, ProxySet, SlotTable};
use ftsplice_proto::owner::client_owner;
use ftsplice_proto::rng::SplitMix64;
use ftsplice_proto::{Instant, ProxyId};
use std::net::{Ipv4Addr, SocketAddrV4};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SMAC: [u8; 6] = [2, 0xaa, 0, 0, 0, 1];

fn mac(id: ProxyId) -> Option<[u8; 6]> {
    let [hi, lo] = id.0.to_be_bytes();
    Some([2, 0xbb, 0, 0, hi, lo])
}

fn id_of(mac: &[u8]) -> ProxyId {
    ProxyId(u16::from_be_bytes([mac[4], mac[5]]))
}

/// Two proxies, weights 1 and 2: the model's table.
fn model() -> SlotTable {
    let mut set = ProxySet::new();
    set.upsert(ProxyId(1), 1);
    set.upsert(ProxyId(2), 2);
    SlotTable::build(&set)
}

/// [`model`] as the program's slots.
fn table() -> Vec<LbSlot> {
    slot_table(&model(), mac, SMAC, 1).unwrap()
}

/// The client of the single-flow tests.
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 7, 9), 5555);

/// A packet of one flow from [`CLIENT`] to the service address.
fn one_flow() -> Vec<u8> {
    Seg::new(CLIENT, SocketAddrV4::new(VIP, 80)).frame()
}

fn cfg(mode: u32, burst: u32) -> LbCfg {
    LbCfg {
        vip: VIP.octets(),
        nslots: 0,
        mode,
        burst,
        peer_dev: 0,
    }
}

/// Runs `body` with a loaded lb inside a fresh namespace, where the test
/// run's ingress device is that namespace's loopback (ifindex 1).
fn with_lb<T: Send>(body: impl FnOnce(&mut LbPlane) -> T + Send) -> T {
    let ns = NetNs::new("lb").unwrap();
    ns.run(|| body(&mut LbPlane::load().unwrap())).unwrap()
}

#[test]
fn flow_hash_mode_matches_the_rust_model_over_random_sets_and_tuples() {
    if skip_unless_root("flow_hash_mode_matches_the_rust_model_over_random_sets_and_tuples") {
        return;
    }
    let mut rng = SplitMix64::new(0x1b5eed);
    with_lb(|lb| {
        let mut sent = 0;
        for round in 0..24 {
            // 1..=8 proxies with random ids; every third round equal weights.
            let mut set = ProxySet::new();
            let n = 1 + rng.next_u64() % 8;
            while (set.len() as u64) < n {
                let id = ProxyId(1 + (rng.next_u64() % 1000) as u16);
                let w = if round % 3 == 0 {
                    100
                } else {
                    (rng.next_u64() % 1000) as u32
                };
                set.upsert(id, w);
            }
            let equal = set.iter().all(|(_, w)| w == set.iter().next().unwrap().1);
            let model = SlotTable::build(&set);
            let mut sim = Balancer::new(LbMode::FlowHash);
            for (id, w) in set.iter() {
                sim.set_proxy(id, w);
            }
            let slots = slot_table(&model, mac, SMAC, 1).unwrap();
            lb.configure(cfg(LB_MODE_FLOW, 0), &slots).unwrap();
            for _ in 0..200 {
                let r = rng.next_u64();
                let client = SocketAddrV4::new(
                    Ipv4Addr::from_bits(0xc612_0000 | (r as u32 & 0x1_ffff)),
                    (r >> 32) as u16,
                );
                let vip = SocketAddrV4::new(VIP, (r >> 48) as u16);
                let input = Seg::new(client, vip).frame();
                let out = lb.test_run(&input).unwrap();
                assert_eq!(out.retval, XDP_TX);
                let got = id_of(&out.packet[..6]);
                let want = sim.choose(Instant::ZERO, client, vip).unwrap();
                assert_eq!(got, want, "round {round}, {client} -> {vip}");
                assert_eq!(Some(got), model.choose(client, vip));
                if equal {
                    assert_eq!(Some(got), client_owner(client, vip, set.ids()));
                }
                assert_eq!(out.packet[6..12], SMAC);
                assert_eq!(out.packet[12..], input[12..], "only MACs change");
                // The TC entry chooses the same proxy, rewrites the same
                // bytes, and redirects instead of XDP_TX.
                let tc = lb.test_run_tc(&input).unwrap();
                assert_eq!(tc.retval, TC_ACT_REDIRECT);
                assert_eq!(tc.packet, out.packet);
                sent += 2;
            }
        }
        assert_eq!(lb.counters().unwrap().get(Counter::LbSent), sent);
    });
}

#[test]
fn random_mode_spreads_packets_by_weight() {
    if skip_unless_root("random_mode_spreads_packets_by_weight") {
        return;
    }
    let input = one_flow();
    with_lb(|lb| {
        lb.configure(cfg(LB_MODE_RANDOM, 0), &table()).unwrap();
        let mut counts = [0u32; 3];
        for _ in 0..600 {
            let p = lb.test_run(&input).unwrap().packet;
            counts[usize::from(id_of(&p[..6]).0)] += 1;
        }
        // Weights 1:2 -> about 200:400 (one flow, so flow hashing would
        // send all 600 to one proxy).
        assert!((120..290).contains(&counts[1]), "{counts:?}");
    });
}

#[test]
fn spray_mode_sends_bursts_round_the_table() {
    if skip_unless_root("spray_mode_sends_bursts_round_the_table") {
        return;
    }
    let table = table();
    let input = one_flow();
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
fn other_traffic_passes_and_an_empty_table_drops_tcp() {
    if skip_unless_root("other_traffic_passes_and_an_empty_table_drops_tcp") {
        return;
    }
    let table = table();
    let to_vip = one_flow();
    let elsewhere = Seg::new(CLIENT, SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80)).frame();
    let mut arp = to_vip.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    with_lb(|lb| {
        lb.configure(cfg(LB_MODE_FLOW, 0), &table).unwrap();
        for (input, why) in [(elsewhere, Counter::LbNotVip), (arp, Counter::NotIpv4)] {
            let r = lb.test_run(&input).unwrap();
            assert_eq!((r.retval, &r.packet), (XDP_PASS, &input));
            assert_eq!(lb.counters().unwrap().get(why), 1);
            let r = lb.test_run_tc(&input).unwrap();
            assert_eq!((r.retval, &r.packet), (TC_ACT_OK, &input));
            assert_eq!(lb.counters().unwrap().get(why), 2);
        }
        // No proxy: TCP to the service address is dropped (the clients
        // retransmit) rather than reset by the lb's own stack.
        lb.configure(cfg(LB_MODE_FLOW, 0), &[]).unwrap();
        let r = lb.test_run(&to_vip).unwrap();
        assert_eq!(r.retval, XDP_DROP);
        assert_eq!(lb.counters().unwrap().get(Counter::LbNoProxy), 1);
        assert_eq!(lb.test_run_tc(&to_vip).unwrap().retval, TC_ACT_SHOT);
        assert_eq!(lb.counters().unwrap().get(Counter::LbNoProxy), 2);
    });
}

#[test]
fn port_mode_sends_to_the_port_owner_else_by_flow_hash() {
    if skip_unless_root("port_mode_sends_to_the_port_owner_else_by_flow_hash") {
        return;
    }
    let table = table();
    let mut owners = vec![LbSlot::default(); LB_PORTS];
    // Proxy 2 owns 40000..=40099 (it would get only some by hash).
    for o in &mut owners[40000..40100] {
        *o = LbSlot {
            dmac: mac(ProxyId(2)).unwrap(),
            smac: SMAC,
            ifindex: 1,
        };
    }
    let backend = SocketAddrV4::new(Ipv4Addr::new(198, 18, 9, 1), 80);
    with_lb(|lb| {
        lb.configure(cfg(LB_MODE_PORT, 0), &table).unwrap();
        lb.set_port_owners(&owners).unwrap();
        for port in 40000..40100u16 {
            let f = Seg::new(backend, SocketAddrV4::new(VIP, port)).frame();
            let r = lb.test_run(&f).unwrap();
            assert_eq!(r.retval, XDP_TX);
            assert_eq!(id_of(&r.packet[..6]), ProxyId(2), "port {port}");
        }
        // Unowned ports fall back to the flow-hash table.
        let model = model();
        let mut seen = std::collections::HashSet::new();
        for port in 50000..50064u16 {
            let dst = SocketAddrV4::new(VIP, port);
            let r = lb.test_run(&Seg::new(backend, dst).frame()).unwrap();
            let got = id_of(&r.packet[..6]);
            assert_eq!(Some(got), model.choose(backend, dst), "port {port}");
            seen.insert(got);
        }
        assert_eq!(seen.len(), 2);
    });
}

#[test]
fn tc_entry_hands_packets_to_the_veth_peer_only_for_the_configured_device() {
    if skip_unless_root("tc_entry_hands_packets_to_the_veth_peer_only_for_the_configured_device") {
        return;
    }
    let input = one_flow();
    with_lb(|lb| {
        // The table's slots send out of ifindex 1.
        for (peer_dev, peer) in [(0, 0), (9, 0), (1, 3)] {
            let before = lb.counters().unwrap();
            let c = LbCfg {
                peer_dev,
                ..cfg(LB_MODE_FLOW, 0)
            };
            lb.configure(c, &table()).unwrap();
            for _ in 0..3 {
                let tc = lb.test_run_tc(&input).unwrap();
                assert_eq!(tc.retval, TC_ACT_REDIRECT);
                assert_eq!(tc.packet[12..], input[12..], "only MACs change");
            }
            let d = lb.counters().unwrap().since(&before);
            assert_eq!(d.get(Counter::LbSent), 3);
            assert_eq!(d.get(Counter::RedirectedPeer), peer, "peer_dev {peer_dev}");
        }
    });
}

//! The proxies' client-side pre-splice redirect through BPF_PROG_TEST_RUN,
//! crossed with the XDP lb at unequal weights: for random client tuples,
//! the proxy the lb picks (from `proto::lb::SlotTable`) keeps the packet,
//! and every other proxy, holding the same weighted table as owner
//! addresses (`ftsplice_bpf::lb::owner_addrs`), redirects it to that
//! proxy's MAC with the TTL decremented and the IP checksum still valid.
//! A connection the proxy has a socket for stays local whoever owns the
//! slot; a listener is not such a socket; a packet at TTL 1 is not
//! redirected again. In an own slot marked settled (`proto::orphan`), an
//! ACK with no socket here is marked for the stack's reset, nothing else.

mod common;

use common::*;
use ftsplice_bpf::bpf_abi::{LbCfg, LB_MODE_FLOW, ORPHAN_MARK};
use ftsplice_bpf::lb::{mark_settled, owner_addrs, slot_table};
use ftsplice_bpf::{Counter, LbPlane, SplicePlane, SpliceRole};
use ftsplice_linux::{skip_unless_root, NetNs};
use ftsplice_proto::lb::{ProxySet, SlotTable};
use ftsplice_proto::rng::SplitMix64;
use ftsplice_proto::ProxyId;
use std::net::{Ipv4Addr, SocketAddrV4};

const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;
const XDP_TX: u32 = 3;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 71, 10);
const SSA: Ipv4Addr = Ipv4Addr::new(198, 18, 71, 11);

fn mac(id: ProxyId) -> [u8; 6] {
    [2, 0, 0, 0, 0, id.0 as u8]
}

fn addr(id: ProxyId) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::new(198, 18, 70, 10 + id.0 as u8))
}

/// The namespace: a veth with the proxies' addresses as permanent
/// neighbours, forwarding on, VIP on lo.
fn namespace(ids: &[ProxyId]) -> NetNs {
    let ns = forwarding_veth_ns("cli", "198.18.70.1/24");
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    ns.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"])
        .unwrap();
    for &id in ids {
        let m = mac(id)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        set_neighbour(&ns, &addr(id).unwrap().to_string(), &m);
    }
    ns
}

fn with_ttl(frame: &[u8], ttl: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[ETH_LEN + 8] = ttl;
    f[ETH_LEN + 10] = 0;
    f[ETH_LEN + 11] = 0;
    let c = !fold(sum16(&f[ETH_LEN..ETH_LEN + 20], 0));
    f[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn each_proxy_keeps_what_the_lb_sends_it_and_redirects_the_rest_at_unequal_weights() {
    if skip_unless_root(
        "each_proxy_keeps_what_the_lb_sends_it_and_redirects_the_rest_at_unequal_weights",
    ) {
        return;
    }
    let ids = [ProxyId(1), ProxyId(2), ProxyId(3)];
    let mut set = ProxySet::new();
    for (&id, w) in ids.iter().zip([100, 300, 50]) {
        set.upsert(id, w);
    }
    let table = SlotTable::build(&set);
    let ns = namespace(&ids);
    ns.run(|| {
        let mut lb = LbPlane::load().unwrap();
        let slots = slot_table(&table, |id| Some(mac(id)), [2, 0xaa, 0, 0, 0, 1], 1).unwrap();
        let cfg = LbCfg {
            vip: VIP.octets(),
            nslots: 0,
            mode: LB_MODE_FLOW,
            burst: 0,
            peer_dev: 0,
        };
        lb.configure(cfg, &slots).unwrap();
        let mut rng = SplitMix64::new(0xc11e);
        let tuples: Vec<SocketAddrV4> = (0..300)
            .map(|_| {
                let a = rng.next_u64();
                SocketAddrV4::new(
                    Ipv4Addr::new(198, 19, (a >> 8) as u8, a as u8),
                    1024 + (a >> 16) as u16 % 60_000,
                )
            })
            .collect();
        // The lb's choice per tuple, from the XDP program itself.
        let chosen: Vec<ProxyId> = tuples
            .iter()
            .map(|&c| {
                let f = Seg::new(c, SocketAddrV4::new(VIP, 80)).frame();
                let r = lb.test_run(&f).unwrap();
                assert_eq!(r.retval, XDP_TX);
                ProxyId(u16::from(r.packet[5]))
            })
            .collect();
        let mut counts = [0usize; 4];
        for c in &chosen {
            counts[usize::from(c.0)] += 1;
        }
        // Unequal weights really are unequal: proxy 2 gets the most.
        assert!(counts[2] > counts[1] && counts[1] > counts[3], "{counts:?}");
        let mut redirected = 0;
        for &me in &ids {
            let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
            p.set_ssa_owners(SSA, &[]).unwrap();
            p.set_client_owners(VIP, &owner_addrs(&table, me, addr))
                .unwrap();
            for (&c, &owner) in tuples.iter().zip(&chosen) {
                let f = Seg::new(c, SocketAddrV4::new(VIP, 80)).frame();
                let r = p.test_run("proxy_ingress", &f).unwrap();
                if owner == me {
                    assert_eq!((r.retval, &r.packet), (TC_ACT_OK, &f), "{c} is {me}'s");
                    continue;
                }
                redirected += 1;
                assert_eq!(r.retval, TC_ACT_REDIRECT, "{c}: {me} -> {owner}");
                assert_eq!(r.packet[..6], mac(owner), "{c} to {owner}'s MAC");
                assert_eq!(r.packet[ETH_LEN + 8], 63, "TTL decremented");
                assert!(checksums_ok(&r.packet));
                assert_eq!(r.packet[ETH_LEN..], with_ttl(&f, 63)[ETH_LEN..]);
            }
            let n = p.counters().unwrap().get(Counter::PresliceRedirect);
            assert_eq!(n as usize, tuples.len() - counts[usize::from(me.0)]);
        }
        assert_eq!(redirected, 2 * tuples.len());
    })
    .unwrap();
}

#[test]
fn local_sockets_stay_and_ttl_one_is_not_redirected() {
    if skip_unless_root("local_sockets_stay_and_ttl_one_is_not_redirected") {
        return;
    }
    let ids = [ProxyId(1), ProxyId(2)];
    let ns = namespace(&ids);
    ns.run(|| {
        // Proxy 1 owns no slot at all: weight 0 against 1 drains it.
        let mut set = ProxySet::new();
        set.upsert(ProxyId(1), 0);
        set.upsert(ProxyId(2), 1);
        let table = SlotTable::build(&set);
        let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
        p.set_client_owners(VIP, &owner_addrs(&table, ProxyId(1), addr))
            .unwrap();
        let listener = std::net::TcpListener::bind(SocketAddrV4::new(VIP, 80)).unwrap();
        let client = std::net::TcpStream::connect(SocketAddrV4::new(VIP, 80)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let local = match client.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(a) => panic!("{a}"),
        };
        // Its connection: stays here though proxy 2 owns the slot.
        let f = Seg::new(local, SocketAddrV4::new(VIP, 80)).frame();
        let r = p.test_run("proxy_ingress", &f).unwrap();
        assert_eq!((r.retval, &r.packet), (TC_ACT_OK, &f));
        // Another port of the same client: only the listener matches.
        let other = SocketAddrV4::new(*local.ip(), local.port() ^ 1);
        let f = Seg::new(other, SocketAddrV4::new(VIP, 80)).frame();
        let r = p.test_run("proxy_ingress", &f).unwrap();
        assert_eq!(r.retval, TC_ACT_REDIRECT);
        assert_eq!(r.packet[..6], mac(ProxyId(2)));
        // At TTL 1 it would die on the way: not redirected.
        let f = with_ttl(&f, 1);
        let r = p.test_run("proxy_ingress", &f).unwrap();
        assert_eq!((r.retval, &r.packet), (TC_ACT_OK, &f));
        // An empty table keeps everything here.
        p.set_client_owners(VIP, &[]).unwrap();
        let f = Seg::new(other, SocketAddrV4::new(VIP, 80)).frame();
        let r = p.test_run("proxy_ingress", &f).unwrap();
        assert_eq!((r.retval, &r.packet), (TC_ACT_OK, &f));
    })
    .unwrap();
}

#[test]
fn settled_own_slots_mark_orphaned_acks_for_the_stacks_reset() {
    if skip_unless_root("settled_own_slots_mark_orphaned_acks_for_the_stacks_reset") {
        return;
    }
    let ids = [ProxyId(1), ProxyId(2)];
    let ns = namespace(&ids);
    ns.run(|| {
        let vip = SocketAddrV4::new(VIP, 80);
        let table = SlotTable::equal(ids);
        let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
        p.set_ssa_owners(SSA, &[]).unwrap();
        let plain = owner_addrs(&table, ProxyId(1), addr);
        let mut settled = plain.clone();
        mark_settled(&mut settled, &table, ProxyId(1), |_| true);
        p.set_client_owners(VIP, &settled).unwrap();
        let _listener = std::net::TcpListener::bind(vip).unwrap();
        let port_of = |owner: ProxyId| {
            (1024..u16::MAX)
                .map(|port| SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 9), port))
                .find(|&c| table.choose(c, vip) == Some(owner))
                .unwrap()
        };
        let mine = port_of(ProxyId(1));
        // An ACK in a settled own slot with only the listener here: to the
        // stack unchanged, marked for the reset filter.
        let f = Seg::new(mine, vip).frame();
        let (r, mark) = p.test_run_mark("proxy_ingress", &f).unwrap();
        assert_eq!((r.retval, &r.packet, mark), (TC_ACT_OK, &f, ORPHAN_MARK));
        // A reset, a SYN, a bare FIN: never marked.
        for flags in [0x04 | ACK, SYN, 0x01] {
            let f = Seg {
                flags,
                ..Seg::new(mine, vip)
            }
            .frame();
            let (r, mark) = p.test_run_mark("proxy_ingress", &f).unwrap();
            assert_eq!((r.retval, mark), (TC_ACT_OK, 0), "flags {flags:#x}");
        }
        // Proxy 2's slot: redirected there, not marked.
        let f = Seg::new(port_of(ProxyId(2)), vip).frame();
        let (r, mark) = p.test_run_mark("proxy_ingress", &f).unwrap();
        assert_eq!((r.retval, mark), (TC_ACT_REDIRECT, 0));
        // Own slots still in their grace (0.0.0.0): not marked.
        p.set_client_owners(VIP, &plain).unwrap();
        let (r, mark) = p.test_run_mark("proxy_ingress", &f_of(mine)).unwrap();
        assert_eq!((r.retval, mark), (TC_ACT_OK, 0));
        assert_eq!(p.counters().unwrap().get(Counter::OrphanMarked), 1);
        // A connection this proxy has a socket for is never an orphan.
        let all = SlotTable::equal([ProxyId(1)]);
        let mut owners = owner_addrs(&all, ProxyId(1), addr);
        mark_settled(&mut owners, &all, ProxyId(1), |_| true);
        p.set_client_owners(VIP, &owners).unwrap();
        let client = std::net::TcpStream::connect(vip).unwrap();
        let local = match client.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(a) => panic!("{a}"),
        };
        let (r, mark) = p.test_run_mark("proxy_ingress", &f_of(local)).unwrap();
        assert_eq!((r.retval, mark), (TC_ACT_OK, 0));
        let other = SocketAddrV4::new(*local.ip(), local.port() ^ 1);
        let (_, mark) = p.test_run_mark("proxy_ingress", &f_of(other)).unwrap();
        assert_eq!(mark, ORPHAN_MARK);
        assert_eq!(p.counters().unwrap().get(Counter::OrphanMarked), 2);
    })
    .unwrap();
}

fn f_of(client: SocketAddrV4) -> Vec<u8> {
    Seg::new(client, SocketAddrV4::new(VIP, 80)).frame()
}

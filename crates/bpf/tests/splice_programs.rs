//! The proxy/agent programs through the verifier and BPF_PROG_TEST_RUN on
//! hand-built frames: translated fields, valid checksums, and the counted
//! slow path leaving packets untouched. (Byte-for-byte agreement with the
//! Rust reference is tests/fixtures.rs.)

mod common;

use common::*;
use ftsplice_bpf::{Counter, SplicePlane, SpliceRole};
use ftsplice_linux::{skip_unless_root, NetNs};
use ftsplice_proto::splice::{Splice, SpliceId, TsDeltas, WindowScales};
use proptest::prelude::*;
use std::net::{Ipv4Addr, SocketAddrV4};

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
/// `splice_test`'s verdict for a translated packet.
const TEST_TRANSLATED: u32 = 0xff;

fn sa(a: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(a), port)
}

fn splice() -> Splice {
    Splice {
        id: SpliceId(42),
        version: 1,
        client: sa([198, 18, 1, 10], 40000),
        vip: sa([198, 18, 0, 1], 80),
        ssa: sa([198, 18, 2, 1], 50001),
        backend: sa([198, 18, 2, 20], 8080),
        seq_delta: 0x1000_0000,
        ack_delta: 0xffff_ff00,
        ts: Some(TsDeltas {
            c2s: 1000,
            s2c: 0xffff_0000,
        }),
        wscale: WindowScales {
            client: 7,
            vip: 7,
            ssa: 9,
            backend: 8,
        },
        sack_ok: true,
    }
}

/// Runs `body` with a freshly loaded proxy plane inside an empty namespace
/// (so fib lookups fail deterministically and translated packets go to the
/// stack instead of being redirected).
fn with_proxy<T: Send>(body: impl FnOnce(&mut SplicePlane) -> T + Send) -> T {
    let ns = NetNs::new("bpf").unwrap();
    ns.run(|| {
        let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
        body(&mut p)
    })
    .unwrap()
}

#[test]
fn all_objects_pass_the_verifier() {
    if skip_unless_root("all_objects_pass_the_verifier") {
        return;
    }
    SplicePlane::load(SpliceRole::Proxy).unwrap();
    SplicePlane::load(SpliceRole::Agent).unwrap();
    ftsplice_bpf::LbPlane::load().unwrap();
}

#[test]
fn client_to_server_packet_is_translated() {
    if skip_unless_root("client_to_server_packet_is_translated") {
        return;
    }
    let s = splice();
    let mut seg = Seg::new(s.client, s.vip);
    seg.flags = ACK | PSH;
    seg.window = 1000;
    let mut opts = ts_option(5000, 6000);
    opts.extend(sack_option(&[(100, 200), (300, 400)]));
    seg.options = opts;
    seg.payload = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    let input = seg.frame();
    with_proxy(|p| {
        p.install(&s).unwrap();
        for prog in ["splice_test", "proxy_ingress"] {
            let before = p.counters().unwrap();
            let r = p.test_run(prog, &input).unwrap();
            let want = if prog == "splice_test" {
                TEST_TRANSLATED
            } else {
                TC_ACT_OK
            };
            assert_eq!(r.retval, want, "{prog}");
            let o = &r.packet;
            assert_eq!(o.len(), input.len());
            assert!(checksums_ok(o), "{prog}: bad checksum");
            let ip = ETH_LEN;
            let t = ETH_LEN + 20;
            assert_eq!(o[ip + 12..ip + 16], [198, 18, 2, 1]);
            assert_eq!(o[ip + 16..ip + 20], [198, 18, 2, 20]);
            assert_eq!((u16_at(o, t), u16_at(o, t + 2)), (50001, 8080));
            assert_eq!(u32_at(o, t + 4), 1000 + 0x1000_0000);
            assert_eq!(u32_at(o, t + 8), 2000u32.wrapping_add(0xffff_ff00));
            // 1000 << 7 >> 9 = 250
            assert_eq!(u16_at(o, t + 14), 250);
            assert_eq!(u32_at(o, t + 24), 5000 + 1000);
            assert_eq!(u32_at(o, t + 28), 6000u32.wrapping_sub(0xffff_0000));
            assert_eq!(u32_at(o, t + 36), 100u32.wrapping_add(0xffff_ff00));
            assert_eq!(u32_at(o, t + 48), 400u32.wrapping_add(0xffff_ff00));
            assert_eq!(&o[o.len() - 18..], b"GET / HTTP/1.1\r\n\r\n");
            if prog == "proxy_ingress" {
                let d = p.counters().unwrap().since(&before);
                assert_eq!(d.get(Counter::Translated), 1);
                assert_eq!(d.get(Counter::FibStack), 1, "no route: stack routes it");
            }
        }
    });
}

#[test]
fn server_to_client_packet_is_translated_back() {
    if skip_unless_root("server_to_client_packet_is_translated_back") {
        return;
    }
    let s = splice();
    let mut seg = Seg::new(s.backend, s.ssa);
    seg.seq = 7;
    seg.ack = 1000 + 0x1000_0000;
    seg.window = 100;
    seg.options = ts_option(9, 5000 + 1000);
    let input = seg.frame();
    with_proxy(|p| {
        p.install(&s).unwrap();
        let r = p.test_run("proxy_ingress", &input).unwrap();
        assert_eq!(r.retval, TC_ACT_OK);
        let o = &r.packet;
        assert!(checksums_ok(o));
        let t = ETH_LEN + 20;
        assert_eq!(
            o[ETH_LEN + 12..ETH_LEN + 20],
            [198, 18, 0, 1, 198, 18, 1, 10]
        );
        assert_eq!((u16_at(o, t), u16_at(o, t + 2)), (80, 40000));
        assert_eq!(u32_at(o, t + 4), 7u32.wrapping_sub(0xffff_ff00));
        assert_eq!(u32_at(o, t + 8), 1000, "the client's own seq space");
        assert_eq!(u16_at(o, t + 14), 200, "100 << 8 >> 7");
        assert_eq!(u32_at(o, t + 24), 9u32.wrapping_add(0xffff_0000));
        assert_eq!(u32_at(o, t + 28), 5000, "the client's own TSval echoed");
    });
}

#[test]
fn options_not_negotiated_are_nopped() {
    if skip_unless_root("options_not_negotiated_are_nopped") {
        return;
    }
    let mut s = splice();
    s.ts = None;
    s.sack_ok = false;
    let mut seg = Seg::new(s.client, s.vip);
    let mut opts = ts_option(5000, 6000);
    opts.extend(sack_option(&[(100, 200)]));
    seg.options = opts;
    let input = seg.frame();
    with_proxy(|p| {
        p.install(&s).unwrap();
        let r = p.test_run("proxy_ingress", &input).unwrap();
        assert!(checksums_ok(&r.packet));
        let t = ETH_LEN + 20;
        assert!(r.packet[t + 20..t + 40].iter().all(|&b| b == 1), "all NOPs");
    });
}

#[test]
fn slow_path_leaves_packets_untouched_and_counts_why() {
    if skip_unless_root("slow_path_leaves_packets_untouched_and_counts_why") {
        return;
    }
    let s = splice();
    let mut syn = Seg::new(s.client, s.vip);
    syn.flags = SYN;
    let mut bad_opt = Seg::new(s.client, s.vip);
    bad_opt.options = vec![8, 10, 0, 0, 0, 0, 0, 0, 1, 1, 3, 0]; // wscale with length 0
    let mut truncated = Seg::new(s.client, s.vip).frame();
    truncated[ETH_LEN + 32] = 0xf0; // doff 15: 60 header bytes, only 20 present
    let stranger = Seg::new(sa([198, 18, 9, 9], 1), s.vip).frame();
    let cases = [
        (syn.frame(), Counter::SlowSyn),
        (bad_opt.frame(), Counter::SlowBadOption),
        (truncated, Counter::SlowBadTcpHeader),
        (stranger, Counter::NoSplice),
    ];
    with_proxy(|p| {
        p.install(&s).unwrap();
        for (input, why) in cases {
            let before = p.counters().unwrap();
            let r = p.test_run("proxy_ingress", &input).unwrap();
            assert_eq!(r.retval, TC_ACT_OK, "{why:?}");
            assert_eq!(r.packet, input, "{why:?}: packet modified");
            let d = p.counters().unwrap().since(&before);
            assert_eq!(d.get(why), 1, "{why:?}: {d:?}");
            assert_eq!(d.get(Counter::Translated), 0, "{why:?}");
        }
    });
}

#[test]
fn ipv4_options_are_kept_and_the_tcp_header_found_behind_them() {
    if skip_unless_root("ipv4_options_are_kept_and_the_tcp_header_found_behind_them") {
        return;
    }
    let s = splice();
    let mut seg = Seg::new(s.client, s.vip);
    seg.options = ts_option(1, 2);
    let input = with_ip_options(&seg.frame());
    with_proxy(|p| {
        p.install(&s).unwrap();
        let r = p.test_run("proxy_ingress", &input).unwrap();
        assert!(checksums_ok(&r.packet));
        let t = ETH_LEN + 24;
        assert_eq!(r.packet[ETH_LEN + 20..t], [1, 1, 1, 1]);
        assert_eq!(u16_at(&r.packet, t), 50001);
        assert_eq!(u32_at(&r.packet, t + 4), 1000 + 0x1000_0000);
    });
}

#[test]
fn held_splice_drops_and_removal_passes() {
    if skip_unless_root("held_splice_drops_and_removal_passes") {
        return;
    }
    let s = splice();
    let mut data = Seg::new(s.client, s.vip);
    data.payload = b"body".to_vec();
    let input = data.frame();
    let pure_ack = Seg::new(s.client, s.vip).frame();
    let mut fin = Seg::new(s.backend, s.ssa);
    fin.flags = ACK | 0x01;
    let fin = fin.frame();
    with_proxy(|p| {
        p.hold(&s).unwrap();
        // Data and FIN are dropped (retransmitted later through the splice).
        for f in [&input, &fin] {
            assert_eq!(p.test_run("proxy_ingress", f).unwrap().retval, TC_ACT_SHOT);
        }
        assert_eq!(p.counters().unwrap().get(Counter::HoldDrop), 2);
        // A pure ACK reaches the frozen-to-be socket untouched.
        let r = p.test_run("proxy_ingress", &pure_ack).unwrap();
        assert_eq!((r.retval, &r.packet), (TC_ACT_OK, &pure_ack));
        assert_eq!(p.counters().unwrap().get(Counter::HoldPass), 1);
        p.install(&s).unwrap();
        let r = p.test_run("proxy_ingress", &input).unwrap();
        assert_ne!(r.packet, input);
        p.remove(&s).unwrap();
        p.remove(&s).unwrap();
        let r = p.test_run("proxy_ingress", &input).unwrap();
        assert_eq!(r.packet, input);
    });
}

#[test]
fn ts_seen_records_the_latest_tsval_of_stack_packets() {
    if skip_unless_root("ts_seen_records_the_latest_tsval_of_stack_packets") {
        return;
    }
    let s = splice();
    let other = sa([198, 18, 1, 11], 40001);
    with_proxy(|p| {
        assert_eq!(p.ts_seen(s.client, s.vip).unwrap(), None);
        // Linux's layout (NOP NOP TS) and one behind a SACK block.
        let mut a = Seg::new(s.client, s.vip);
        a.options = ts_option(100, 7);
        let mut b = Seg::new(s.client, s.vip);
        let mut o = sack_option(&[(1, 2)]);
        o.extend(ts_option(250, 9));
        b.options = o;
        for f in [a.frame(), b.frame()] {
            let r = p.test_run("proxy_ingress", &f).unwrap();
            assert_eq!((r.retval, r.packet), (TC_ACT_OK, f), "untouched");
        }
        let v = p.ts_seen(s.client, s.vip).unwrap().unwrap();
        assert_eq!((v.tsval, v.packets), (250, 2));
        // Keyed by the incoming tuple; no timestamp option, nothing noted.
        assert_eq!(p.ts_seen(s.vip, s.client).unwrap(), None);
        let plain = Seg::new(other, s.vip).frame();
        p.test_run("proxy_ingress", &plain).unwrap();
        assert_eq!(p.ts_seen(other, s.vip).unwrap(), None);
        // A malformed option list ends the walk without a value.
        let mut bad = Seg::new(other, s.vip);
        bad.options = vec![8, 1, 0, 0, 1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0];
        p.test_run("proxy_ingress", &bad.frame()).unwrap();
        assert_eq!(p.ts_seen(other, s.vip).unwrap(), None);
        // Packets of an installed splice are not noted.
        p.install(&s).unwrap();
        let mut c = Seg::new(s.client, s.vip);
        c.options = ts_option(999, 1);
        p.test_run("proxy_ingress", &c.frame()).unwrap();
        assert_eq!(p.ts_seen(s.client, s.vip).unwrap().unwrap().tsval, 250);
        p.forget_ts(s.client, s.vip).unwrap();
        p.forget_ts(s.client, s.vip).unwrap();
        assert_eq!(p.ts_seen(s.client, s.vip).unwrap(), None);
    });
}

#[test]
fn splice_seen_counts_packets_fins_and_resets() {
    if skip_unless_root("splice_seen_counts_packets_fins_and_resets") {
        return;
    }
    let s = splice();
    with_proxy(|p| {
        p.install(&s).unwrap();
        assert_eq!(p.seen(s.id).unwrap(), None);
        let mut c2s = Seg::new(s.client, s.vip);
        c2s.payload = b"x".to_vec();
        p.test_run("proxy_ingress", &c2s.frame()).unwrap();
        let v = p.seen(s.id).unwrap().unwrap();
        assert_eq!((v.packets, v.flags), (1, 0));
        assert!(v.first_ns > 0);
        let mut fin = Seg::new(s.backend, s.ssa);
        fin.flags = ACK | 0x01;
        p.test_run("proxy_ingress", &fin.frame()).unwrap();
        let v = p.seen(s.id).unwrap().unwrap();
        assert_eq!(
            (v.packets, v.flags),
            (2, ftsplice_bpf::bpf_abi::SEEN_FIN_S2C)
        );
        let mut rst = Seg::new(s.client, s.vip);
        rst.flags = 0x04;
        p.test_run("proxy_ingress", &rst.frame()).unwrap();
        let v = p.seen(s.id).unwrap().unwrap();
        assert_eq!(
            v.flags,
            ftsplice_bpf::bpf_abi::SEEN_FIN_S2C | ftsplice_bpf::bpf_abi::SEEN_RST
        );
        // Removing the splice forgets what was seen.
        p.remove(&s).unwrap();
        assert_eq!(p.seen(s.id).unwrap(), None);
    });
}

#[test]
fn gso_packets_count_every_segment() {
    if skip_unless_root("gso_packets_count_every_segment") {
        return;
    }
    let s = splice();
    with_proxy(|p| {
        p.install(&s).unwrap();
        let mut c2s = Seg::new(s.client, s.vip);
        c2s.payload = vec![7; 1000];
        let frame = c2s.frame();
        let before = p.counters().unwrap();
        // A GSO packet of 4 segments of 250 bytes: translated like any
        // packet (the same bytes), counted as the 4 packets it becomes.
        let plain = p.test_run("proxy_ingress", &frame).unwrap();
        let gso = p.test_run_gso("proxy_ingress", &frame, 4, 250).unwrap();
        assert_eq!(gso.retval, plain.retval);
        assert_eq!(gso.packet, plain.packet);
        assert!(checksums_ok(&gso.packet));
        let d = p.counters().unwrap().since(&before);
        assert_eq!(d.get(Counter::Translated), 5);
        assert_eq!(d.get(Counter::FibStack), 5);
        assert_eq!(p.seen(s.id).unwrap().unwrap().packets, 5);
        // gso_segs 0 (not GSO) counts one; a packet to the stack counts
        // its segments too.
        p.test_run_gso("proxy_ingress", &frame, 0, 0).unwrap();
        let stranger = Seg::new(sa([198, 18, 1, 11], 40000), s.vip).frame();
        p.test_run_gso("proxy_ingress", &stranger, 3, 500).unwrap();
        let d = p.counters().unwrap().since(&before);
        assert_eq!(d.get(Counter::Translated), 6);
        assert_eq!(d.get(Counter::NoSplice), 3);
        assert_eq!(p.seen(s.id).unwrap().unwrap().packets, 6);
    });
}

/// Option layouts with every alignment the checksum update must handle.
fn arb_options() -> impl Strategy<Value = Vec<u8>> {
    (
        0usize..4,
        any::<bool>(),
        prop::option::of((any::<u32>(), any::<u32>())),
        prop::collection::vec((any::<u32>(), any::<u32>()), 0..4),
    )
        .prop_map(|(nops, ts_first, ts, blocks)| {
            let mut o = vec![1u8; nops];
            let mut ts_bytes = Vec::new();
            if let Some((v, e)) = ts {
                ts_bytes = vec![8, 10];
                ts_bytes.extend_from_slice(&v.to_be_bytes());
                ts_bytes.extend_from_slice(&e.to_be_bytes());
            }
            let mut sack = Vec::new();
            if !blocks.is_empty() {
                sack = vec![5, (2 + 8 * blocks.len()) as u8];
                for (l, r) in &blocks {
                    sack.extend_from_slice(&l.to_be_bytes());
                    sack.extend_from_slice(&r.to_be_bytes());
                }
            }
            if ts_first {
                o.extend(ts_bytes);
                o.extend(sack);
            } else {
                o.extend(sack);
                o.extend(ts_bytes);
            }
            o.truncate(40);
            while o.len() % 4 != 0 {
                o.push(0);
            }
            o
        })
        .prop_filter("options fit", |o| {
            // Keep only layouts whose last option was not cut.
            let mut i = 0;
            while i < o.len() {
                match o[i] {
                    0 => return true,
                    1 => i += 1,
                    _ => {
                        if i + 1 >= o.len() || o[i + 1] < 2 || i + usize::from(o[i + 1]) > o.len() {
                            return false;
                        }
                        i += usize::from(o[i + 1]);
                    }
                }
            }
            true
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any splice, any segment: both programs agree, the checksums verify.
    #[test]
    fn translation_always_yields_valid_checksums(
        seq_delta in any::<u32>(), ack_delta in any::<u32>(),
        c2s in any::<u32>(), s2c in any::<u32>(), ts_on in any::<bool>(), sack_on in any::<bool>(),
        wc in 0u8..15, wv in 0u8..15, ws in 0u8..15, wb in 0u8..15,
        seq in any::<u32>(), ack in any::<u32>(), window in any::<u16>(), ack_flag in any::<bool>(),
        options in arb_options(), payload in prop::collection::vec(any::<u8>(), 0..33),
        from_client in any::<bool>(),
    ) {
        if !ftsplice_linux::is_root() {
            return Ok(());
        }
        let mut s = splice();
        s.seq_delta = seq_delta;
        s.ack_delta = ack_delta;
        s.ts = ts_on.then_some(TsDeltas { c2s, s2c });
        s.sack_ok = sack_on;
        s.wscale = WindowScales { client: wc, vip: wv, ssa: ws, backend: wb };
        let (src, dst) = if from_client { (s.client, s.vip) } else { (s.backend, s.ssa) };
        let mut seg = Seg::new(src, dst);
        seg.seq = seq;
        seg.ack = ack;
        seg.window = window;
        seg.flags = if ack_flag { ACK } else { PSH };
        seg.options = options;
        seg.payload = payload;
        let input = seg.frame();
        let (a, b) = with_proxy(|p| {
            p.install(&s).unwrap();
            (p.test_run("splice_test", &input).unwrap(), p.test_run("proxy_ingress", &input).unwrap())
        });
        prop_assert_eq!(a.retval, TEST_TRANSLATED);
        prop_assert!(checksums_ok(&a.packet));
        prop_assert!(checksums_ok(&b.packet));
        // Only the ±0 representation of the TCP checksum may differ.
        let t = ETH_LEN + 20;
        let mut a2 = a.packet.clone();
        let mut b2 = b.packet.clone();
        for p in [&mut a2, &mut b2] {
            p[t + 16] = 0;
            p[t + 17] = 0;
        }
        prop_assert_eq!(a2, b2);
    }
}

#[test]
fn presplice_packets_to_another_proxys_ssa_port_are_forwarded_to_it() {
    if skip_unless_root("presplice_packets_to_another_proxys_ssa_port_are_forwarded_to_it") {
        return;
    }
    const TC_ACT_REDIRECT: u32 = 7;
    let ns = forwarding_veth_ns("pre", "198.18.70.1/24");
    set_neighbour(&ns, "198.18.70.2", "02:00:00:00:00:09");
    ns.run(|| {
        let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
        let ssa = Ipv4Addr::new(198, 18, 2, 1);
        let owner = Ipv4Addr::new(198, 18, 70, 2);
        p.set_ssa_owners(ssa, &[(50000..=50099, owner)]).unwrap();
        let backend = sa([198, 18, 2, 20], 8080);
        let theirs = Seg::new(backend, SocketAddrV4::new(ssa, 50001)).frame();
        let r = p.test_run("proxy_ingress", &theirs).unwrap();
        assert_eq!(r.retval, TC_ACT_REDIRECT);
        assert_eq!(r.packet[..6], [2, 0, 0, 0, 0, 9], "to the owner's MAC");
        assert_eq!(r.packet[14..], theirs[14..], "IP packet unchanged");
        // This proxy's ports and other destinations go to the stack.
        for dst in [SocketAddrV4::new(ssa, 40001), sa([198, 18, 0, 1], 50001)] {
            let f = Seg::new(backend, dst).frame();
            let r = p.test_run("proxy_ingress", &f).unwrap();
            assert_eq!((r.retval, r.packet), (TC_ACT_OK, f));
        }
        assert_eq!(p.counters().unwrap().get(Counter::PresliceRedirect), 1);
    })
    .unwrap();
}

#[test]
fn translated_packets_go_to_the_veth_peer_only_out_of_listed_devices() {
    if skip_unless_root("translated_packets_go_to_the_veth_peer_only_out_of_listed_devices") {
        return;
    }
    const TC_ACT_REDIRECT: u32 = 7;
    let s = splice();
    // The backend (the client-to-server packets' new destination) is a
    // permanent neighbour on d0.
    let ns = forwarding_veth_ns("peer", "198.18.2.1/24");
    set_neighbour(&ns, &s.backend.ip().to_string(), "02:00:00:00:00:09");
    let d0 = ns.ifindex("d0").unwrap();
    let d1 = ns.ifindex("d1").unwrap();
    ns.run(|| {
        let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
        p.install(&s).unwrap();
        let mut c2s = Seg::new(s.client, s.vip);
        c2s.payload = b"x".to_vec();
        let frame = c2s.frame();
        let mut first = None;
        for (devs, peer) in [(vec![], 0), (vec![d1], 0), (vec![d1, d0], 1), (vec![], 0)] {
            p.set_peer_devices(&devs).unwrap();
            let before = p.counters().unwrap();
            let r = p.test_run("proxy_ingress", &frame).unwrap();
            assert_eq!(r.retval, TC_ACT_REDIRECT);
            assert_eq!(r.packet[..6], [2, 0, 0, 0, 0, 9], "to the backend's MAC");
            assert!(checksums_ok(&r.packet));
            let d = p.counters().unwrap().since(&before);
            assert_eq!(d.get(Counter::Redirected), 1);
            assert_eq!(d.get(Counter::RedirectedPeer), peer, "{devs:?}");
            // splice_seen counts packets; its time stamp is the first one.
            let seen = p.seen(s.id).unwrap().unwrap();
            assert_eq!(*first.get_or_insert(seen.first_ns), seen.first_ns);
        }
        assert!(p.set_peer_devices(&[1, 2, 3, 4, 5]).is_err());
    })
    .unwrap();
}

#[test]
#[allow(clippy::disallowed_methods)] // waits out the kernel-side cache lifetime
fn a_neighbour_change_reaches_spliced_packets_within_the_next_hop_cache_ttl() {
    if skip_unless_root("a_neighbour_change_reaches_spliced_packets_within_the_next_hop_cache_ttl")
    {
        return;
    }
    let s = splice();
    let ns = forwarding_veth_ns("nhc", "198.18.2.1/24");
    let backend = s.backend.ip().to_string();
    let neigh = |mac: &str| set_neighbour(&ns, &backend, mac);
    neigh("02:00:00:00:00:09");
    let mut c2s = Seg::new(s.client, s.vip);
    c2s.payload = b"x".to_vec();
    let frame = c2s.frame();
    let p = ns
        .run(|| {
            let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
            p.install(&s).unwrap();
            for _ in 0..3 {
                let r = p.test_run("proxy_ingress", &frame).unwrap();
                assert_eq!(r.packet[..6], [2, 0, 0, 0, 0, 9]);
            }
            p
        })
        .unwrap();
    neigh("02:00:00:00:00:0a");
    // The cache trusts an entry for 50 ms.
    std::thread::sleep(std::time::Duration::from_millis(60));
    ns.run(|| {
        for _ in 0..3 {
            let r = p.test_run("proxy_ingress", &frame).unwrap();
            assert_eq!(r.packet[..6], [2, 0, 0, 0, 0, 0x0a], "the new MAC");
            assert!(checksums_ok(&r.packet));
        }
        // Without a route nothing is cached either: to the stack.
        assert_eq!(p.counters().unwrap().get(Counter::FibStack), 0);
    })
    .unwrap();
}

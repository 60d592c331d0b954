//! The key agreement check: every row of the shared fixture table
//! (crates/proto/fixtures/translate.txt, produced by the Rust reference
//! `proto::splice::translate`) runs through the BPF object with
//! BPF_PROG_TEST_RUN — both the `splice_test` entry (raw-bytes checksum)
//! and the real `proxy_ingress` (kernel checksum helpers) — and must give
//! byte for byte the expected packet, or the expected slow-path reason with
//! the packet untouched; `proxy_ingress` also as a GSO packet (same bytes,
//! counters in segments). A property test then compares C and Rust on
//! random splices and segments.

mod common;

use common::*;
use ftsplice_bpf::{splice_map, Counter, SplicePlane, SpliceRole, TestRun};
use ftsplice_linux::{skip_unless_root, NetNs};
use ftsplice_proto::splice::fixtures::{self, Expected};
use ftsplice_proto::splice::{
    translate, Direction, Splice, TranslateError, TsDeltas, WindowScales,
};
use proptest::prelude::*;
use std::collections::HashSet;

const TC_ACT_OK: u32 = 0;
const TEST_TRANSLATED: u32 = 0xff;
const ETH: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];

/// Where the BPF programs count a packet the reference refuses.
fn counter_for(e: TranslateError) -> Counter {
    match e {
        TranslateError::Truncated => Counter::SlowTruncated,
        TranslateError::NotIpv4 => Counter::NotIpv4,
        TranslateError::BadIpHeader => Counter::SlowBadIpHeader,
        TranslateError::Fragment => Counter::Fragment,
        TranslateError::NotTcp => Counter::NotTcp,
        TranslateError::BadTcpHeader => Counter::SlowBadTcpHeader,
        TranslateError::BadOption => Counter::SlowBadOption,
        // The programs look splices up by 4-tuple: no match, no splice.
        TranslateError::TupleMismatch => Counter::NoSplice,
        TranslateError::Syn => Counter::SlowSyn,
    }
}

fn framed(ip: &[u8]) -> Vec<u8> {
    let mut f = ETH.to_vec();
    f.extend_from_slice(ip);
    f
}

/// Runs `ip` (an IPv4 packet) through both programs with only the entry for
/// `dir` of `s` installed; returns (splice_test, proxy_ingress, counter
/// deltas of proxy_ingress).
fn run_both(
    p: &mut SplicePlane,
    s: &Splice,
    dir: Direction,
    ip: &[u8],
) -> (TestRun, TestRun, ftsplice_bpf::Counters) {
    let (k, v) = splice_map::entry(s, dir);
    p.insert(k, v).unwrap();
    let frame = framed(ip);
    let raw = p.test_run("splice_test", &frame).unwrap();
    let before = p.counters().unwrap();
    let tc = p.test_run("proxy_ingress", &frame).unwrap();
    let d = p.counters().unwrap().since(&before);
    p.remove(s).unwrap();
    (raw, tc, d)
}

/// Segments the GSO run of each fixture stands for.
const GSO_SEGS: u32 = 3;

/// Runs `ip` through `proxy_ingress` as a GSO packet of [`GSO_SEGS`]
/// segments (the test-run context's `gso_segs`/`gso_size`): the headers of
/// a GSO packet are translated exactly like a single segment's, and count
/// as its segments. (BPF_PROG_TEST_RUN skbs are always CHECKSUM_NONE; the
/// CHECKSUM_PARTIAL update is the kernel helper's, checked end to end by
/// the namespace tests with offloads on.)
fn run_gso(
    p: &mut SplicePlane,
    s: &Splice,
    dir: Direction,
    ip: &[u8],
) -> (TestRun, ftsplice_bpf::Counters) {
    let (k, v) = splice_map::entry(s, dir);
    p.insert(k, v).unwrap();
    let before = p.counters().unwrap();
    let gso = p
        .test_run_gso("proxy_ingress", &framed(ip), GSO_SEGS, 100)
        .unwrap();
    let d = p.counters().unwrap().since(&before);
    p.remove(s).unwrap();
    (gso, d)
}

#[test]
fn bpf_agrees_with_the_rust_reference_on_every_fixture() {
    if skip_unless_root("bpf_agrees_with_the_rust_reference_on_every_fixture") {
        return;
    }
    let table = fixtures::table().expect("fixture table parses");
    assert!(
        table.len() >= 30,
        "fixture table too small: {}",
        table.len()
    );
    let ns = NetNs::new("fix").unwrap();
    let covered = ns
        .run(|| {
            let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
            let mut covered = HashSet::new();
            for f in &table {
                if f.input.len() < 20 {
                    // BPF_PROG_TEST_RUN refuses frames whose IPv4 header is
                    // cut short (EINVAL); check that, and move on.
                    let err = p.test_run("splice_test", &framed(&f.input)).unwrap_err();
                    assert!(err.to_string().contains("test_run"), "{}: {err}", f.name);
                    continue;
                }
                let (raw, tc, d) = run_both(&mut p, &f.splice, f.dir, &f.input);
                let (gso, gso_d) = run_gso(&mut p, &f.splice, f.dir, &f.input);
                assert_eq!(
                    (gso.retval, &gso.packet),
                    (tc.retval, &tc.packet),
                    "{}: a GSO packet is handled like a single segment",
                    f.name
                );
                for (i, n) in d.0.iter().enumerate() {
                    assert_eq!(
                        gso_d.0[i],
                        n * u64::from(GSO_SEGS),
                        "{}: counter {i} counts segments",
                        f.name
                    );
                }
                match &f.expected {
                    Expected::Packet(want) => {
                        assert_eq!(
                            raw.retval, TEST_TRANSLATED,
                            "{}: splice_test verdict",
                            f.name
                        );
                        assert_eq!(raw.packet[..14], ETH, "{}", f.name);
                        assert!(
                            raw.packet[14..] == want[..],
                            "{}: splice_test output differs\n got  {}\n want {}",
                            f.name,
                            fixtures::to_hex(&raw.packet[14..]),
                            fixtures::to_hex(want)
                        );
                        assert_eq!(tc.retval, TC_ACT_OK, "{}: proxy_ingress verdict", f.name);
                        assert!(
                            tc.packet[14..] == want[..],
                            "{}: proxy_ingress output differs\n got  {}\n want {}",
                            f.name,
                            fixtures::to_hex(&tc.packet[14..]),
                            fixtures::to_hex(want)
                        );
                        assert_eq!(d.get(Counter::Translated), 1, "{}", f.name);
                        covered.insert("translated".to_string());
                    }
                    Expected::Error(e) => {
                        let c = counter_for(*e);
                        assert_eq!(raw.retval, c as u32, "{}: splice_test reason", f.name);
                        assert_eq!(tc.retval, TC_ACT_OK, "{}: to the stack", f.name);
                        assert_eq!(tc.packet, framed(&f.input), "{}: packet modified", f.name);
                        assert_eq!(d.get(c), 1, "{}: counter {c:?} in {d:?}", f.name);
                        assert_eq!(d.get(Counter::Translated), 0, "{}", f.name);
                        covered.insert(e.code().to_string());
                    }
                }
            }
            covered
        })
        .unwrap();
    // The table exercises success and every refusal the reference knows.
    for e in TranslateError::ALL {
        assert!(covered.contains(e.code()), "no fixture for {}", e.code());
    }
    assert!(covered.contains("translated"));
}

fn arb_options() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(vec![1u8]),
            (any::<u32>(), any::<u32>()).prop_map(|(v, e)| {
                let mut o = vec![8, 10];
                o.extend_from_slice(&v.to_be_bytes());
                o.extend_from_slice(&e.to_be_bytes());
                o
            }),
            prop::collection::vec(any::<u32>(), 1..=8).prop_map(|edges| {
                let n = edges.len() / 2 * 2;
                let mut o = vec![5, (2 + 4 * n) as u8];
                for e in &edges[..n] {
                    o.extend_from_slice(&e.to_be_bytes());
                }
                o
            }),
            Just(vec![2, 4, 5, 0xb4]),
            Just(vec![3, 3, 7]),
            Just(vec![4, 2]),
            (any::<u8>(), 0u8..6).prop_map(|(k, l)| {
                let mut o = vec![k, l];
                o.extend(std::iter::repeat_n(0xab, usize::from(l.saturating_sub(2))));
                o
            }),
        ],
        0..6,
    )
    .prop_map(|parts| {
        let mut o: Vec<u8> = parts.concat();
        o.truncate(40);
        while o.len() % 4 != 0 {
            o.push(0);
        }
        o
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// C and Rust agree byte for byte (or on the refusal) on random splices
    /// and segments, including malformed options and odd alignments.
    #[test]
    fn bpf_agrees_with_the_rust_reference_on_random_packets(
        seq_delta in any::<u32>(), ack_delta in any::<u32>(),
        c2s in any::<u32>(), s2c in any::<u32>(), ts_on in any::<bool>(), sack_on in any::<bool>(),
        wc in 0u8..16, wv in 0u8..16, ws in 0u8..16, wb in 0u8..16,
        packets in prop::collection::vec(
            (any::<bool>(), any::<u32>(), any::<u32>(), any::<u16>(), any::<u8>(),
             arb_options(), prop::collection::vec(any::<u8>(), 0..24)),
            1..12),
    ) {
        if !ftsplice_linux::is_root() {
            return Ok(());
        }
        let mut s = fixtures::table().unwrap()[0].splice.clone();
        s.seq_delta = seq_delta;
        s.ack_delta = ack_delta;
        s.ts = ts_on.then_some(TsDeltas { c2s, s2c });
        s.sack_ok = sack_on;
        s.wscale = WindowScales { client: wc, vip: wv, ssa: ws, backend: wb };
        let ns = NetNs::new("pfx").unwrap();
        let results = ns.run(|| {
            let mut p = SplicePlane::load(SpliceRole::Proxy).unwrap();
            packets.iter().map(|(c2s_dir, seq, ack, window, flags, options, payload)| {
                let dir = if *c2s_dir { Direction::ClientToServer } else { Direction::ServerToClient };
                let (src, dst) = s.incoming_tuple(dir);
                let mut seg = Seg::new(src, dst);
                seg.seq = *seq;
                seg.ack = *ack;
                seg.window = *window;
                seg.flags = *flags;
                seg.options = options.clone();
                seg.payload = payload.clone();
                let ip = seg.frame()[ETH_LEN..].to_vec();
                let mut want = ip.clone();
                let rust = translate(&s, dir, &mut want);
                let (raw, tc, _) = run_both(&mut p, &s, dir, &ip);
                (ip, rust.map(|_| want), raw, tc)
            }).collect::<Vec<_>>()
        }).unwrap();
        for (ip, rust, raw, tc) in results {
            match rust {
                Ok(want) => {
                    prop_assert_eq!(raw.retval, TEST_TRANSLATED);
                    prop_assert_eq!(&raw.packet[14..], &want[..]);
                    prop_assert_eq!(&tc.packet[14..], &want[..]);
                }
                Err(e) => {
                    prop_assert_eq!(raw.retval, counter_for(e) as u32);
                    prop_assert_eq!(&tc.packet[14..], &ip[..]);
                }
            }
        }
    }
}

//! Property tests: transfers survive arbitrary loss patterns (including
//! handshake and FIN losses) and receivers that renege on their SACKs, and
//! arbitrary segments thrown at an established connection never panic and
//! never corrupt its stream.

mod harness;

use core::net::{Ipv4Addr, SocketAddrV4};

use ftsplice_proto::Instant;
use ftsplice_tcp::{Config, Connection, Flags, SackBlock, Segment, SeqNum, TcpOptions, Timestamp};
use harness::{run, BenchCfg, LinkCfg};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_loss_pattern_delivers_everything(
        up_drops in proptest::collection::vec(0u64..400, 0..40),
        down_drops in proptest::collection::vec(0u64..400, 0..40),
        reorder in 0.0f64..0.3,
        seed in any::<u64>(),
        sack in any::<bool>(),
        timestamps in any::<bool>(),
    ) {
        let mut drop_nth: Vec<(bool, u64)> = up_drops.into_iter().map(|i| (true, i)).collect();
        drop_nth.extend(down_drops.into_iter().map(|i| (false, i)));
        let client = Config { sack, timestamps, ..Config::default() };
        let cfg = BenchCfg {
            seed,
            up: 200_000,
            down: 150_000,
            link: LinkCfg { drop_nth, reorder, ..LinkCfg::default() },
            client,
            ..BenchCfg::default()
        };
        let out = run(&cfg);
        out.assert_complete(cfg.up, cfg.down);
    }
}

fn addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), port)
}

/// An established server-side connection and the client's ISN + 1.
fn established() -> (Connection, u32) {
    let mut c = Connection::connect(Instant::ZERO, addr(1), addr(2), 77, 0, Config::default());
    let syn = c.poll_transmit(Instant::ZERO).expect("syn");
    let mut s = Connection::accept_syn(
        Instant::ZERO,
        addr(2),
        addr(1),
        &syn,
        500,
        0,
        Config::default(),
    )
    .expect("accept");
    let synack = s.poll_transmit(Instant::ZERO).expect("synack");
    c.handle_segment(Instant::from_millis(1), &synack);
    let ack = c.poll_transmit(Instant::from_millis(1)).expect("ack");
    s.handle_segment(Instant::from_millis(1), &ack);
    (s, 78)
}

fn arb_segment(base: u32) -> impl Strategy<Value = Segment> {
    (
        -70_000i64..300_000,
        -70_000i64..70_000,
        0u8..0x20,
        any::<u16>(),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..4),
        proptest::option::of(any::<(u32, u32)>()),
        0usize..3000,
    )
        .prop_map(move |(dseq, dack, flags, window, sack, ts, len)| Segment {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum(base.wrapping_add(dseq as u32)),
            ack: SeqNum(501u32.wrapping_add(dack as u32)),
            flags: Flags(flags),
            window,
            options: TcpOptions {
                sack: sack
                    .into_iter()
                    .map(|(a, b)| SackBlock {
                        start: SeqNum(a),
                        end: SeqNum(b),
                    })
                    .collect(),
                timestamp: ts.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
                ..TcpOptions::default()
            },
            // Bytes equal to their offset from the client's first byte,
            // so anything delivered can be checked.
            payload: (0..len)
                .map(|k| (dseq + k as i64).rem_euclid(251) as u8)
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_segments_never_panic_or_corrupt(
        segs in proptest::collection::vec(arb_segment(78), 1..60),
    ) {
        let (mut s, _) = established();
        let mut now = Instant::from_millis(2);
        let mut got = 0u64;
        let mut buf = [0u8; 4096];
        for seg in &segs {
            now += core::time::Duration::from_millis(1);
            s.handle_segment(now, seg);
            while s.poll_transmit(now).is_some() {}
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            while s.poll_event().is_some() {}
            loop {
                let n = s.recv(&mut buf);
                if n == 0 {
                    break;
                }
                for b in &buf[..n] {
                    prop_assert_eq!(*b, (got % 251) as u8);
                    got += 1;
                }
            }
        }
    }
}

/// A receiver model that SACKs what it holds beyond its cumulative ACK
/// and, after the chosen data segments, reneges (RFC 2018 §8: forgets all
/// of it). Returns the bytes delivered in order, checked against the
/// sender's pattern.
fn reneging_transfer(total: usize, drops: &[u64], reneges: &[u64]) -> Result<usize, String> {
    let cfg = Config {
        timestamps: false,
        ..Config::default()
    };
    let mut c = Connection::connect(Instant::ZERO, addr(1), addr(2), 77, 0, cfg.clone());
    let syn = c.poll_transmit(Instant::ZERO).ok_or("no syn")?;
    let mut s = Connection::accept_syn(Instant::ZERO, addr(2), addr(1), &syn, 500, 0, cfg)
        .map_err(|e| format!("not accepted: {e:?}"))?;
    let synack = s.poll_transmit(Instant::ZERO).ok_or("no synack")?;
    let mut now = Instant::from_millis(1);
    c.handle_segment(now, &synack);
    while c.poll_transmit(now).is_some() {}
    let data: Vec<u8> = (0..total).map(|k| (k % 251) as u8).collect();
    let mut queued = c.send(&data);
    // Offsets from the client's first byte: delivered in order, and the
    // out-of-order ranges held [start, end).
    let mut delivered = 0usize;
    let mut held: Vec<(usize, usize)> = Vec::new();
    let mut nth = 0u64;
    let ack = |delivered: usize, held: &[(usize, usize)]| Segment {
        src_port: 2,
        dst_port: 1,
        seq: SeqNum(501),
        ack: SeqNum(78u32.wrapping_add(delivered as u32)),
        flags: Flags::ACK,
        window: u16::MAX,
        options: TcpOptions {
            sack: held
                .iter()
                .take(3)
                .map(|&(a, b)| SackBlock {
                    start: SeqNum(78u32.wrapping_add(a as u32)),
                    end: SeqNum(78u32.wrapping_add(b as u32)),
                })
                .collect(),
            ..TcpOptions::default()
        },
        payload: Vec::new(),
    };
    for _ in 0..200_000 {
        if delivered == total {
            return Ok(delivered);
        }
        let segs: Vec<Segment> = std::iter::from_fn(|| c.poll_transmit(now)).collect();
        if segs.is_empty() {
            let Some(t) = c.poll_timeout() else {
                return Ok(delivered);
            };
            now = now.max(t);
            c.handle_timeout(now);
            continue;
        }
        let mut acks = Vec::new();
        for seg in segs.iter().filter(|s| !s.payload.is_empty()) {
            nth += 1;
            if drops.contains(&nth) {
                continue;
            }
            let start = seg.seq.0.wrapping_sub(78) as usize;
            let end = start + seg.payload.len();
            if seg.payload[..] != data[start..end] {
                return Err(format!("bytes {start}..{end} corrupted"));
            }
            held.push((start, end));
            held.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for &(a, b) in &held {
                if a <= delivered {
                    delivered = delivered.max(b);
                } else if let Some(last) = merged.last_mut().filter(|l| a <= l.1) {
                    last.1 = last.1.max(b);
                } else {
                    merged.push((a, b));
                }
            }
            held = merged.into_iter().filter(|r| r.1 > delivered).collect();
            if reneges.contains(&nth) {
                held.clear();
            }
            acks.push(ack(delivered, &held));
        }
        now += core::time::Duration::from_millis(1);
        for a in &acks {
            c.handle_segment(now, a);
        }
        if queued < total {
            queued += c.send(&data[queued..]);
        }
    }
    Err(format!("no end after 200000 rounds, {delivered} delivered"))
}

#[test]
fn reneging_after_a_hole_still_delivers_everything() {
    // Segment 2 lost, 3..6 SACKed, then forgotten after segment 6.
    assert_eq!(reneging_transfer(20 * 1448, &[2], &[6]), Ok(20 * 1448));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn reneging_receiver_gets_everything(
        drops in proptest::collection::vec(1u64..120, 0..12),
        reneges in proptest::collection::vec(1u64..120, 0..6),
    ) {
        let total = 60 * 1448;
        prop_assert_eq!(reneging_transfer(total, &drops, &reneges), Ok(total));
    }
}

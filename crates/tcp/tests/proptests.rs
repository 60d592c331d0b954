//! Property tests: transfers survive arbitrary loss patterns (including
//! handshake and FIN losses), and arbitrary segments thrown at an
//! established connection never panic and never corrupt its stream.

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

//! Unit tests of the connection state machine with hand-fed segments.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use ftsplice_proto::Instant;

use super::*;
use crate::options::{SackBlocks, Timestamp};

fn a(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port)
}

fn client() -> Connection {
    Connection::connect(Instant::ZERO, a(1000), a(80), 100, 7, Config::default())
}

#[test]
fn active_open_sends_syn_with_linux_options() {
    let mut c = client();
    let syn = c.poll_transmit(Instant::ZERO).expect("syn");
    assert_eq!(syn.flags, Flags::SYN);
    assert_eq!(syn.seq, SeqNum(100));
    assert_eq!(syn.options.mss, Some(1460));
    assert_eq!(syn.options.window_scale, Some(3));
    assert!(syn.options.sack_permitted);
    assert_eq!(
        syn.options.timestamp,
        Some(Timestamp { tsval: 7, tsecr: 0 })
    );
    assert!(c.poll_transmit(Instant::ZERO).is_none());
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(1)));
}

#[test]
fn syn_is_retransmitted_with_backoff_then_times_out() {
    let mut c = client();
    c.poll_transmit(Instant::ZERO).expect("syn");
    let mut now = Instant::ZERO;
    let mut gaps = Vec::new();
    while let Some(t) = c.poll_timeout() {
        gaps.push((t - now).as_secs());
        now = t;
        c.handle_timeout(now);
        while c.poll_transmit(now).is_some() {}
    }
    assert_eq!(gaps, vec![1, 2, 4, 8, 16, 32, 64]);
    assert_eq!(c.poll_event(), Some(Event::TimedOut));
    assert_eq!(c.poll_event(), Some(Event::Closed));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn handshake_and_repair_state() {
    let mut c = client();
    let syn = c.poll_transmit(Instant::ZERO).unwrap();
    let t1 = Instant::from_millis(10);
    let mut s = Connection::accept_syn(t1, a(80), a(1000), &syn, 5000, 900, Config::default())
        .expect("accept");
    let synack = s.poll_transmit(t1).unwrap();
    assert_eq!(synack.flags, Flags::SYN | Flags::ACK);
    assert_eq!(synack.ack, SeqNum(101));
    assert_eq!(
        synack.options.timestamp,
        Some(Timestamp {
            tsval: 910,
            tsecr: 7
        })
    );
    let t2 = Instant::from_millis(20);
    c.handle_segment(t2, &synack);
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.poll_event(), Some(Event::Connected));
    assert_eq!(c.srtt(), Some(Duration::from_millis(20)));
    let ack = c.poll_transmit(t2).unwrap();
    assert_eq!(ack.flags, Flags::ACK);
    s.handle_segment(Instant::from_millis(30), &ack);
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.poll_event(), Some(Event::Connected));

    let r = c.repair_state();
    assert_eq!(r.iss, SeqNum(100));
    assert_eq!(r.irs, SeqNum(5000));
    assert_eq!(r.snd_una, SeqNum(101));
    assert_eq!(r.snd_nxt, SeqNum(101));
    assert_eq!(r.rcv_nxt, SeqNum(5001));
    assert_eq!((r.snd_wscale, r.rcv_wscale), (3, 3));
    assert!(r.sack_ok);
    assert_eq!(r.send_mss, 1448);
    let ts = r.timestamps.expect("ts");
    assert_eq!(ts.ts_recent, 910);
    assert_eq!(ts.offset, 7);
    assert!(r.send_queue_empty && r.recv_queue_empty);

    c.freeze();
    assert_eq!(c.send(b"x"), 0);
    assert!(c.poll_transmit(t2).is_none());
    assert!(c.poll_timeout().is_none());
    assert_eq!(c.repair_state(), r);
}

#[test]
fn bad_synack_ack_is_answered_with_reset() {
    let mut c = client();
    c.poll_transmit(Instant::ZERO).unwrap();
    let bogus = Segment::<Vec<u8>> {
        src_port: 80,
        dst_port: 1000,
        seq: SeqNum(1),
        ack: SeqNum(5),
        flags: Flags::SYN | Flags::ACK,
        ..Default::default()
    };
    c.handle_segment(Instant::ZERO, &bogus);
    let r = c.poll_transmit(Instant::ZERO).expect("rst");
    assert_eq!(r.flags, Flags::RST);
    assert_eq!(r.seq, SeqNum(5));
    assert_eq!(c.state(), State::SynSent);
    assert_eq!(c.stats().dropped_bad_ack, 1);
}

/// A client and server past the handshake (at 20 ms).
fn pair() -> (Connection, Connection, Instant) {
    let mut c = client();
    let syn = c.poll_transmit(Instant::ZERO).unwrap();
    let t = Instant::from_millis(10);
    let mut s =
        Connection::accept_syn(t, a(80), a(1000), &syn, 5000, 900, Config::default()).unwrap();
    let synack = s.poll_transmit(t).unwrap();
    let t = Instant::from_millis(20);
    c.handle_segment(t, &synack);
    let ack = c.poll_transmit(t).unwrap();
    s.handle_segment(t, &ack);
    assert_eq!(s.state(), State::Established);
    while c.poll_event().is_some() {}
    while s.poll_event().is_some() {}
    (c, s, t)
}

#[test]
fn transmit_with_borrowed_payload_matches_owned_segments() {
    let (mut c1, _, t) = pair();
    let (mut c2, _, _) = pair();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c1.send(&data), c2.send(&data));
    let mut now = t;
    // New data, then the retransmission after a timeout.
    for _ in 0..2 {
        let mut n = 0;
        loop {
            let owned = c1.poll_transmit(now);
            let borrowed = c2.poll_transmit_with(now, |seg| seg.to_owned_segment());
            assert_eq!(owned, borrowed);
            if owned.is_none() {
                break;
            }
            n += 1;
        }
        assert!(n > 0);
        now = c1.poll_timeout().expect("rto");
        assert_eq!(c2.poll_timeout(), Some(now));
        c1.handle_timeout(now);
        c2.handle_timeout(now);
    }
}

#[test]
fn duplicate_data_is_reported_by_dsack() {
    let (mut c, mut s, t) = pair();
    assert_eq!(c.send(&[7u8; 3000]), 3000);
    let d1 = c.poll_transmit(t).unwrap();
    let d2 = c.poll_transmit(t).unwrap();
    let d3 = c.poll_transmit(t).unwrap();
    assert_eq!(
        (d1.payload.len(), d2.payload.len(), d3.payload.len()),
        (1448, 1448, 104)
    );
    // d2 is lost: d3 arrives out of order and is SACKed at once.
    s.handle_segment(t, &d1);
    s.handle_segment(t, &d3);
    let ack = s.poll_transmit(t).unwrap();
    assert_eq!(ack.ack, d1.seq + 1448);
    assert_eq!(ack.options.sack.as_slice().len(), 1);
    assert_eq!(ack.options.sack.as_slice()[0].start, d3.seq);
    // d1 again: a DSACK for it first, then the out-of-order block.
    s.handle_segment(t, &d1);
    let ack = s.poll_transmit(t).unwrap();
    let blocks = ack.options.sack.as_slice();
    assert_eq!(blocks.len(), 2);
    assert_eq!((blocks[0].start, blocks[0].end), (d1.seq, d1.seq + 1448));
    assert_eq!(blocks[1].start, d3.seq);
    assert_eq!(s.stats().dsacks_sent, 1);
    // The hole fills: everything readable, ACKed at once.
    s.handle_segment(t, &d2);
    let ack = s.poll_transmit(t).unwrap();
    assert_eq!(ack.ack, d3.seq + 104);
    assert!(ack.options.sack.is_empty());
    let mut buf = [0u8; 4000];
    assert_eq!(s.recv(&mut buf), 3000);
    assert_eq!(s.poll_event(), Some(Event::DataReadable));
}

#[test]
fn rack_marks_loss_and_fast_retransmits() {
    let (mut c, mut s, t) = pair();
    assert_eq!(c.send(&[1u8; 10 * 1448]), 10 * 1448);
    let segs: Vec<_> = std::iter::from_fn(|| c.poll_transmit(t)).collect();
    assert_eq!(segs.len(), 10);
    let t2 = t + Duration::from_millis(10);
    // Segment 2 is lost; the others arrive.
    let mut acks = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        if i != 2 {
            s.handle_segment(t2, seg);
            acks.extend(std::iter::from_fn(|| s.poll_transmit(t2)));
        }
    }
    let t3 = t2 + Duration::from_millis(10);
    for ack in &acks {
        c.handle_segment(t3, ack);
    }
    assert!(c.in_recovery());
    let rtx = c.poll_transmit(t3).expect("fast retransmit");
    assert_eq!(rtx.seq, segs[2].seq);
    assert_eq!(c.stats().fast_retransmits, 1);
    assert_eq!(c.stats().rto_count, 0);
    s.handle_segment(t3, &rtx);
    let ack = s.poll_transmit(t3).unwrap();
    assert_eq!(ack.ack, segs[9].seq + 1448);
    c.handle_segment(t3 + Duration::from_millis(10), &ack);
    assert!(!c.in_recovery());
    // CUBIC: 0.7 of the window before the loss.
    assert_eq!(c.cwnd(), c.ssthresh());
    assert!(
        c.cwnd() >= 7 * 1448 && c.cwnd() <= 14 * 1448,
        "{}",
        c.cwnd()
    );
}

#[test]
fn reordering_is_undone_by_dsack() {
    let (mut c, mut s, t) = pair();
    assert_eq!(c.send(&[1u8; 10 * 1448]), 10 * 1448);
    let segs: Vec<_> = std::iter::from_fn(|| c.poll_transmit(t)).collect();
    let t2 = t + Duration::from_millis(10);
    let mut acks = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        if i != 2 {
            s.handle_segment(t2, seg);
            acks.extend(std::iter::from_fn(|| s.poll_transmit(t2)));
        }
    }
    // Segment 2 was only delayed.
    s.handle_segment(t2, &segs[2]);
    acks.extend(std::iter::from_fn(|| s.poll_transmit(t2)));
    let t3 = t2 + Duration::from_millis(10);
    let cwnd_before = c.cwnd();
    for ack in &acks[..acks.len() - 1] {
        c.handle_segment(t3, ack);
    }
    let rtx = c.poll_transmit(t3).expect("spurious retransmit");
    assert_eq!(rtx.seq, segs[2].seq);
    // The timestamps are equal (same ms), so only the DSACK can tell.
    c.handle_segment(t3, &acks[acks.len() - 1]);
    s.handle_segment(t3, &rtx);
    let dsack = s.poll_transmit(t3).unwrap();
    assert_eq!(dsack.options.sack.as_slice()[0].start, segs[2].seq);
    c.handle_segment(t3 + Duration::from_millis(10), &dsack);
    let st = c.stats();
    assert_eq!((st.dsacks_received, st.undos), (1, 1));
    assert!(st.reordering_seen);
    assert!(c.cwnd() >= cwnd_before, "{} < {cwnd_before}", c.cwnd());
}

#[test]
fn close_during_handshake_sends_fin_after_it() {
    let mut c = client();
    let syn = c.poll_transmit(Instant::ZERO).unwrap();
    let mut s = Connection::accept_syn(
        Instant::ZERO,
        a(80),
        a(1000),
        &syn,
        5000,
        0,
        Config::default(),
    )
    .unwrap();
    assert_eq!(s.send(b"bye"), 3);
    s.close();
    assert_eq!(s.state(), State::SynReceived);
    let synack = s.poll_transmit(Instant::ZERO).unwrap();
    assert!(
        s.poll_transmit(Instant::ZERO).is_none(),
        "nothing before the ACK"
    );
    c.handle_segment(Instant::ZERO, &synack);
    let ack = c.poll_transmit(Instant::ZERO).unwrap();
    s.handle_segment(Instant::ZERO, &ack);
    assert_eq!(s.state(), State::FinWait1);
    let data = s.poll_transmit(Instant::ZERO).unwrap();
    assert_eq!(data.payload, b"bye");
    assert!(data.flags.fin());
    c.handle_segment(Instant::ZERO, &data);
    assert_eq!(c.state(), State::CloseWait);
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf), 3);
    c.close();
    while let Some(seg) = c.poll_transmit(Instant::ZERO) {
        s.handle_segment(Instant::ZERO, &seg);
    }
    assert_eq!(s.state(), State::TimeWait);
    while let Some(seg) = s.poll_transmit(Instant::ZERO) {
        c.handle_segment(Instant::ZERO, &seg);
    }
    assert_eq!(c.state(), State::Closed);
    assert_eq!(s.poll_timeout(), Some(Instant::from_secs(60)));
    s.handle_timeout(Instant::from_secs(60));
    assert_eq!(s.state(), State::Closed);
    let evs: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(evs.last(), Some(&Event::Closed));
}

#[test]
fn reset_in_window_closes_and_out_of_window_is_challenged() {
    let (mut c, mut s, t) = pair();
    let rst = |seq| Segment::<Vec<u8>> {
        src_port: 80,
        dst_port: 1000,
        seq,
        flags: Flags::RST,
        ..Default::default()
    };
    let rcv_nxt = c.repair_state().rcv_nxt;
    c.handle_segment(t, &rst(rcv_nxt + 100));
    let challenge = c.poll_transmit(t).expect("challenge ack");
    assert_eq!(challenge.flags, Flags::ACK);
    assert_eq!(c.state(), State::Established);
    c.handle_segment(t, &rst(rcv_nxt));
    assert_eq!(c.poll_event(), Some(Event::Reset));
    assert_eq!(c.poll_event(), Some(Event::Closed));
    assert_eq!(c.state(), State::Closed);
    // Abort sends a reset the peer accepts.
    s.abort();
    let r = s.poll_transmit(t).expect("rst");
    assert!(r.flags.rst());
}

#[test]
fn zero_window_is_probed_and_reopens() {
    let cfg = Config {
        recv_buffer: 2 * 1448,
        ..Config::default()
    };
    let mut c = Connection::connect(Instant::ZERO, a(1000), a(80), 1, 0, Config::default());
    let syn = c.poll_transmit(Instant::ZERO).unwrap();
    let mut s = Connection::accept_syn(Instant::ZERO, a(80), a(1000), &syn, 9, 0, cfg).unwrap();
    let synack = s.poll_transmit(Instant::ZERO).unwrap();
    let t = Instant::from_millis(10);
    c.handle_segment(t, &synack);
    s.handle_segment(t, &c.poll_transmit(t).unwrap());
    assert_eq!(c.send(&[5u8; 20_000]), 20_000);
    // Fill the two-segment window; the server's app does not read.
    let mut now = t;
    for _ in 0..20 {
        now += Duration::from_millis(5);
        let segs: Vec<_> = std::iter::from_fn(|| c.poll_transmit(now)).collect();
        for seg in &segs {
            s.handle_segment(now, seg);
        }
        let acks: Vec<_> = std::iter::from_fn(|| s.poll_transmit(now)).collect();
        for ack in &acks {
            c.handle_segment(now, ack);
        }
        if let Some(tm) = s.poll_timeout().filter(|&tm| tm <= now) {
            s.handle_timeout(tm);
        }
    }
    assert_eq!(s.recv_available(), 2 * 1448);
    assert_eq!(c.repair_state().snd_wnd, 0);
    // The persist timer fires and probes.
    let probe_at = c.poll_timeout().expect("persist timer");
    c.handle_timeout(probe_at);
    let probe = c.poll_transmit(probe_at).expect("probe");
    assert!(probe.payload.is_empty());
    assert_eq!(c.stats().window_probes, 1);
    s.handle_segment(probe_at, &probe);
    let reply = s.poll_transmit(probe_at).expect("probe answered");
    assert_eq!(reply.window, 0);
    // The app reads: a window update reopens the flow.
    let mut buf = [0u8; 4096];
    assert_eq!(s.recv(&mut buf), 2 * 1448);
    let update = s.poll_transmit(probe_at).expect("window update");
    assert!(update.window > 0);
    c.handle_segment(probe_at, &update);
    let more = c.poll_transmit(probe_at).expect("data flows again");
    assert!(!more.payload.is_empty());
}

/// The receiver SACKs `d3`, then drops it (reneging, RFC 2018 §8): the ACK
/// reaches `d3` and everything above SND.UNA is marked SACKed. The
/// retransmission timeout must forget the SACKs and resend from SND.UNA.
#[test]
fn rto_forgets_the_sacks_of_a_reneging_receiver() {
    let (mut c, mut s, t) = pair();
    assert_eq!(c.send(&[3u8; 3000]), 3000);
    let d1 = c.poll_transmit(t).unwrap();
    let d2 = c.poll_transmit(t).unwrap();
    let d3 = c.poll_transmit(t).unwrap();
    s.handle_segment(t, &d1);
    s.handle_segment(t, &d3);
    let sacking = s.poll_transmit(t).unwrap();
    assert_eq!(sacking.ack, d2.seq);
    assert_eq!(sacking.options.sack.as_slice()[0].start, d3.seq);
    let t2 = t + Duration::from_millis(10);
    c.handle_segment(t2, &sacking);
    // d2 arrives, d3 is gone: the receiver acks up to d3 with no SACK.
    let mut reneged = sacking.clone();
    reneged.ack = d3.seq;
    reneged.options.sack = SackBlocks::new();
    let t3 = t2 + Duration::from_millis(10);
    c.handle_segment(t3, &reneged);
    while c.poll_transmit(t3).is_some() {}
    let mut resent = None;
    for _ in 0..3 {
        let Some(now) = c.poll_timeout() else { break };
        c.handle_timeout(now);
        if let Some(seg) = c.poll_transmit(now).filter(|s| !s.payload.is_empty()) {
            resent = Some(seg);
            break;
        }
    }
    let rtx = resent.expect("the reneged segment is retransmitted");
    assert_eq!((rtx.seq, rtx.payload.len()), (d3.seq, 104));
    assert!(c.stats().rto_count >= 1);
}

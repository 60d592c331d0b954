//! Unit tests of the connection state machine with hand-fed segments.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use ftsplice_proto::Instant;

use super::*;
use crate::options::Timestamp;

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

//! The logger over a webmail-like connection: events, trimming, memory
//! caps, failure detection and the hand-over to recovery.

use std::time::Duration;

use super::*;
use crate::fixtures::{ranges, table, WEBMAIL};
use crate::log::Withheld;
use crate::recovery::Action;
use Direction::{ClientToServer as C2S, ServerToClient as S2C};

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn logger() -> Logger {
    let mut l = Logger::new(ms(0), LoggerConfig::default(), table());
    l.open(1);
    l
}

fn events(l: &mut Logger) -> Vec<LoggerEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

/// Runs exchanges `n` (0-based) through the logger at 10 ms per step, with
/// the receivers acking everything; returns the time after.
fn exchange(l: &mut Logger, i: usize, t: u64) -> u64 {
    let (rq, rs) = ranges(i);
    let a = l.on_segment(ms(t), 1, C2S, rq.start, WEBMAIL[i].req);
    assert_eq!((a.forward, a.withheld), (rq.clone(), None));
    l.on_ack(1, C2S, rq.end);
    let a = l.on_segment(ms(t + 10), 1, S2C, rs.start, WEBMAIL[i].resp);
    assert_eq!(a.forward, rs.clone());
    l.on_ack(1, S2C, rs.end);
    t + 20
}

#[test]
fn responses_logged_are_announced_with_tags() {
    let mut l = logger();
    let mut t = 0;
    for i in 0..3 {
        t = exchange(&mut l, i, t);
    }
    let ev = events(&mut l);
    let txs: Vec<_> = ev
        .iter()
        .map(|e| match e {
            LoggerEvent::ResponseLogged { tx, tags, .. } => (*tx, tags.read_only),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(txs, [(1, true), (2, false), (3, true)]);
    assert_eq!(l.transactions(1).unwrap().last_complete(), 3);
}

#[test]
fn bytes_are_kept_until_acked_and_not_needed_for_replay() {
    let mut l = logger();
    let mut t = 0;
    for i in 0..4 {
        t = exchange(&mut l, i, t);
    }
    // Everything acked; responses of complete transactions are released,
    // but requests from the first update transaction after T_S = 0 (the
    // login POST, transaction 2) are kept for replay.
    let log = l.conn_log(1).unwrap();
    assert_eq!(log.base(S2C), ranges(3).1.end);
    assert_eq!(log.base(C2S), ranges(1).0.start);
    assert_eq!(l.held(), (ranges(3).0.end - ranges(1).0.start) as usize);
    // The alternate applied through 2: the next update is 4 (send).
    l.on_state_applied(ms(t), 1, 2);
    assert_eq!(l.conn_log(1).unwrap().base(C2S), ranges(3).0.start);
    assert_eq!(
        l.transactions(1)
            .unwrap()
            .transactions()
            .next()
            .unwrap()
            .num,
        3
    );
    l.on_state_applied(ms(t), 1, 4);
    assert_eq!(l.held(), 0);
    l.close(1);
    assert_eq!(l.conns().count(), 0);
}

#[test]
fn full_log_withholds_until_state_is_applied() {
    let cfg = LoggerConfig {
        limits: LogLimits {
            per_conn: 140,
            global: 1 << 20,
        },
        ..LoggerConfig::default()
    };
    let mut l = Logger::new(ms(0), cfg, table());
    l.open(1);
    // Read-only transaction 1 is released as soon as it is acked; the login
    // POST's request (71 bytes) stays for replay.
    let t = exchange(&mut l, 0, 0);
    assert_eq!(l.held(), 0);
    let t = exchange(&mut l, 1, t);
    assert_eq!(
        l.held(),
        ranges(1).0.end as usize - ranges(1).0.start as usize
    );
    let (rq3, rs3) = ranges(2);
    assert_eq!(
        l.on_segment(ms(t), 1, C2S, rq3.start, WEBMAIL[2].req)
            .forward,
        rq3
    );
    // Transaction 3's response does not fit: 30 bytes logged and forwarded.
    let a = l.on_segment(ms(t + 1), 1, S2C, rs3.start, WEBMAIL[2].resp);
    assert_eq!(
        (a.forward, a.withheld),
        (rs3.start..rs3.start + 30, Some(Withheld::ConnFull))
    );
    l.on_ack(1, S2C, rs3.start + 30);
    let retx = &WEBMAIL[2].resp[30..];
    assert!(l
        .on_segment(ms(t + 2), 1, S2C, rs3.start + 30, retx)
        .forward
        .is_empty());
    // The alternate applied transaction 2: its request is freed, the
    // retransmission goes through.
    l.on_state_applied(ms(t + 3), 1, 2);
    let a = l.on_segment(ms(t + 4), 1, S2C, rs3.start + 30, retx);
    assert_eq!((a.forward.end, a.withheld), (rs3.end, None));
    let stats = l.conn_log(1).unwrap().stats();
    assert_eq!(stats.withheld_conn_full, 2);
}

#[test]
fn garbage_makes_the_connection_not_recoverable() {
    let mut l = logger();
    l.on_segment(ms(0), 1, C2S, 0, b"\x16\x03\x01 TLS hello\r\n\r\n");
    assert!(matches!(
        events(&mut l)[..],
        [LoggerEvent::NotRecoverable { conn: 1, .. }]
    ));
    let mut r = l.recover(ms(1), 1).unwrap();
    assert!(matches!(r.poll_action(), Some(Action::ResetClient(_))));
}

#[test]
fn backend_crash_is_detected_and_handed_to_recovery() {
    let mut l = logger();
    let mut t = 0;
    for i in 0..2 {
        t = exchange(&mut l, i, t);
    }
    events(&mut l);
    // Transaction 3's request arrives; the backend never answers.
    let rq3 = ranges(2).0;
    l.on_segment(ms(t), 1, C2S, rq3.start, WEBMAIL[2].req);
    let (fb, _) = l
        .detector()
        .timeouts(l.transactions(1).unwrap().get(3).unwrap().kind);
    let deadline = l.poll_timeout().unwrap();
    assert_eq!(deadline, ms(t) + fb);
    l.handle_timeout(deadline);
    assert!(matches!(
        events(&mut l)[..],
        [LoggerEvent::BackendFailed(_)]
    ));
    let mut r = l.recover(deadline, 1).unwrap();
    let cp = r.crash_point().unwrap().clone();
    assert_eq!((cp.t_l, cp.p, cp.t_sp), (2, 0, 3));
    assert_eq!(cp.tail, rq3);
    assert_eq!(r.poll_action(), Some(Action::Unsplice));
    assert_eq!(r.poll_action(), Some(Action::ShareLastComplete { t_l: 2 }));
    assert!(deadline - ms(t) <= Duration::from_secs(1));
}

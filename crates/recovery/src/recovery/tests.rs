//! The recovery state machine driven through the paper's crash points
//! against a scripted alternate backend.

use super::*;
use crate::fixtures::{crash_at, ranges, streams, WEBMAIL};

fn now() -> Instant {
    Instant::from_millis(1000)
}

fn start(c2s: u64, s2c: u64, ack_cl: u64) -> Recovery {
    let (log, txs) = crash_at(c2s, s2c);
    Recovery::new(now(), RecoveryConfig::default(), log, txs, ack_cl)
}

fn drain(r: &mut Recovery) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

#[test]
fn mid_response_deterministic_regeneration_is_respliced() {
    let (req, resp) = streams();
    let (rq3, rs3) = ranges(2);
    let cut = rs3.start + 30;
    let mut r = start(rq3.end, cut, cut - 5);
    assert_eq!(
        drain(&mut r),
        [
            Action::Unsplice,
            Action::ResendToClient {
                range: cut - 5..cut,
                bytes: resp[(cut - 5) as usize..cut as usize].to_vec()
            },
            Action::ShareLastComplete { t_l: 2 },
            Action::ConnectAlternate,
        ]
    );
    r.handle_alternate_connected(now());
    assert!(drain(&mut r).is_empty(), "waits for the state report");
    r.handle_state_report(now(), 2, 2);
    let req3 = req[rq3.start as usize..rq3.end as usize].to_vec();
    assert_eq!(
        drain(&mut r),
        [
            Action::SendToAlternate(req3.clone()),
            Action::Absorb {
                replayed: 0,
                compare: 30
            }
        ]
    );
    // The alternate regenerates transaction 3's response identically.
    let consumed = r.handle_alternate_data(now(), WEBMAIL[2].resp);
    assert_eq!(consumed, 30);
    assert_eq!(
        drain(&mut r),
        [Action::Resplice(Resplice {
            c2s_logged: rq3.end,
            c2s_alternate: req3.len() as u64,
            s2c_alternate: 30,
            s2c_logged: cut,
        })]
    );
    assert_eq!(r.handle_alternate_data(now(), b"more"), 0);
    r.handle_client_ack(now(), cut - 1);
    assert!(drain(&mut r).is_empty());
    r.handle_client_ack(now(), cut);
    assert_eq!(drain(&mut r), [Action::Done]);
    assert!(r.is_finished());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn mid_response_mismatch_resets_the_client() {
    let rs5 = ranges(4).1;
    // Transaction 5 (GET /time) is non-deterministic: the alternate answers
    // with another time.
    // 44 bytes logged: the head and "12:00:".
    let cut = rs5.start + 44;
    let mut r = start(ranges(4).0.end, cut, cut);
    drain(&mut r);
    r.handle_state_report(now(), 4, 4);
    r.handle_alternate_connected(now());
    drain(&mut r);
    let other = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12:07:00";
    r.handle_alternate_data(now(), &other[..20]);
    assert!(drain(&mut r).is_empty());
    r.handle_alternate_data(now(), &other[20..]);
    assert_eq!(
        drain(&mut r),
        [Action::ResetClient(ResetReason::Mismatch {
            offset: rs5.start + 42
        })]
    );
    assert!(r.is_finished());
}

#[test]
fn lagging_alternate_replays_updates_and_absorbs_their_responses() {
    let (req, _) = streams();
    let (rq2, rq3) = (ranges(1).0, ranges(2).0);
    let mut r = start(rq3.end, ranges(1).1.end, ranges(1).1.end);
    drain(&mut r);
    r.handle_alternate_connected(now());
    r.handle_state_report(now(), 0, 1);
    let plan = r.replay_plan().unwrap();
    assert_eq!((plan.t_r, plan.replay.clone()), (2, vec![2]));
    // Alternate request 1 is the replayed 2, then 3 (T_SP), 4, ...
    assert_eq!(
        (
            r.original_tx(0),
            r.original_tx(1),
            r.original_tx(2),
            r.original_tx(3)
        ),
        (None, Some(2), Some(3), Some(4))
    );
    assert_eq!(
        drain(&mut r),
        [
            Action::ApplyState { through: 1 },
            Action::SendToAlternate(req[rq2.start as usize..rq2.end as usize].to_vec()),
            Action::SendToAlternate(req[rq3.start as usize..rq3.end as usize].to_vec()),
            Action::Absorb {
                replayed: 1,
                compare: 0
            },
        ]
    );
    // The replayed login's response differs (new session id): absorbed, not
    // compared. Fed byte by byte, then transaction 3's response begins.
    let replayed = b"HTTP/1.1 302 Found\r\nSet-Cookie: s=2\r\nContent-Length: 0\r\n\r\n";
    let mut stream = replayed.to_vec();
    stream.extend_from_slice(WEBMAIL[2].resp);
    let mut consumed = 0;
    for b in &stream {
        consumed += r.handle_alternate_data(now(), std::slice::from_ref(b));
    }
    assert_eq!(consumed, replayed.len());
    let sent = (rq2.end - rq2.start) + (rq3.end - rq3.start);
    assert_eq!(
        drain(&mut r),
        [
            Action::Resplice(Resplice {
                c2s_logged: rq3.end,
                c2s_alternate: sent,
                s2c_alternate: replayed.len() as u64,
                s2c_logged: ranges(1).1.end,
            }),
            Action::Done,
        ]
    );
}

#[test]
fn crash_between_transactions_resplices_at_once() {
    let (rq, rs) = (ranges(1).0.end, ranges(1).1.end);
    let mut r = start(rq, rs, rs);
    drain(&mut r);
    r.handle_state_report(now(), 2, 2);
    r.handle_alternate_connected(now());
    assert_eq!(
        drain(&mut r),
        [
            Action::Absorb {
                replayed: 0,
                compare: 0
            },
            Action::Resplice(Resplice {
                c2s_logged: rq,
                c2s_alternate: 0,
                s2c_alternate: 0,
                s2c_logged: rs,
            }),
            Action::Done
        ]
    );
}

#[test]
fn failures_reset_the_client() {
    // Deadline.
    let mut r = start(ranges(2).0.end, ranges(1).1.end, 0);
    drain(&mut r);
    assert_eq!(r.poll_timeout(), Some(now() + Duration::from_secs(10)));
    r.handle_timeout(now() + Duration::from_secs(10));
    assert_eq!(drain(&mut r), [Action::ResetClient(ResetReason::Timeout)]);
    // Alternate closes before the re-splice.
    let mut r = start(ranges(2).0.end, ranges(1).1.end, 0);
    r.handle_alternate_closed(now());
    assert_eq!(
        drain(&mut r).last(),
        Some(&Action::ResetClient(ResetReason::AlternateClosed))
    );
    // Garbage from the alternate while replaying.
    let mut r = start(ranges(2).0.end, ranges(1).1.end, 0);
    r.handle_state_report(now(), 0, 1);
    r.handle_alternate_connected(now());
    drain(&mut r);
    r.handle_alternate_data(now(), b"SSH-2.0-OpenSSH\r\n\r\n");
    assert!(matches!(
        drain(&mut r)[..],
        [Action::ResetClient(ResetReason::AlternateGarbled(_))]
    ));
    // Bad state report.
    let mut r = start(ranges(2).0.end, ranges(1).1.end, 0);
    r.handle_state_report(now(), 5, 5);
    r.handle_alternate_connected(now());
    assert!(matches!(
        drain(&mut r).last(),
        Some(Action::ResetClient(ResetReason::Plan(
            PlanError::BadStateReport { .. }
        )))
    ));
}

#[test]
fn unparseable_connection_is_reset_immediately() {
    let (log, mut txs) = crash_at(10, 0);
    txs.error = Some(HttpError {
        dir: Direction::ClientToServer,
        offset: 0,
        kind: crate::http::ErrorKind::BadRequestLine,
    });
    let mut r = Recovery::new(now(), RecoveryConfig::default(), log, txs, 0);
    assert!(matches!(
        drain(&mut r)[..],
        [Action::ResetClient(ResetReason::Plan(
            PlanError::NotParseable(_)
        ))]
    ));
    assert!(r.is_finished());
}

#[test]
fn splice_deltas_map_splice_points_onto_each_other() {
    let rs = Resplice {
        c2s_logged: 1000,
        c2s_alternate: 70,
        s2c_alternate: 45,
        s2c_logged: 5000,
    };
    let old = (0x1000_0000u32, 0xfff0_0000u32);
    let logged = (u32::MAX - 100, 7);
    let alt = (42, u32::MAX - 3);
    let (seq_delta, ack_delta) = rs.splice_deltas(old, logged, alt);
    // The client's sequence number for logged offset 1000 ...
    let client_seq = logged
        .0
        .wrapping_add(1)
        .wrapping_add(1000)
        .wrapping_sub(old.0);
    // ... lands on the alternate connection's offset 70.
    assert_eq!(
        client_seq.wrapping_add(seq_delta),
        alt.0.wrapping_add(1 + 70)
    );
    // The alternate's byte 45 goes out as the client-side byte of logged offset 5000.
    let vip_seq = logged.1.wrapping_add(1 + 5000).wrapping_sub(old.1);
    assert_eq!(alt.1.wrapping_add(1 + 45).wrapping_sub(ack_delta), vip_seq);
}

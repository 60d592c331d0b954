//! The planner's equations at the paper's four crash points, with fixed
//! expectations, and as properties over every crash point.

use super::*;
use crate::fixtures::{crash_at, ranges, WEBMAIL};
use proptest::prelude::*;

const C2S: Direction = Direction::ClientToServer;

#[test]
fn crash_between_transactions() {
    let (rq, rs) = (ranges(1).0.end, ranges(1).1.end);
    let (log, txs) = crash_at(rq, rs);
    let cp = crash_point(&log, &txs, rs).unwrap();
    assert_eq!((cp.t_l, cp.ack_tl, cp.p, cp.t_sp), (2, rs, 0, 3));
    assert!(cp.resend.is_empty() && cp.partial.is_empty() && cp.tail.is_empty());
    assert_eq!(cp.tail.end, rq);
    let plan = replay_plan(&cp, &txs, &log, 2, 2).unwrap();
    assert_eq!((plan.t_r, plan.apply_through), (3, 2));
    assert!(plan.replay.is_empty() && plan.skipped.is_empty());
}

#[test]
fn crash_mid_request() {
    let r3 = ranges(2).0;
    let cut = r3.start + 10;
    let (log, txs) = crash_at(cut, ranges(1).1.end);
    let cp = crash_point(&log, &txs, ranges(1).1.end).unwrap();
    assert_eq!((cp.t_l, cp.p, cp.t_sp), (2, 0, 3));
    // The partial request is sent to the alternate; the client sends the rest
    // through the new splice from `cut` on.
    assert_eq!(cp.tail, r3.start..cut);
}

#[test]
fn crash_between_request_and_response() {
    let (log, txs) = crash_at(ranges(2).0.end, ranges(1).1.end);
    let cp = crash_point(&log, &txs, ranges(1).1.end).unwrap();
    assert_eq!((cp.t_l, cp.p, cp.t_sp), (2, 0, 3));
    assert_eq!(cp.tail, ranges(2).0);
    // The alternate lags: T_S = 0, T_A = 1 < T_L = 2, so T_R = 2 and the
    // update transaction 2 (POST login) is replayed.
    let plan = replay_plan(&cp, &txs, &log, 0, 1).unwrap();
    assert_eq!((plan.t_r, plan.apply_through), (2, 1));
    assert_eq!((plan.replay, plan.skipped), (vec![2], vec![]));
    // Nothing at the alternate: transaction 1 (read-only) is skipped.
    let plan = replay_plan(&cp, &txs, &log, 0, 0).unwrap();
    assert_eq!((plan.t_r, plan.apply_through), (1, 0));
    assert_eq!((plan.replay, plan.skipped), (vec![2], vec![1]));
}

#[test]
fn crash_mid_response_with_client_behind() {
    let rs3 = ranges(2).1;
    let cut = rs3.start + 30;
    let (log, txs) = crash_at(ranges(3).0.end, cut);
    // The client acked 5 bytes less than was logged (a lost segment).
    let cp = crash_point(&log, &txs, cut - 5).unwrap();
    assert_eq!((cp.t_l, cp.ack_tl, cp.p, cp.t_sp), (2, rs3.start, 30, 3));
    assert_eq!(cp.resend, cut - 5..cut);
    assert_eq!(cp.partial, rs3.start..cut);
    // Requests 3 and the pipelined 4 go to the alternate.
    assert_eq!(cp.tail, ranges(2).0.start..ranges(3).0.end);
    // State of transaction 3 was pushed (T_A = 3 > T_L): T_R = T_L + 1.
    let plan = replay_plan(&cp, &txs, &log, 2, 3).unwrap();
    assert_eq!((plan.t_r, plan.apply_through), (3, 2));
    assert!(plan.replay.is_empty());
}

#[test]
fn inconsistent_inputs_are_plan_errors() {
    let (log, txs) = crash_at(ranges(1).0.end, ranges(1).1.end);
    let end = ranges(1).1.end;
    assert_eq!(
        crash_point(&log, &txs, end + 1),
        Err(PlanError::AckBeyondLog {
            ack_cl: end + 1,
            logged: end
        })
    );
    let cp = crash_point(&log, &txs, end).unwrap();
    assert!(matches!(
        replay_plan(&cp, &txs, &log, 3, 3),
        Err(PlanError::BadStateReport { .. })
    ));
    assert!(matches!(
        replay_plan(&cp, &txs, &log, 1, 0),
        Err(PlanError::BadStateReport { .. })
    ));
    let mut lost = txs.clone();
    lost.txs.remove(0);
    lost.txs.remove(0);
    assert_eq!(
        replay_plan(&cp, &lost, &log, 0, 0),
        Err(PlanError::ReplayUnknown(1))
    );
    let mut trimmed = log.clone();
    // Trimmed into transaction 2's request, which must be replayed.
    let cut = ranges(1).0.start + 5;
    trimmed.c2s.base = cut;
    trimmed.c2s.bytes.drain(..cut as usize);
    assert!(matches!(
        replay_plan(&cp, &txs, &trimmed, 0, 1),
        Err(PlanError::Trimmed { dir: C2S, .. })
    ));
}

#[test]
fn unparseable_stream_is_not_recoverable() {
    let (log, mut txs) = crash_at(10, 0);
    txs.error = Some(HttpError {
        dir: C2S,
        offset: 3,
        kind: crate::http::ErrorKind::BadRequestLine,
    });
    assert!(matches!(
        crash_point(&log, &txs, 0),
        Err(PlanError::NotParseable(_))
    ));
}

fn total(f: fn(usize) -> Range<u64>) -> u64 {
    f(WEBMAIL.len() - 1).end
}

proptest! {
    /// For every crash point consistent with causality (a response is only
    /// logged after its request), every client ack and every (T_S, T_A):
    /// eq. 1-3 hold as stated in the paper, computed independently here.
    #[test]
    fn equations_hold_at_every_crash_point(
        c2s in 0..=total(|i| ranges(i).0),
        s2c_frac in 0.0..=1.0f64,
        ack_frac in 0.0..=1.0f64,
        ts_frac in 0.0..=1.0f64,
        ta_extra in 0u64..3,
    ) {
        // Responses only for fully logged requests.
        let answered = (0..WEBMAIL.len()).take_while(|&i| ranges(i).0.end <= c2s).count();
        let s2c_max = if answered == 0 { 0 } else { ranges(answered - 1).1.end };
        let s2c = (s2c_max as f64 * s2c_frac) as u64;
        let (log, txs) = crash_at(c2s, s2c);
        let ack_cl = (s2c as f64 * ack_frac) as u64;
        let cp = crash_point(&log, &txs, ack_cl).unwrap();
        // T_L: responses entirely within the logged prefix.
        let t_l = (0..WEBMAIL.len()).take_while(|&i| ranges(i).1.end <= s2c).count() as u64;
        let ack_tl = if t_l == 0 { 0 } else { ranges(t_l as usize - 1).1.end };
        prop_assert_eq!(cp.t_l, t_l);
        prop_assert_eq!(cp.ack_tl, ack_tl);
        prop_assert_eq!(cp.p, s2c - ack_tl);
        prop_assert!(cp.ack_cl <= cp.ack_tl + cp.p);          // eq. 1
        prop_assert_eq!(cp.resend.clone(), ack_cl..ack_tl + cp.p);
        prop_assert_eq!(cp.t_sp, t_l + 1);                   // eq. 2
        let tl_req_end = if t_l == 0 { 0 } else { ranges(t_l as usize - 1).0.end };
        prop_assert_eq!(cp.tail.clone(), tl_req_end..c2s);
        let t_s = (t_l as f64 * ts_frac) as u64;
        let t_a = t_s + ta_extra;
        let plan = replay_plan(&cp, &txs, &log, t_s, t_a).unwrap();
        let t_r = if t_l >= t_a { t_a + 1 } else { t_l + 1 };   // eq. 3
        prop_assert_eq!(plan.t_r, t_r);
        prop_assert!(plan.t_r <= cp.t_sp);
        prop_assert_eq!(plan.apply_through, t_r - 1);
        let mut all: Vec<u64> = plan.replay.iter().chain(&plan.skipped).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (t_r..=t_l).collect::<Vec<_>>());
        for n in &plan.replay {
            prop_assert!(txs.get(*n).unwrap().tags.needs_replay());
        }
        for n in &plan.skipped {
            prop_assert!(txs.get(*n).unwrap().tags.read_only);
        }
    }
}

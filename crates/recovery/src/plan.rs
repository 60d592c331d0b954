//! The recovery planner's equations (paper §4.2-4.3), as pure functions of
//! the frozen log, the transactions and the acks. [`crate::recovery`] drives
//! them as a state machine.
//!
//! Terms (transactions are numbered from 1; 0 means "none"):
//! - **T_L**: last transaction whose response is completely logged.
//! - **Ack_TL**: server-to-client offset just after T_L's response.
//! - **p**: bytes of T_L+1's response logged (`s2c_end - Ack_TL`).
//! - **Ack_CL**: the client's last cumulative ack seen by the logger.
//! - **Eq. 1**: `Ack_CL <= Ack_TL + p`; the logger re-sends
//!   `[Ack_CL, Ack_TL + p)` to the client. (The log never forwards unlogged
//!   bytes, so a larger Ack_CL means the inputs are inconsistent.)
//! - **Eq. 2**: T_SP = T_L + 1, the first transaction whose response goes
//!   through the re-spliced connection; its first p bytes from the alternate
//!   are absorbed and compared with the logged ones.
//! - **T_S** / **T_A**: last transaction whose state the alternate has
//!   applied / has available (reported by the alternate); T_S <= T_L.
//! - **Eq. 3**: T_R = T_A + 1 if T_L >= T_A, else T_L + 1: the first
//!   transaction run on the alternate. State of (T_S, T_R) is applied from
//!   what the alternate has; update transactions in [T_R, T_L] are replayed
//!   (read-only ones skipped, their responses are already logged or
//!   delivered); then T_SP's request and everything logged after it is sent.

use std::ops::Range;

use thiserror::Error;

use crate::http::{HttpError, Transaction, Transactionalizer, TxNum};
use crate::log::{Direction, LogSnapshot};

/// The transactionalizer's state at the crash, as the planner needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxView {
    /// Transactions still held, oldest first (at least those after T_S).
    pub txs: Vec<Transaction>,
    /// T_L.
    pub t_l: TxNum,
    /// Client-to-server offset just after T_L's request (0 if T_L = 0).
    pub tl_req_end: u64,
    /// Ack_TL: server-to-client offset just after T_L's response.
    pub ack_tl: u64,
    /// The streams stopped being parseable: not recoverable.
    pub error: Option<HttpError>,
}

impl TxView {
    pub fn of(t: &Transactionalizer) -> TxView {
        let t_l = t.last_complete();
        let (tl_req_end, ack_tl) = t.ends_of(t_l).unwrap_or((0, 0));
        TxView {
            txs: t.transactions().cloned().collect(),
            t_l,
            tl_req_end,
            ack_tl,
            error: t.error(),
        }
    }

    pub fn get(&self, num: TxNum) -> Option<&Transaction> {
        let first = self.txs.first()?.num;
        self.txs.get(usize::try_from(num.checked_sub(first)?).ok()?)
    }
}

/// Why a connection cannot be recovered (its client is reset).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("streams not parseable: {0}")]
    NotParseable(HttpError),
    #[error("client acked {ack_cl} beyond the logged {logged} (eq. 1 violated)")]
    AckBeyondLog { ack_cl: u64, logged: u64 },
    #[error("logged bytes {range:?} of {dir:?} needed but trimmed")]
    Trimmed { dir: Direction, range: Range<u64> },
    #[error("transaction {0} closed the connection")]
    Closed(TxNum),
    #[error("alternate reports T_S={t_s}, T_A={t_a} with T_L={t_l}")]
    BadStateReport { t_s: TxNum, t_a: TxNum, t_l: TxNum },
    #[error("transaction {0} must be replayed but is not held")]
    ReplayUnknown(TxNum),
}

/// Phase 1, at failure detection: what the log alone determines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    pub t_l: TxNum,
    pub ack_tl: u64,
    pub p: u64,
    pub ack_cl: u64,
    /// T_SP = T_L + 1 (eq. 2).
    pub t_sp: TxNum,
    /// Server-to-client bytes to re-send to the client (eq. 1).
    pub resend: Range<u64>,
    /// Server-to-client offsets of T_SP's first p bytes (to compare).
    pub partial: Range<u64>,
    /// Client-to-server bytes from T_SP's request to the end of the log,
    /// sent to the alternate after the replays; the client-to-server splice
    /// point is `tail.end`.
    pub tail: Range<u64>,
}

fn held(log: &LogSnapshot, dir: Direction, range: &Range<u64>) -> Result<(), PlanError> {
    match log.dir(dir).get(range.clone()) {
        Some(_) => Ok(()),
        None => Err(PlanError::Trimmed {
            dir,
            range: range.clone(),
        }),
    }
}

/// Computes T_L, p, Ack_TL, T_SP and the byte ranges of eq. 1.
pub fn crash_point(log: &LogSnapshot, txs: &TxView, ack_cl: u64) -> Result<CrashPoint, PlanError> {
    if let Some(e) = txs.error {
        return Err(PlanError::NotParseable(e));
    }
    if let Some(t) = txs.get(txs.t_l).filter(|t| t.close) {
        return Err(PlanError::Closed(t.num));
    }
    let s2c_end = log.s2c.end();
    let p = s2c_end.saturating_sub(txs.ack_tl);
    if ack_cl > txs.ack_tl + p {
        return Err(PlanError::AckBeyondLog {
            ack_cl,
            logged: s2c_end,
        });
    }
    let cp = CrashPoint {
        t_l: txs.t_l,
        ack_tl: txs.ack_tl,
        p,
        ack_cl,
        t_sp: txs.t_l + 1,
        resend: ack_cl..s2c_end,
        partial: txs.ack_tl..s2c_end,
        tail: txs.tl_req_end..log.c2s.end().max(txs.tl_req_end),
    };
    held(log, Direction::ServerToClient, &cp.resend)?;
    held(log, Direction::ServerToClient, &cp.partial)?;
    held(log, Direction::ClientToServer, &cp.tail)?;
    Ok(cp)
}

/// Phase 2, once the alternate reported T_S and T_A.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    pub t_s: TxNum,
    pub t_a: TxNum,
    /// T_R (eq. 3).
    pub t_r: TxNum,
    /// The alternate applies the state of (T_S, T_R), i.e. up to this.
    pub apply_through: TxNum,
    /// Update transactions of [T_R, T_L] to run again, in order.
    pub replay: Vec<TxNum>,
    /// Read-only transactions of [T_R, T_L], not run again.
    pub skipped: Vec<TxNum>,
}

/// T_R by eq. 3.
pub fn t_r(t_l: TxNum, t_a: TxNum) -> TxNum {
    if t_l >= t_a {
        t_a + 1
    } else {
        t_l + 1
    }
}

/// Computes T_R and the replay set.
pub fn replay_plan(
    cp: &CrashPoint,
    txs: &TxView,
    log: &LogSnapshot,
    t_s: TxNum,
    t_a: TxNum,
) -> Result<ReplayPlan, PlanError> {
    if t_s > cp.t_l || t_a < t_s {
        return Err(PlanError::BadStateReport {
            t_s,
            t_a,
            t_l: cp.t_l,
        });
    }
    let t_r = t_r(cp.t_l, t_a);
    let (mut replay, mut skipped) = (Vec::new(), Vec::new());
    for num in t_r..=cp.t_l {
        let t = txs.get(num).ok_or(PlanError::ReplayUnknown(num))?;
        if t.tags.needs_replay() {
            held(log, Direction::ClientToServer, &t.req)?;
            replay.push(num);
        } else {
            skipped.push(num);
        }
    }
    Ok(ReplayPlan {
        t_s,
        t_a,
        t_r,
        apply_through: t_r - 1,
        replay,
        skipped,
    })
}

#[cfg(test)]
mod tests;

//! Session-state transfer between a backend and its alternate (paper §4.1
//! steps 3 and 5, §4.3).
//!
//! The backend pushes one state record per transaction (possibly empty, for
//! read-only ones, so transaction numbers stay contiguous) to the alternate:
//! asynchronously, except for non-deterministic transactions, whose state
//! (or whole response) must reach the alternate *before* the backend sends
//! the response ([`PushMode`], [`SyncGate`]).
//!
//! The alternate stores records as they come ([`AlternateState`]) but
//! applies a transaction's record only once the logger says its response is
//! completely logged; so T_S (last applied) <= T_L (last fully logged) and
//! T_A (last available) >= T_S. At recovery it reports (T_S, T_A) and
//! applies (T_S, T_R) on the planner's request.

use std::collections::BTreeMap;

use crate::http::TxNum;
use crate::tags::Tags;

/// How a transaction's state is pushed to the alternate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushMode {
    /// Pushed in the background; the alternate may lag.
    Async,
    /// Pushed and acknowledged before the response is sent.
    Sync,
}

impl PushMode {
    pub fn for_tags(tags: Tags) -> PushMode {
        if tags.deterministic {
            PushMode::Async
        } else {
            PushMode::Sync
        }
    }
}

/// The backend side of synchronous pushes: a response of a transaction
/// pushed synchronously may be sent only once the alternate acknowledged
/// its state.
#[derive(Clone, Debug, Default)]
pub struct SyncGate {
    waiting: BTreeMap<TxNum, ()>,
}

impl SyncGate {
    /// Records a push; returns its mode.
    pub fn push(&mut self, tx: TxNum, tags: Tags) -> PushMode {
        let mode = PushMode::for_tags(tags);
        if mode == PushMode::Sync {
            self.waiting.insert(tx, ());
        }
        mode
    }

    /// The alternate acknowledged the state of `tx`.
    pub fn on_ack(&mut self, tx: TxNum) {
        self.waiting.remove(&tx);
    }

    /// Whether the backend may start sending `tx`'s response.
    pub fn may_respond(&self, tx: TxNum) -> bool {
        !self.waiting.contains_key(&tx)
    }
}

/// A state record wanted at recovery is not at the alternate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state of transaction {0} is not available at the alternate")]
pub struct MissingState(pub TxNum);

/// The alternate backend's view of one client connection's session state.
#[derive(Clone, Debug, Default)]
pub struct AlternateState {
    /// Records received and not yet applied, by transaction.
    available: BTreeMap<TxNum, Vec<u8>>,
    /// T_S.
    applied: TxNum,
    /// Highest transaction the logger reported completely logged.
    logged: TxNum,
}

impl AlternateState {
    /// A state record for `tx` arrived from the backend. Returns records
    /// that became applicable, in order, for the application to apply.
    pub fn on_push(&mut self, tx: TxNum, state: Vec<u8>) -> Vec<(TxNum, Vec<u8>)> {
        if tx > self.applied {
            self.available.insert(tx, state);
        }
        self.apply_ready()
    }

    /// The logger reports that `tx`'s response is completely logged.
    pub fn on_response_logged(&mut self, tx: TxNum) -> Vec<(TxNum, Vec<u8>)> {
        self.logged = self.logged.max(tx);
        self.apply_ready()
    }

    fn apply_ready(&mut self) -> Vec<(TxNum, Vec<u8>)> {
        let mut out = Vec::new();
        while self.applied < self.logged {
            let Some(state) = self.available.remove(&(self.applied + 1)) else {
                break;
            };
            self.applied += 1;
            out.push((self.applied, state));
        }
        out
    }

    /// (T_S, T_A): last applied, last available with nothing missing between.
    pub fn report(&self) -> (TxNum, TxNum) {
        let mut t_a = self.applied;
        while self.available.contains_key(&(t_a + 1)) {
            t_a += 1;
        }
        (self.applied, t_a)
    }

    /// Recovery: apply everything up to `through` (the planner's T_R - 1).
    pub fn apply_through(&mut self, through: TxNum) -> Result<Vec<(TxNum, Vec<u8>)>, MissingState> {
        let mut out = Vec::new();
        for t in self.applied + 1..=through {
            if !self.available.contains_key(&t) {
                return Err(MissingState(t));
            }
        }
        while self.applied < through {
            self.applied += 1;
            out.push((
                self.applied,
                self.available.remove(&self.applied).unwrap_or_default(),
            ));
        }
        self.logged = self.logged.max(through);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_applied_only_after_the_response_is_logged() {
        let mut a = AlternateState::default();
        assert!(a.on_push(1, b"s1".to_vec()).is_empty());
        assert!(a.on_push(2, b"s2".to_vec()).is_empty());
        assert_eq!(a.report(), (0, 2));
        assert_eq!(a.on_response_logged(1), [(1, b"s1".to_vec())]);
        assert_eq!(a.report(), (1, 2));
        // The logger's signal may overtake the push.
        assert_eq!(a.on_response_logged(3), [(2, b"s2".to_vec())]);
        assert_eq!(a.report(), (2, 2));
        assert_eq!(a.on_push(3, b"s3".to_vec()), [(3, b"s3".to_vec())]);
        assert_eq!(a.report(), (3, 3));
    }

    #[test]
    fn report_stops_at_a_gap_and_apply_through_needs_all() {
        let mut a = AlternateState::default();
        a.on_push(1, vec![]);
        a.on_push(3, vec![]);
        assert_eq!(a.report(), (0, 1));
        assert_eq!(a.apply_through(3), Err(MissingState(2)));
        assert_eq!(a.apply_through(1).unwrap().len(), 1);
        assert_eq!(a.report(), (1, 1));
    }

    #[test]
    fn non_deterministic_pushes_gate_the_response() {
        let mut g = SyncGate::default();
        let det = Tags {
            deterministic: true,
            ..Tags::CONSERVATIVE
        };
        assert_eq!(g.push(1, det), PushMode::Async);
        assert!(g.may_respond(1));
        assert_eq!(g.push(2, Tags::CONSERVATIVE), PushMode::Sync);
        assert!(!g.may_respond(2));
        g.on_ack(2);
        assert!(g.may_respond(2));
    }
}

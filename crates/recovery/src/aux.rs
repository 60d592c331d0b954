//! The aux logger (paper §3.2, §4.3): logs the backend's auxiliary requests
//! (database, mail store) and their responses by transaction id, and answers
//! the same requests from its log when a transaction is replayed on the
//! alternate backend, so non-idempotent aux operations are not run twice.
//!
//! The backend includes the client transaction's [`TxId`] in every aux
//! request (e.g. in an IMAP tag). The aux logger counts the aux requests of
//! each transaction: the *i*-th request of transaction T in a replay is
//! matched with the *i*-th logged one. The driver frames aux messages (the
//! aux protocol's own transactionalizer); this type works on whole messages.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::http::TxNum;

/// The paper's 64-bit transaction id: client address, client port and the
/// transaction's ordinal on the connection (low 16 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

impl TxId {
    pub fn new(client: Ipv4Addr, port: u16, num: TxNum) -> Self {
        TxId(u64::from(u32::from(client)) << 32 | u64::from(port) << 16 | (num & 0xffff))
    }
}

/// What to do with an aux request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuxDecision {
    /// New request: forward it to the aux server (and log its response
    /// with [`AuxLog::on_response`]).
    Forward,
    /// A replayed request: answer it with this logged response; the aux
    /// server does not see it.
    Answer(Vec<u8>),
    /// A replayed request that differs from the logged one: the replay is
    /// not deterministic, the client connection must be reset.
    Mismatch,
    /// Replayed, but the original's response was never logged (the backend
    /// crashed while waiting for it): forward it.
    ForwardUnanswered,
}

#[derive(Clone, Debug, Default)]
struct Exchange {
    req: Vec<u8>,
    resp: Option<Vec<u8>>,
}

/// Aux traffic of all transactions still needed for replay.
#[derive(Clone, Debug, Default)]
pub struct AuxLog {
    log: HashMap<TxId, Vec<Exchange>>,
    /// Requests seen per transaction in the current run (original or replay).
    cursor: HashMap<TxId, usize>,
    answered: u64,
    mismatches: u64,
}

impl AuxLog {
    /// An aux request of transaction `tx`.
    pub fn on_request(&mut self, tx: TxId, req: &[u8]) -> AuxDecision {
        let i = self.cursor.entry(tx).or_default();
        let idx = *i;
        *i += 1;
        let ex = self.log.entry(tx).or_default();
        match ex.get(idx) {
            None => {
                ex.push(Exchange {
                    req: req.to_vec(),
                    resp: None,
                });
                AuxDecision::Forward
            }
            Some(e) if e.req != req => {
                self.mismatches += 1;
                AuxDecision::Mismatch
            }
            Some(Exchange { resp: Some(r), .. }) => {
                self.answered += 1;
                AuxDecision::Answer(r.clone())
            }
            Some(Exchange { resp: None, .. }) => AuxDecision::ForwardUnanswered,
        }
    }

    /// The aux server's response to the latest forwarded request of `tx`.
    pub fn on_response(&mut self, tx: TxId, resp: &[u8]) {
        if let Some(e) = self
            .log
            .get_mut(&tx)
            .and_then(|v| v.iter_mut().rev().find(|e| e.resp.is_none()))
        {
            e.resp = Some(resp.to_vec());
        }
    }

    /// A replay of `tx` starts on the alternate: its aux requests are
    /// matched from the first logged one again.
    pub fn begin_replay(&mut self, tx: TxId) {
        self.cursor.remove(&tx);
    }

    /// `tx` will never be replayed again (its state is applied at the alternate).
    pub fn forget(&mut self, tx: TxId) {
        self.log.remove(&tx);
        self.cursor.remove(&tx);
    }

    /// (answered from the log, mismatched) replayed requests.
    pub fn counters(&self) -> (u64, u64) {
        (self.answered, self.mismatches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: TxNum) -> TxId {
        TxId::new(Ipv4Addr::new(198, 18, 0, 1), 40000, n)
    }

    #[test]
    fn tx_id_layout_is_address_port_ordinal() {
        assert_eq!(tx(3).0, 0xc612_0001_9c40_0003);
    }

    #[test]
    fn replayed_aux_requests_are_answered_from_the_log() {
        let mut a = AuxLog::default();
        assert_eq!(a.on_request(tx(1), b"A1 APPEND Sent"), AuxDecision::Forward);
        a.on_response(tx(1), b"A1 OK");
        assert_eq!(
            a.on_request(tx(1), b"A2 STORE +FLAGS"),
            AuxDecision::Forward
        );
        a.on_response(tx(1), b"A2 OK");
        a.begin_replay(tx(1));
        assert_eq!(
            a.on_request(tx(1), b"A1 APPEND Sent"),
            AuxDecision::Answer(b"A1 OK".to_vec())
        );
        assert_eq!(
            a.on_request(tx(1), b"A2 STORE +FLAGS"),
            AuxDecision::Answer(b"A2 OK".to_vec())
        );
        // Beyond what the original did: a new request goes to the server.
        assert_eq!(a.on_request(tx(1), b"A3 NOOP"), AuxDecision::Forward);
        assert_eq!(a.counters(), (2, 0));
    }

    #[test]
    fn differing_replay_is_a_mismatch_and_unanswered_is_forwarded() {
        let mut a = AuxLog::default();
        a.on_request(tx(2), b"A1 FETCH 1");
        a.begin_replay(tx(2));
        assert_eq!(
            a.on_request(tx(2), b"A1 FETCH 1"),
            AuxDecision::ForwardUnanswered
        );
        a.begin_replay(tx(2));
        assert_eq!(a.on_request(tx(2), b"A1 FETCH 2"), AuxDecision::Mismatch);
        assert_eq!(a.counters(), (0, 1));
        a.forget(tx(2));
        assert_eq!(a.on_request(tx(2), b"A1 FETCH 2"), AuxDecision::Forward);
    }
}

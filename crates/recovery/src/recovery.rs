//! The recovery of one client connection after its backend failed (paper
//! §4.3), as a sans-IO state machine the simulator or a daemon drives.
//!
//! ```text
//! new(log snapshot, transactions, Ack_CL)          -- T_L, p, T_SP (plan::crash_point)
//!   -> Unsplice                                     (every proxy stops relaying to the failed backend)
//!   -> ResendToClient [Ack_CL, Ack_TL+p)            (if non-empty)
//!   -> ShareLastComplete T_L, ConnectAlternate
//! handle_state_report(T_S, T_A) + handle_alternate_connected
//!   -> ApplyState through T_R-1                     (if beyond T_S; plan::replay_plan)
//!   -> SendToAlternate(request of each update tx in [T_R, T_L]),
//!      SendToAlternate(T_SP's request and everything logged after it)
//!   -> Absorb{replayed, compare: p}
//! handle_alternate_data(bytes) -> consumed
//!   absorbs the replayed responses, then the first p bytes of T_SP's
//!   response, comparing them byte for byte with the logged ones
//!   -> ResetClient{Mismatch} on the first difference
//!   -> Resplice{..} once all is absorbed; unconsumed bytes go to the client
//! handle_client_ack(ack) -> Done once the re-sent bytes are acked
//! ```
//! Any plan error, a garbled or closed alternate connection or the deadline
//! passing before the re-splice ends in `ResetClient` (terminal; no `Done`).
//!
//! Offsets: client-to-server and server-to-client offsets are those of the
//! logged (failed) backend connection; alternate offsets count bytes on the
//! new connection to the alternate. [`Resplice::splice_deltas`] turns them
//! into `proto::Splice` deltas. Re-sent bytes at logged offset `L` carry
//! client-side sequence number `backend_isn + 1 + L - old_ack_delta`.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use ftsplice_proto::Instant;

use crate::http::{HttpError, Transactionalizer, TxNum};
use crate::log::{Direction, LogSnapshot};
use crate::plan::{self, CrashPoint, PlanError, ReplayPlan, TxView};
use crate::tags::TagTable;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// Time from detection to re-splice after which the client is reset.
    pub deadline: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            deadline: Duration::from_secs(10),
        }
    }
}

/// Where the two streams are joined again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resplice {
    /// Client-to-server: logged offset `c2s_logged` is alternate offset `c2s_alternate`.
    pub c2s_logged: u64,
    pub c2s_alternate: u64,
    /// Server-to-client: alternate offset `s2c_alternate` is logged offset `s2c_logged`.
    pub s2c_alternate: u64,
    pub s2c_logged: u64,
}

impl Resplice {
    /// The `proto::Splice` (`seq_delta`, `ack_delta`) joining the client's
    /// connection to the alternate connection, from the old splice's deltas,
    /// the failed connection's ISNs `(ssa, backend)` (whose offsets the log
    /// uses) and the alternate connection's ISNs `(ssa, alternate)`.
    pub fn splice_deltas(
        &self,
        old: (u32, u32),
        logged_isns: (u32, u32),
        alt_isns: (u32, u32),
    ) -> (u32, u32) {
        let seq = |isn: u32, off: u64| isn.wrapping_add(1).wrapping_add(off as u32);
        // Client-side sequence numbers of the splice points.
        let client_seq = seq(logged_isns.0, self.c2s_logged).wrapping_sub(old.0);
        let vip_seq = seq(logged_isns.1, self.s2c_logged).wrapping_sub(old.1);
        (
            seq(alt_isns.0, self.c2s_alternate).wrapping_sub(client_seq),
            seq(alt_isns.1, self.s2c_alternate).wrapping_sub(vip_seq),
        )
    }
}

/// Why the client connection is reset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResetReason {
    Plan(PlanError),
    /// The alternate's regenerated response differs from the logged one at
    /// this server-to-client offset: an unforeseen non-determinism.
    Mismatch {
        offset: u64,
    },
    /// The alternate's responses could not be parsed.
    AlternateGarbled(HttpError),
    AlternateClosed,
    Timeout,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop relaying the client's connection to the failed backend, on
    /// every proxy; client segments arriving until `Resplice` may be
    /// dropped (the client retransmits them).
    Unsplice,
    /// Send these logged server-to-client bytes to the client (again), and
    /// keep retransmitting them until acked.
    ResendToClient { range: Range<u64>, bytes: Vec<u8> },
    /// Tell the alternate backend T_L.
    ShareLastComplete { t_l: TxNum },
    /// Open a connection to the alternate backend (proxy side).
    ConnectAlternate,
    /// The alternate applies its stored state up to this transaction.
    ApplyState { through: TxNum },
    /// Send these bytes on the alternate connection, in order.
    SendToAlternate(Vec<u8>),
    /// What comes back from the alternate before the splice point: the
    /// responses of `replayed` transactions (discarded), then `compare`
    /// bytes checked against the logged ones. Feed everything the alternate
    /// sends to [`Recovery::handle_alternate_data`].
    Absorb { replayed: usize, compare: u64 },
    /// Install the new splice; alternate bytes not consumed go to the client.
    Resplice(Resplice),
    /// Send a RST to the client. Terminal.
    ResetClient(ResetReason),
    /// Recovery complete. Terminal.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Await {
        report: Option<(TxNum, TxNum)>,
        connected: bool,
    },
    Absorbing,
    Spliced,
    Finished,
}

/// The recovery of one connection.
#[derive(Debug)]
pub struct Recovery {
    log: LogSnapshot,
    txs: TxView,
    cp: Option<CrashPoint>,
    plan: Option<ReplayPlan>,
    state: State,
    actions: VecDeque<Action>,
    /// Parses the alternate connection (requests we send, responses back).
    alt: Transactionalizer,
    alt_sent: u64,
    alt_recv: u64,
    /// Alternate offset of the splice point, once the replays are answered.
    boundary: Option<u64>,
    client_acked: u64,
    deadline: Instant,
}

impl Recovery {
    /// Starts recovering from the frozen `log` and transactions, with the
    /// client's last ack `ack_cl` (logged server-to-client offset).
    pub fn new(
        now: Instant,
        cfg: RecoveryConfig,
        log: LogSnapshot,
        txs: TxView,
        ack_cl: u64,
    ) -> Self {
        let mut r = Recovery {
            log,
            txs,
            cp: None,
            plan: None,
            state: State::Await {
                report: None,
                connected: false,
            },
            actions: VecDeque::new(),
            alt: Transactionalizer::new(Arc::new(TagTable::conservative())),
            alt_sent: 0,
            alt_recv: 0,
            boundary: None,
            client_acked: ack_cl,
            deadline: now + cfg.deadline,
        };
        match plan::crash_point(&r.log, &r.txs, ack_cl) {
            Err(e) => r.reset(ResetReason::Plan(e)),
            Ok(cp) => {
                r.actions.push_back(Action::Unsplice);
                if !cp.resend.is_empty() {
                    let bytes = r
                        .log
                        .s2c
                        .get(cp.resend.clone())
                        .unwrap_or_default()
                        .to_vec();
                    r.actions.push_back(Action::ResendToClient {
                        range: cp.resend.clone(),
                        bytes,
                    });
                }
                r.actions
                    .push_back(Action::ShareLastComplete { t_l: cp.t_l });
                r.actions.push_back(Action::ConnectAlternate);
                r.cp = Some(cp);
            }
        }
        r
    }

    pub fn crash_point(&self) -> Option<&CrashPoint> {
        self.cp.as_ref()
    }

    pub fn replay_plan(&self) -> Option<&ReplayPlan> {
        self.plan.as_ref()
    }

    /// The original transaction number of the `k`-th request (from 1) on
    /// the alternate connection: the replayed ones, then T_SP, T_SP + 1, ...
    /// (for the transaction ids the alternate puts in its aux requests).
    pub fn original_tx(&self, k: u64) -> Option<TxNum> {
        let (cp, plan) = (self.cp.as_ref()?, self.plan.as_ref()?);
        let replays = plan.replay.len() as u64;
        match k {
            0 => None,
            k if k <= replays => plan.replay.get(k as usize - 1).copied(),
            k => Some(cp.t_sp + (k - replays - 1)),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    fn reset(&mut self, reason: ResetReason) {
        self.state = State::Finished;
        self.actions.push_back(Action::ResetClient(reason));
    }

    /// The alternate reported T_S and T_A.
    pub fn handle_state_report(&mut self, _now: Instant, t_s: TxNum, t_a: TxNum) {
        if let State::Await { report, connected } = self.state {
            if report.is_none() {
                self.state = State::Await {
                    report: Some((t_s, t_a)),
                    connected,
                };
                self.maybe_start();
            }
        }
    }

    /// The connection to the alternate is established.
    pub fn handle_alternate_connected(&mut self, _now: Instant) {
        if let State::Await { report, .. } = self.state {
            self.state = State::Await {
                report,
                connected: true,
            };
            self.maybe_start();
        }
    }

    fn send(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.alt.feed(Direction::ClientToServer, &bytes);
        self.alt_sent += bytes.len() as u64;
        self.actions.push_back(Action::SendToAlternate(bytes));
    }

    fn maybe_start(&mut self) {
        let State::Await {
            report: Some((t_s, t_a)),
            connected: true,
        } = self.state
        else {
            return;
        };
        let Some(cp) = self.cp.clone() else { return };
        let plan = match plan::replay_plan(&cp, &self.txs, &self.log, t_s, t_a) {
            Ok(p) => p,
            Err(e) => return self.reset(ResetReason::Plan(e)),
        };
        if plan.apply_through > t_s {
            self.actions.push_back(Action::ApplyState {
                through: plan.apply_through,
            });
        }
        for &num in &plan.replay {
            let range = self.txs.get(num).map(|t| t.req.clone()).unwrap_or_default();
            let bytes = self.log.c2s.get(range).unwrap_or_default().to_vec();
            self.send(bytes);
        }
        let tail = self
            .log
            .c2s
            .get(cp.tail.clone())
            .unwrap_or_default()
            .to_vec();
        self.send(tail);
        self.actions.push_back(Action::Absorb {
            replayed: plan.replay.len(),
            compare: cp.p,
        });
        if plan.replay.is_empty() {
            self.boundary = Some(cp.p);
        }
        self.plan = Some(plan);
        self.state = State::Absorbing;
        self.absorb(&[]);
    }

    /// Bytes from the alternate, in order; returns how many recovery
    /// consumed. The rest (only ever non-zero once `Resplice` was emitted)
    /// belongs to the client.
    pub fn handle_alternate_data(&mut self, _now: Instant, data: &[u8]) -> usize {
        if self.state != State::Absorbing {
            return 0;
        }
        self.absorb(data)
    }

    fn absorb(&mut self, data: &[u8]) -> usize {
        let (Some(cp), Some(plan)) = (self.cp.clone(), self.plan.as_ref()) else {
            return 0;
        };
        let replays = plan.replay.len() as u64;
        let start = self.alt_recv;
        let end = start + data.len() as u64;
        if self.boundary.is_none() {
            self.alt.feed(Direction::ServerToClient, data);
            if self.alt.last_complete() >= replays {
                let resp_end = self.alt.ends_of(replays).map_or(0, |e| e.1);
                self.boundary = Some(resp_end + cp.p);
            } else if let Some(e) = self.alt.error() {
                self.reset(ResetReason::AlternateGarbled(e));
                return data.len();
            }
        }
        let upto = self.boundary.map_or(end, |b| b.min(end));
        if let Some(b) = self.boundary {
            let cmp_from = b - cp.p;
            for off in start.max(cmp_from)..upto {
                let logged = cp.ack_tl + (off - cmp_from);
                let want = self.log.s2c.get(logged..logged + 1).map(|s| s[0]);
                if want != Some(data[(off - start) as usize]) {
                    self.reset(ResetReason::Mismatch { offset: logged });
                    return data.len();
                }
            }
        }
        self.alt_recv = upto;
        if self.boundary == Some(upto) {
            self.actions.push_back(Action::Resplice(Resplice {
                c2s_logged: cp.tail.end,
                c2s_alternate: self.alt_sent,
                s2c_alternate: upto,
                s2c_logged: cp.partial.end,
            }));
            self.state = State::Spliced;
            self.maybe_done();
        }
        (upto - start) as usize
    }

    /// The alternate closed its connection.
    pub fn handle_alternate_closed(&mut self, _now: Instant) {
        if matches!(self.state, State::Await { .. } | State::Absorbing) {
            self.reset(ResetReason::AlternateClosed);
        }
    }

    /// The client acknowledged server-to-client bytes below `ack` (logged offsets).
    pub fn handle_client_ack(&mut self, _now: Instant, ack: u64) {
        self.client_acked = self.client_acked.max(ack);
        self.maybe_done();
    }

    fn maybe_done(&mut self) {
        let resend_end = self.cp.as_ref().map_or(0, |c| c.resend.end);
        if self.state == State::Spliced && self.client_acked >= resend_end {
            self.state = State::Finished;
            self.actions.push_back(Action::Done);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        matches!(self.state, State::Await { .. } | State::Absorbing).then_some(self.deadline)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.deadline && matches!(self.state, State::Await { .. } | State::Absorbing) {
            self.reset(ResetReason::Timeout);
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}

#[cfg(test)]
mod tests;

//! The logger of one backend (paper §3, §5): for each spliced connection to
//! that backend it logs both directions ([`crate::log`]), cuts them into
//! tagged transactions ([`crate::http`]), times them for the adaptive
//! [`Detector`], trims what recovery can no longer need, and, when the
//! backend fails, freezes a connection into a [`Recovery`].
//!
//! What is kept (`keep_from`): client-to-server bytes from the request of
//! the first update transaction after T_S (the last one the alternate
//! confirmed applied, [`Logger::on_state_applied`]) or from the end of
//! T_L's request, whichever is earlier; server-to-client bytes from the end
//! of T_L's response (Ack_TL). Bytes are freed once also acknowledged by
//! their receiver. Transactions up to T_S are forgotten.
//!
//! The driver forwards only what [`Logger::on_segment`] returns, reports
//! every ack it forwards ([`Logger::on_ack`]; the client's acks are Ack_CL),
//! tells the alternate to apply state when [`LoggerEvent::ResponseLogged`]
//! comes out, sends the detector's probes ([`Logger::poll_transmit`]) and,
//! on [`LoggerEvent::BackendFailed`], calls [`Logger::recover`] for every
//! connection.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ftsplice_proto::Instant;

use crate::detector::{ConnKey, Detector, DetectorConfig, DetectorEvent, FailReason, Probe};
use crate::http::{HttpError, Transactionalizer, TxEvent, TxNum};
use crate::log::{Accepted, Budget, ConnLog, Direction, LogLimits};
use crate::plan::TxView;
use crate::recovery::{Recovery, RecoveryConfig};
use crate::tags::{TagTable, Tags};

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoggerConfig {
    pub limits: LogLimits,
    pub detector: DetectorConfig,
    pub recovery: RecoveryConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoggerEvent {
    /// Transaction `tx`'s response is completely logged: the alternate may
    /// apply its state (§4.1 step 5).
    ResponseLogged {
        conn: ConnKey,
        tx: TxNum,
        tags: Tags,
    },
    /// The connection's streams are not HTTP/1.1 the logger understands:
    /// it cannot be recovered.
    NotRecoverable { conn: ConnKey, error: HttpError },
    /// The backend is declared failed.
    BackendFailed(FailReason),
    /// The detector suspects the backend (probing it).
    BackendSuspect,
}

#[derive(Debug)]
struct Conn {
    log: ConnLog,
    http: Transactionalizer,
    /// T_S as confirmed by the alternate.
    applied: TxNum,
    reported_error: bool,
}

/// The logger of one backend's connections.
#[derive(Debug)]
pub struct Logger {
    cfg: LoggerConfig,
    table: Arc<TagTable>,
    budget: Budget,
    conns: HashMap<ConnKey, Conn>,
    detector: Detector,
    events: VecDeque<LoggerEvent>,
}

impl Logger {
    pub fn new(now: Instant, cfg: LoggerConfig, table: Arc<TagTable>) -> Self {
        Logger {
            cfg,
            table,
            budget: Budget::new(cfg.limits.global),
            conns: HashMap::new(),
            detector: Detector::new(cfg.detector, now),
            events: VecDeque::new(),
        }
    }

    /// Starts logging a new connection (at its SYN: offsets start at 0).
    pub fn open(&mut self, conn: ConnKey) {
        self.conns.entry(conn).or_insert_with(|| Conn {
            log: ConnLog::new(self.cfg.limits),
            http: Transactionalizer::new(self.table.clone()),
            applied: 0,
            reported_error: false,
        });
    }

    /// Forgets a connection and frees its log.
    pub fn close(&mut self, conn: ConnKey) {
        if let Some(mut c) = self.conns.remove(&conn) {
            c.log.release(&mut self.budget);
        }
        self.detector.remove_conn(conn);
    }

    /// Bytes held by all connections.
    pub fn held(&self) -> usize {
        self.budget.used()
    }

    pub fn conn_log(&self, conn: ConnKey) -> Option<&ConnLog> {
        self.conns.get(&conn).map(|c| &c.log)
    }

    pub fn transactions(&self, conn: ConnKey) -> Option<&Transactionalizer> {
        self.conns.get(&conn).map(|c| &c.http)
    }

    /// A data segment of `conn` at stream offset `offset`: logs it and
    /// returns what may be forwarded. Unknown connections log nothing.
    pub fn on_segment(
        &mut self,
        now: Instant,
        conn: ConnKey,
        dir: Direction,
        offset: u64,
        data: &[u8],
    ) -> Accepted {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Accepted {
                forward: offset..offset,
                withheld: None,
                newly_contiguous: 0..0,
            };
        };
        let a = c.log.accept(&mut self.budget, dir, offset, data);
        if !a.newly_contiguous.is_empty() {
            let bytes = c
                .log
                .read(dir, a.newly_contiguous.clone())
                .unwrap_or_default();
            if dir == Direction::ServerToClient {
                self.detector.on_response_bytes(now, conn);
            }
            c.http.feed(dir, &bytes);
            if c.log.fin(dir) == Some(c.log.end(dir)) {
                c.http.on_fin(dir);
            }
        }
        self.after_progress(now, conn);
        a
    }

    /// `dir`'s FIN is at offset `offset`.
    pub fn on_fin(&mut self, now: Instant, conn: ConnKey, dir: Direction, offset: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.log.set_fin(dir, offset);
        if c.log.end(dir) == offset {
            c.http.on_fin(dir);
        }
        self.after_progress(now, conn);
    }

    /// The receiver of `dir` acknowledged everything below `ack`.
    pub fn on_ack(&mut self, conn: ConnKey, dir: Direction, ack: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.log.on_ack(&mut self.budget, dir, ack);
        }
    }

    /// The alternate applied the state of `conn`'s transactions up to `t_s`.
    pub fn on_state_applied(&mut self, now: Instant, conn: ConnKey, t_s: TxNum) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.applied = c.applied.max(t_s.min(c.http.last_complete()));
        }
        self.after_progress(now, conn);
    }

    fn after_progress(&mut self, now: Instant, conn: ConnKey) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        while let Some(ev) = c.http.poll_event() {
            let kind_of = |n| c.http.get(n).map(|t| (t.kind, t.tags));
            match ev {
                TxEvent::RequestComplete(n) => {
                    if let Some((kind, _)) = kind_of(n) {
                        self.detector.on_request_end(now, conn, kind);
                    }
                }
                TxEvent::ResponseStarted(_) => self.detector.on_response_start(now, conn),
                TxEvent::ResponseComplete(n) => {
                    self.detector.on_response_end(now, conn);
                    if let Some((_, tags)) = kind_of(n) {
                        self.events
                            .push_back(LoggerEvent::ResponseLogged { conn, tx: n, tags });
                    }
                }
            }
        }
        if let (Some(error), false) = (c.http.error(), c.reported_error) {
            c.reported_error = true;
            self.events
                .push_back(LoggerEvent::NotRecoverable { conn, error });
        }
        // Release what recovery can no longer need.
        let t_l = c.http.last_complete();
        let (tl_req_end, ack_tl) = c.http.ends_of(t_l).unwrap_or((0, 0));
        let first_replay = c
            .http
            .transactions()
            .filter(|t| t.num > c.applied && t.num <= t_l && t.tags.needs_replay())
            .map(|t| t.req.start)
            .next();
        let c2s_keep = first_replay.map_or(tl_req_end, |s| s.min(tl_req_end));
        c.log
            .keep_from(&mut self.budget, Direction::ClientToServer, c2s_keep);
        c.log
            .keep_from(&mut self.budget, Direction::ServerToClient, ack_tl);
        c.http.forget_through(c.applied);
    }

    /// Freezes `conn` for recovery after its backend failed.
    pub fn recover(&self, now: Instant, conn: ConnKey) -> Option<Recovery> {
        let c = self.conns.get(&conn)?;
        let ack_cl = c.log.acked(Direction::ServerToClient);
        Some(Recovery::new(
            now,
            self.cfg.recovery,
            c.log.snapshot(),
            TxView::of(&c.http),
            ack_cl,
        ))
    }

    /// Connections being logged.
    pub fn conns(&self) -> impl Iterator<Item = ConnKey> + '_ {
        self.conns.keys().copied()
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.detector.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.detector.handle_timeout(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Probe> {
        self.detector.poll_transmit()
    }

    pub fn on_probe_reply(&mut self, now: Instant, id: u64) {
        self.detector.on_probe_reply(now, id);
    }

    pub fn poll_event(&mut self) -> Option<LoggerEvent> {
        while let Some(e) = self.detector.poll_event() {
            match e {
                DetectorEvent::Failed(r) => self.events.push_back(LoggerEvent::BackendFailed(r)),
                DetectorEvent::Suspect { .. } => self.events.push_back(LoggerEvent::BackendSuspect),
                DetectorEvent::Cleared => {}
            }
        }
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests;

//! The adaptive backend failure detector of paper §3.5, sans-IO. One
//! `Detector` watches one backend from its logger, over all the backend's
//! connections.
//!
//! **While requests are outstanding** no heartbeats are used. For each
//! request [`Kind`] the detector keeps moving averages and mean deviations
//! (RFC 6298 style, gains 1/8 and 1/4) of
//! 1. request end -> response start ("first byte"), and
//! 2. the gaps between successive response segments ("gap"),
//!
//! and arms, per connection, a deadline of
//! `clamp(multiplier * (avg + 4 * dev), floor, ceiling)` after the request's
//! end (or after the previous response's end, for pipelined requests) and
//! then after every response segment. A kind with no samples yet uses the
//! configured initial timeout. The paper's second measure is the response's
//! whole duration; a duration timeout cannot tell a large response from a
//! hung one, so the gap is what arms the deadline during a response. The
//! durations are still averaged and reported ([`Detector::stats`]).
//!
//! When a deadline passes the backend is declared [`DetectorEvent::Failed`],
//! or, with [`DetectorConfig::confirm`], first [`DetectorEvent::Suspect`]ed
//! and probed: a probe reply (or any response byte) within
//! `probe_timeout` clears the suspicion ([`DetectorEvent::Cleared`]) and
//! re-arms that connection's deadline at twice its length; silence fails it.
//!
//! **While idle** (nothing outstanding) a low-rate probe is sent every
//! `idle_interval` after the last activity; `idle_misses` unanswered probes
//! in a row fail the backend. The driver sends each [`Probe`] from
//! [`Detector::poll_transmit`] however it likes (a TCP connect, an HTTP
//! health check) and reports replies with [`Detector::on_probe_reply`].
//!
//! Failure is terminal until [`Detector::reset`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ftsplice_proto::Instant;

use crate::tags::Kind;

/// A connection, as the driver names it.
pub type ConnKey = u64;

/// Tuning of the detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Factor on `avg + 4 * dev`.
    pub multiplier: f64,
    /// Shortest timeout ever used.
    pub floor: Duration,
    /// Longest timeout ever used.
    pub ceiling: Duration,
    /// First-byte timeout of a kind without samples.
    pub initial_first_byte: Duration,
    /// Gap timeout of a kind without samples.
    pub initial_gap: Duration,
    /// Probe once after this much idle time.
    pub idle_interval: Duration,
    /// How long a probe may take to be answered.
    pub probe_timeout: Duration,
    /// Unanswered idle probes in a row that fail the backend.
    pub idle_misses: u32,
    /// Probe before failing on a request timeout.
    pub confirm: bool,
}

impl Default for DetectorConfig {
    /// Conservative LAN values: like the paper's Action 1 settings
    /// (detection within 1-2 s of a crash).
    fn default() -> Self {
        DetectorConfig {
            multiplier: 2.0,
            floor: Duration::from_millis(200),
            ceiling: Duration::from_secs(30),
            initial_first_byte: Duration::from_secs(1),
            initial_gap: Duration::from_secs(1),
            idle_interval: Duration::from_secs(3),
            probe_timeout: Duration::from_millis(500),
            idle_misses: 2,
            confirm: false,
        }
    }
}

/// A moving average and mean deviation, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ewma {
    pub avg: f64,
    pub dev: f64,
    pub samples: u64,
}

impl Ewma {
    fn sample(&mut self, d: Duration) {
        let s = d.as_micros() as f64;
        if self.samples == 0 {
            self.avg = s;
            self.dev = s / 2.0;
        } else {
            self.dev = 0.75 * self.dev + 0.25 * (self.avg - s).abs();
            self.avg = 0.875 * self.avg + 0.125 * s;
        }
        self.samples += 1;
    }

    fn timeout(&self, cfg: &DetectorConfig, initial: Duration) -> Duration {
        let t = if self.samples == 0 {
            initial
        } else {
            Duration::from_micros((cfg.multiplier * (self.avg + 4.0 * self.dev)) as u64)
        };
        t.clamp(cfg.floor, cfg.ceiling)
    }
}

/// Timing statistics of one request kind.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KindStats {
    pub first_byte: Ewma,
    pub gap: Ewma,
    pub duration: Ewma,
}

/// Which wait timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first response byte.
    FirstByte,
    /// Waiting for the next response segment.
    Response,
}

/// Why the backend was declared failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    Timeout {
        conn: ConnKey,
        kind: Kind,
        phase: Phase,
    },
    IdleProbes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorEvent {
    Suspect {
        conn: ConnKey,
        kind: Kind,
        phase: Phase,
    },
    Cleared,
    Failed(FailReason),
}

/// A liveness probe to send to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub id: u64,
}

#[derive(Clone, Copy, Debug)]
struct Active {
    kind: Kind,
    started: Instant,
    last: Instant,
}

#[derive(Clone, Debug, Default)]
struct ConnTimer {
    waiting: VecDeque<(Kind, Instant)>,
    active: Option<Active>,
    last_end: Instant,
    /// Deadlines are measured from no earlier than this (after a cleared suspicion).
    grace_from: Instant,
    /// Cleared suspicions since the last progress: doubles the timeout each.
    rearms: u32,
    suspected: bool,
}

#[derive(Clone, Copy, Debug)]
enum Cause {
    Idle,
    Confirm(FailReason),
}

/// The detector of one backend.
#[derive(Debug)]
pub struct Detector {
    cfg: DetectorConfig,
    kinds: HashMap<Kind, KindStats>,
    conns: HashMap<ConnKey, ConnTimer>,
    last_activity: Instant,
    probe: Option<(u64, Instant, Cause)>,
    next_probe: u64,
    misses: u32,
    failed: bool,
    transmit: VecDeque<Probe>,
    events: VecDeque<DetectorEvent>,
}

impl Detector {
    pub fn new(cfg: DetectorConfig, now: Instant) -> Self {
        Detector {
            cfg,
            kinds: HashMap::new(),
            conns: HashMap::new(),
            last_activity: now,
            probe: None,
            next_probe: 1,
            misses: 0,
            failed: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Forgets the failure (the backend was repaired) and all connections.
    pub fn reset(&mut self, now: Instant) {
        let kinds = std::mem::take(&mut self.kinds);
        *self = Detector::new(self.cfg, now);
        self.kinds = kinds;
    }

    pub fn is_failed(&self) -> bool {
        self.failed
    }

    pub fn stats(&self, kind: Kind) -> KindStats {
        self.kinds.get(&kind).copied().unwrap_or_default()
    }

    /// Current (first-byte, gap) timeouts of `kind`.
    pub fn timeouts(&self, kind: Kind) -> (Duration, Duration) {
        let s = self.stats(kind);
        (
            s.first_byte.timeout(&self.cfg, self.cfg.initial_first_byte),
            s.gap.timeout(&self.cfg, self.cfg.initial_gap),
        )
    }

    /// A request of `kind` on `conn` was completely forwarded to the backend.
    pub fn on_request_end(&mut self, now: Instant, conn: ConnKey, kind: Kind) {
        self.conns
            .entry(conn)
            .or_default()
            .waiting
            .push_back((kind, now));
    }

    /// The first byte of the next response on `conn` arrived.
    pub fn on_response_start(&mut self, now: Instant, conn: ConnKey) {
        self.activity(now);
        let c = self.conns.entry(conn).or_default();
        let kind = match c.waiting.pop_front() {
            Some((kind, at)) => {
                let from = at.max(c.last_end);
                self.kinds
                    .entry(kind)
                    .or_default()
                    .first_byte
                    .sample(now - from);
                kind
            }
            // An early response (before the request ended): nothing to time.
            None => Kind::Default,
        };
        c.active = Some(Active {
            kind,
            started: now,
            last: now,
        });
        self.progress(conn);
    }

    /// A response segment arrived on `conn`.
    pub fn on_response_bytes(&mut self, now: Instant, conn: ConnKey) {
        self.activity(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(a) = c.active.as_mut() {
            self.kinds
                .entry(a.kind)
                .or_default()
                .gap
                .sample(now - a.last);
            a.last = now;
        }
        self.progress(conn);
    }

    /// The response on `conn` is complete.
    pub fn on_response_end(&mut self, now: Instant, conn: ConnKey) {
        self.activity(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(a) = c.active.take() {
            self.kinds
                .entry(a.kind)
                .or_default()
                .duration
                .sample(now - a.started);
        }
        c.last_end = now;
        self.progress(conn);
    }

    /// `conn` is gone.
    pub fn remove_conn(&mut self, conn: ConnKey) {
        self.conns.remove(&conn);
    }

    fn activity(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
        self.misses = 0;
    }

    /// `conn` made progress: its timeout length resets, its suspicion clears.
    fn progress(&mut self, conn: ConnKey) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.rearms = 0;
        if !std::mem::take(&mut c.suspected) {
            return;
        }
        self.events.push_back(DetectorEvent::Cleared);
        if !self.conns.values().any(|c| c.suspected) {
            if let Some((_, _, Cause::Confirm(_))) = self.probe {
                self.probe = None;
            }
        }
    }

    /// A reply to probe `id` arrived.
    pub fn on_probe_reply(&mut self, now: Instant, id: u64) {
        let Some((pid, _, cause)) = self.probe else {
            return;
        };
        if pid != id || self.failed {
            return;
        }
        self.probe = None;
        self.activity(now);
        if let Cause::Confirm(_) = cause {
            // Alive but slow: every suspected connection gets a longer wait.
            for c in self.conns.values_mut().filter(|c| c.suspected) {
                c.suspected = false;
                c.rearms += 1;
                c.grace_from = now;
            }
            self.events.push_back(DetectorEvent::Cleared);
        }
    }

    fn deadline(&self, c: &ConnTimer) -> Option<(Instant, Kind, Phase)> {
        let (base, kind, phase) = match (&c.active, c.waiting.front()) {
            (Some(a), _) => (a.last, a.kind, Phase::Response),
            (None, Some((k, at))) => ((*at).max(c.last_end), *k, Phase::FirstByte),
            (None, None) => return None,
        };
        let (fb, gap) = self.timeouts(kind);
        let t = if phase == Phase::Response { gap } else { fb };
        let t = t.saturating_mul(1 << c.rearms.min(16));
        Some((base.max(c.grace_from) + t, kind, phase))
    }

    fn outstanding(&self) -> bool {
        self.conns
            .values()
            .any(|c| c.active.is_some() || !c.waiting.is_empty())
    }

    /// When [`Detector::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed {
            return None;
        }
        let conns = self
            .conns
            .values()
            .filter(|c| !c.suspected)
            .filter_map(|c| self.deadline(c).map(|d| d.0))
            .min();
        let probe = match self.probe {
            Some((_, at, _)) => Some(at),
            None if !self.outstanding() => Some(self.last_activity + self.cfg.idle_interval),
            None => None,
        };
        [conns, probe].into_iter().flatten().min()
    }

    fn send_probe(&mut self, now: Instant, cause: Cause) {
        let id = self.next_probe;
        self.next_probe += 1;
        self.probe = Some((id, now + self.cfg.probe_timeout, cause));
        self.transmit.push_back(Probe { id });
    }

    fn fail(&mut self, reason: FailReason) {
        self.failed = true;
        self.probe = None;
        self.events.push_back(DetectorEvent::Failed(reason));
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failed {
            return;
        }
        if let Some((_, at, cause)) = self.probe {
            if now >= at {
                self.probe = None;
                match cause {
                    Cause::Confirm(reason) => return self.fail(reason),
                    Cause::Idle => {
                        self.misses += 1;
                        if self.misses >= self.cfg.idle_misses {
                            return self.fail(FailReason::IdleProbes);
                        }
                        self.send_probe(now, Cause::Idle);
                    }
                }
            }
        }
        let expired = self
            .conns
            .iter()
            .filter(|(_, c)| !c.suspected)
            .filter_map(|(k, c)| self.deadline(c).map(|d| (d, *k)))
            .filter(|((at, ..), _)| *at <= now)
            .min_by_key(|((at, ..), k)| (*at, *k));
        if let Some(((_, kind, phase), conn)) = expired {
            let reason = FailReason::Timeout { conn, kind, phase };
            if !self.cfg.confirm {
                return self.fail(reason);
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.suspected = true;
            }
            self.events
                .push_back(DetectorEvent::Suspect { conn, kind, phase });
            // One confirmation probe decides for every suspected connection
            // (it replaces an idle probe in flight).
            if !matches!(self.probe, Some((_, _, Cause::Confirm(_)))) {
                self.send_probe(now, Cause::Confirm(reason));
            }
            return;
        }
        if self.probe.is_none()
            && !self.outstanding()
            && now >= self.last_activity + self.cfg.idle_interval
        {
            self.send_probe(now, Cause::Idle);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Probe> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DetectorEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests;

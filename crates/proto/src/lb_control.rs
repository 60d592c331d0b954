//! The lb daemon's membership state: which configured proxies are alive (from
//! their heartbeats, through the [`FailureDetector`]), which of those the lb
//! can reach (their MAC is resolved; the driver reports it), and therefore
//! which proxies and workload factors belong in the data-plane table.
//!
//! Every change comes out as an [`LbControlEvent`] with its reason, so the
//! daemon can log it; [`LbControlEvent::TableChanged`] follows every change
//! of [`LbControl::table_members`], which is what the driver pushes to the
//! data plane (weighted by `W_i / ΣW`, see [`crate::lb::SlotTable`]).
//!
//! Heartbeats from ids that are not configured are dropped and counted: the
//! lb only forwards to proxies whose address it knows.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use core::net::Ipv4Addr;
use core::time::Duration;

use crate::detector::{DetectorConfig, DetectorEvent, FailureDetector};
use crate::heartbeat::{Heartbeat, HeartbeatError};
use crate::ids::ProxyId;
use crate::lb::ProxySet;
use crate::Instant;

/// Why a proxy left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// No heartbeat for `missed` intervals; `silence` is the time since the
    /// last one when the detector fired, `others` the shortest silence of
    /// the other configured proxies at that moment (`None`: none heard
    /// yet). An `others` as long as `silence` means every proxy went quiet
    /// together, which points at the lb or the path rather than the proxy.
    HeartbeatsMissed {
        missed: u32,
        silence: Duration,
        others: Option<Duration>,
    },
    /// A heartbeat with a new incarnation: the proxy restarted between
    /// beats (it comes back up at once).
    Restarted { old_epoch: u32, new_epoch: u32 },
}

/// A membership change, with its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbControlEvent {
    /// First heartbeat (or first after being down) from a configured proxy.
    ProxyUp {
        id: ProxyId,
        weight: u32,
        epoch: u32,
    },
    ProxyDown {
        id: ProxyId,
        reason: DownReason,
    },
    /// The workload factor `W_i` a proxy announces changed.
    WeightChanged {
        id: ProxyId,
        from: u32,
        to: u32,
    },
    /// The driver found (or lost) the proxy's link-layer address.
    Reachable {
        id: ProxyId,
        reachable: bool,
    },
    /// [`LbControl::table_members`] changed: rebuild the data-plane table.
    TableChanged,
    /// The proxy missed its beats while every proxy was silent together:
    /// the verdict is held (`FailureDetector`'s common-silence rule);
    /// `silence` since its last beat. Reported once per silence.
    Held {
        id: ProxyId,
        silence: Duration,
    },
}

/// Why a heartbeat datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatDrop {
    #[error(transparent)]
    Malformed(#[from] HeartbeatError),
    #[error("heartbeat from unconfigured proxy id {0}")]
    UnknownProxy(u16),
}

impl HeartbeatDrop {
    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            HeartbeatDrop::Malformed(HeartbeatError::Truncated(_)) => "truncated",
            HeartbeatDrop::Malformed(HeartbeatError::BadMagic) => "bad_magic",
            HeartbeatDrop::Malformed(HeartbeatError::UnsupportedVersion(_)) => "version",
            HeartbeatDrop::Malformed(HeartbeatError::LengthMismatch { .. }) => "length",
            HeartbeatDrop::Malformed(HeartbeatError::ReservedBits) => "reserved_bits",
            HeartbeatDrop::UnknownProxy(_) => "unknown_proxy",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Member {
    addr: Ipv4Addr,
    reachable: bool,
    last_heard: Option<Instant>,
    epoch: u32,
    weight: u32,
}

/// Counters of the control state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbControlStats {
    pub accepted: u64,
    pub dropped: u64,
    /// Proxies declared down because their heartbeats stopped.
    pub detections: u64,
    pub restarts: u64,
    /// Suspects whose verdict was held because every proxy was silent
    /// together (`FailureDetector`'s common-silence rule).
    pub held: u64,
}

/// The lb's membership state machine.
#[derive(Clone, Debug)]
pub struct LbControl {
    detector: FailureDetector,
    members: BTreeMap<ProxyId, Member>,
    events: VecDeque<LbControlEvent>,
    stats: LbControlStats,
    table: ProxySet,
    /// Held suspects already reported.
    held: BTreeSet<ProxyId>,
}

impl LbControl {
    /// `proxies`: the configured proxies (id, real address). None is
    /// reachable until [`LbControl::set_reachable`] says so.
    pub fn new(
        cfg: DetectorConfig,
        proxies: impl IntoIterator<Item = (ProxyId, Ipv4Addr)>,
    ) -> Self {
        let members = proxies
            .into_iter()
            .map(|(id, addr)| {
                (
                    id,
                    Member {
                        addr,
                        reachable: false,
                        last_heard: None,
                        epoch: 0,
                        weight: 0,
                    },
                )
            })
            .collect();
        LbControl {
            detector: FailureDetector::new(cfg),
            members,
            events: VecDeque::new(),
            stats: LbControlStats::default(),
            table: ProxySet::new(),
            held: BTreeSet::new(),
        }
    }

    pub fn stats(&self) -> LbControlStats {
        LbControlStats {
            held: self.detector.stats().held,
            ..self.stats
        }
    }

    /// Other traffic on the heartbeat socket (the peer lb's beats) arrived
    /// at `at`: evidence that this lb was receiving then
    /// ([`FailureDetector::handle_heard`]).
    pub fn handle_heard(&mut self, at: Instant) {
        self.detector.handle_heard(at);
        self.drain(at, 0);
    }

    /// Configured proxies with their addresses, in id order.
    pub fn configured(&self) -> impl Iterator<Item = (ProxyId, Ipv4Addr)> + '_ {
        self.members.iter().map(|(&id, m)| (id, m.addr))
    }

    /// Proxies the detector considers up, with their weights.
    pub fn live(&self) -> impl Iterator<Item = (ProxyId, u32)> + '_ {
        self.detector.live()
    }

    pub fn is_up(&self, id: ProxyId) -> bool {
        self.detector.is_up(id)
    }

    /// The proxies the data plane may send to (up and reachable) with their
    /// workload factors.
    pub fn table_members(&self) -> &ProxySet {
        &self.table
    }

    /// Decodes and handles a heartbeat datagram received at `now`.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> Result<ProxyId, HeartbeatDrop> {
        let r = Heartbeat::decode(data)
            .map_err(HeartbeatDrop::from)
            .and_then(|hb| self.handle_heartbeat(now, &hb).map(|()| hb.id));
        if r.is_err() {
            self.stats.dropped += 1;
        }
        r
    }

    /// Handles a decoded heartbeat received at `now`.
    pub fn handle_heartbeat(&mut self, now: Instant, hb: &Heartbeat) -> Result<(), HeartbeatDrop> {
        let Some(m) = self.members.get_mut(&hb.id) else {
            return Err(HeartbeatDrop::UnknownProxy(hb.id.0));
        };
        let old_epoch = m.epoch;
        self.detector.handle_heartbeat(now, hb);
        // The detector ignores stale beats; only count what it accepted.
        let accepted = self.detector.stats().accepted;
        if accepted > self.stats.accepted {
            self.stats.accepted = accepted;
            m.last_heard = Some(now);
            m.epoch = hb.epoch;
        }
        self.drain(now, old_epoch);
        Ok(())
    }

    /// The driver resolved (or lost) `id`'s link-layer address.
    pub fn set_reachable(&mut self, id: ProxyId, reachable: bool) {
        if let Some(m) = self.members.get_mut(&id) {
            if m.reachable != reachable {
                m.reachable = reachable;
                self.events
                    .push_back(LbControlEvent::Reachable { id, reachable });
                self.refresh_table();
            }
        }
    }

    pub fn is_reachable(&self, id: ProxyId) -> bool {
        self.members.get(&id).is_some_and(|m| m.reachable)
    }

    /// When [`LbControl::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.detector.poll_timeout()
    }

    /// Declares down the proxies silent for too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.detector.handle_timeout(now);
        self.drain(now, 0);
    }

    /// The receiver has handed over every heartbeat that arrived before
    /// `at` (see [`FailureDetector::handle_listened`]): from then on,
    /// proxies are only declared down for silence the receiver listened
    /// through, and a `silence` reported in [`DownReason`] is counted up to
    /// the watermark.
    pub fn handle_listened(&mut self, at: Instant) {
        self.detector.handle_listened(at);
        self.drain(at, 0);
    }

    pub fn poll_event(&mut self) -> Option<LbControlEvent> {
        self.events.pop_front()
    }

    fn drain(&mut self, now: Instant, old_epoch: u32) {
        for (&id, m) in &self.members {
            if !self.detector.is_held(id) {
                self.held.remove(&id);
            } else if self.held.insert(id) {
                let silence = m
                    .last_heard
                    .map_or(Duration::ZERO, |t| now.saturating_since(t));
                self.events.push_back(LbControlEvent::Held { id, silence });
            }
        }
        let missed = self.detector.config().missed.max(1);
        while let Some(ev) = self.detector.poll_event() {
            match ev {
                DetectorEvent::ProxyDown { id } => {
                    let Some(m) = self.members.get(&id) else {
                        continue;
                    };
                    // A down immediately followed by an up in the same drain
                    // is the detector's restart signal.
                    let reason = if self.detector.is_up(id) {
                        self.stats.restarts += 1;
                        DownReason::Restarted {
                            old_epoch,
                            new_epoch: m.epoch,
                        }
                    } else {
                        self.stats.detections += 1;
                        let others = self
                            .members
                            .iter()
                            .filter(|(&o, _)| o != id)
                            .filter_map(|(_, o)| o.last_heard)
                            .map(|t| now.saturating_since(t))
                            .min();
                        DownReason::HeartbeatsMissed {
                            missed,
                            silence: m
                                .last_heard
                                .map_or(Duration::ZERO, |t| now.saturating_since(t)),
                            others,
                        }
                    };
                    self.events
                        .push_back(LbControlEvent::ProxyDown { id, reason });
                }
                DetectorEvent::ProxyUp { id, weight } => {
                    if let Some(m) = self.members.get_mut(&id) {
                        m.weight = weight;
                        self.events.push_back(LbControlEvent::ProxyUp {
                            id,
                            weight,
                            epoch: m.epoch,
                        });
                    }
                }
                DetectorEvent::WeightChanged { id, weight } => {
                    if let Some(m) = self.members.get_mut(&id) {
                        let from = m.weight;
                        m.weight = weight;
                        self.events.push_back(LbControlEvent::WeightChanged {
                            id,
                            from,
                            to: weight,
                        });
                    }
                }
            }
        }
        self.refresh_table();
    }

    fn refresh_table(&mut self) {
        let mut next = ProxySet::new();
        for (id, w) in self.detector.live() {
            if self.members.get(&id).is_some_and(|m| m.reachable) {
                next.upsert(id, w);
            }
        }
        if next != self.table {
            self.table = next;
            self.events.push_back(LbControlEvent::TableChanged);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LbControlEvent::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn p(n: u16) -> ProxyId {
        ProxyId(n)
    }

    fn beat(id: u16, epoch: u32, seq: u64, w: u32) -> Vec<u8> {
        Heartbeat {
            id: p(id),
            epoch,
            seq,
            workload: w,
        }
        .encode()
        .to_vec()
    }

    fn ctl() -> LbControl {
        LbControl::new(
            DetectorConfig {
                interval: Duration::from_millis(10),
                missed: 3,
                hold: 0,
            },
            [
                (p(1), Ipv4Addr::new(198, 18, 0, 11)),
                (p(2), Ipv4Addr::new(198, 18, 0, 12)),
            ],
        )
    }

    fn drain(c: &mut LbControl) -> Vec<LbControlEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn members(c: &LbControl) -> Vec<(ProxyId, u32)> {
        c.table_members().iter().collect()
    }

    #[test]
    fn table_holds_live_and_reachable_proxies_only() {
        let mut c = ctl();
        c.handle_datagram(ms(0), &beat(1, 7, 0, 100)).unwrap();
        assert_eq!(
            drain(&mut c),
            [ProxyUp {
                id: p(1),
                weight: 100,
                epoch: 7
            }]
        );
        assert!(members(&c).is_empty(), "not reachable yet");
        c.set_reachable(p(1), true);
        c.set_reachable(p(2), true);
        assert_eq!(
            drain(&mut c),
            [
                Reachable {
                    id: p(1),
                    reachable: true
                },
                TableChanged,
                Reachable {
                    id: p(2),
                    reachable: true
                },
            ]
        );
        assert_eq!(members(&c), [(p(1), 100)]);
        c.handle_datagram(ms(1), &beat(2, 1, 0, 300)).unwrap();
        assert_eq!(members(&c), [(p(1), 100), (p(2), 300)]);
        assert_eq!(drain(&mut c).last(), Some(&TableChanged));
        c.set_reachable(p(2), false);
        assert_eq!(members(&c), [(p(1), 100)]);
    }

    #[test]
    fn missed_heartbeats_take_a_proxy_out_with_the_silence_measured() {
        let mut c = ctl();
        c.set_reachable(p(1), true);
        c.set_reachable(p(2), true);
        for i in 0..5u64 {
            c.handle_datagram(ms(10 * i), &beat(1, 1, i, 5)).unwrap();
            c.handle_datagram(ms(10 * i), &beat(2, 1, i, 5)).unwrap();
        }
        drain(&mut c);
        // p1 stops after its beat at 40 ms; p2 keeps beating.
        for i in 5..8u64 {
            c.handle_datagram(ms(10 * i), &beat(2, 1, i, 5)).unwrap();
        }
        assert_eq!(c.poll_timeout(), Some(ms(70)));
        c.handle_timeout(ms(69));
        assert!(drain(&mut c).is_empty());
        c.handle_timeout(ms(70));
        assert_eq!(
            drain(&mut c),
            [
                ProxyDown {
                    id: p(1),
                    reason: DownReason::HeartbeatsMissed {
                        missed: 3,
                        silence: Duration::from_millis(30),
                        others: Some(Duration::ZERO)
                    }
                },
                TableChanged
            ]
        );
        assert_eq!(members(&c), [(p(2), 5)]);
        assert_eq!(c.stats().detections, 1);
        // It comes back with its next beat.
        c.handle_datagram(ms(200), &beat(1, 1, 9, 5)).unwrap();
        assert_eq!(members(&c), [(p(1), 5), (p(2), 5)]);
    }

    #[test]
    fn with_a_watermark_the_silence_is_judged_where_the_receiver_listened() {
        let mut c = ctl();
        c.set_reachable(p(1), true);
        c.handle_datagram(ms(0), &beat(1, 1, 0, 5)).unwrap();
        c.handle_listened(ms(1));
        drain(&mut c);
        assert_eq!(c.poll_timeout(), None);
        // The driver's loop was late by 300 ms; the receiver thread kept
        // time-stamping the beats as they arrived.
        c.handle_timeout(ms(300));
        assert!(c.is_up(p(1)));
        for i in 1..30u64 {
            c.handle_datagram(ms(10 * i), &beat(1, 1, i, 5)).unwrap();
        }
        c.handle_listened(ms(301));
        assert!(drain(&mut c).is_empty(), "no false suspicion");
        c.handle_listened(ms(320));
        assert_eq!(
            drain(&mut c),
            [
                ProxyDown {
                    id: p(1),
                    reason: DownReason::HeartbeatsMissed {
                        missed: 3,
                        silence: Duration::from_millis(30),
                        others: None
                    }
                },
                TableChanged
            ]
        );
    }

    #[test]
    fn a_common_silence_is_reported_held_and_no_proxy_leaves_the_table() {
        let mut c = LbControl::new(
            DetectorConfig {
                interval: Duration::from_millis(10),
                missed: 3,
                hold: 2,
            },
            [
                (p(1), Ipv4Addr::new(198, 18, 0, 11)),
                (p(2), Ipv4Addr::new(198, 18, 0, 12)),
            ],
        );
        c.set_reachable(p(1), true);
        c.set_reachable(p(2), true);
        c.handle_datagram(ms(0), &beat(1, 1, 0, 5)).unwrap();
        c.handle_datagram(ms(3), &beat(2, 1, 0, 5)).unwrap();
        c.handle_listened(ms(4));
        drain(&mut c);
        // Nothing from anyone until 45 (a pause of the whole machine).
        c.handle_listened(ms(31));
        c.handle_listened(ms(40));
        assert_eq!(
            drain(&mut c),
            [
                Held {
                    id: p(1),
                    silence: Duration::from_millis(31)
                },
                Held {
                    id: p(2),
                    silence: Duration::from_millis(37)
                }
            ]
        );
        assert_eq!(c.stats().held, 2);
        c.handle_datagram(ms(45), &beat(1, 1, 1, 5)).unwrap();
        c.handle_datagram(ms(45), &beat(2, 1, 1, 5)).unwrap();
        c.handle_listened(ms(46));
        assert!(drain(&mut c).is_empty());
        assert_eq!(members(&c), [(p(1), 5), (p(2), 5)]);
        assert_eq!(c.stats().detections, 0);
    }

    #[test]
    fn restart_and_weight_change_are_reported_with_reasons() {
        let mut c = ctl();
        c.set_reachable(p(1), true);
        c.handle_datagram(ms(0), &beat(1, 1, 0, 5)).unwrap();
        drain(&mut c);
        c.handle_datagram(ms(10), &beat(1, 1, 1, 8)).unwrap();
        assert_eq!(
            drain(&mut c),
            [
                WeightChanged {
                    id: p(1),
                    from: 5,
                    to: 8
                },
                TableChanged
            ]
        );
        c.handle_datagram(ms(15), &beat(1, 2, 0, 8)).unwrap();
        assert_eq!(
            drain(&mut c),
            [
                ProxyDown {
                    id: p(1),
                    reason: DownReason::Restarted {
                        old_epoch: 1,
                        new_epoch: 2
                    }
                },
                ProxyUp {
                    id: p(1),
                    weight: 8,
                    epoch: 2
                }
            ]
        );
        // Down and up again in one step: the table is unchanged.
        assert_eq!(members(&c), [(p(1), 8)]);
        assert_eq!(c.stats().restarts, 1);
        assert_eq!(c.stats().detections, 0);
    }

    #[test]
    fn unknown_ids_and_garbage_are_dropped_and_counted() {
        let mut c = ctl();
        assert_eq!(
            c.handle_datagram(ms(0), &beat(9, 1, 0, 5)),
            Err(HeartbeatDrop::UnknownProxy(9))
        );
        assert!(matches!(
            c.handle_datagram(ms(0), b"nonsense"),
            Err(HeartbeatDrop::Malformed(_))
        ));
        assert_eq!(c.stats().dropped, 2);
        assert!(drain(&mut c).is_empty());
        assert_eq!(HeartbeatDrop::UnknownProxy(9).label(), "unknown_proxy");
    }

    #[test]
    fn stale_beats_do_not_refresh_liveness() {
        let mut c = ctl();
        c.handle_datagram(ms(0), &beat(1, 1, 5, 5)).unwrap();
        // A replayed old beat at 25 ms must not keep p1 alive.
        c.handle_datagram(ms(25), &beat(1, 1, 4, 5)).unwrap();
        c.handle_timeout(ms(30));
        assert!(!c.is_up(p(1)));
    }
}

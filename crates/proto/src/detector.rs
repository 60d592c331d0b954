//! Heartbeat failure detector (the LB side of [`crate::heartbeat`]).
//!
//! A proxy is up from its first valid heartbeat and declared down when no
//! heartbeat arrived for `missed` intervals (default 3, paper §8.3).
//!
//! Detection bound: let `t` be the interval and `k = missed`. The detector
//! declares a proxy down at `last_heard + k·t`. The proxy beats every `t`, so
//! it failed somewhere in `[last_heard, last_heard + t)` (after its last
//! beat, before the next one would have been sent). Counting from the
//! failure, detection therefore takes between `(k-1)·t` and `k·t`, plus the
//! heartbeat's one-way delay variation and the caller's timer slack: for 3
//! missed beats, `2t..3t`, as in the paper. A single lost heartbeat never
//! causes a false positive when `k ≥ 2`.
//!
//! Receiver stalls: the detector can only blame a proxy for silence its
//! receiver actually listened through. A driver that reads the heartbeat
//! socket on its own thread reports, with [`FailureDetector::handle_listened`],
//! the instant up to which every datagram that arrived has been handed
//! over (the socket was seen empty then). From the first such report on,
//! proxies are declared down only when `last_heard + k·t` is at or before
//! that watermark, never because the consumer (or the receiver) was
//! descheduled while beats queued up in the socket. Heartbeats are then
//! handled with their arrival time, not the time the consumer got to them.
//!
//! Common silences (`DetectorConfig::hold`, off at 0): when *every* peer
//! went quiet together, the observer or its path is the likelier culprit
//! than all peers at once: a whole-machine pause (VM steal, a CPU hog
//! above every daemon's priority) stops the senders too, and when it
//! ends the receiver may find its socket empty, and report a watermark,
//! before any sender ran again. Let `g = t/2` (the grace). With
//! `hold = h`, a peer `p` past its deadline (`last_heard(p) + k·t`) is
//! declared down only when either
//!
//! - evidence: some other peer (or other traffic the driver reports with
//!   [`FailureDetector::handle_heard`]) arrived at some `e >=
//!   last_heard(p) + (k-1)·t - g`, and the judgement is at or after `e +
//!   g`: the observer received beats after `p` had missed its beats, and
//!   long enough ago that `p`'s beats queued behind the same stall would
//!   be in by now (they arrive within `g` of each other);
//! - or the fallback bound `last_heard(p) + (k+h)·t` has passed (a lone
//!   peer, or every peer crashing together, is still declared down).
//!
//! Bounds (`j < g`: how late a beat may arrive):
//! - A crash while another peer keeps beating every `t` is declared at the
//!   first judgement at or after `last_heard(p) + k·t` when that peer was
//!   heard on time (an arrival falls in the `t`-long window
//!   `[last + (k-1)·t - g, last + k·t - g]`), and by `last + k·t + j` in
//!   any case: as the plain rule, up to `j`. Without another live peer it
//!   is declared at `last_heard(p) + (k+h)·t`.
//! - A silence common to all peers yields no verdict before
//!   `last_heard(p) + (k+h)·t`: the last beats before a common gap lie
//!   within `t + j` of each other, short of the `(k-1)·t - g` evidence
//!   needs (for `k = 3`), and what arrives after it is evidence only `g`
//!   later, when every peer's backlog is in. So a gap that ends before
//!   every peer's fallback bound (`(k+h)·t` after its last beat; at 10 ms
//!   beats, 3 missed and `h = 2`: 50 ms) is no false call.
//!
//! Restarts: a heartbeat with a new `epoch` from a proxy that is up means it
//! restarted between beats: the detector reports `ProxyDown` then `ProxyUp`,
//! so consumers drop state tied to the old incarnation. A heartbeat from a
//! proxy that is down brings it back (`ProxyUp`). Within an epoch, heartbeats
//! with a sequence number not above the last one are reordered duplicates
//! and are ignored.

use std::collections::{BTreeMap, VecDeque};

use core::time::Duration;

use crate::heartbeat::{clamp_interval, Heartbeat, HeartbeatError};
use crate::ids::ProxyId;
use crate::Instant;

/// The lbs' default [`DetectorConfig::hold`]: common silences of up to
/// `missed + 2` intervals since a proxy's last beat (50 ms at 10 ms beats)
/// yield no false call; a lone proxy's crash is declared within that.
pub const LB_HOLD: u32 = 2;

/// Detector settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Heartbeat interval the proxies use (clamped into 10 ms ..= 5 s).
    pub interval: Duration,
    /// Consecutive missed beats after which a proxy is down (at least 1).
    pub missed: u32,
    /// Common-silence hold, in intervals (0: off, the plain rule): a
    /// silent peer is declared down before `missed + hold` intervals only
    /// if another peer was heard while it missed its last beat (module
    /// docs).
    pub hold: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            interval: Duration::from_millis(200),
            missed: 3,
            hold: 0,
        }
    }
}

impl DetectorConfig {
    /// Silence after which a proxy is suspected (declared down unless the
    /// silence is common to all peers): `missed · interval`.
    pub fn dead_after(&self) -> Duration {
        clamp_interval(self.interval) * self.missed.max(1)
    }

    /// Silence after which a proxy is declared down in any case:
    /// `(missed + hold) · interval`.
    pub fn down_bound(&self) -> Duration {
        clamp_interval(self.interval) * self.missed.max(1).saturating_add(self.hold)
    }

    /// Evidence against a common silence: another peer heard at or after
    /// the suspect's last beat plus this, `(missed - 1) · interval -
    /// grace` (module docs).
    fn evidence_after(&self) -> Duration {
        (clamp_interval(self.interval) * (self.missed.max(1) - 1)).saturating_sub(self.grace())
    }

    /// How old evidence must be before it counts, `interval / 2`: the
    /// beats queued behind a common stall arrive within it of each other.
    fn grace(&self) -> Duration {
        clamp_interval(self.interval) / 2
    }
}

/// What the detector tells its consumer (the LB's [`crate::lb::Balancer`],
/// the proxies' membership).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorEvent {
    ProxyUp { id: ProxyId, weight: u32 },
    ProxyDown { id: ProxyId },
    WeightChanged { id: ProxyId, weight: u32 },
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    up: bool,
    epoch: u32,
    seq: u64,
    weight: u32,
    last_heard: Instant,
    /// The arrival before `last_heard` (evidence may be the one before the
    /// latest beat: module docs).
    prev_heard: Option<Instant>,
    /// Held as a suspect (past `dead_after`, no evidence) since this
    /// silence began; reset by the next beat.
    held: bool,
}

/// Counters of the detector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectorStats {
    pub accepted: u64,
    /// Datagrams that failed to decode (reason in [`HeartbeatError`]).
    pub malformed: u64,
    /// Old or duplicate sequence numbers within an epoch.
    pub stale: u64,
    pub downs: u64,
    pub restarts: u64,
    /// Judgements that held a suspect because every peer was silent
    /// together (counted once per suspect and silence).
    pub held: u64,
}

/// The failure detector state machine.
#[derive(Clone, Debug)]
pub struct FailureDetector {
    cfg: DetectorConfig,
    peers: BTreeMap<ProxyId, Peer>,
    events: VecDeque<DetectorEvent>,
    stats: DetectorStats,
    /// The receiver's watermark, once it reports one (see the module docs).
    listened: Option<Instant>,
    /// The earliest instant a live proxy's verdict is due (its deadline,
    /// or its fallback bound while held): recomputed when a heartbeat or a
    /// timeout changes the peers, so `poll_timeout` (asked after every
    /// packet a driver handles) is O(1).
    next_due: Option<Instant>,
    /// Latest other traffic the driver reported ([`Self::handle_heard`]),
    /// and the one before.
    other_heard: Option<Instant>,
    other_prev: Option<Instant>,
}

impl FailureDetector {
    pub fn new(cfg: DetectorConfig) -> Self {
        FailureDetector {
            cfg,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            stats: DetectorStats::default(),
            listened: None,
            next_due: None,
            other_heard: None,
            other_prev: None,
        }
    }

    fn update_next_due(&mut self) {
        let dead = self.cfg.dead_after();
        self.next_due = self
            .peers
            .iter()
            .filter(|(_, p)| p.up)
            .map(|(&id, p)| {
                if p.held {
                    self.held_due(id, p)
                } else {
                    p.last_heard + dead
                }
            })
            .min();
    }

    /// Traffic other than the monitored peers' beats arrived at `at` (an
    /// lb's peer lb on the same socket): evidence, for the common-silence
    /// rule, that the observer and its path were receiving then. Judged
    /// like a heartbeat (at once without a watermark, else at the next).
    pub fn handle_heard(&mut self, at: Instant) {
        if self.other_heard.is_none_or(|o| at > o) {
            self.other_prev = self.other_heard;
            self.other_heard = Some(at);
        }
        self.update_next_due();
    }

    /// The receiver has handed over every datagram that arrived before
    /// `at`. Switches the detector to watermark mode for good: timeouts
    /// are judged at `min(now, watermark)`, and this call itself declares
    /// down the proxies silent for `missed · interval` before `at`.
    pub fn handle_listened(&mut self, at: Instant) {
        let mark = self.listened.map_or(at, |m| m.max(at));
        self.listened = Some(mark);
        self.declare_silent_down(mark);
    }

    /// The receiver's watermark, if it reports one.
    pub fn listened(&self) -> Option<Instant> {
        self.listened
    }

    pub fn config(&self) -> DetectorConfig {
        self.cfg
    }

    pub fn stats(&self) -> DetectorStats {
        self.stats
    }

    /// Whether `id` is currently considered up.
    pub fn is_up(&self, id: ProxyId) -> bool {
        self.peers.get(&id).is_some_and(|p| p.up)
    }

    /// Live proxies with their weights, in id order.
    pub fn live(&self) -> impl Iterator<Item = (ProxyId, u32)> + '_ {
        self.peers
            .iter()
            .filter(|(_, p)| p.up)
            .map(|(&id, p)| (id, p.weight))
    }

    /// Decodes and handles a heartbeat datagram; malformed ones are counted
    /// and dropped, the reason returned.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> Result<(), HeartbeatError> {
        match Heartbeat::decode(data) {
            Ok(hb) => {
                self.handle_heartbeat(now, &hb);
                Ok(())
            }
            Err(e) => {
                self.stats.malformed += 1;
                Err(e)
            }
        }
    }

    /// Handles a decoded heartbeat received at `now`.
    pub fn handle_heartbeat(&mut self, now: Instant, hb: &Heartbeat) {
        self.apply_heartbeat(now, hb);
        self.update_next_due();
    }

    fn apply_heartbeat(&mut self, now: Instant, hb: &Heartbeat) {
        let fresh = Peer {
            up: true,
            epoch: hb.epoch,
            seq: hb.seq,
            weight: hb.workload,
            last_heard: now,
            prev_heard: None,
            held: false,
        };
        let Some(p) = self.peers.get_mut(&hb.id) else {
            self.peers.insert(hb.id, fresh);
            self.stats.accepted += 1;
            self.events.push_back(DetectorEvent::ProxyUp {
                id: hb.id,
                weight: hb.workload,
            });
            return;
        };
        if p.epoch == hb.epoch && hb.seq <= p.seq {
            self.stats.stale += 1;
            return;
        }
        self.stats.accepted += 1;
        let was_up = p.up;
        let restarted = was_up && p.epoch != hb.epoch;
        let old_weight = p.weight;
        *p = Peer {
            prev_heard: Some(p.last_heard),
            ..fresh
        };
        if restarted {
            self.stats.restarts += 1;
            self.events
                .push_back(DetectorEvent::ProxyDown { id: hb.id });
        }
        if !was_up || restarted {
            self.events.push_back(DetectorEvent::ProxyUp {
                id: hb.id,
                weight: hb.workload,
            });
        } else if old_weight != hb.workload {
            self.events.push_back(DetectorEvent::WeightChanged {
                id: hb.id,
                weight: hb.workload,
            });
        }
    }

    /// The earliest instant at which a live proxy would be declared down.
    /// In watermark mode there is none: only [`Self::handle_listened`]
    /// can move the judgement forward.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.listened.is_some() {
            return None;
        }
        self.next_due
    }

    /// Declares down every live proxy silent for `missed · interval` (up
    /// to the receiver's watermark in watermark mode).
    pub fn handle_timeout(&mut self, now: Instant) {
        let judged = self.listened.map_or(now, |m| m.min(now));
        self.declare_silent_down(judged);
    }

    /// The earliest arrival from anyone but `id` (the other peers' and
    /// the other traffic's last two) at or after `from`: when evidence
    /// against `id`'s silence arrived, if it did.
    fn first_evidence(&self, id: ProxyId, from: Instant) -> Option<Instant> {
        let others = self
            .peers
            .iter()
            .filter(|(&o, _)| o != id)
            .flat_map(|(_, p)| [Some(p.last_heard), p.prev_heard]);
        others
            .chain([self.other_heard, self.other_prev])
            .flatten()
            .filter(|&t| t >= from)
            .min()
    }

    /// When `p`'s verdict is due at the latest with the hold on: at its
    /// fallback bound, or once evidence is `grace` old.
    fn held_due(&self, id: ProxyId, p: &Peer) -> Instant {
        let from = p.last_heard + self.cfg.evidence_after();
        let bound = p.last_heard + self.cfg.down_bound();
        self.first_evidence(id, from)
            .map_or(bound, |o| bound.min(o + self.cfg.grace()))
    }

    fn declare_silent_down(&mut self, now: Instant) {
        let dead_after = self.cfg.dead_after();
        let hold = self.cfg.hold > 0;
        let suspects: Vec<(ProxyId, bool)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.up && p.last_heard + dead_after <= now)
            .map(|(&id, p)| (id, !hold || self.held_due(id, p) <= now))
            .collect();
        for (id, down) in suspects {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if down {
                p.up = false;
                p.held = false;
                self.stats.downs += 1;
                self.events.push_back(DetectorEvent::ProxyDown { id });
            } else if !p.held {
                p.held = true;
                self.stats.held += 1;
            }
        }
        self.update_next_due();
    }

    /// Whether `id` is up but held as a suspect of a common silence.
    pub fn is_held(&self, id: ProxyId) -> bool {
        self.peers.get(&id).is_some_and(|p| p.up && p.held)
    }

    /// Next membership event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<DetectorEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::HeartbeatSender;
    use DetectorEvent::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn beat(id: u16, epoch: u32, seq: u64, w: u32) -> Heartbeat {
        Heartbeat {
            id: ProxyId(id),
            epoch,
            seq,
            workload: w,
        }
    }

    fn drain(d: &mut FailureDetector) -> Vec<DetectorEvent> {
        std::iter::from_fn(|| d.poll_event()).collect()
    }

    fn det(interval_ms: u64, missed: u32) -> FailureDetector {
        FailureDetector::new(DetectorConfig {
            interval: Duration::from_millis(interval_ms),
            missed,
            hold: 0,
        })
    }

    #[test]
    fn up_weight_down_and_back() {
        let mut d = det(100, 3);
        assert_eq!(d.poll_timeout(), None);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 10));
        d.handle_heartbeat(ms(100), &beat(1, 1, 1, 10));
        d.handle_heartbeat(ms(200), &beat(1, 1, 2, 20));
        assert_eq!(
            drain(&mut d),
            [
                ProxyUp {
                    id: ProxyId(1),
                    weight: 10
                },
                WeightChanged {
                    id: ProxyId(1),
                    weight: 20
                }
            ]
        );
        assert!(d.is_up(ProxyId(1)));
        assert_eq!(d.poll_timeout(), Some(ms(500)));
        d.handle_timeout(ms(499));
        assert_eq!(drain(&mut d), []);
        d.handle_timeout(ms(500));
        assert_eq!(drain(&mut d), [ProxyDown { id: ProxyId(1) }]);
        assert_eq!(d.poll_timeout(), None);
        assert_eq!(d.live().count(), 0);
        // It comes back with the same epoch (a partition healed).
        d.handle_heartbeat(ms(900), &beat(1, 1, 7, 20));
        assert_eq!(
            drain(&mut d),
            [ProxyUp {
                id: ProxyId(1),
                weight: 20
            }]
        );
    }

    #[test]
    fn one_or_two_lost_beats_do_not_kill_three_do() {
        let mut d = det(100, 3);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 1));
        // Beat 1 lost, beat 2 on time.
        d.handle_timeout(ms(150));
        d.handle_heartbeat(ms(200), &beat(1, 1, 2, 1));
        // Beats 3 and 4 lost, beat 5 a little early (jitter): still up.
        d.handle_timeout(ms(480));
        d.handle_heartbeat(ms(490), &beat(1, 1, 5, 1));
        assert!(d.is_up(ProxyId(1)));
        // Then silence: down exactly three intervals after the last beat.
        d.handle_timeout(ms(789));
        assert!(d.is_up(ProxyId(1)));
        d.handle_timeout(ms(790));
        assert!(!d.is_up(ProxyId(1)));
        assert_eq!(d.stats().downs, 1);
    }

    #[test]
    fn detection_takes_between_2t_and_3t_after_crash() {
        // Crash the proxy at every phase within one interval and check the
        // detection latency against the documented bound.
        let t = 200u64;
        for crash_at in (1_000..1_000 + t).step_by(7) {
            let mut d = det(t, 3);
            let mut s = HeartbeatSender::new(ms(0), ProxyId(4), 1, Duration::from_millis(t), 1);
            let mut now = 0;
            let mut detected = None;
            while detected.is_none() && now < 10_000 {
                if now < crash_at {
                    s.handle_timeout(ms(now));
                    if let Some(hb) = s.poll_transmit() {
                        d.handle_datagram(ms(now), &hb.encode()).unwrap();
                    }
                }
                d.handle_timeout(ms(now));
                if drain(&mut d).contains(&ProxyDown { id: ProxyId(4) }) {
                    detected = Some(now);
                }
                now += 1;
            }
            let latency = detected.unwrap() - crash_at;
            assert!(
                (2 * t..=3 * t).contains(&latency),
                "crash {crash_at}: {latency}"
            );
        }
    }

    #[test]
    fn restart_is_down_then_up_and_stale_beats_are_ignored() {
        let mut d = det(100, 3);
        d.handle_heartbeat(ms(0), &beat(2, 5, 10, 1));
        d.handle_heartbeat(ms(100), &beat(2, 5, 11, 1));
        drain(&mut d);
        d.handle_heartbeat(ms(150), &beat(2, 5, 11, 9));
        d.handle_heartbeat(ms(160), &beat(2, 5, 3, 9));
        assert_eq!(drain(&mut d), []);
        assert_eq!(d.stats().stale, 2);
        d.handle_heartbeat(ms(200), &beat(2, 6, 0, 3));
        assert_eq!(
            drain(&mut d),
            [
                ProxyDown { id: ProxyId(2) },
                ProxyUp {
                    id: ProxyId(2),
                    weight: 3
                }
            ]
        );
        assert_eq!(d.stats().restarts, 1);
        assert_eq!(d.poll_timeout(), Some(ms(500)));
    }

    #[test]
    fn malformed_datagrams_are_counted_and_do_not_change_state() {
        let mut d = det(100, 3);
        assert!(d.handle_datagram(ms(0), b"garbage").is_err());
        assert!(d.handle_datagram(ms(0), &[]).is_err());
        assert_eq!(d.stats().malformed, 2);
        assert_eq!(d.live().count(), 0);
        assert_eq!(drain(&mut d), []);
    }

    #[test]
    fn watermark_blames_only_silence_the_receiver_listened_through() {
        let mut d = det(10, 3);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 1));
        d.handle_listened(ms(5));
        assert_eq!(d.poll_timeout(), None, "watermark mode has no own timer");
        drain(&mut d);
        // The consumer is descheduled for 200 ms while beats queue up in the
        // socket: its late timeout must not kill the proxy.
        d.handle_timeout(ms(200));
        assert!(d.is_up(ProxyId(1)));
        // The queued beats come in with their arrival times, then the
        // receiver reports the socket empty.
        for seq in 1..20u64 {
            d.handle_heartbeat(ms(seq * 10), &beat(1, 1, seq, 1));
        }
        d.handle_listened(ms(201));
        assert!(d.is_up(ProxyId(1)));
        assert_eq!(drain(&mut d), []);
        // A watermark never goes back.
        d.handle_listened(ms(100));
        assert_eq!(d.listened(), Some(ms(201)));
        // Real silence after the last beat (190): down once the receiver
        // listened through 190 + 30, not before, whatever `now` says.
        d.handle_timeout(ms(1_000));
        d.handle_listened(ms(219));
        assert!(d.is_up(ProxyId(1)));
        d.handle_listened(ms(220));
        assert_eq!(drain(&mut d), [ProxyDown { id: ProxyId(1) }]);
    }

    #[test]
    fn watermark_timeouts_take_the_earlier_of_now_and_the_mark() {
        let mut d = det(10, 3);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 1));
        drain(&mut d);
        d.handle_listened(ms(500));
        // Declared down by the watermark itself.
        assert_eq!(drain(&mut d), [ProxyDown { id: ProxyId(1) }]);
        d.handle_heartbeat(ms(510), &beat(1, 1, 1, 1));
        d.handle_listened(ms(515));
        assert!(d.is_up(ProxyId(1)));
        // `now` is far ahead, the watermark limits.
        d.handle_timeout(ms(2_000));
        assert!(d.is_up(ProxyId(1)));
        // Without a watermark, `now` alone decides.
        let mut plain = det(10, 3);
        plain.handle_heartbeat(ms(510), &beat(1, 1, 1, 1));
        plain.handle_timeout(ms(539));
        assert!(plain.is_up(ProxyId(1)));
        plain.handle_timeout(ms(540));
        assert!(!plain.is_up(ProxyId(1)));
        assert_eq!(plain.listened(), None);
    }

    proptest::proptest! {
        /// Beats sent every `t` with up to `t/2` delivery jitter and a
        /// consumer that is descheduled for up to 40 intervals at a time
        /// (the watermark lags by as much) never yield a false down; after
        /// the crash, the proxy is declared down at the first watermark at
        /// or past `last_arrival + k·t`.
        #[test]
        fn stalls_never_suspect_and_crashes_are_found(
            jitter in proptest::collection::vec(0u64..5, 60),
            stalls in proptest::collection::vec(0u64..400, 60),
            crash_beat in 10usize..60,
        ) {
            let t = 10u64;
            let mut d = det(t, 3);
            // Arrival times of the beats sent before the crash.
            let arrivals: Vec<u64> = (0..crash_beat)
                .map(|i| i as u64 * t + jitter[i])
                .collect();
            let mut next = 0;
            let mut now = 0u64;
            let mut prev = 0u64;
            let mut detected = None;
            for stall in stalls.iter().copied().chain(std::iter::repeat(3)) {
                prev = now;
                now += 1 + stall;
                // Everything that arrived before `now` is handed over in
                // order, then the watermark.
                while next < arrivals.len() && arrivals[next] < now {
                    let at = arrivals[next];
                    d.handle_heartbeat(ms(at), &beat(1, 1, next as u64, 1));
                    next += 1;
                }
                d.handle_listened(ms(now));
                d.handle_timeout(ms(now + 50));
                if drain(&mut d).contains(&ProxyDown { id: ProxyId(1) }) {
                    detected = Some(now);
                    break;
                }
                if now > 10_000 {
                    break;
                }
            }
            let detected = detected.expect("crash detected");
            proptest::prop_assert!(next == arrivals.len(), "down before the last beat was handed over");
            let last = arrivals[arrivals.len() - 1];
            // Declared down at the first watermark at or after last + 3t.
            proptest::prop_assert!(detected >= last + 3 * t);
            proptest::prop_assert!(prev < last + 3 * t, "{prev} {last}");
        }
    }

    fn held_det(hold: u32) -> FailureDetector {
        FailureDetector::new(DetectorConfig {
            interval: Duration::from_millis(10),
            missed: 3,
            hold,
        })
    }

    #[test]
    fn a_common_silence_holds_the_verdict_until_the_beats_return() {
        let mut d = held_det(2);
        for seq in 0..5u64 {
            d.handle_heartbeat(ms(seq * 10), &beat(1, 1, seq, 1));
            d.handle_heartbeat(ms(seq * 10 + 4), &beat(2, 1, seq, 1));
        }
        d.handle_listened(ms(45));
        drain(&mut d);
        // Nothing arrives from anyone for 40 ms (p1 last at 40, p2 at 44).
        d.handle_listened(ms(70));
        d.handle_listened(ms(79));
        assert!(d.is_held(ProxyId(1)) && d.is_held(ProxyId(2)));
        assert_eq!(drain(&mut d), []);
        assert_eq!(d.stats().held, 2);
        // The backlog comes in together: both up again, nothing reported.
        for seq in 5..9u64 {
            d.handle_heartbeat(ms(80), &beat(1, 1, seq, 1));
            d.handle_heartbeat(ms(80), &beat(2, 1, seq, 1));
        }
        d.handle_listened(ms(81));
        assert_eq!(drain(&mut d), []);
        assert!(!d.is_held(ProxyId(1)) && d.is_up(ProxyId(1)));
        // The same silence without the hold is two false calls.
        let mut plain = held_det(0);
        plain.handle_heartbeat(ms(40), &beat(1, 1, 0, 1));
        plain.handle_heartbeat(ms(44), &beat(2, 1, 0, 1));
        plain.handle_listened(ms(79));
        assert_eq!(plain.stats().downs, 2);
    }

    #[test]
    fn a_lone_silence_is_declared_on_time_when_another_peer_beats() {
        let mut d = held_det(2);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 1));
        for seq in 0..3u64 {
            d.handle_heartbeat(ms(seq * 10 + 7), &beat(2, 1, seq, 1));
            d.handle_listened(ms(seq * 10 + 8));
        }
        drain(&mut d);
        // p2 was heard at 27 >= 0 + 20: p1 goes at its plain deadline.
        d.handle_listened(ms(29));
        assert!(d.is_up(ProxyId(1)));
        d.handle_listened(ms(30));
        assert_eq!(drain(&mut d), [ProxyDown { id: ProxyId(1) }]);
        assert_eq!(d.stats().held, 0);
    }

    #[test]
    fn a_held_suspect_falls_at_the_first_evidence_or_the_bound() {
        // Without a watermark (the simulator): p1 and p2 fall silent
        // together, then p2 resumes.
        let mut d = held_det(2);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 1));
        d.handle_heartbeat(ms(2), &beat(2, 1, 0, 1));
        drain(&mut d);
        assert_eq!(d.poll_timeout(), Some(ms(30)));
        d.handle_timeout(ms(30));
        assert!(d.is_held(ProxyId(1)));
        // p1's fallback is next, then p2's deadline.
        assert_eq!(d.poll_timeout(), Some(ms(32)));
        d.handle_timeout(ms(32));
        assert!(d.is_held(ProxyId(2)));
        assert_eq!(d.poll_timeout(), Some(ms(50)));
        // p2's beat at 41 is evidence once `grace` (5 ms) old.
        d.handle_heartbeat(ms(41), &beat(2, 1, 1, 1));
        assert!(d.is_up(ProxyId(2)) && !d.is_held(ProxyId(2)));
        assert_eq!(d.poll_timeout(), Some(ms(46)));
        d.handle_timeout(ms(45));
        assert_eq!(drain(&mut d), []);
        d.handle_timeout(ms(46));
        assert_eq!(drain(&mut d), [ProxyDown { id: ProxyId(1) }]);
        // A lone peer: the fallback bound, `(3 + 2) · 10` after its beat.
        d.handle_timeout(ms(70));
        assert!(!d.is_held(ProxyId(2)));
        d.handle_timeout(ms(71));
        assert!(d.is_held(ProxyId(2)));
        assert_eq!(d.poll_timeout(), Some(ms(91)));
        d.handle_timeout(ms(90));
        assert!(d.is_up(ProxyId(2)));
        d.handle_timeout(ms(91));
        assert_eq!(drain(&mut d), [ProxyDown { id: ProxyId(2) }]);
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn other_traffic_is_evidence_too() {
        let mut d = held_det(2);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 1));
        d.handle_listened(ms(1));
        d.handle_heard(ms(14));
        d.handle_listened(ms(30));
        assert!(d.is_held(ProxyId(1)), "heard before 0 + 15 proves nothing");
        // Heard at 31: evidence from 36 on (queued beats of a common
        // stall arrive within the grace).
        d.handle_heard(ms(31));
        d.handle_listened(ms(35));
        assert!(d.is_held(ProxyId(1)));
        d.handle_listened(ms(36));
        assert_eq!(
            drain(&mut d),
            [
                ProxyUp {
                    id: ProxyId(1),
                    weight: 1
                },
                ProxyDown { id: ProxyId(1) }
            ]
        );
    }

    /// Beat arrivals of `n` peers (phase `phase[i]`, jitter below `J`),
    /// each sent before `until[i]`, as (time, peer, seq) in arrival order.
    fn arrivals(phase: &[u64], jit: &[u64], until: &[u64], end: u64) -> Vec<(u64, u16, u64)> {
        let mut a = Vec::new();
        for (i, (&ph, &u)) in phase.iter().zip(until).enumerate() {
            let mut m = 0u64;
            while ph + m * 10 < u.min(end) {
                let j = jit[(i * 97 + m as usize) % jit.len()];
                a.push((ph + m * 10 + j, i as u16 + 1, m));
                m += 1;
            }
        }
        a.sort();
        a
    }

    /// Feeds `arr` (mapped by `at`) and judges with watermarks every
    /// `steps[..]` ms until `end`; returns each peer's down time.
    fn judge(
        d: &mut FailureDetector,
        arr: &[(u64, u16, u64)],
        steps: &[u64],
        end: u64,
    ) -> BTreeMap<u16, u64> {
        let mut downs = BTreeMap::new();
        let (mut next, mut now, mut k) = (0, 0u64, 0);
        while now < end {
            now += steps[k % steps.len()];
            k += 1;
            while next < arr.len() && arr[next].0 < now {
                let (at, id, seq) = arr[next];
                d.handle_heartbeat(ms(at), &beat(id, 1, seq, 1));
                next += 1;
            }
            d.handle_listened(ms(now));
            for e in std::iter::from_fn(|| d.poll_event()) {
                if let ProxyDown { id } = e {
                    downs.insert(id.0, now);
                }
            }
        }
        downs
    }

    proptest::proptest! {
        /// A crash of any subset of 1..=4 peers (10 ms beats, up to 4 ms
        /// late, 3 missed, hold 2, watermarks every 1..=5 ms): no survivor
        /// is declared down; a crashed peer is declared at or after
        /// `last + 30`, by the first watermark past `last + 30 + 4` while
        /// some peer survives, and at the first past `last + 50` when all
        /// crashed.
        #[test]
        fn a_crash_of_any_subset_is_declared_within_the_bound(
            n in 1usize..=4,
            phase in proptest::collection::vec(0u64..10, 4),
            jit in proptest::collection::vec(0u64..4, 16),
            crashed in 1u8..16,
            crash_at in 100u64..200,
            steps in proptest::collection::vec(1u64..=5, 8),
        ) {
            let crashed = |i: usize| crashed & (1 << i) != 0;
            let any_crash = (0..n).any(crashed);
            proptest::prop_assume!(any_crash);
            let survivors = (0..n).any(|i| !crashed(i));
            let until: Vec<u64> = (0..n).map(|i| if crashed(i) { crash_at } else { u64::MAX }).collect();
            let end = 400;
            let arr = arrivals(&phase[..n], &jit, &until, end + 10);
            let mut d = held_det(2);
            let downs = judge(&mut d, &arr, &steps, end);
            for i in 0..n {
                let id = i as u16 + 1;
                if !crashed(i) {
                    proptest::prop_assert!(!downs.contains_key(&id), "survivor {id} declared down");
                    continue;
                }
                let last = arr.iter().filter(|a| a.1 == id).map(|a| a.0).max().unwrap();
                let at = *downs.get(&id).expect("crash declared");
                proptest::prop_assert!(at >= last + 30, "{id}: {at} < {last} + 30");
                let bound = if survivors { last + 30 + 4 } else { last + 50 };
                proptest::prop_assert!(at < bound + 5, "{id}: {at} vs {bound}");
                if !survivors {
                    proptest::prop_assert!(at >= last + 50, "{id}: no evidence, {at} < {last} + 50");
                }
            }
        }

        /// A silence common to all peers (nothing arrives in `[s, s+len)`,
        /// then each peer's backlog within 4 ms) never declares anyone
        /// before its fallback bound, so a silence ending within `50 ms`
        /// of every peer's last beat is no false call at all.
        #[test]
        fn a_common_silence_shorter_than_the_bound_is_no_false_call(
            n in 1usize..=4,
            phase in proptest::collection::vec(0u64..10, 4),
            jit in proptest::collection::vec(0u64..4, 16),
            s in 100u64..200,
            len in 0u64..80,
            spread in proptest::collection::vec(0u64..5, 4),
            steps in proptest::collection::vec(1u64..=5, 8),
        ) {
            let until = vec![u64::MAX; n];
            let end = 400;
            // Each peer's backlog arrives up to 4 ms (< grace) after the
            // silence ends.
            let late = |id: u16| s + len + spread[usize::from(id) - 1];
            let arr: Vec<(u64, u16, u64)> = arrivals(&phase[..n], &jit, &until, end + 10)
                .into_iter()
                .map(|(at, id, seq)| (if (s..late(id)).contains(&at) { late(id) } else { at }, id, seq))
                .collect();
            let mut arr = arr;
            arr.sort();
            let last_before: Vec<u64> = (1..=n as u16)
                .map(|id| arr.iter().filter(|a| a.1 == id && a.0 < s).map(|a| a.0).max().unwrap())
                .collect();
            let mut d = held_det(2);
            let downs = judge(&mut d, &arr, &steps, end);
            let short = (1..=n as u16).all(|id| late(id) < last_before[usize::from(id) - 1] + 50);
            if short {
                proptest::prop_assert!(downs.is_empty(), "false call {downs:?}");
            }
            for (&id, &at) in &downs {
                let l = last_before[usize::from(id) - 1];
                proptest::prop_assert!(at >= l + 50, "{id} declared at {at}, last {l}");
            }
        }
    }

    #[test]
    fn independent_proxies_and_configurable_miss_count() {
        let mut d = det(50, 1);
        d.handle_heartbeat(ms(0), &beat(1, 1, 0, 1));
        d.handle_heartbeat(ms(20), &beat(2, 1, 0, 1));
        assert_eq!(d.poll_timeout(), Some(ms(50)));
        d.handle_timeout(ms(50));
        assert_eq!(d.live().map(|l| l.0).collect::<Vec<_>>(), [ProxyId(2)]);
        assert_eq!(d.poll_timeout(), Some(ms(70)));
        // Intervals below 10 ms are clamped.
        assert_eq!(det(1, 3).config().dead_after(), Duration::from_millis(30));
    }
}

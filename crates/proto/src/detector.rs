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

/// Detector settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Heartbeat interval the proxies use (clamped into 10 ms ..= 5 s).
    pub interval: Duration,
    /// Consecutive missed beats after which a proxy is down (at least 1).
    pub missed: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            interval: Duration::from_millis(200),
            missed: 3,
        }
    }
}

impl DetectorConfig {
    /// Silence after which a proxy is declared down: `missed · interval`.
    pub fn dead_after(&self) -> Duration {
        clamp_interval(self.interval) * self.missed.max(1)
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
    /// When the longest-silent live proxy was last heard: recomputed when
    /// a heartbeat or a timeout changes the peers, so `poll_timeout`
    /// (asked after every packet a driver handles) is O(1).
    oldest_live: Option<Instant>,
}

impl FailureDetector {
    pub fn new(cfg: DetectorConfig) -> Self {
        FailureDetector {
            cfg,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            stats: DetectorStats::default(),
            listened: None,
            oldest_live: None,
        }
    }

    fn update_oldest_live(&mut self) {
        self.oldest_live = self
            .peers
            .values()
            .filter(|p| p.up)
            .map(|p| p.last_heard)
            .min();
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
        self.update_oldest_live();
    }

    fn apply_heartbeat(&mut self, now: Instant, hb: &Heartbeat) {
        let fresh = Peer {
            up: true,
            epoch: hb.epoch,
            seq: hb.seq,
            weight: hb.workload,
            last_heard: now,
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
        *p = fresh;
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
        self.oldest_live.map(|t| t + self.cfg.dead_after())
    }

    /// Declares down every live proxy silent for `missed · interval` (up
    /// to the receiver's watermark in watermark mode).
    pub fn handle_timeout(&mut self, now: Instant) {
        let judged = self.listened.map_or(now, |m| m.min(now));
        self.declare_silent_down(judged);
    }

    fn declare_silent_down(&mut self, now: Instant) {
        let dead_after = self.cfg.dead_after();
        for (&id, p) in self.peers.iter_mut() {
            if p.up && p.last_heard + dead_after <= now {
                p.up = false;
                self.stats.downs += 1;
                self.events.push_back(DetectorEvent::ProxyDown { id });
            }
        }
        self.update_oldest_live();
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

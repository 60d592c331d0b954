//! Primary/backup lb pair: which of two lbs owns the service address.
//!
//! The lb is stateless (paper §5.1), so failover only moves the address: the
//! standby keeps the same proxy table current from the proxies' heartbeats
//! (they beat to both lbs) and, on taking over, adds the address and
//! announces it (gratuitous ARP) so switch and clients learn its MAC.
//!
//! Both lbs beat to each other with the heartbeat codec ([`LB_PAIR_ID`],
//! `workload` bit 0 = "I am active", bit 1 = "I am the primary", bit 2 =
//! "I yielded within the last `missed · interval`"). Rules:
//!
//! - An lb becomes active when no *active* peer has been heard for
//!   `missed · interval` (the proxies' detection bound). At start the
//!   primary waits that long once, the backup twice, so with both starting
//!   together the primary wins without a flap.
//! - No preemption: a primary that returns while the backup is active hears
//!   the backup's active beats during its start-up wait and stays standby.
//!   The pair has simply swapped roles; if the backup dies later, the old
//!   primary takes over the same way.
//! - Both active (a healed partition, lost beats at start): the backup
//!   yields at once; the primary stays and announces the address again so
//!   clients that learnt the backup's MAC come back.
//! - Announcements (gratuitous ARP) are scheduled here, not by the driver:
//!   [`ANNOUNCEMENTS`] of them [`ANNOUNCE_GAP`] apart after taking over or
//!   a reannounce, and none once the lb is standby (a yielding backup's
//!   remaining ones are cancelled: a client that learnt the standby's MAC
//!   would send into a black hole until its ARP entry expired, tens of
//!   seconds). An active lb also announces again when it hears that its
//!   peer yielded (the yielded bit appears in its beats): the peer's last
//!   announcement was sent before that beat, so ours come after it. The bit
//!   (not an active-to-standby change) carries it because the peer may
//!   announce and yield between two beats, and one lost beat must not hide
//!   it.
//!
//! Receiver stalls: like [`crate::detector::FailureDetector`], the pair
//! can be told up to when its receiver listened
//! ([`LbPair::handle_listened`]); from then on the peer's silence is only
//! judged up to that watermark, so a standby whose own loop was
//! descheduled does not take over from a primary that beat all along.
//!
//! An lb without a peer is not driven by this machine: it is active from the
//! start.

use std::collections::VecDeque;

use core::time::Duration;

use crate::detector::DetectorConfig;
use crate::heartbeat::{Heartbeat, HeartbeatError, HeartbeatSender};
use crate::ids::ProxyId;
use crate::Instant;

/// The id lbs use in their heartbeats to each other.
pub const LB_PAIR_ID: ProxyId = ProxyId(0xFFFF);
const ACTIVE: u32 = 1;
const PRIMARY: u32 = 2;
const YIELDED: u32 = 4;

/// Which side of the pair this lb is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairRole {
    Primary,
    Backup,
}

/// Why the lb became active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivateReason {
    /// Start-up wait over and no active peer heard.
    StartupNoActivePeer,
    /// The active peer's heartbeats stopped for `silence`.
    PeerSilent { silence: Duration },
}

/// Why the lb stopped being active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeactivateReason {
    /// Both were active; the backup yields to the primary.
    PrimaryActive,
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairEvent {
    /// Take the service address: add it, announce it, balance.
    Activate(ActivateReason),
    /// Give the address up: stop balancing, remove it.
    Deactivate(DeactivateReason),
    /// Announce the address again (both were active, or the peer just
    /// yielded; we stay). The announcements themselves come from
    /// [`LbPair::poll_announce`].
    Reannounce,
}

/// Gratuitous announcements per takeover or reannounce.
pub const ANNOUNCEMENTS: u32 = 3;
/// Time between two announcements.
pub const ANNOUNCE_GAP: Duration = Duration::from_millis(20);

/// A schedule of address announcements: `count` of them, `gap` apart,
/// from [`Announcer::start`] until done or [`Announcer::stop`]. Used by
/// [`LbPair`] and on its own by an lb without a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announcer {
    count: u32,
    gap: Duration,
    left: u32,
    next: Instant,
    due: u32,
}

impl Default for Announcer {
    fn default() -> Self {
        Announcer::new(ANNOUNCEMENTS, ANNOUNCE_GAP)
    }
}

impl Announcer {
    pub fn new(count: u32, gap: Duration) -> Self {
        Announcer {
            count,
            gap,
            left: 0,
            next: Instant::ZERO,
            due: 0,
        }
    }

    /// (Re)starts the schedule: the first announcement is due at `now`.
    pub fn start(&mut self, now: Instant) {
        self.left = self.count;
        self.next = now;
    }

    /// Cancels every announcement not yet handed out.
    pub fn stop(&mut self) {
        self.left = 0;
        self.due = 0;
    }

    /// When the next announcement is due, if any is left.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.left > 0).then_some(self.next)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.left > 0 && now >= self.next {
            self.left -= 1;
            self.due += 1;
            self.next = now + self.gap;
        }
    }

    /// Whether an announcement is to be sent now.
    pub fn poll_transmit(&mut self) -> bool {
        if self.due == 0 {
            return false;
        }
        self.due -= 1;
        true
    }
}

/// Why a peer datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PairDrop {
    #[error(transparent)]
    Malformed(#[from] HeartbeatError),
    #[error("peer heartbeat with id {0}, expected the lb pair id")]
    WrongId(u16),
    #[error("peer heartbeat out of order")]
    Stale,
}

#[derive(Clone, Copy, Debug)]
struct PeerView {
    epoch: u32,
    seq: u64,
    active: bool,
    yielded: bool,
}

/// The pair state machine of one lb.
#[derive(Clone, Debug)]
pub struct LbPair {
    role: PairRole,
    dead_after: Duration,
    active: bool,
    /// Standby: activate at this instant unless an active peer is heard.
    deadline: Instant,
    /// Last time an active peer was heard.
    last_active_peer: Option<Instant>,
    peer: Option<PeerView>,
    sender: HeartbeatSender,
    events: VecDeque<PairEvent>,
    announcer: Announcer,
    /// The receiver's watermark, once it reports one (module docs).
    listened: Option<Instant>,
    /// Beats carry the yielded bit until then.
    yielded_until: Option<Instant>,
}

impl LbPair {
    /// `epoch` must differ between incarnations (random bits from the
    /// driver); `cfg` gives the beat interval and the missed-beat count.
    pub fn new(now: Instant, role: PairRole, cfg: DetectorConfig, epoch: u32) -> Self {
        let dead_after = cfg.dead_after();
        let wait = match role {
            PairRole::Primary => dead_after,
            PairRole::Backup => dead_after * 2,
        };
        let mut pair = LbPair {
            role,
            dead_after,
            active: false,
            deadline: now + wait,
            last_active_peer: None,
            peer: None,
            sender: HeartbeatSender::new(now, LB_PAIR_ID, epoch, cfg.interval, 0),
            events: VecDeque::new(),
            announcer: Announcer::default(),
            listened: None,
            yielded_until: None,
        };
        pair.sync_workload();
        pair
    }

    pub fn role(&self) -> PairRole {
        self.role
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Whether the peer was last heard active.
    pub fn peer_active(&self) -> bool {
        self.peer.is_some_and(|p| p.active)
    }

    /// The `workload` field of this lb's beats (role and active bits), for
    /// a driver that sends them from its own thread.
    pub fn workload(&self) -> u32 {
        let role = match self.role {
            PairRole::Primary => PRIMARY,
            PairRole::Backup => 0,
        };
        let yielded = if self.yielded_until.is_some() {
            YIELDED
        } else {
            0
        };
        role | yielded | if self.active { ACTIVE } else { 0 }
    }

    fn sync_workload(&mut self) {
        self.sender.set_workload(self.workload());
    }

    fn set_active(&mut self, now: Instant, active: bool, ev: PairEvent) {
        self.active = active;
        if active {
            self.announcer.start(now);
            self.yielded_until = None;
        } else {
            self.announcer.stop();
            self.yielded_until = Some(now + self.dead_after);
        }
        self.sync_workload();
        self.events.push_back(ev);
    }

    fn reannounce(&mut self, now: Instant) {
        self.announcer.start(now);
        self.events.push_back(PairEvent::Reannounce);
    }

    /// The receiver has handed over every peer datagram that arrived
    /// before `at`. Switches to watermark mode for good: the peer's
    /// silence is judged at `min(now, watermark)`, and this call itself
    /// activates a standby whose deadline the watermark passed.
    pub fn handle_listened(&mut self, at: Instant) {
        let mark = self.listened.map_or(at, |m| m.max(at));
        self.listened = Some(mark);
        self.judge(mark);
    }

    /// Decodes and handles a datagram from the peer lb.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> Result<(), PairDrop> {
        let hb = Heartbeat::decode(data)?;
        self.handle_heartbeat(now, &hb)
    }

    /// Handles a decoded heartbeat from the peer lb.
    pub fn handle_heartbeat(&mut self, now: Instant, hb: &Heartbeat) -> Result<(), PairDrop> {
        if hb.id != LB_PAIR_ID {
            return Err(PairDrop::WrongId(hb.id.0));
        }
        if let Some(p) = self.peer {
            if p.epoch == hb.epoch && hb.seq <= p.seq {
                return Err(PairDrop::Stale);
            }
        }
        let active = hb.workload & ACTIVE != 0;
        let yielded = hb.workload & YIELDED != 0;
        let before = self.peer.filter(|p| p.epoch == hb.epoch);
        self.peer = Some(PeerView {
            epoch: hb.epoch,
            seq: hb.seq,
            active,
            yielded,
        });
        if yielded && !before.is_some_and(|p| p.yielded) && self.active {
            // Its announcements (if any) went out before this beat.
            self.reannounce(now);
        }
        if !active {
            return Ok(());
        }
        self.last_active_peer = Some(now);
        if self.active {
            match self.role {
                PairRole::Backup => self.set_active(
                    now,
                    false,
                    PairEvent::Deactivate(DeactivateReason::PrimaryActive),
                ),
                // Once per time both are active, not per beat.
                PairRole::Primary if !before.is_some_and(|p| p.active) => self.reannounce(now),
                PairRole::Primary => {}
            }
        }
        if !self.active {
            self.deadline = self.deadline.max(now + self.dead_after);
        }
        Ok(())
    }

    /// Next instant with work: a beat to send, an announcement, or a
    /// standby deadline.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.sender.poll_timeout();
        if !self.active {
            t = t.min(self.deadline);
        }
        if let Some(a) = self.announcer.poll_timeout() {
            t = t.min(a);
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.yielded_until.is_some_and(|t| now >= t) {
            self.yielded_until = None;
            self.sync_workload();
        }
        let judged = self.listened.map_or(now, |m| m.min(now));
        self.judge(judged);
        self.sender.handle_timeout(now);
        self.announcer.handle_timeout(now);
    }

    /// Activates a standby whose deadline `at` reached.
    fn judge(&mut self, at: Instant) {
        if !self.active && at >= self.deadline {
            let reason = match self.last_active_peer {
                Some(t) => ActivateReason::PeerSilent {
                    silence: at.saturating_since(t),
                },
                None => ActivateReason::StartupNoActivePeer,
            };
            self.set_active(at, true, PairEvent::Activate(reason));
            self.announcer.handle_timeout(at);
        }
    }

    /// Whether an announcement of the address (gratuitous ARP) is to be
    /// sent now: after taking over or a reannounce, never while standby.
    pub fn poll_announce(&mut self) -> bool {
        self.announcer.poll_transmit()
    }

    /// The next heartbeat to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<Heartbeat> {
        self.sender.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<PairEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(10);

    fn cfg() -> DetectorConfig {
        DetectorConfig {
            interval: T,
            missed: 3,
            hold: 0,
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// Runs both lbs (or one, when the other is `None`: crashed) in 1 ms
    /// steps from `from` to `to`, delivering beats instantly. Returns
    /// events with their times.
    fn run(
        a: &mut Option<LbPair>,
        b: &mut Option<LbPair>,
        from: u64,
        to: u64,
    ) -> Vec<(u64, char, PairEvent)> {
        let mut log = Vec::new();
        for t in from..=to {
            let now = ms(t);
            step(a, b, now, 'a', t, &mut log);
            step(b, a, now, 'b', t, &mut log);
            for (me, name) in [(&mut *a, 'a'), (&mut *b, 'b')] {
                if let Some(me) = me.as_mut() {
                    while let Some(ev) = me.poll_event() {
                        log.push((t, name, ev));
                    }
                }
            }
        }
        log
    }

    fn step(
        me: &mut Option<LbPair>,
        other: &mut Option<LbPair>,
        now: Instant,
        name: char,
        t: u64,
        log: &mut Vec<(u64, char, PairEvent)>,
    ) {
        let Some(me) = me.as_mut() else { return };
        if me.poll_timeout() <= now {
            me.handle_timeout(now);
        }
        while let Some(hb) = me.poll_transmit() {
            if let Some(o) = other.as_mut() {
                o.handle_heartbeat(now, &hb).unwrap();
            }
        }
        while let Some(ev) = me.poll_event() {
            log.push((t, name, ev));
        }
    }

    #[test]
    fn primary_wins_at_start_and_backup_takes_over_after_its_death() {
        let mut a = Some(LbPair::new(ms(0), PairRole::Primary, cfg(), 1));
        let mut b = Some(LbPair::new(ms(0), PairRole::Backup, cfg(), 2));
        let log = run(&mut a, &mut b, 0, 200);
        assert_eq!(
            log,
            [(
                30,
                'a',
                PairEvent::Activate(ActivateReason::StartupNoActivePeer)
            )]
        );
        assert!(b.as_ref().unwrap().peer_active());
        // The primary dies at 200 ms (its last beat was at 200).
        a = None;
        let log = run(&mut a, &mut b, 201, 400);
        assert_eq!(
            log,
            [(
                230,
                'b',
                PairEvent::Activate(ActivateReason::PeerSilent {
                    silence: Duration::from_millis(30)
                })
            )]
        );
        // The primary returns: it hears the active backup and stays standby.
        a = Some(LbPair::new(ms(400), PairRole::Primary, cfg(), 3));
        let log = run(&mut a, &mut b, 400, 700);
        assert!(log.is_empty(), "{log:?}");
        assert!(!a.as_ref().unwrap().is_active());
        assert!(b.as_ref().unwrap().is_active());
        // Now the backup dies: the old primary takes over.
        b = None;
        let log = run(&mut a, &mut b, 701, 800);
        assert_eq!(log.len(), 1);
        assert!(matches!(
            log[0],
            (
                730,
                'a',
                PairEvent::Activate(ActivateReason::PeerSilent { .. })
            )
        ));
    }

    #[test]
    fn lone_backup_activates_after_its_longer_wait() {
        let mut a = None;
        let mut b = Some(LbPair::new(ms(0), PairRole::Backup, cfg(), 2));
        let log = run(&mut a, &mut b, 0, 100);
        assert_eq!(
            log,
            [(
                60,
                'b',
                PairEvent::Activate(ActivateReason::StartupNoActivePeer)
            )]
        );
    }

    #[test]
    fn both_active_backup_yields_and_primary_reannounces() {
        let mut a = LbPair::new(ms(0), PairRole::Primary, cfg(), 1);
        let mut b = LbPair::new(ms(0), PairRole::Backup, cfg(), 2);
        // Partitioned: both activate.
        a.handle_timeout(ms(100));
        b.handle_timeout(ms(100));
        assert!(a.is_active() && b.is_active());
        a.poll_event();
        b.poll_event();
        // Healed: each hears the other's active beat.
        let ha = a.poll_transmit().unwrap();
        let hb = b.poll_transmit().unwrap();
        b.handle_heartbeat(ms(101), &ha).unwrap();
        a.handle_heartbeat(ms(101), &hb).unwrap();
        assert_eq!(
            b.poll_event(),
            Some(PairEvent::Deactivate(DeactivateReason::PrimaryActive))
        );
        assert_eq!(a.poll_event(), Some(PairEvent::Reannounce));
        assert!(a.is_active() && !b.is_active());
        // The backup's beats now say standby: it yielded, and the primary
        // announces once more (after the backup's last announcement).
        b.handle_timeout(ms(110));
        let hb = b.poll_transmit().unwrap();
        assert_eq!(hb.workload & ACTIVE, 0);
        a.handle_heartbeat(ms(110), &hb).unwrap();
        assert_eq!(a.poll_event(), Some(PairEvent::Reannounce));
        // Later standby beats change nothing.
        b.handle_timeout(ms(120));
        let hb = b.poll_transmit().unwrap();
        a.handle_heartbeat(ms(120), &hb).unwrap();
        assert_eq!(a.poll_event(), None);
    }

    fn announcements(p: &mut LbPair, now: Instant) -> u32 {
        p.handle_timeout(now);
        let mut n = 0;
        while p.poll_announce() {
            n += 1;
        }
        n
    }

    #[test]
    fn announcer_spaces_and_stops() {
        let mut a = Announcer::new(3, Duration::from_millis(20));
        assert_eq!(a.poll_timeout(), None);
        a.start(ms(5));
        assert_eq!(a.poll_timeout(), Some(ms(5)));
        a.handle_timeout(ms(5));
        assert!(a.poll_transmit());
        assert!(!a.poll_transmit());
        a.handle_timeout(ms(24));
        assert!(!a.poll_transmit(), "not before the gap");
        a.handle_timeout(ms(25));
        assert!(a.poll_transmit());
        a.stop();
        assert_eq!(a.poll_timeout(), None);
        a.handle_timeout(ms(100));
        assert!(!a.poll_transmit(), "stopped: the third is cancelled");
    }

    #[test]
    fn a_yielding_backup_stops_announcing_and_the_primary_announces_last() {
        let mut a = LbPair::new(ms(0), PairRole::Primary, cfg(), 1);
        let mut b = LbPair::new(ms(0), PairRole::Backup, cfg(), 2);
        // Both active (beats lost until 100 ms): each announces.
        assert_eq!(announcements(&mut a, ms(100)), 1);
        assert_eq!(announcements(&mut b, ms(100)), 1);
        let _ = (a.poll_transmit(), b.poll_transmit());
        // From now on beats arrive (the backup's 1 ms late). The backup
        // hears the primary at 110 and yields before the primary ever saw
        // it active; its announcement due at 120 never goes out, and its
        // first standby beat (yielded bit set) makes the primary announce
        // again at 111, after anything the backup sent.
        let mut sent = Vec::new();
        for t in 101..300 {
            for _ in 0..announcements(&mut a, ms(t)) {
                sent.push(t);
            }
            if let Some(h) = a.poll_transmit() {
                b.handle_heartbeat(ms(t), &h).unwrap();
            }
            assert_eq!(announcements(&mut b, ms(t)), 0, "standby announced at {t}");
            if let Some(h) = b.poll_transmit() {
                a.handle_heartbeat(ms(t + 1), &h).unwrap();
            }
        }
        assert!(a.is_active() && !b.is_active());
        assert_eq!(sent, [111, 131, 151]);
        assert_eq!(
            a.poll_event(),
            Some(PairEvent::Activate(ActivateReason::StartupNoActivePeer))
        );
        assert_eq!(a.poll_event(), Some(PairEvent::Reannounce));
        assert_eq!(a.poll_event(), None, "one reannounce per yield");
    }

    #[test]
    fn watermark_keeps_a_late_standby_from_taking_over() {
        let mut a = LbPair::new(ms(0), PairRole::Primary, cfg(), 1);
        let mut b = LbPair::new(ms(0), PairRole::Backup, cfg(), 2);
        a.handle_timeout(ms(30));
        assert!(a.is_active());
        let ha = a.poll_transmit().unwrap();
        b.handle_heartbeat(ms(31), &ha).unwrap();
        b.handle_listened(ms(32));
        // The backup's loop stalls until 200 ms; the receiver listened
        // only up to 40 (the primary's later beats are still queued).
        b.handle_timeout(ms(200));
        assert!(!b.is_active(), "judged past the watermark");
        b.handle_listened(ms(40));
        assert!(!b.is_active());
        // Handed over: a beat that arrived at 41, then the watermark 90.
        let mut late = ha;
        late.seq += 1;
        b.handle_heartbeat(ms(41), &late).unwrap();
        b.handle_listened(ms(70));
        assert!(!b.is_active(), "41 + 30 not reached");
        b.handle_listened(ms(71));
        assert!(b.is_active(), "silent through the watermark: take over");
        assert_eq!(
            b.poll_event(),
            Some(PairEvent::Activate(ActivateReason::PeerSilent {
                silence: Duration::from_millis(30)
            }))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Beats and announcements with random delays, the primary's
        /// beats lost in random windows (flaps): once the network is
        /// quiet, one lb is active and the last announcement a client
        /// heard is the active lb's (a client holding the standby's MAC
        /// would send into a black hole).
        #[test]
        fn after_any_flaps_clients_learn_the_active_lb(
            delays in proptest::collection::vec(0u64..4, 256),
            losses in proptest::collection::vec((0u64..400, 0u64..80), 0..6),
        ) {
            let mut lbs = [
                LbPair::new(ms(0), PairRole::Primary, cfg(), 1),
                LbPair::new(ms(0), PairRole::Backup, cfg(), 2),
            ];
            // (arrival, destination: 0/1 = lb, 2 = client, sender, beat)
            let mut net: Vec<(u64, usize, usize, Option<Heartbeat>)> = Vec::new();
            let mut client = None;
            let mut k = 0;
            let mut delay = || {
                k += 1;
                delays[k % delays.len()]
            };
            for t in 0..800u64 {
                let now = ms(t);
                net.sort_by_key(|m| m.0);
                while net.first().is_some_and(|m| m.0 <= t) {
                    let (_, to, from, hb) = net.remove(0);
                    match hb {
                        Some(hb) => {
                            let _ = lbs[to].handle_heartbeat(now, &hb);
                        }
                        None => client = Some(from),
                    }
                }
                for (i, lb) in lbs.iter_mut().enumerate() {
                    lb.handle_timeout(now);
                    while let Some(hb) = lb.poll_transmit() {
                        let lost = i == 0 && losses.iter().any(|&(s, l)| t >= s && t < s + l);
                        if !lost {
                            net.push((t + delay(), 1 - i, i, Some(hb)));
                        }
                    }
                    while lb.poll_announce() {
                        proptest::prop_assert!(lb.is_active(), "a standby announced");
                        net.push((t + delay(), 2, i, None));
                    }
                    while lb.poll_event().is_some() {}
                }
            }
            let active: Vec<usize> = (0..2).filter(|&i| lbs[i].is_active()).collect();
            proptest::prop_assert_eq!(active.len(), 1);
            proptest::prop_assert_eq!(client, Some(active[0]));
        }
    }

    #[test]
    fn bad_peer_datagrams_are_refused() {
        let mut a = LbPair::new(ms(0), PairRole::Primary, cfg(), 1);
        assert!(matches!(
            a.handle_datagram(ms(0), b"junk"),
            Err(PairDrop::Malformed(_))
        ));
        let wrong = Heartbeat {
            id: ProxyId(3),
            epoch: 1,
            seq: 0,
            workload: ACTIVE,
        };
        assert_eq!(
            a.handle_datagram(ms(0), &wrong.encode()),
            Err(PairDrop::WrongId(3))
        );
        let good = Heartbeat {
            id: LB_PAIR_ID,
            ..wrong
        };
        a.handle_heartbeat(ms(1), &good).unwrap();
        assert_eq!(a.handle_heartbeat(ms(2), &good), Err(PairDrop::Stale));
        // An active peer heard during the start-up wait postpones it.
        a.handle_timeout(ms(30));
        assert!(!a.is_active());
        a.handle_timeout(ms(31));
        assert!(a.is_active());
    }
}

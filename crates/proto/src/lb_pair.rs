//! Primary/backup lb pair: which of two lbs owns the service address.
//!
//! The lb is stateless (paper §5.1), so failover only moves the address: the
//! standby keeps the same proxy table current from the proxies' heartbeats
//! (they beat to both lbs) and, on taking over, adds the address and
//! announces it (gratuitous ARP) so switch and clients learn its MAC.
//!
//! Both lbs beat to each other with the heartbeat codec ([`LB_PAIR_ID`],
//! `workload` bit 0 = "I am active", bit 1 = "I am the primary"). Rules:
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
    /// Announce the address again (both were active; we stay).
    Reannounce,
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

    fn sync_workload(&mut self) {
        let role = match self.role {
            PairRole::Primary => PRIMARY,
            PairRole::Backup => 0,
        };
        self.sender
            .set_workload(role | if self.active { ACTIVE } else { 0 });
    }

    fn set_active(&mut self, active: bool, ev: PairEvent) {
        self.active = active;
        self.sync_workload();
        self.events.push_back(ev);
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
        self.peer = Some(PeerView {
            epoch: hb.epoch,
            seq: hb.seq,
            active,
        });
        if !active {
            return Ok(());
        }
        self.last_active_peer = Some(now);
        if self.active {
            match self.role {
                PairRole::Backup => self.set_active(
                    false,
                    PairEvent::Deactivate(DeactivateReason::PrimaryActive),
                ),
                PairRole::Primary => self.events.push_back(PairEvent::Reannounce),
            }
        }
        if !self.active {
            self.deadline = self.deadline.max(now + self.dead_after);
        }
        Ok(())
    }

    /// Next instant with work: a beat to send or a standby deadline.
    pub fn poll_timeout(&self) -> Instant {
        let beat = self.sender.poll_timeout();
        if self.active {
            beat
        } else {
            beat.min(self.deadline)
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.active && now >= self.deadline {
            let reason = match self.last_active_peer {
                Some(t) => ActivateReason::PeerSilent {
                    silence: now.saturating_since(t),
                },
                None => ActivateReason::StartupNoActivePeer,
            };
            self.set_active(true, PairEvent::Activate(reason));
        }
        self.sender.handle_timeout(now);
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
        // The backup's beats now say standby.
        b.handle_timeout(ms(110));
        let hb = b.poll_transmit().unwrap();
        assert_eq!(hb.workload & ACTIVE, 0);
        a.handle_heartbeat(ms(110), &hb).unwrap();
        assert_eq!(a.poll_event(), None);
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

//! Splice teardown: when a splice may be deleted everywhere.
//!
//! Packets of one splice cross different proxies, so no proxy sees the whole
//! close. The protocol:
//!
//! 1. **RST** (either direction): the proxy that relays it deletes the splice
//!    at once ([`TeardownAction::Delete`] with [`CloseReason::Reset`]; the
//!    caller runs [`crate::replication::Replicator::delete`], which
//!    replicates a versioned `Delete` to every peer).
//! 2. **FIN**: the proxy that relays the first FIN of a direction notes it
//!    and sends [`TeardownAction::SendFin`] to every peer (a
//!    [`Message::Fin`](crate::replication::Message::Fin), unacknowledged).
//!    Once a replica knows of FINs in both directions it starts a *linger*
//!    (2·MSL-like, configurable): the endpoints' final ACKs and any FIN
//!    retransmissions still need the splice. When the linger ends, the
//!    splice's **owner** deletes it (replicated `Delete`).
//! 3. **Idle**: the owner deletes a splice no packet crossed for `idle`. Each
//!    non-owner proxy that relayed packets of a splice since its last report
//!    tells the owner every `tick` ([`TeardownAction::SendActivity`], a
//!    [`Message::Activity`](crate::replication::Message::Activity)); the
//!    owner takes the report's arrival time as activity (clocks of different
//!    machines are never compared).
//!
//! The owner of a splice is the rendezvous hash of its id over the live
//! proxies, so every proxy agrees on it and it moves only when the owner
//! dies. On any membership change every tracked splice's activity is
//! refreshed to `now`, so a new owner never deletes a splice for idleness it
//! could not observe. Lost FIN notices are harmless: the owner then deletes
//! the splice by the idle rule instead (later, never earlier).
//!
//! Timers run on a periodic tick, so linger and idle deletions happen up to
//! one tick late.

use std::collections::{BTreeMap, VecDeque};

use core::time::Duration;

use crate::hash::{mix64, rendezvous};
use crate::splice::{Direction, SpliceId};
use crate::{Instant, ProxyId};

/// Teardown settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TeardownConfig {
    /// Time a splice survives after FINs were seen both ways.
    pub linger: Duration,
    /// Inactivity after which the owner deletes a splice.
    pub idle: Duration,
    /// Period of activity reports and timer checks.
    pub tick: Duration,
    /// Splice ids per activity report message.
    pub activity_chunk: usize,
}

impl Default for TeardownConfig {
    fn default() -> Self {
        TeardownConfig {
            linger: Duration::from_secs(60),
            idle: Duration::from_secs(300),
            tick: Duration::from_secs(1),
            activity_chunk: 170,
        }
    }
}

/// Why a splice is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Reset,
    /// FINs both ways, linger over.
    Closed,
    Idle,
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeardownAction {
    /// Delete the splice and replicate the deletion.
    Delete { id: SpliceId, reason: CloseReason },
    /// Send `Message::Fin { id, dir }` to every peer.
    SendFin { id: SpliceId, dir: Direction },
    /// Send `Message::Activity { ids }` to `to`.
    SendActivity { to: ProxyId, ids: Vec<SpliceId> },
}

#[derive(Clone, Copy, Debug)]
struct Track {
    fin_c2s: bool,
    fin_s2c: bool,
    closed_at: Option<Instant>,
    last_activity: Instant,
    report: bool,
}

/// The owner of splice `id` among `live` proxies.
pub fn splice_owner(id: SpliceId, live: impl IntoIterator<Item = ProxyId>) -> Option<ProxyId> {
    rendezvous(mix64(id.0 ^ 0x7ea2_d0e5), live)
}

/// Counters of teardown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TeardownStats {
    pub resets: u64,
    pub closed: u64,
    pub idled: u64,
    pub fin_notices_sent: u64,
    pub activity_reports: u64,
    /// Notices about splices this proxy does not track.
    pub unknown: u64,
}

/// Per-proxy teardown tracking.
#[derive(Clone, Debug)]
pub struct Teardown {
    cfg: TeardownConfig,
    me: ProxyId,
    live: Vec<ProxyId>,
    entries: BTreeMap<SpliceId, Track>,
    next_tick: Instant,
    actions: VecDeque<TeardownAction>,
    stats: TeardownStats,
}

impl Teardown {
    pub fn new(now: Instant, me: ProxyId, cfg: TeardownConfig) -> Self {
        Teardown {
            cfg,
            me,
            live: vec![me],
            entries: BTreeMap::new(),
            next_tick: now + cfg.tick,
            actions: VecDeque::new(),
            stats: TeardownStats::default(),
        }
    }

    pub fn stats(&self) -> TeardownStats {
        self.stats
    }

    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// Starts tracking a splice (local create or remote install).
    pub fn track(&mut self, now: Instant, id: SpliceId) {
        self.entries.entry(id).or_insert(Track {
            fin_c2s: false,
            fin_s2c: false,
            closed_at: None,
            last_activity: now,
            report: false,
        });
    }

    /// Stops tracking (the splice was deleted).
    pub fn untrack(&mut self, id: SpliceId) {
        self.entries.remove(&id);
    }

    /// Replaces the live membership (this proxy always counts as live).
    pub fn set_live(&mut self, now: Instant, live: impl IntoIterator<Item = ProxyId>) {
        let mut v: Vec<ProxyId> = live.into_iter().chain([self.me]).collect();
        v.sort();
        v.dedup();
        if v != self.live {
            self.live = v;
            for t in self.entries.values_mut() {
                t.last_activity = t.last_activity.max(now);
            }
        }
    }

    pub fn proxy_up(&mut self, now: Instant, id: ProxyId) {
        let v: Vec<ProxyId> = self.live.iter().copied().chain([id]).collect();
        self.set_live(now, v);
    }

    pub fn proxy_down(&mut self, now: Instant, id: ProxyId) {
        let v: Vec<ProxyId> = self.live.iter().copied().filter(|&p| p != id).collect();
        self.set_live(now, v);
    }

    /// The current owner of `id`.
    pub fn owner(&self, id: SpliceId) -> ProxyId {
        splice_owner(id, self.live.iter().copied()).unwrap_or(self.me)
    }

    /// A packet of splice `id` travelling `dir` was relayed by this proxy.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        id: SpliceId,
        dir: Direction,
        fin: bool,
        rst: bool,
    ) {
        let Some(t) = self.entries.get_mut(&id) else {
            self.stats.unknown += 1;
            return;
        };
        t.last_activity = now;
        t.report = true;
        if rst {
            self.entries.remove(&id);
            self.stats.resets += 1;
            self.actions.push_back(TeardownAction::Delete {
                id,
                reason: CloseReason::Reset,
            });
            return;
        }
        if fin && Self::note_fin(t, now, dir) {
            self.stats.fin_notices_sent += 1;
            self.actions.push_back(TeardownAction::SendFin { id, dir });
        }
    }

    /// Records a FIN; true if it is new for that direction.
    fn note_fin(t: &mut Track, now: Instant, dir: Direction) -> bool {
        let flag = match dir {
            Direction::ClientToServer => &mut t.fin_c2s,
            Direction::ServerToClient => &mut t.fin_s2c,
        };
        let new = !*flag;
        *flag = true;
        if t.fin_c2s && t.fin_s2c && t.closed_at.is_none() {
            t.closed_at = Some(now);
        }
        new
    }

    /// A peer relayed a FIN of `id` in `dir`.
    pub fn handle_fin(&mut self, now: Instant, id: SpliceId, dir: Direction) {
        match self.entries.get_mut(&id) {
            Some(t) => {
                Self::note_fin(t, now, dir);
            }
            None => self.stats.unknown += 1,
        }
    }

    /// A peer relayed packets of `ids` during its last report period.
    pub fn handle_activity(&mut self, now: Instant, ids: &[SpliceId]) {
        for id in ids {
            match self.entries.get_mut(id) {
                Some(t) => t.last_activity = t.last_activity.max(now),
                None => self.stats.unknown += 1,
            }
        }
    }

    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// Runs the periodic tick if due: activity reports and the owner's
    /// linger/idle deletions.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + self.cfg.tick;
        let mut reports: BTreeMap<ProxyId, Vec<SpliceId>> = BTreeMap::new();
        let mut dead = Vec::new();
        for (&id, t) in self.entries.iter_mut() {
            let owner = splice_owner(id, self.live.iter().copied()).unwrap_or(self.me);
            if owner != self.me {
                if std::mem::take(&mut t.report) {
                    reports.entry(owner).or_default().push(id);
                }
                continue;
            }
            t.report = false;
            if t.closed_at.is_some_and(|c| c + self.cfg.linger <= now) {
                dead.push((id, CloseReason::Closed));
            } else if t.last_activity + self.cfg.idle <= now {
                dead.push((id, CloseReason::Idle));
            }
        }
        for (to, ids) in reports {
            for chunk in ids.chunks(self.cfg.activity_chunk.max(1)) {
                self.stats.activity_reports += 1;
                self.actions.push_back(TeardownAction::SendActivity {
                    to,
                    ids: chunk.to_vec(),
                });
            }
        }
        for (id, reason) in dead {
            self.entries.remove(&id);
            match reason {
                CloseReason::Closed => self.stats.closed += 1,
                _ => self.stats.idled += 1,
            }
            self.actions
                .push_back(TeardownAction::Delete { id, reason });
        }
    }

    pub fn poll_action(&mut self) -> Option<TeardownAction> {
        self.actions.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    fn s(n: u64) -> Instant {
        Instant::from_secs(n)
    }

    fn cfg() -> TeardownConfig {
        TeardownConfig {
            linger: Duration::from_secs(10),
            idle: Duration::from_secs(100),
            tick: Duration::from_secs(1),
            activity_chunk: 2,
        }
    }

    fn actions(t: &mut Teardown) -> Vec<TeardownAction> {
        std::iter::from_fn(|| t.poll_action()).collect()
    }

    /// Ticks every second from `from` to `to` inclusive.
    fn tick(t: &mut Teardown, from: u64, to: u64) -> Vec<TeardownAction> {
        let mut out = Vec::new();
        for n in from..=to {
            t.handle_timeout(s(n));
            out.extend(actions(t));
        }
        out
    }

    /// A splice id owned by `owner` among `live`.
    fn owned_by(owner: u16, live: &[u16]) -> SpliceId {
        (0..)
            .map(SpliceId)
            .find(|&id| splice_owner(id, live.iter().map(|&p| ProxyId(p))) == Some(ProxyId(owner)))
            .unwrap()
    }

    #[test]
    fn rst_deletes_at_once() {
        let mut t = Teardown::new(s(0), ProxyId(1), cfg());
        t.track(s(0), SpliceId(5));
        t.handle_packet(s(1), SpliceId(5), ServerToClient, false, true);
        assert_eq!(
            actions(&mut t),
            [TeardownAction::Delete {
                id: SpliceId(5),
                reason: CloseReason::Reset
            }]
        );
        assert_eq!(t.tracked(), 0);
        t.handle_packet(s(1), SpliceId(5), ServerToClient, false, true);
        assert_eq!(actions(&mut t), []);
        assert_eq!(t.stats().unknown, 1);
    }

    #[test]
    fn fin_both_ways_then_linger_at_owner_only() {
        let id = owned_by(1, &[1, 2]);
        let mut owner = Teardown::new(s(0), ProxyId(1), cfg());
        let mut other = Teardown::new(s(0), ProxyId(2), cfg());
        for (t, peer) in [(&mut owner, 2), (&mut other, 1)] {
            t.set_live(s(0), [ProxyId(peer)]);
            t.track(s(0), id);
        }
        // The client's FIN crosses proxy 2, the server's FIN proxy 1.
        other.handle_packet(s(5), id, ClientToServer, true, false);
        assert_eq!(
            actions(&mut other),
            [TeardownAction::SendFin {
                id,
                dir: ClientToServer
            }]
        );
        other.handle_packet(s(5), id, ClientToServer, true, false);
        assert_eq!(actions(&mut other), [], "retransmitted FIN notices once");
        owner.handle_fin(s(5), id, ClientToServer);
        owner.handle_packet(s(6), id, ServerToClient, true, false);
        assert_eq!(
            actions(&mut owner),
            [TeardownAction::SendFin {
                id,
                dir: ServerToClient
            }]
        );
        other.handle_fin(s(6), id, ServerToClient);
        // Linger: 10 s from the second FIN (t=6), checked on ticks.
        let before = tick(&mut owner, 1, 15);
        assert!(
            before
                .iter()
                .all(|a| !matches!(a, TeardownAction::Delete { .. })),
            "{before:?}"
        );
        assert_eq!(
            tick(&mut owner, 16, 16),
            [TeardownAction::Delete {
                id,
                reason: CloseReason::Closed
            }]
        );
        // The non-owner never deletes by itself.
        let acts = tick(&mut other, 1, 400);
        assert!(
            acts.iter()
                .all(|a| !matches!(a, TeardownAction::Delete { .. })),
            "{acts:?}"
        );
    }

    #[test]
    fn idle_deletion_uses_reported_activity() {
        let id = owned_by(1, &[1, 2]);
        let mut owner = Teardown::new(s(0), ProxyId(1), cfg());
        let mut relay = Teardown::new(s(0), ProxyId(2), cfg());
        owner.set_live(s(0), [ProxyId(2)]);
        relay.set_live(s(0), [ProxyId(1)]);
        owner.track(s(0), id);
        relay.track(s(0), id);
        // All packets cross the relay until t=150; it reports each tick.
        for n in 1..=150 {
            relay.handle_packet(s(n), id, ClientToServer, false, false);
            relay.handle_timeout(s(n));
            for a in actions(&mut relay) {
                if let TeardownAction::SendActivity { to, ids } = a {
                    assert_eq!(to, ProxyId(1));
                    owner.handle_activity(s(n), &ids);
                }
            }
            owner.handle_timeout(s(n));
            assert_eq!(actions(&mut owner), [], "deleted an active splice at {n}");
        }
        // No reports without packets.
        assert!(tick(&mut relay, 151, 160).is_empty());
        let acts = tick(&mut owner, 151, 260);
        assert_eq!(
            acts,
            [TeardownAction::Delete {
                id,
                reason: CloseReason::Idle
            }]
        );
        assert_eq!(owner.stats().idled, 1);
    }

    #[test]
    fn new_owner_after_death_waits_a_full_idle_period() {
        let id = owned_by(3, &[1, 2, 3]);
        let heir = splice_owner(id, [ProxyId(1), ProxyId(2)]).unwrap();
        let mut t = Teardown::new(s(0), heir, cfg());
        t.set_live(s(0), [ProxyId(1), ProxyId(2), ProxyId(3)]);
        t.track(s(0), id);
        assert_eq!(t.owner(id), ProxyId(3));
        assert!(tick(&mut t, 1, 99).is_empty());
        t.proxy_down(s(99), ProxyId(3));
        assert_eq!(t.owner(id), heir);
        assert!(tick(&mut t, 100, 198).is_empty());
        assert_eq!(
            tick(&mut t, 199, 199),
            [TeardownAction::Delete {
                id,
                reason: CloseReason::Idle
            }]
        );
    }

    #[test]
    fn activity_reports_are_chunked_per_owner() {
        let mut t = Teardown::new(s(0), ProxyId(9), cfg());
        t.set_live(s(0), [ProxyId(1)]);
        let ids: Vec<SpliceId> = (0..)
            .map(SpliceId)
            .filter(|&i| splice_owner(i, [ProxyId(1), ProxyId(9)]) == Some(ProxyId(1)))
            .take(5)
            .collect();
        for &id in &ids {
            t.track(s(0), id);
            t.handle_packet(s(0), id, ServerToClient, false, false);
        }
        let acts = tick(&mut t, 1, 1);
        assert_eq!(acts.len(), 3, "5 ids in chunks of 2: {acts:?}");
        let reported: Vec<SpliceId> = acts
            .into_iter()
            .flat_map(|a| match a {
                TeardownAction::SendActivity {
                    to: ProxyId(1),
                    ids,
                } => ids,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(reported, ids);
        assert_eq!(t.poll_timeout(), s(2));
    }
}

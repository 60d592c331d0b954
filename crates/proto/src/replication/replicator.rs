//! The per-proxy replication state machine: keeps the local [`SpliceTable`]
//! and every peer's converged by version.
//!
//! - Local changes ([`Replicator::create`], [`Replicator::update`],
//!   [`Replicator::delete`]) apply to the local table and go to every peer;
//!   each peer acks `(id, version)`. Unacked messages are retransmitted with
//!   exponential backoff (`rto`, doubling up to 8×) until every peer acked,
//!   the peer went down, or `max_retransmits` ran out.
//! - [`ReplicatorEvent::Replicated`] is emitted once per pending change, at
//!   the first ack (the creating proxy drops its sockets only after it), or
//!   with `acked_by: None` when no peer is (or remains) there to ack.
//! - Remote changes apply by version; deletions leave a tombstone (bounded,
//!   oldest forgotten first) so a late create/update cannot resurrect them.
//!   A delete's version is one above the version it deletes, so a concurrent
//!   update with the same version loses to the delete.
//! - Resync: on every peer-up (and on a snapshot request from an unknown
//!   peer), a proxy pulls the peer's table chunk by chunk
//!   ([`Message::SnapshotRequest`] with a cursor, answered by
//!   [`Message::Snapshot`]). Pulling from every peer closes the race where a
//!   splice created elsewhere during the join is missed by one snapshot: its
//!   creator either has it in its own snapshot or already counts the joiner
//!   as a peer and sends it the create. A new peer is also added to the
//!   waiting set of every pending change.
//! - Catch-up: a peer declared down may not have been down at all (a false
//!   call: beats lost or late here while it saw ours). It never pulls our
//!   table then, so every local change made while we thought it down
//!   would be missing there for good. So the replicator remembers the ids
//!   of local changes (creates, updates, deletes) made while a peer it had
//!   seen is down, and when that peer comes back it pushes each one again
//!   (the splice's current version, or its delete) like a change of its
//!   own, acknowledged and retransmitted, besides pulling the peer's
//!   table as on any peer-up. Bounded by `max_splices` ids per peer; past
//!   that it pushes the whole table instead. A restarted peer pulls our
//!   table anyway; the extra pushes only repeat what it gets.
//! - [`Message::Fin`] and [`Message::Activity`] belong to
//!   [`crate::teardown`], [`Message::PreSplice`] to
//!   [`crate::orphan_records`]; the replicator ignores them (counted).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use core::time::Duration;

use super::message::Message;
use crate::splice::table::{version_newer, Applied, SpliceTable, TableError};
use crate::splice::{Splice, SpliceId};
use crate::{Instant, ProxyId};

/// Replicator settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicatorConfig {
    pub me: ProxyId,
    /// First retransmission timeout.
    pub rto: Duration,
    /// Retransmissions per change (or snapshot request) before giving up on
    /// the peers that have not answered.
    pub max_retransmits: u32,
    /// Splices per snapshot chunk (keep chunk datagrams under the MTU: 20
    /// splices are 1159 bytes, 1191 with a tag).
    pub snapshot_chunk: usize,
    /// Bound of the local splice table.
    pub max_splices: usize,
    /// Deletions remembered to reject late creates.
    pub tombstones: usize,
}

impl ReplicatorConfig {
    pub fn new(me: ProxyId) -> Self {
        ReplicatorConfig {
            me,
            rto: Duration::from_millis(20),
            max_retransmits: 8,
            snapshot_chunk: 20,
            max_splices: 1 << 20,
            tombstones: 65_536,
        }
    }
}

/// What the replicator tells its proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicatorEvent {
    /// A local change reached a peer (`Some(peer)`, the first to ack), or
    /// there is no peer to reach (`None`). Emitted once per change.
    Replicated {
        id: SpliceId,
        version: u32,
        acked_by: Option<ProxyId>,
    },
    /// A remote splice was installed or updated locally.
    Installed { id: SpliceId },
    /// A splice was removed locally by a remote delete.
    Removed { id: SpliceId },
    /// The snapshot pulled from `peer` is complete.
    Synced { peer: ProxyId },
    /// `peer` never acked `id` (or never answered a snapshot request, with
    /// `id` the cursor) within the retransmission budget.
    GaveUp { id: SpliceId, peer: ProxyId },
}

/// Counters of the replicator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicatorStats {
    pub sent: u64,
    pub retransmitted: u64,
    pub acks_received: u64,
    pub applied: u64,
    pub stale: u64,
    /// Remote splices refused because the table is full.
    pub refused_full: u64,
    pub tombstoned: u64,
    pub snapshot_chunks_served: u64,
    /// Changes pushed again to a peer back from down (catch-up).
    pub caught_up: u64,
    pub snapshot_splices_installed: u64,
    /// Messages for other state machines (Fin, Activity) or unexpected ones.
    pub ignored: u64,
}

#[derive(Clone, Debug)]
struct Pending {
    msg: Message,
    version: u32,
    waiting: BTreeSet<ProxyId>,
    reported: bool,
    retries: u32,
    next: Instant,
}

/// Local changes a down peer missed.
#[derive(Clone, Debug, Default)]
struct Missed {
    ids: BTreeSet<SpliceId>,
    /// More than `max_splices` ids: push the whole table.
    overflow: bool,
}

#[derive(Clone, Copy, Debug)]
struct Pull {
    from: SpliceId,
    retries: u32,
    next: Instant,
}

/// The replication state machine of one proxy.
#[derive(Clone, Debug)]
pub struct Replicator {
    cfg: ReplicatorConfig,
    table: SpliceTable,
    peers: BTreeSet<ProxyId>,
    pending: BTreeMap<SpliceId, Pending>,
    pulls: BTreeMap<ProxyId, Pull>,
    tombstones: BTreeMap<SpliceId, u32>,
    tomb_order: VecDeque<(SpliceId, u32)>,
    /// Peers seen and then declared down, with the local changes made
    /// since (module docs, catch-up).
    absent: BTreeMap<ProxyId, Missed>,
    out: VecDeque<(ProxyId, Message)>,
    events: VecDeque<ReplicatorEvent>,
    stats: ReplicatorStats,
}

impl Replicator {
    pub fn new(cfg: ReplicatorConfig) -> Self {
        Replicator {
            cfg,
            table: SpliceTable::new(cfg.max_splices),
            peers: BTreeSet::new(),
            pending: BTreeMap::new(),
            pulls: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            tomb_order: VecDeque::new(),
            absent: BTreeMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: ReplicatorStats::default(),
        }
    }

    pub fn config(&self) -> &ReplicatorConfig {
        &self.cfg
    }

    pub fn stats(&self) -> ReplicatorStats {
        self.stats
    }

    pub fn table(&self) -> &SpliceTable {
        &self.table
    }

    /// The table, for the packet path's lookups.
    pub fn table_mut(&mut self) -> &mut SpliceTable {
        &mut self.table
    }

    pub fn peers(&self) -> impl Iterator<Item = ProxyId> + '_ {
        self.peers.iter().copied()
    }

    /// Changes still waiting for acks.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Installs a splice this proxy created and replicates it.
    pub fn create(&mut self, now: Instant, splice: Splice) -> Result<Applied, TableError> {
        let applied = self.table.insert(splice.clone())?;
        if applied != Applied::Stale {
            self.forget_tombstone(splice.id);
            self.start(now, splice.id, splice.version, Message::Create(splice));
        }
        Ok(applied)
    }

    /// Installs a newer version of a splice and replicates it.
    pub fn update(&mut self, now: Instant, splice: Splice) -> Result<Applied, TableError> {
        let applied = self.table.insert(splice.clone())?;
        if applied != Applied::Stale {
            self.start(now, splice.id, splice.version, Message::Update(splice));
        }
        Ok(applied)
    }

    /// Deletes a splice locally and on every peer. Returns the removed splice.
    pub fn delete(&mut self, now: Instant, id: SpliceId) -> Option<Splice> {
        let old = self.table.remove_any(id)?;
        let version = old.version.wrapping_add(1);
        self.tombstone(id, version);
        self.start(now, id, version, Message::Delete { id, version });
        Some(old)
    }

    fn start(&mut self, now: Instant, id: SpliceId, version: u32, msg: Message) {
        let bound = self.cfg.max_splices.max(1);
        for m in self.absent.values_mut() {
            if m.overflow {
                continue;
            }
            m.ids.insert(id);
            if m.ids.len() > bound {
                m.ids.clear();
                m.overflow = true;
            }
        }
        if self.peers.is_empty() {
            self.pending.remove(&id);
            self.events.push_back(ReplicatorEvent::Replicated {
                id,
                version,
                acked_by: None,
            });
            return;
        }
        for &p in &self.peers {
            self.out.push_back((p, msg.clone()));
            self.stats.sent += 1;
        }
        let p = Pending {
            msg,
            version,
            waiting: self.peers.clone(),
            reported: false,
            retries: 0,
            next: now + self.cfg.rto,
        };
        self.pending.insert(id, p);
    }

    /// A peer became live (membership event): it joins every pending change
    /// and we pull its table.
    pub fn handle_peer_up(&mut self, now: Instant, peer: ProxyId) {
        if peer == self.cfg.me {
            return;
        }
        self.peers.insert(peer);
        for p in self.pending.values_mut() {
            if p.waiting.insert(peer) {
                self.out.push_back((peer, p.msg.clone()));
                self.stats.sent += 1;
            }
        }
        if let Some(missed) = self.absent.remove(&peer) {
            self.catch_up(now, peer, missed);
        }
        let pull = Pull {
            from: SpliceId(0),
            retries: 0,
            next: now + self.cfg.rto,
        };
        self.pulls.insert(peer, pull);
        self.out
            .push_back((peer, Message::SnapshotRequest { from: SpliceId(0) }));
        self.stats.sent += 1;
    }

    /// Pushes `peer` the local changes it missed while it was down (the
    /// ones still pending already went to it with the peer-up).
    fn catch_up(&mut self, now: Instant, peer: ProxyId, missed: Missed) {
        let ids: Vec<SpliceId> = if missed.overflow {
            self.table.range_from(SpliceId(0)).map(|s| s.id).collect()
        } else {
            missed.ids.into_iter().collect()
        };
        for id in ids {
            if self.pending.contains_key(&id) {
                continue;
            }
            let (msg, version) = match self.table.get(id) {
                Some(s) => (Message::Create(s.clone()), s.version),
                None => match self.tombstones.get(&id) {
                    Some(&version) => (Message::Delete { id, version }, version),
                    // Forgotten: the peer's idle rule is the backstop.
                    None => continue,
                },
            };
            self.out.push_back((peer, msg.clone()));
            self.stats.sent += 1;
            self.stats.caught_up += 1;
            self.pending.insert(
                id,
                Pending {
                    msg,
                    version,
                    waiting: BTreeSet::from([peer]),
                    // Its creation was reported long ago.
                    reported: true,
                    retries: 0,
                    next: now + self.cfg.rto,
                },
            );
        }
    }

    /// A peer died: stop waiting for it, and remember what it misses.
    pub fn handle_peer_down(&mut self, peer: ProxyId) {
        if self.peers.contains(&peer) {
            self.absent.entry(peer).or_default();
        }
        self.peers.remove(&peer);
        self.pulls.remove(&peer);
        let ids: Vec<SpliceId> = self.pending.keys().copied().collect();
        for id in ids {
            self.drop_waiter(id, peer);
        }
    }

    fn drop_waiter(&mut self, id: SpliceId, peer: ProxyId) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.waiting.remove(&peer);
        if p.waiting.is_empty() {
            if !p.reported {
                let version = p.version;
                self.events.push_back(ReplicatorEvent::Replicated {
                    id,
                    version,
                    acked_by: None,
                });
            }
            self.pending.remove(&id);
        }
    }

    /// Handles a message from `from`.
    pub fn handle_message(&mut self, now: Instant, from: ProxyId, msg: Message) {
        match msg {
            Message::Create(s) | Message::Update(s) => {
                let (id, version) = (s.id, s.version);
                if self.apply_remote(s) {
                    self.send(from, Message::Ack { id, version });
                }
            }
            Message::Delete { id, version } => {
                if self.table.remove(id, version).is_some() {
                    self.events.push_back(ReplicatorEvent::Removed { id });
                }
                self.tombstone(id, version);
                self.send(from, Message::Ack { id, version });
            }
            Message::Ack { id, version } => {
                self.stats.acks_received += 1;
                let Some(p) = self.pending.get_mut(&id) else {
                    return;
                };
                if version_newer(p.version, version) || !p.waiting.contains(&from) {
                    return;
                }
                if !p.reported {
                    p.reported = true;
                    let v = p.version;
                    self.events.push_back(ReplicatorEvent::Replicated {
                        id,
                        version: v,
                        acked_by: Some(from),
                    });
                }
                self.drop_waiter(id, from);
            }
            Message::SnapshotRequest { from: cursor } => {
                if from != self.cfg.me && !self.peers.contains(&from) {
                    self.handle_peer_up(now, from);
                }
                let mut splices: Vec<Splice> = self
                    .table
                    .range_from(cursor)
                    .take(self.cfg.snapshot_chunk.max(1) + 1)
                    .cloned()
                    .collect();
                let last = splices.len() <= self.cfg.snapshot_chunk.max(1);
                if !last {
                    splices.pop();
                }
                self.stats.snapshot_chunks_served += 1;
                self.send(from, Message::Snapshot { splices, last });
            }
            Message::Snapshot { splices, last } => {
                let Some(pull) = self.pulls.get_mut(&from) else {
                    self.stats.ignored += 1;
                    return;
                };
                // Ignore a duplicate chunk that does not continue the cursor.
                if splices.first().is_some_and(|s| s.id < pull.from) {
                    self.stats.ignored += 1;
                    return;
                }
                let next = splices.last().map(|s| SpliceId(s.id.0.wrapping_add(1)));
                let end = last || next.is_none_or(|n| n.0 == 0);
                if let (false, Some(n)) = (end, next) {
                    *pull = Pull {
                        from: n,
                        retries: 0,
                        next: now + self.cfg.rto,
                    };
                }
                for s in splices {
                    if self.apply_remote(s) {
                        self.stats.snapshot_splices_installed += 1;
                    }
                }
                if end {
                    self.pulls.remove(&from);
                    self.events
                        .push_back(ReplicatorEvent::Synced { peer: from });
                } else if let Some(n) = next {
                    self.send(from, Message::SnapshotRequest { from: n });
                }
            }
            Message::Fin { .. } | Message::Activity { .. } | Message::PreSplice { .. } => {
                self.stats.ignored += 1
            }
        }
    }

    /// Applies a remote splice by version and tombstones; true if the table
    /// now holds this version or a newer one (so it may be acked).
    fn apply_remote(&mut self, s: Splice) -> bool {
        if let Some(&dead) = self.tombstones.get(&s.id) {
            if !version_newer(s.version, dead) {
                self.stats.stale += 1;
                return true;
            }
        }
        let id = s.id;
        match self.table.insert(s) {
            Ok(Applied::Stale) => {
                self.stats.stale += 1;
                true
            }
            Ok(_) => {
                self.stats.applied += 1;
                self.forget_tombstone(id);
                self.events.push_back(ReplicatorEvent::Installed { id });
                true
            }
            Err(_) => {
                self.stats.refused_full += 1;
                false
            }
        }
    }

    fn send(&mut self, to: ProxyId, msg: Message) {
        self.stats.sent += 1;
        self.out.push_back((to, msg));
    }

    fn tombstone(&mut self, id: SpliceId, version: u32) {
        match self.tombstones.get(&id) {
            Some(&v) if !version_newer(version, v) => return,
            _ => {}
        }
        self.tombstones.insert(id, version);
        self.tomb_order.push_back((id, version));
        self.stats.tombstoned += 1;
        while self.tomb_order.len() > self.cfg.tombstones {
            let Some((old, v)) = self.tomb_order.pop_front() else {
                break;
            };
            // A newer tombstone of the same id has its own queue entry.
            if self.tombstones.get(&old) == Some(&v) {
                self.tombstones.remove(&old);
            }
        }
    }

    fn forget_tombstone(&mut self, id: SpliceId) {
        self.tombstones.remove(&id);
    }

    /// The next retransmission or snapshot-request deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.pending.values().map(|p| p.next).min();
        let b = self.pulls.values().map(|p| p.next).min();
        a.into_iter().chain(b).min()
    }

    fn backoff(&self, retries: u32) -> Duration {
        self.cfg.rto * (1u32 << retries.min(3))
    }

    /// Retransmits what is due; gives up after `max_retransmits`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<SpliceId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            if p.retries >= self.cfg.max_retransmits {
                let peers: Vec<ProxyId> = p.waiting.iter().copied().collect();
                for peer in peers {
                    self.events.push_back(ReplicatorEvent::GaveUp { id, peer });
                    self.drop_waiter(id, peer);
                }
                continue;
            }
            p.retries += 1;
            let retries = p.retries;
            let targets: Vec<(ProxyId, Message)> =
                p.waiting.iter().map(|&w| (w, p.msg.clone())).collect();
            let next = now + self.backoff(retries);
            if let Some(p) = self.pending.get_mut(&id) {
                p.next = next;
            }
            self.stats.retransmitted += targets.len() as u64;
            self.stats.sent += targets.len() as u64;
            self.out.extend(targets);
        }
        let due: Vec<ProxyId> = self
            .pulls
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(&id, _)| id)
            .collect();
        for peer in due {
            let Some(pull) = self.pulls.get(&peer).copied() else {
                continue;
            };
            if pull.retries >= self.cfg.max_retransmits {
                self.pulls.remove(&peer);
                self.events.push_back(ReplicatorEvent::GaveUp {
                    id: pull.from,
                    peer,
                });
                continue;
            }
            let retries = pull.retries + 1;
            let next = now + self.backoff(retries);
            self.pulls.insert(
                peer,
                Pull {
                    retries,
                    next,
                    ..pull
                },
            );
            self.stats.retransmitted += 1;
            self.send(peer, Message::SnapshotRequest { from: pull.from });
        }
    }

    /// The next message to send, with its destination.
    pub fn poll_transmit(&mut self) -> Option<(ProxyId, Message)> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ReplicatorEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::codec;
    use crate::rng::SplitMix64;
    use crate::splice::table::tests::splice;
    use proptest::prelude::*;
    use ReplicatorEvent::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn rep(id: u16) -> Replicator {
        Replicator::new(ReplicatorConfig {
            snapshot_chunk: 4,
            ..ReplicatorConfig::new(ProxyId(id))
        })
    }

    /// Replicator `me` with `peers` up, each of whom answered the join's
    /// snapshot pull with an empty table; outbox and events drained, so
    /// only what the test does next is queued.
    fn joined(me: u16, peers: &[u16]) -> Replicator {
        let mut a = rep(me);
        for &p in peers {
            a.handle_peer_up(ms(0), ProxyId(p));
        }
        for &p in peers {
            a.handle_message(
                ms(0),
                ProxyId(p),
                Message::Snapshot {
                    splices: vec![],
                    last: true,
                },
            );
        }
        outbox(&mut a);
        events(&mut a);
        a
    }

    fn events(r: &mut Replicator) -> Vec<ReplicatorEvent> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    fn outbox(r: &mut Replicator) -> Vec<(ProxyId, Message)> {
        std::iter::from_fn(|| r.poll_transmit()).collect()
    }

    /// Delivers every queued message (through the codec) until quiet,
    /// dropping each with probability `loss_pct`%, advancing time to fire
    /// timers. Returns the time reached.
    fn run(
        reps: &mut [Replicator],
        mut now: Instant,
        loss_pct: u64,
        rng: &mut SplitMix64,
    ) -> Instant {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..reps.len() {
                let me = reps[i].cfg.me;
                while let Some((to, msg)) = reps[i].poll_transmit() {
                    moved = true;
                    let bytes = codec::encode(me, &msg, None).unwrap();
                    if rng.below(100) < loss_pct {
                        continue;
                    }
                    let env = codec::decode(&bytes, None).unwrap();
                    if let Some(dst) = reps.iter_mut().find(|r| r.cfg.me == to) {
                        dst.handle_message(now, env.sender, env.msg);
                    }
                }
            }
            if !moved {
                let Some(t) = reps.iter().filter_map(|r| r.poll_timeout()).min() else {
                    return now;
                };
                now = now.max(t);
                for r in reps.iter_mut() {
                    r.handle_timeout(now);
                }
            }
        }
        panic!("replication did not quiesce");
    }

    fn link(reps: &mut [Replicator]) {
        let ids: Vec<ProxyId> = reps.iter().map(|r| r.cfg.me).collect();
        for r in reps.iter_mut() {
            for &p in &ids {
                r.handle_peer_up(ms(0), p);
            }
        }
    }

    fn tables_equal(reps: &[Replicator]) {
        let first: Vec<&Splice> = reps[0].table().iter().collect();
        for r in &reps[1..] {
            assert_eq!(
                r.table().iter().collect::<Vec<_>>(),
                first,
                "replica {:?} diverged",
                r.cfg.me
            );
        }
    }

    #[test]
    fn create_reports_first_ack_once() {
        let mut a = joined(1, &[2, 3]);
        a.create(ms(1), splice(10, 1, 5000, 20000)).unwrap();
        let out = outbox(&mut a);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(_, m)| matches!(m, Message::Create(_))));
        assert_eq!(events(&mut a), []);
        a.handle_message(
            ms(2),
            ProxyId(3),
            Message::Ack {
                id: SpliceId(10),
                version: 1,
            },
        );
        assert_eq!(
            events(&mut a),
            [Replicated {
                id: SpliceId(10),
                version: 1,
                acked_by: Some(ProxyId(3))
            }]
        );
        assert_eq!(a.pending(), 1);
        // An ack from a peer not waiting (duplicate) changes nothing.
        a.handle_message(
            ms(2),
            ProxyId(3),
            Message::Ack {
                id: SpliceId(10),
                version: 1,
            },
        );
        a.handle_message(
            ms(3),
            ProxyId(2),
            Message::Ack {
                id: SpliceId(10),
                version: 1,
            },
        );
        assert_eq!(events(&mut a), []);
        assert_eq!(a.pending(), 0);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn a_peer_back_from_a_false_down_gets_what_it_missed() {
        // a and b are linked; a declares b down (a false call: b never saw
        // a go, so b never pulls a's table again).
        let mut reps = [rep(1), rep(2)];
        link(&mut reps);
        let mut rng = SplitMix64::new(5);
        let mut now = run(&mut reps, ms(0), 0, &mut rng);
        reps[0].create(now, splice(7, 1, 1, 1)).unwrap();
        reps[0].create(now, splice(8, 1, 2, 2)).unwrap();
        now = run(&mut reps, now, 0, &mut rng);
        reps[0].handle_peer_down(ProxyId(2));
        // Made while b is down here: a create, an update, a delete.
        reps[0].create(now, splice(9, 1, 3, 3)).unwrap();
        reps[0].update(now, splice(7, 2, 1, 1)).unwrap();
        reps[0].delete(now, SpliceId(8));
        assert_eq!(
            events(&mut reps[0])
                .into_iter()
                .filter(|e| matches!(e, Replicated { acked_by: None, .. }))
                .count(),
            3,
            "no peer to ack them"
        );
        outbox(&mut reps[0]);
        assert_eq!(
            reps[1].table().ids().collect::<Vec<_>>(),
            [SpliceId(7), SpliceId(8)]
        );
        // b's beats are heard again.
        reps[0].handle_peer_up(now, ProxyId(2));
        now = run(&mut reps, now, 0, &mut rng);
        tables_equal(&reps);
        assert_eq!(
            reps[1].table().ids().collect::<Vec<_>>(),
            [SpliceId(7), SpliceId(9)]
        );
        assert_eq!(reps[1].table().get(SpliceId(7)).unwrap().version, 2);
        assert_eq!(reps[0].stats().caught_up, 3);
        assert_eq!(reps[0].pending(), 0, "the pushes were acked");
        // No second report of the old creations.
        assert!(!events(&mut reps[0])
            .iter()
            .any(|e| matches!(e, Replicated { .. })));
        // A restart (down then up at once) pushes nothing.
        reps[0].handle_peer_down(ProxyId(2));
        reps[0].handle_peer_up(now, ProxyId(2));
        assert!(outbox(&mut reps[0])
            .iter()
            .all(|(_, m)| matches!(m, Message::SnapshotRequest { .. })));
        let _ = run(&mut reps, now, 0, &mut rng);
        assert_eq!(reps[0].stats().caught_up, 3);
    }

    #[test]
    fn catch_up_past_its_bound_pushes_the_whole_table() {
        let mut a = Replicator::new(ReplicatorConfig {
            max_splices: 2,
            ..ReplicatorConfig::new(ProxyId(1))
        });
        a.handle_peer_up(ms(0), ProxyId(2));
        a.handle_peer_down(ProxyId(2));
        a.create(ms(1), splice(1, 1, 1, 1)).unwrap();
        a.create(ms(1), splice(2, 1, 2, 2)).unwrap();
        a.delete(ms(1), SpliceId(1));
        a.create(ms(1), splice(3, 1, 3, 3)).unwrap();
        outbox(&mut a);
        a.handle_peer_up(ms(2), ProxyId(2));
        let pushed: Vec<Message> = outbox(&mut a)
            .into_iter()
            .map(|(_, m)| m)
            .filter(|m| !matches!(m, Message::SnapshotRequest { .. }))
            .collect();
        // Three ids overflowed the bound of 2: the table goes instead
        // (the delete of 1 is lost to it; the peer's idle rule remains).
        assert_eq!(
            pushed,
            [
                Message::Create(splice(2, 1, 2, 2)),
                Message::Create(splice(3, 1, 3, 3))
            ]
        );
    }

    #[test]
    fn without_peers_replication_is_immediate_and_says_so() {
        let mut a = rep(1);
        a.create(ms(0), splice(1, 1, 1, 1)).unwrap();
        assert_eq!(
            events(&mut a),
            [Replicated {
                id: SpliceId(1),
                version: 1,
                acked_by: None
            }]
        );
        a.handle_peer_up(ms(0), ProxyId(2));
        outbox(&mut a);
        a.create(ms(0), splice(2, 1, 2, 2)).unwrap();
        a.handle_peer_down(ProxyId(2));
        assert_eq!(
            events(&mut a),
            [Replicated {
                id: SpliceId(2),
                version: 1,
                acked_by: None
            }]
        );
    }

    #[test]
    fn remote_changes_apply_by_version_and_tombstones_block_resurrection() {
        let mut b = rep(2);
        let from = ProxyId(1);
        b.handle_message(ms(0), from, Message::Create(splice(5, 1, 1, 1)));
        assert_eq!(events(&mut b), [Installed { id: SpliceId(5) }]);
        assert_eq!(
            outbox(&mut b),
            [(
                from,
                Message::Ack {
                    id: SpliceId(5),
                    version: 1
                }
            )]
        );
        // Stale: acked (we hold newer), not installed.
        b.handle_message(ms(0), from, Message::Update(splice(5, 3, 1, 1)));
        b.handle_message(ms(0), from, Message::Update(splice(5, 2, 9, 9)));
        assert_eq!(events(&mut b), [Installed { id: SpliceId(5) }]);
        assert_eq!(outbox(&mut b).len(), 2);
        assert_eq!(b.table().get(SpliceId(5)).unwrap().version, 3);
        b.handle_message(
            ms(0),
            from,
            Message::Delete {
                id: SpliceId(5),
                version: 4,
            },
        );
        assert_eq!(events(&mut b), [Removed { id: SpliceId(5) }]);
        // A late create/update is acked but not installed.
        b.handle_message(ms(0), from, Message::Create(splice(5, 3, 1, 1)));
        assert!(b.table().is_empty());
        assert_eq!(
            outbox(&mut b).last(),
            Some(&(
                from,
                Message::Ack {
                    id: SpliceId(5),
                    version: 3
                }
            ))
        );
        // A genuinely newer version (after the delete) is accepted.
        b.handle_message(ms(0), from, Message::Update(splice(5, 5, 1, 1)));
        assert_eq!(b.table().len(), 1);
    }

    #[test]
    fn retransmits_with_backoff_then_gives_up() {
        let mut a = joined(1, &[2, 3]);
        a.create(ms(0), splice(1, 1, 1, 1)).unwrap();
        outbox(&mut a);
        assert_eq!(a.poll_timeout(), Some(ms(20)));
        a.handle_timeout(ms(19));
        assert!(outbox(&mut a).is_empty());
        a.handle_timeout(ms(20));
        assert_eq!(outbox(&mut a).len(), 2);
        a.handle_message(
            ms(21),
            ProxyId(2),
            Message::Ack {
                id: SpliceId(1),
                version: 1,
            },
        );
        assert_eq!(a.poll_timeout(), Some(ms(60)), "backoff doubles");
        a.handle_timeout(ms(60));
        assert_eq!(
            outbox(&mut a),
            [(ProxyId(3), Message::Create(splice(1, 1, 1, 1)))]
        );
        let mut now = ms(60);
        while let Some(t) = a.poll_timeout() {
            now = t;
            a.handle_timeout(now);
        }
        assert!(now < ms(2_000));
        let ev = events(&mut a);
        assert_eq!(
            ev.last(),
            Some(&GaveUp {
                id: SpliceId(1),
                peer: ProxyId(3)
            })
        );
        // 8 retransmission rounds: the first to both peers, 7 to peer 3 only.
        assert_eq!(a.stats().retransmitted, 2 + 7);
    }

    #[test]
    fn snapshot_pull_syncs_a_joiner_in_chunks() {
        let mut reps = vec![rep(1), rep(2)];
        for i in 0..11 {
            reps[0]
                .create(ms(0), splice(100 + i, 1, i as u16, i as u16))
                .unwrap();
        }
        events(&mut reps[0]);
        link(&mut reps);
        let mut rng = SplitMix64::new(1);
        run(&mut reps, ms(0), 0, &mut rng);
        tables_equal(&reps);
        assert_eq!(reps[1].table().len(), 11);
        assert_eq!(
            reps[0].stats().snapshot_chunks_served,
            3,
            "11 splices in chunks of 4"
        );
        assert!(events(&mut reps[1]).contains(&Synced { peer: ProxyId(1) }));
        assert!(events(&mut reps[0]).contains(&Synced { peer: ProxyId(2) }));
    }

    #[test]
    fn snapshot_request_from_unknown_peer_makes_it_a_peer() {
        let mut a = rep(1);
        a.create(ms(0), splice(1, 1, 1, 1)).unwrap();
        a.handle_message(
            ms(0),
            ProxyId(9),
            Message::SnapshotRequest { from: SpliceId(0) },
        );
        assert_eq!(a.peers().collect::<Vec<_>>(), [ProxyId(9)]);
        let out = outbox(&mut a);
        assert!(out.contains(&(
            ProxyId(9),
            Message::Snapshot {
                splices: vec![splice(1, 1, 1, 1)],
                last: true
            }
        )));
    }

    #[test]
    fn fin_and_activity_are_not_for_the_replicator() {
        let mut a = rep(1);
        a.handle_message(
            ms(0),
            ProxyId(2),
            Message::Activity {
                ids: vec![SpliceId(1)],
            },
        );
        a.handle_message(
            ms(0),
            ProxyId(2),
            Message::Snapshot {
                splices: vec![],
                last: true,
            },
        );
        assert_eq!(a.stats().ignored, 2);
        assert!(outbox(&mut a).is_empty());
    }

    #[test]
    fn full_table_does_not_ack() {
        let mut b = Replicator::new(ReplicatorConfig {
            max_splices: 1,
            ..ReplicatorConfig::new(ProxyId(2))
        });
        b.handle_message(ms(0), ProxyId(1), Message::Create(splice(1, 1, 1, 1)));
        b.handle_message(ms(0), ProxyId(1), Message::Create(splice(2, 1, 2, 2)));
        assert_eq!(outbox(&mut b).len(), 1);
        assert_eq!(b.stats().refused_full, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Random creates, updates and deletes at random replicas over a
        /// lossy network, plus a late joiner: once quiet, all replicas hold
        /// the same table.
        #[test]
        fn replicas_converge_under_loss(
            ops in proptest::collection::vec((0usize..3, 0u64..8, 0u8..3), 1..40),
            seed: u64,
            loss in 0u64..30,
        ) {
            let patient = |id| Replicator::new(ReplicatorConfig { max_retransmits: 40, ..rep(id).cfg });
            let mut reps = vec![patient(1), patient(2), patient(3)];
            link(&mut reps);
            let mut rng = SplitMix64::new(seed);
            let mut now = run(&mut reps, ms(0), loss, &mut rng);
            let mut created = std::collections::BTreeSet::new();
            for (at, id, op) in ops {
                now += Duration::from_millis(1);
                let r = &mut reps[at];
                let cur = r.table().get(SpliceId(id)).map(|s| s.version);
                match (op, cur) {
                    // Ids belong to one creator and are never reused.
                    (0, None) if id % 3 == at as u64 && created.insert(id) => {
                        r.create(now, splice(id, 1, id as u16, id as u16)).unwrap();
                    }
                    (1, Some(v)) => {
                        r.update(now, splice(id, v.wrapping_add(1), id as u16, id as u16)).unwrap();
                    }
                    (2, Some(_)) => {
                        r.delete(now, SpliceId(id));
                    }
                    _ => {}
                }
                for _ in 0..3 {
                    if let Some((to, msg)) = reps[at].poll_transmit() {
                        if rng.below(100) >= loss {
                            let me = reps[at].cfg.me;
                            if let Some(dst) = reps.iter_mut().find(|r| r.cfg.me == to) {
                                dst.handle_message(now, me, msg);
                            }
                        }
                    }
                }
            }
            now = run(&mut reps, now, loss, &mut rng);
            // A fourth proxy joins late and pulls everything.
            reps.push(patient(4));
            link(&mut reps);
            run(&mut reps, now, 0, &mut rng);
            let first: Vec<Splice> = reps[0].table().iter().cloned().collect();
            for r in &reps[1..] {
                prop_assert_eq!(r.table().iter().cloned().collect::<Vec<_>>(), first.clone());
            }
        }
    }
}

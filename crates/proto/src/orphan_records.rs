//! Pre-splice records: what a proxy tells its peers about the client
//! connections it has accepted but not yet spliced, so that when it dies
//! the peer inheriting a connection's slot can reset the client even if
//! the client never sends another segment.
//!
//! [`crate::orphan`] resets a client whose segment reaches a survivor. An
//! idle client (a GET whose request head the dead proxy already
//! acknowledged) sends nothing more, so nothing reaches a survivor and the
//! connection hangs. The survivors need the tuple and a sequence number the
//! client accepts in a reset:
//!
//! - At accept the owner sends `{client, vip, rst_seq}` ([`PreRecord`],
//!   `rst_seq` = the owner's ISS + 1) to every peer, batched and
//!   unacknowledged ([`Message::PreSplice`]). During pre-splice the proxy
//!   sends the client nothing but its SYN-ACK and ACKs, so `ISS + 1` stays
//!   the client's RCV.NXT, which is exactly the sequence number RFC 9293
//!   (with RFC 5961's stricter check, as Linux does) requires of a reset in
//!   a synchronized state.
//! - A peer drops the record when the splice of that flow is installed
//!   there ([`PreRecords::handle_spliced`]), when the owner says the
//!   connection ended or is relayed instead ([`PreRecords::forget`] on the
//!   owner), or when it is older than `ttl` (a lost removal).
//! - When the owner is declared dead, each of its records whose slot this
//!   proxy owns in its view, once the slot is settled
//!   ([`OrphanGuard::settled_at`], the same guard as segment-triggered
//!   resets), and whose flow has no splice here, becomes one [`Reset`]
//!   `<SEQ=rst_seq><CTL=RST>` from the VIP to the client. Records in slots
//!   of other proxies are dropped: those proxies reset them.
//!
//! Bounded: at most `max_per_owner` records per peer (the oldest is
//! evicted, counted) and one dead-owner check per owner at a time. A
//! record that was wrong (its connection spliced on a proxy whose create
//! never reached this one) gets a reset only in the residual case of
//! [`crate::orphan`]; a reset with a stale sequence number is ignored by
//! the client (out of window).

use core::net::SocketAddrV4;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use crate::lb::SlotTable;
use crate::orphan::{OrphanGuard, Reset};
use crate::replication::Message;
use crate::{Instant, ProxyId};

/// A client connection in its pre-splice phase on its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreRecord {
    pub client: SocketAddrV4,
    /// The VIP (and port) the client connected to.
    pub vip: SocketAddrV4,
    /// The sequence number a reset must carry: the owner's ISS + 1.
    pub rst_seq: u32,
}

impl PreRecord {
    pub fn key(&self) -> PreKey {
        PreKey {
            client: self.client,
            vip: self.vip,
        }
    }
}

/// A pre-splice connection's flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreKey {
    pub client: SocketAddrV4,
    pub vip: SocketAddrV4,
}

/// Bounds of the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreRecordConfig {
    /// Records held per peer; the oldest is evicted beyond.
    pub max_per_owner: usize,
    /// Age after which a record is presumed stale (its removal was lost):
    /// longer than any pre-splice phase.
    pub ttl: Duration,
    /// Records (added plus removed) per message.
    pub max_batch: usize,
}

impl Default for PreRecordConfig {
    fn default() -> Self {
        PreRecordConfig {
            max_per_owner: 4096,
            ttl: Duration::from_secs(30),
            max_batch: 64,
        }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreRecordStats {
    /// Local records announced, and removals announced.
    pub announced: u64,
    pub withdrawn: u64,
    pub messages: u64,
    /// Remote records stored, and removed by their owner or a splice.
    pub stored: u64,
    pub removed: u64,
    /// Dropped for the bound, and for age.
    pub evicted: u64,
    pub expired: u64,
    /// Records of dead owners reset, skipped because the flow has a splice,
    /// and skipped because another proxy owns the slot.
    pub resets: u64,
    pub spliced: u64,
    pub other_owner: u64,
    /// Messages claiming to come from this proxy.
    pub from_self: u64,
}

#[derive(Clone, Debug, Default)]
struct Held {
    records: BTreeMap<PreKey, (u32, Instant)>,
    /// Insertion order, for eviction and expiry (entries whose record was
    /// removed or replaced are skipped).
    order: VecDeque<(PreKey, Instant)>,
    /// When the owner was declared dead, and when its records are next
    /// checked.
    dead_check: Option<Instant>,
}

impl Held {
    fn remove(&mut self, k: &PreKey) -> bool {
        self.records.remove(k).is_some()
    }

    /// Removes the oldest live record (skipping order entries of records
    /// removed or replaced since); returns whether one was removed.
    fn pop_oldest(&mut self) -> bool {
        while let Some((k, at)) = self.order.pop_front() {
            if self.records.get(&k).is_some_and(|r| r.1 == at) {
                self.records.remove(&k);
                return true;
            }
        }
        false
    }

    fn expire(&mut self, before: Instant) -> u64 {
        let mut n = 0;
        while let Some(&(k, at)) = self.order.front() {
            let live = self.records.get(&k).is_some_and(|r| r.1 == at);
            if live && at >= before {
                break;
            }
            self.order.pop_front();
            if live {
                self.records.remove(&k);
                n += 1;
            }
        }
        n
    }

    fn compact(&mut self) {
        let records = &self.records;
        self.order
            .retain(|(k, at)| records.get(k).is_some_and(|r| r.1 == *at));
    }
}

/// This proxy's side of the pre-splice records: announcing its own,
/// holding its peers', and resetting a dead peer's.
#[derive(Clone, Debug)]
pub struct PreRecords {
    me: ProxyId,
    cfg: PreRecordConfig,
    out_add: Vec<PreRecord>,
    out_remove: Vec<PreKey>,
    held: BTreeMap<ProxyId, Held>,
    resets: VecDeque<Reset>,
    stats: PreRecordStats,
}

impl PreRecords {
    pub fn new(me: ProxyId, cfg: PreRecordConfig) -> PreRecords {
        PreRecords {
            me,
            cfg,
            out_add: Vec::new(),
            out_remove: Vec::new(),
            held: BTreeMap::new(),
            resets: VecDeque::new(),
            stats: PreRecordStats::default(),
        }
    }

    pub fn stats(&self) -> PreRecordStats {
        self.stats
    }

    /// Records held for `owner`.
    pub fn held(&self, owner: ProxyId) -> usize {
        self.held.get(&owner).map_or(0, |h| h.records.len())
    }

    /// Whether a record of `key` is held (for any owner).
    pub fn holds(&self, key: PreKey) -> bool {
        self.held.values().any(|h| h.records.contains_key(&key))
    }

    /// This proxy accepted a client connection (`rst_seq` = its ISS + 1):
    /// announce it.
    pub fn record(&mut self, rec: PreRecord) {
        self.stats.announced += 1;
        self.out_add.push(rec);
    }

    /// This proxy's connection `key` ended or is relayed rather than
    /// spliced: withdraw its record (no message if not yet announced).
    /// A spliced connection needs no withdrawal: its splice's creation
    /// removes the record on every peer.
    pub fn forget(&mut self, key: PreKey) {
        if let Some(i) = self.out_add.iter().position(|r| r.key() == key) {
            self.out_add.swap_remove(i);
            self.stats.announced -= 1;
            return;
        }
        self.stats.withdrawn += 1;
        self.out_remove.push(key);
    }

    /// The next message to send to every peer, if anything is queued.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        if self.out_add.is_empty() && self.out_remove.is_empty() {
            return None;
        }
        let n_add = self.out_add.len().min(self.cfg.max_batch.max(1));
        let n_rem = self.out_remove.len().min(self.cfg.max_batch.max(1) - n_add);
        let add: Vec<PreRecord> = self.out_add.drain(..n_add).collect();
        let remove: Vec<PreKey> = self.out_remove.drain(..n_rem).collect();
        self.stats.messages += 1;
        Some(Message::PreSplice { add, remove })
    }

    /// A [`Message::PreSplice`] from `from`.
    pub fn handle_message(
        &mut self,
        now: Instant,
        from: ProxyId,
        add: &[PreRecord],
        remove: &[PreKey],
    ) {
        if from == self.me {
            self.stats.from_self += 1;
            return;
        }
        let cap = self.cfg.max_per_owner.max(1);
        let stale_before = Instant::from_micros(
            now.as_micros()
                .saturating_sub(self.cfg.ttl.as_micros() as u64),
        );
        let h = self.held.entry(from).or_default();
        for k in remove {
            if h.remove(k) {
                self.stats.removed += 1;
            }
        }
        for r in add {
            h.records.insert(r.key(), (r.rst_seq, now));
            h.order.push_back((r.key(), now));
            self.stats.stored += 1;
        }
        if h.dead_check.is_none() {
            self.stats.expired += h.expire(stale_before);
        }
        while h.records.len() > cap {
            if h.pop_oldest() {
                self.stats.evicted += 1;
            }
        }
        if h.order.len() > 2 * cap {
            h.compact();
        }
    }

    /// A splice of `key`'s flow was installed here: its record is done.
    pub fn handle_spliced(&mut self, key: PreKey) {
        for h in self.held.values_mut() {
            if h.remove(&key) {
                self.stats.removed += 1;
            }
        }
    }

    /// `owner` was declared dead: its records are checked from now on.
    pub fn handle_owner_down(&mut self, now: Instant, owner: ProxyId) {
        if let Some(h) = self.held.get_mut(&owner) {
            h.dead_check = Some(now);
        }
    }

    /// `owner` is alive (again): its records are no longer checked.
    pub fn handle_owner_up(&mut self, owner: ProxyId) {
        if let Some(h) = self.held.get_mut(&owner) {
            h.dead_check = None;
        }
    }

    /// When [`PreRecords::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.held.values().filter_map(|h| h.dead_check).min()
    }

    /// Checks the records of dead owners due at `now`, against this
    /// proxy's slot view (`guard`) and splice table (`spliced`): a record
    /// in a settled slot this proxy owns, with no splice, becomes a reset;
    /// one in a slot of another proxy is dropped; one in an unsettled own
    /// slot waits until the slot settles.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        guard: &OrphanGuard,
        mut spliced: impl FnMut(PreKey) -> bool,
    ) {
        let stale_before = Instant::from_micros(
            now.as_micros()
                .saturating_sub(self.cfg.ttl.as_micros() as u64),
        );
        let me = self.me;
        let grace = guard.config().grace;
        for (&owner, h) in self.held.iter_mut() {
            let Some(due) = h.dead_check else { continue };
            if due > now {
                continue;
            }
            let mut next: Option<Instant> = None;
            let mut done = Vec::new();
            for (&k, &(seq, at)) in &h.records {
                let slot = SlotTable::slot_of(k.client, k.vip);
                if guard.owner(slot) == Some(owner) {
                    // The slot table has not caught up with the death yet:
                    // look again a grace later.
                    let t = now + grace;
                    next = Some(next.map_or(t, |n| n.min(t)));
                    continue;
                }
                if guard.owner(slot) != Some(me) {
                    self.stats.other_owner += 1;
                } else if at < stale_before {
                    self.stats.expired += 1;
                } else if spliced(k) {
                    self.stats.spliced += 1;
                } else if guard.settled_at(slot) > now {
                    let t = guard.settled_at(slot);
                    next = Some(next.map_or(t, |n| n.min(t)));
                    continue;
                } else {
                    self.stats.resets += 1;
                    self.resets.push_back(Reset {
                        from: k.vip,
                        to: k.client,
                        seq,
                    });
                }
                done.push(k);
            }
            for k in done {
                h.records.remove(&k);
            }
            h.dead_check = next;
            if h.records.is_empty() {
                h.order.clear();
            } else if h.order.len() > 2 * h.records.len() {
                h.compact();
            }
        }
        self.held
            .retain(|_, h| !h.records.is_empty() || h.dead_check.is_some());
    }

    /// The next reset to send (from the VIP to the client).
    pub fn poll_reset(&mut self) -> Option<Reset> {
        self.resets.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::SlotTable;
    use crate::orphan::OrphanConfig;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    const VIP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 80);
    const GRACE: Duration = Duration::from_millis(120);

    fn client(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), port)
    }

    fn rec(port: u16) -> PreRecord {
        PreRecord {
            client: client(port),
            vip: VIP,
            rst_seq: 1000 + u32::from(port),
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// Proxy `me`'s guard after proxy 2 died at `down` (table over 1 and 3).
    fn guard_after_death(me: u16, down: Instant) -> OrphanGuard {
        let mut g = OrphanGuard::new(ms(0), ProxyId(me), OrphanConfig { grace: GRACE });
        g.handle_table(ms(0), &SlotTable::equal([1, 2, 3].map(ProxyId)));
        g.handle_table(down, &SlotTable::equal([1, 3].map(ProxyId)));
        g
    }

    fn owned_by(table: &SlotTable, owner: u16) -> Vec<u16> {
        (1..2000u16)
            .filter(|&p| table.choose(client(p), VIP) == Some(ProxyId(owner)))
            .collect()
    }

    #[test]
    fn announcements_batch_and_withdrawals_cancel_unsent_records() {
        let mut r = PreRecords::new(
            ProxyId(1),
            PreRecordConfig {
                max_batch: 2,
                ..Default::default()
            },
        );
        for p in 1..=3 {
            r.record(rec(p));
        }
        r.forget(rec(2).key());
        let Some(Message::PreSplice { add, remove }) = r.poll_transmit() else {
            panic!("a message");
        };
        assert_eq!((add.len(), remove.len()), (2, 0));
        assert!(!add.contains(&rec(2)));
        assert_eq!(r.poll_transmit(), None);
        r.forget(rec(1).key());
        assert_eq!(
            r.poll_transmit(),
            Some(Message::PreSplice {
                add: vec![],
                remove: vec![rec(1).key()]
            })
        );
        assert_eq!(r.stats().announced, 2);
        assert_eq!(r.stats().withdrawn, 1);
    }

    #[test]
    fn a_dead_owners_idle_clients_are_reset_once_the_slot_settles() {
        let down = ms(50);
        let g = guard_after_death(1, down);
        let after = SlotTable::equal([1, 3].map(ProxyId));
        let before = SlotTable::equal([1, 2, 3].map(ProxyId));
        let mine: Vec<u16> = owned_by(&after, 1)
            .into_iter()
            .filter(|&p| before.choose(client(p), VIP) == Some(ProxyId(2)))
            .take(3)
            .collect();
        let theirs: Vec<u16> = owned_by(&after, 3)
            .into_iter()
            .filter(|&p| before.choose(client(p), VIP) == Some(ProxyId(2)))
            .take(2)
            .collect();
        let mut r = PreRecords::new(ProxyId(1), PreRecordConfig::default());
        let add: Vec<PreRecord> = mine.iter().chain(&theirs).map(|&p| rec(p)).collect();
        r.handle_message(ms(10), ProxyId(2), &add, &[]);
        // The splice of mine[2] got here: never reset.
        r.handle_spliced(rec(mine[2]).key());
        assert_eq!(r.held(ProxyId(2)), 4);
        assert_eq!(r.poll_timeout(), None, "alive owner: nothing to do");
        r.handle_owner_down(down, ProxyId(2));
        assert_eq!(r.poll_timeout(), Some(down));
        r.handle_timeout(down, &g, |_| false);
        assert_eq!(r.poll_reset(), None, "the slot is not settled yet");
        assert_eq!(r.stats().other_owner, 2);
        assert_eq!(r.poll_timeout(), Some(down + GRACE));
        r.handle_timeout(down + GRACE, &g, |_| false);
        let mut got = vec![];
        while let Some(x) = r.poll_reset() {
            got.push(x);
        }
        let want: Vec<Reset> = mine[..2]
            .iter()
            .map(|&p| Reset {
                from: VIP,
                to: client(p),
                seq: 1000 + u32::from(p),
            })
            .collect();
        got.sort_by_key(|x| x.to.port());
        assert_eq!(got, want);
        assert_eq!(r.held(ProxyId(2)), 0);
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.stats().resets, 2);
    }

    #[test]
    fn a_flow_with_a_splice_or_a_removed_or_stale_record_is_not_reset() {
        let down = ms(31_000);
        let g = guard_after_death(1, down);
        let after = SlotTable::equal([1, 3].map(ProxyId));
        let mine = owned_by(&after, 1);
        let mut r = PreRecords::new(ProxyId(1), PreRecordConfig::default());
        // Stale: announced more than ttl before the check.
        r.handle_message(ms(0), ProxyId(2), &[rec(mine[0])], &[]);
        r.handle_message(ms(30_500), ProxyId(2), &[rec(mine[1]), rec(mine[2])], &[]);
        r.handle_message(ms(30_600), ProxyId(2), &[], &[rec(mine[2]).key()]);
        r.handle_owner_down(down, ProxyId(2));
        r.handle_timeout(down + GRACE, &g, |k| k == rec(mine[1]).key());
        assert_eq!(r.poll_reset(), None);
        let s = r.stats();
        assert_eq!((s.spliced, s.removed, s.resets), (1, 1, 0));
        // The stale record was expired when the later message arrived.
        assert_eq!(s.expired, 1);
    }

    #[test]
    fn an_owner_back_before_the_check_keeps_its_records() {
        let g = guard_after_death(1, ms(50));
        let mut r = PreRecords::new(ProxyId(1), PreRecordConfig::default());
        r.handle_message(ms(10), ProxyId(2), &[rec(1), rec(2)], &[]);
        r.handle_owner_down(ms(50), ProxyId(2));
        r.handle_owner_up(ProxyId(2));
        assert_eq!(r.poll_timeout(), None);
        r.handle_timeout(ms(500), &g, |_| false);
        assert_eq!(r.poll_reset(), None);
        assert_eq!(r.held(ProxyId(2)), 2);
        r.handle_message(ms(20), ProxyId(1), &[rec(3)], &[]);
        assert_eq!(r.stats().from_self, 1);
    }

    #[test]
    fn a_slot_table_not_yet_updated_defers_the_check() {
        let mut g = OrphanGuard::new(ms(0), ProxyId(1), OrphanConfig { grace: GRACE });
        let before = SlotTable::equal([1, 2].map(ProxyId));
        g.handle_table(ms(0), &before);
        let p = owned_by(&before, 2)[0];
        let mut r = PreRecords::new(ProxyId(1), PreRecordConfig::default());
        r.handle_message(ms(10), ProxyId(2), &[rec(p)], &[]);
        // Down reported before this proxy's table dropped proxy 2.
        r.handle_owner_down(ms(50), ProxyId(2));
        r.handle_timeout(ms(50), &g, |_| false);
        assert_eq!(r.held(ProxyId(2)), 1);
        assert_eq!(r.poll_timeout(), Some(ms(50) + GRACE));
        g.handle_table(ms(60), &SlotTable::equal([ProxyId(1)]));
        r.handle_timeout(ms(50) + GRACE, &g, |_| false);
        assert_eq!(r.poll_reset(), None, "settles at 60 ms + grace");
        r.handle_timeout(ms(60) + GRACE, &g, |_| false);
        assert_eq!(
            r.poll_reset(),
            Some(Reset {
                from: VIP,
                to: client(p),
                seq: 1000 + u32::from(p)
            })
        );
    }

    #[test]
    fn records_per_owner_are_bounded_oldest_first() {
        let mut r = PreRecords::new(
            ProxyId(1),
            PreRecordConfig {
                max_per_owner: 3,
                ..Default::default()
            },
        );
        for p in 1..=5u16 {
            r.handle_message(ms(u64::from(p)), ProxyId(2), &[rec(p)], &[]);
        }
        assert_eq!(r.held(ProxyId(2)), 3);
        assert!(!r.holds(rec(1).key()) && !r.holds(rec(2).key()));
        assert!(r.holds(rec(5).key()));
        assert_eq!(r.stats().evicted, 2);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u16, u16),
        Remove(u16, u16),
        Spliced(u16),
        Down(u16),
        Up(u16),
        Tick,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (2u16..5, 0u16..40).prop_map(|(o, p)| Op::Add(o, p)),
            1 => (2u16..5, 0u16..40).prop_map(|(o, p)| Op::Remove(o, p)),
            1 => (0u16..40).prop_map(Op::Spliced),
            1 => (2u16..5).prop_map(Op::Down),
            1 => (2u16..5).prop_map(Op::Up),
            2 => Just(Op::Tick),
        ]
    }

    proptest! {
        /// Whatever the sequence: records per owner stay bounded; every
        /// reset is of a record of an owner dead at the time, in a settled
        /// slot this proxy owns, with the announced sequence number, for a
        /// flow with no splice; and each record is reset at most once.
        #[test]
        fn resets_only_dead_owners_records_in_settled_own_slots(
            ops in proptest::collection::vec((1u64..80, op()), 0..60),
        ) {
            let cap = 8;
            let mut r = PreRecords::new(ProxyId(1), PreRecordConfig {
                max_per_owner: cap,
                ttl: Duration::from_secs(30),
                max_batch: 64,
            });
            let mut live: std::collections::BTreeSet<u16> = [1, 2, 3, 4].into();
            let table = |live: &std::collections::BTreeSet<u16>| {
                SlotTable::equal(live.iter().map(|&i| ProxyId(i)))
            };
            let mut g = OrphanGuard::new(ms(0), ProxyId(1), OrphanConfig { grace: GRACE });
            g.handle_table(ms(0), &table(&live));
            let mut spliced: std::collections::BTreeSet<u16> = Default::default();
            // The latest announcement of each (owner, port) still standing.
            let mut announced: BTreeMap<(u16, u16), u32> = BTreeMap::new();
            let mut now = ms(0);
            let mut salt = 0u32;
            for (dt, o) in ops {
                now += Duration::from_millis(dt);
                match o {
                    Op::Add(owner, p) => {
                        salt += 1;
                        let x = PreRecord { rst_seq: salt, ..rec(p) };
                        r.handle_message(now, ProxyId(owner), &[x], &[]);
                        announced.insert((owner, p), salt);
                    }
                    Op::Remove(owner, p) => {
                        r.handle_message(now, ProxyId(owner), &[], &[rec(p).key()]);
                        announced.remove(&(owner, p));
                    }
                    Op::Spliced(p) => {
                        spliced.insert(p);
                        r.handle_spliced(rec(p).key());
                        announced.retain(|&(_, q), _| q != p);
                    }
                    Op::Down(o) => {
                        live.remove(&o);
                        g.handle_table(now, &table(&live));
                        r.handle_owner_down(now, ProxyId(o));
                    }
                    Op::Up(o) => {
                        live.insert(o);
                        g.handle_table(now, &table(&live));
                        r.handle_owner_up(ProxyId(o));
                    }
                    Op::Tick => {
                        r.handle_timeout(now, &g, |k| spliced.contains(&k.client.port()));
                    }
                }
                for o in 2..5 {
                    prop_assert!(r.held(ProxyId(o)) <= cap);
                }
                while let Some(x) = r.poll_reset() {
                    let p = x.to.port();
                    let slot = SlotTable::slot_of(x.to, x.from);
                    prop_assert_eq!(x.from, VIP);
                    prop_assert_eq!(g.owner(slot), Some(ProxyId(1)));
                    prop_assert!(g.settled_at(slot) <= now);
                    prop_assert!(!spliced.contains(&p));
                    let by_dead = (2..5u16).any(|o| {
                        !live.contains(&o) && announced.get(&(o, p)) == Some(&x.seq)
                    });
                    prop_assert!(by_dead, "reset {x:?} matches no dead owner's record");
                    for o in 2..5u16 {
                        if announced.get(&(o, p)) == Some(&x.seq) {
                            announced.remove(&(o, p));
                        }
                    }
                }
            }
        }
    }
}

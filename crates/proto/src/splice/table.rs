//! The splice table: every splice this node knows, looked up by the 4-tuple
//! of an incoming packet (client→vip or backend→ssa), giving the splice and
//! the [`Direction`] the packet travels.
//!
//! Replicas converge by version: an insert of a splice id that is present
//! wins only if its `version` is newer (wrapping comparison, so versions may
//! wrap after 2^31 changes). The table is bounded: inserting a new id into a
//! full table is refused ([`TableError::Full`]) and counted. A splice whose
//! incoming tuple is already claimed by a different splice id evicts the
//! older claimant: two live connections cannot share a 4-tuple, so the older
//! splice belongs to a connection that has ended (port reuse).
//!
//! Iteration (for snapshots) is in splice-id order, so it is deterministic.

use std::collections::{BTreeMap, HashMap};

use core::net::SocketAddrV4;

use super::{Direction, Splice, SpliceId};

/// Why an insert was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("splice table full ({0} entries)")]
    Full(usize),
    #[error("splice uses the same tuple for both directions")]
    SelfConflict,
}

/// What an accepted insert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new splice id.
    Inserted,
    /// A newer version of a known splice replaced the old one.
    Updated,
    /// Not newer than what the table holds; nothing changed.
    Stale,
}

/// Counters of the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub inserted: u64,
    pub updated: u64,
    pub stale: u64,
    pub removed: u64,
    /// Inserts refused because the table was full.
    pub full: u64,
    /// Splices evicted because a newer splice claimed their tuple.
    pub evicted_conflicts: u64,
    pub lookups: u64,
    pub misses: u64,
}

/// `a` is newer than `b` in wrapping (serial number) order.
pub fn version_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

type Tuple = (SocketAddrV4, SocketAddrV4);

/// A tuple packed into one integer for the hash index: it hashes in one
/// write instead of six (the addresses' octets with their length, then the
/// ports), which matters on the per-packet [`SpliceTable::lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TupleKey(u128);

impl TupleKey {
    fn of(t: &Tuple) -> TupleKey {
        let end = |a: &SocketAddrV4| (u64::from(a.ip().to_bits()) << 16) | u64::from(a.port());
        TupleKey((u128::from(end(&t.0)) << 48) | u128::from(end(&t.1)))
    }
}

/// Splices by id and by incoming tuple.
#[derive(Clone, Debug)]
pub struct SpliceTable {
    max: usize,
    by_id: BTreeMap<SpliceId, Splice>,
    by_tuple: HashMap<TupleKey, (SpliceId, Direction)>,
    stats: TableStats,
}

impl SpliceTable {
    /// A table holding at most `max` splices.
    pub fn new(max: usize) -> Self {
        SpliceTable {
            max,
            by_id: BTreeMap::new(),
            by_tuple: HashMap::new(),
            stats: TableStats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.max
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    pub fn get(&self, id: SpliceId) -> Option<&Splice> {
        self.by_id.get(&id)
    }

    /// The splice a packet from `src` to `dst` belongs to, and its direction.
    pub fn lookup(&mut self, src: SocketAddrV4, dst: SocketAddrV4) -> Option<(&Splice, Direction)> {
        self.stats.lookups += 1;
        let Some((id, dir)) = self.by_tuple.get(&TupleKey::of(&(src, dst))).copied() else {
            self.stats.misses += 1;
            return None;
        };
        self.by_id.get(&id).map(|s| (s, dir))
    }

    /// Like [`SpliceTable::lookup`] without counting.
    pub fn peek(&self, src: SocketAddrV4, dst: SocketAddrV4) -> Option<(&Splice, Direction)> {
        let &(id, dir) = self.by_tuple.get(&TupleKey::of(&(src, dst)))?;
        self.by_id.get(&id).map(|s| (s, dir))
    }

    /// Inserts or updates by version (see the module docs).
    pub fn insert(&mut self, splice: Splice) -> Result<Applied, TableError> {
        let c2s = splice.incoming_tuple(Direction::ClientToServer);
        let s2c = splice.incoming_tuple(Direction::ServerToClient);
        if c2s == s2c {
            return Err(TableError::SelfConflict);
        }
        let applied = match self.by_id.get(&splice.id) {
            Some(old) if !version_newer(splice.version, old.version) => {
                self.stats.stale += 1;
                return Ok(Applied::Stale);
            }
            Some(_) => Applied::Updated,
            None => {
                if self.by_id.len() >= self.max {
                    self.stats.full += 1;
                    return Err(TableError::Full(self.max));
                }
                Applied::Inserted
            }
        };
        if let Some(old) = self.by_id.remove(&splice.id) {
            self.unindex(&old);
        }
        for t in [c2s, s2c] {
            if let Some(&(other, _)) = self.by_tuple.get(&TupleKey::of(&t)) {
                if let Some(evicted) = self.by_id.remove(&other) {
                    self.unindex(&evicted);
                    self.stats.evicted_conflicts += 1;
                }
            }
        }
        self.by_tuple
            .insert(TupleKey::of(&c2s), (splice.id, Direction::ClientToServer));
        self.by_tuple
            .insert(TupleKey::of(&s2c), (splice.id, Direction::ServerToClient));
        self.by_id.insert(splice.id, splice);
        match applied {
            Applied::Inserted => self.stats.inserted += 1,
            _ => self.stats.updated += 1,
        }
        Ok(applied)
    }

    /// Removes `id` if the table's version is not newer than `version`
    /// (a delete carries the version it supersedes or a newer one).
    pub fn remove(&mut self, id: SpliceId, version: u32) -> Option<Splice> {
        let current = self.by_id.get(&id)?.version;
        if version_newer(current, version) {
            return None;
        }
        self.remove_any(id)
    }

    /// Removes `id` whatever its version.
    pub fn remove_any(&mut self, id: SpliceId) -> Option<Splice> {
        let old = self.by_id.remove(&id)?;
        self.unindex(&old);
        self.stats.removed += 1;
        Some(old)
    }

    /// Drops every splice (used before installing a fresh snapshot).
    pub fn clear(&mut self) {
        self.stats.removed += self.by_id.len() as u64;
        self.by_id.clear();
        self.by_tuple.clear();
    }

    /// All splices in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Splice> + '_ {
        self.by_id.values()
    }

    /// Splices with id ≥ `from`, in id order (snapshot chunks).
    pub fn range_from(&self, from: SpliceId) -> impl Iterator<Item = &Splice> + '_ {
        self.by_id.range(from..).map(|(_, s)| s)
    }

    /// Splice ids in id order.
    pub fn ids(&self) -> impl Iterator<Item = SpliceId> + '_ {
        self.by_id.keys().copied()
    }

    fn unindex(&mut self, s: &Splice) {
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let t = TupleKey::of(&s.incoming_tuple(dir));
            if self.by_tuple.get(&t).is_some_and(|e| e.0 == s.id) {
                self.by_tuple.remove(&t);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn tuple_keys_differ_in_every_field_and_direction() {
        let a = SocketAddrV4::new(core::net::Ipv4Addr::new(198, 18, 0, 1), 40000);
        let b = SocketAddrV4::new(core::net::Ipv4Addr::new(198, 18, 0, 2), 80);
        let k = TupleKey::of(&(a, b));
        assert_ne!(k, TupleKey::of(&(b, a)));
        assert_ne!(k, TupleKey::of(&(SocketAddrV4::new(*a.ip(), 40001), b)));
        assert_ne!(k, TupleKey::of(&(a, SocketAddrV4::new(*b.ip(), 81))));
        let far = SocketAddrV4::new(core::net::Ipv4Addr::new(255, 255, 255, 255), 65535);
        assert_ne!(TupleKey::of(&(far, b)), TupleKey::of(&(a, b)));
        assert_ne!(TupleKey::of(&(a, far)), TupleKey::of(&(a, b)));
    }
    use crate::splice::WindowScales;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    fn a(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, last), port)
    }

    /// A splice for client port `cport` and SSA port `sport`.
    pub(crate) fn splice(id: u64, version: u32, cport: u16, sport: u16) -> Splice {
        Splice {
            id: SpliceId(id),
            version,
            client: a(1, cport),
            vip: a(100, 80),
            ssa: a(200, sport),
            backend: a(50, 8080),
            seq_delta: 1000,
            ack_delta: 2000,
            ts: None,
            wscale: WindowScales::default(),
            sack_ok: true,
        }
    }

    #[test]
    fn lookup_both_directions() {
        let mut t = SpliceTable::new(10);
        assert_eq!(t.insert(splice(1, 1, 5000, 20000)), Ok(Applied::Inserted));
        let (s, d) = t.lookup(a(1, 5000), a(100, 80)).unwrap();
        assert_eq!((s.id, d), (SpliceId(1), Direction::ClientToServer));
        let (s, d) = t.lookup(a(50, 8080), a(200, 20000)).unwrap();
        assert_eq!((s.id, d), (SpliceId(1), Direction::ServerToClient));
        // The outgoing tuples are not incoming ones.
        assert!(t.lookup(a(100, 80), a(1, 5000)).is_none());
        assert!(t.lookup(a(200, 20000), a(50, 8080)).is_none());
        assert_eq!(t.stats().lookups, 4);
        assert_eq!(t.stats().misses, 2);
    }

    #[test]
    fn only_newer_versions_win_including_wraparound() {
        let mut t = SpliceTable::new(10);
        t.insert(splice(1, 5, 5000, 20000)).unwrap();
        assert_eq!(t.insert(splice(1, 5, 5001, 20000)), Ok(Applied::Stale));
        assert_eq!(t.insert(splice(1, 4, 5001, 20000)), Ok(Applied::Stale));
        assert_eq!(t.get(SpliceId(1)).unwrap().client.port(), 5000);
        // A newer version may move the splice to new tuples (resplice).
        let mut moved = splice(1, 6, 5000, 20000);
        moved.backend = a(51, 8080);
        assert_eq!(t.insert(moved), Ok(Applied::Updated));
        assert!(t.peek(a(50, 8080), a(200, 20000)).is_none());
        assert!(t.peek(a(51, 8080), a(200, 20000)).is_some());
        assert_eq!(t.len(), 1);
        // Wraparound: 1 is newer than u32::MAX.
        let mut w = SpliceTable::new(10);
        w.insert(splice(2, u32::MAX, 1, 2)).unwrap();
        assert_eq!(w.insert(splice(2, 1, 1, 2)), Ok(Applied::Updated));
        assert!(version_newer(1, u32::MAX));
        assert!(!version_newer(u32::MAX, 1));
    }

    #[test]
    fn remove_respects_versions() {
        let mut t = SpliceTable::new(10);
        t.insert(splice(1, 5, 5000, 20000)).unwrap();
        assert!(
            t.remove(SpliceId(1), 4).is_none(),
            "older delete must not win"
        );
        assert!(t.remove(SpliceId(1), 5).is_some());
        assert!(t.peek(a(1, 5000), a(100, 80)).is_none());
        assert!(t.peek(a(50, 8080), a(200, 20000)).is_none());
        assert!(t.remove(SpliceId(1), 9).is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_refuses_new_ids_but_accepts_updates() {
        let mut t = SpliceTable::new(2);
        t.insert(splice(1, 1, 1, 1)).unwrap();
        t.insert(splice(2, 1, 2, 2)).unwrap();
        assert_eq!(t.insert(splice(3, 1, 3, 3)), Err(TableError::Full(2)));
        assert_eq!(t.stats().full, 1);
        assert_eq!(t.insert(splice(2, 2, 2, 2)), Ok(Applied::Updated));
        t.remove_any(SpliceId(1));
        assert_eq!(t.insert(splice(3, 1, 3, 3)), Ok(Applied::Inserted));
    }

    #[test]
    fn tuple_reuse_evicts_old_splice() {
        let mut t = SpliceTable::new(10);
        t.insert(splice(1, 1, 5000, 20000)).unwrap();
        // Same client tuple, new connection, different SSA port.
        t.insert(splice(2, 1, 5000, 20001)).unwrap();
        assert!(t.get(SpliceId(1)).is_none());
        assert!(
            t.peek(a(50, 8080), a(200, 20000)).is_none(),
            "stale index left behind"
        );
        assert_eq!(t.peek(a(1, 5000), a(100, 80)).unwrap().0.id, SpliceId(2));
        assert_eq!(t.stats().evicted_conflicts, 1);
        assert_eq!(t.ids().collect::<Vec<_>>(), [SpliceId(2)]);
    }

    #[test]
    fn degenerate_splice_is_refused() {
        let mut s = splice(1, 1, 80, 80);
        s.client = s.backend;
        s.vip = s.ssa;
        assert_eq!(SpliceTable::new(4).insert(s), Err(TableError::SelfConflict));
    }

    proptest! {
        /// After any sequence of inserts and removes, the tuple index and the
        /// id map agree exactly and the size bound holds.
        #[test]
        fn index_stays_consistent(ops in proptest::collection::vec((0u64..6, 0u32..4, 0u16..4, 0u16..4, any::<bool>()), 0..60)) {
            let mut t = SpliceTable::new(4);
            for (id, v, cp, sp, del) in ops {
                if del {
                    t.remove(SpliceId(id), v);
                } else {
                    let _ = t.insert(splice(id, v, cp, sp));
                }
                prop_assert!(t.len() <= 4);
                prop_assert_eq!(t.by_tuple.len(), 2 * t.len());
                for s in t.iter() {
                    for d in [Direction::ClientToServer, Direction::ServerToClient] {
                        let (src, dst) = s.incoming_tuple(d);
                        let (f, fd) = t.peek(src, dst).unwrap();
                        prop_assert_eq!(f.id, s.id);
                        prop_assert_eq!(fd, d);
                    }
                }
            }
        }
    }
}

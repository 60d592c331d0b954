//! Stateless load-balancer choice: which live proxy gets the next packet.
//!
//! The LB keeps no per-connection state (paper §3, §5.1): every packet is
//! mapped to a proxy from the current [`ProxySet`] (live proxies and their
//! workload factors `W_i`, fed by the heartbeat [`crate::detector`]) and the
//! packet's 4-tuple. Modes:
//!
//! - [`LbMode::FlowHash`] (default): the 4-tuple's [`flow_hash`] picks one of
//!   [`SLOTS`] slots of a [`SlotTable`]; each slot belongs to the proxy that
//!   wins weighted rendezvous hashing for that slot. A flow stays on one
//!   proxy while membership is unchanged, a proxy's death moves only its own
//!   flows, and a proxy gets slots (so flows) in proportion to `W_i / ΣW`.
//!   This is the exact model of the XDP lb (`crates/bpf/c/lb.c`), whose
//!   table the control plane fills from [`SlotTable`], and with equal
//!   weights it is the pre-splice owner rule ([`crate::owner::client_owner`]).
//!   A cross test runs both over random tuples and proxy sets.
//! - [`LbMode::WeightedRandom`]: paper §5.1, `W'_i = W_i / ΣW`, proxy `i` is
//!   chosen when a seeded uniform `r` falls in `[Σ_{j<i} W'_j, Σ_{j≤i} W'_j)`.
//! - [`LbMode::BurstSpray`]: paper §7.1 sends 40 packets to one proxy, then
//!   switches. Bursts go to proxies in proportion to `W_i` by smooth weighted
//!   round robin (deterministic, no randomness).
//! - [`LbMode::Flowlet`]: a flow keeps its proxy until it has been idle for
//!   `gap`; then it is re-placed by weighted random choice. Flow state lives in
//!   a fixed-size direct-mapped table (collisions only cause an early switch),
//!   so the LB's state stays bounded and soft.
//!
//! Proxies with `W_i = 0` are draining: they get no packets unless every live
//! proxy has weight 0, in which case all live proxies count equally.

use core::net::SocketAddrV4;
use core::time::Duration;

use crate::hash::{flow_hash, mix64, Candidates};
use crate::ids::ProxyId;
use crate::rng::SplitMix64;
use crate::Instant;

/// Live proxies and their workload factors, ordered by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySet {
    members: Vec<(ProxyId, u32)>,
}

impl ProxySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `id` or updates its weight. Returns true if anything changed.
    pub fn upsert(&mut self, id: ProxyId, weight: u32) -> bool {
        match self.members.binary_search_by_key(&id, |m| m.0) {
            Ok(i) => {
                let changed = self.members[i].1 != weight;
                self.members[i].1 = weight;
                changed
            }
            Err(i) => {
                self.members.insert(i, (id, weight));
                true
            }
        }
    }

    /// Removes `id`; returns true if it was present.
    pub fn remove(&mut self, id: ProxyId) -> bool {
        match self.members.binary_search_by_key(&id, |m| m.0) {
            Ok(i) => {
                self.members.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, id: ProxyId) -> bool {
        self.weight(id).is_some()
    }

    pub fn weight(&self, id: ProxyId) -> Option<u32> {
        self.members
            .binary_search_by_key(&id, |m| m.0)
            .ok()
            .map(|i| self.members[i].1)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members with their weights, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ProxyId, u32)> + '_ {
        self.members.iter().copied()
    }

    /// Member ids in id order.
    pub fn ids(&self) -> impl Iterator<Item = ProxyId> + '_ {
        self.members.iter().map(|m| m.0)
    }

    /// Members with the weights choices use: as given, or all 1 when every
    /// weight is 0.
    fn effective(&self) -> impl Iterator<Item = (ProxyId, u32)> + '_ {
        let all_zero = self.members.iter().all(|m| m.1 == 0);
        self.members
            .iter()
            .map(move |&(id, w)| (id, if all_zero { 1 } else { w }))
    }

    /// Weighted choice by `r`, uniform in `0..2^64` (paper §5.1).
    fn pick_by_fraction(&self, r: u64) -> Option<ProxyId> {
        let total: u64 = self.effective().map(|m| u64::from(m.1)).sum();
        if total == 0 {
            return None;
        }
        let mut point = ((u128::from(r) * u128::from(total)) >> 64) as u64;
        for (id, w) in self.effective() {
            if point < u64::from(w) {
                return Some(id);
            }
            point -= u64::from(w);
        }
        None
    }
}

/// Slots of a [`SlotTable`]; the XDP lb's `FT_LB_SLOTS`.
pub const SLOTS: usize = 4096;

/// The flow-hash lb's table: slot `k` belongs to the proxy winning
/// rendezvous hashing of the slot's key, weighted by `W_i` (unweighted when
/// all effective weights are equal, so equal weights give exactly the
/// pre-splice owner). A packet goes to slot `flow_hash(src, dst) % SLOTS`.
///
/// Because every slot is placed by rendezvous hashing, removing a proxy
/// only moves that proxy's slots, and adding one only takes slots to it;
/// its share of slots is `W_i / ΣW` up to sampling noise over [`SLOTS`]
/// slots (standard deviation below 1% of the table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotTable {
    /// Empty when there is no proxy with usable weight.
    slots: Vec<ProxyId>,
}

impl SlotTable {
    /// The table for `set` (zero weights drain unless all are zero, as in
    /// [`Balancer`]).
    pub fn build(set: &ProxySet) -> SlotTable {
        let members: Vec<(ProxyId, u32)> = set.effective().filter(|&(_, w)| w > 0).collect();
        if members.is_empty() {
            return SlotTable::default();
        }
        let equal = members.iter().all(|m| m.1 == members[0].1);
        let prepared = Candidates::new(members.iter().copied());
        let slots = (0..SLOTS)
            .map(|k| {
                let key = slot_key(k);
                let won = if equal {
                    prepared.rendezvous(key)
                } else {
                    prepared.weighted_rendezvous(key)
                };
                // Non-empty members always produce a winner.
                won.unwrap_or(members[0].0)
            })
            .collect();
        SlotTable { slots }
    }

    /// The table over `ids`, all with the same weight.
    pub fn equal(ids: impl IntoIterator<Item = ProxyId>) -> SlotTable {
        let mut set = ProxySet::new();
        for id in ids {
            set.upsert(id, 1);
        }
        SlotTable::build(&set)
    }

    /// The slot of a packet from `src` to `dst`.
    pub fn slot_of(src: SocketAddrV4, dst: SocketAddrV4) -> usize {
        (flow_hash(src, dst) % SLOTS as u64) as usize
    }

    /// The proxy of slot `k`; `None` when the table is empty.
    pub fn get(&self, k: usize) -> Option<ProxyId> {
        self.slots.get(k % SLOTS).copied()
    }

    /// The proxy for a packet from `src` to `dst`.
    pub fn choose(&self, src: SocketAddrV4, dst: SocketAddrV4) -> Option<ProxyId> {
        self.get(SlotTable::slot_of(src, dst))
    }

    /// All slots in order (empty, or [`SLOTS`] long).
    pub fn slots(&self) -> &[ProxyId] {
        &self.slots
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Rendezvous key of slot `k` (fixed, so every node builds the same table).
fn slot_key(k: usize) -> u64 {
    mix64(k as u64 ^ 0x6c62_736c_6f74_0000)
}

/// How the LB spreads packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LbMode {
    /// Weighted rendezvous hash of the 4-tuple.
    #[default]
    FlowHash,
    /// Per-packet weighted random choice with a seeded generator.
    WeightedRandom { seed: u64 },
    /// `burst` consecutive packets (all flows) to one proxy, then the next.
    BurstSpray { burst: u32 },
    /// Per-flow stickiness until an idle gap, `slots` flow-table entries.
    Flowlet {
        gap: Duration,
        seed: u64,
        slots: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct FlowletSlot {
    hash: u64,
    proxy: ProxyId,
    last: Instant,
}

/// Counters of the balancer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbStats {
    /// Packets given a proxy.
    pub chosen: u64,
    /// Packets with no live proxy to go to.
    pub no_proxy: u64,
    /// Flowlet mode: flows moved to a new proxy (idle gap, dead proxy or
    /// table collision).
    pub flowlet_switches: u64,
}

/// The LB's proxy choice. Feed membership with [`Balancer::set_proxy`] /
/// [`Balancer::remove_proxy`] (or [`Balancer::apply`] with detector events),
/// then call [`Balancer::choose`] per packet.
#[derive(Clone, Debug)]
pub struct Balancer {
    mode: LbMode,
    set: ProxySet,
    rng: SplitMix64,
    /// Smooth weighted round-robin credit per member (BurstSpray).
    credit: Vec<(ProxyId, i64)>,
    current: Option<ProxyId>,
    left_in_burst: u32,
    flowlets: Vec<Option<FlowletSlot>>,
    /// FlowHash: the slot table, rebuilt when membership changed.
    table: SlotTable,
    table_stale: bool,
    stats: LbStats,
}

impl Balancer {
    pub fn new(mode: LbMode) -> Self {
        let (seed, slots) = match mode {
            LbMode::WeightedRandom { seed } => (seed, 0),
            LbMode::Flowlet { seed, slots, .. } => (seed, slots.max(1)),
            _ => (0, 0),
        };
        Balancer {
            mode,
            set: ProxySet::new(),
            rng: SplitMix64::new(seed),
            credit: Vec::new(),
            current: None,
            left_in_burst: 0,
            flowlets: vec![None; slots],
            table: SlotTable::default(),
            table_stale: false,
            stats: LbStats::default(),
        }
    }

    pub fn mode(&self) -> LbMode {
        self.mode
    }

    pub fn proxies(&self) -> &ProxySet {
        &self.set
    }

    pub fn stats(&self) -> LbStats {
        self.stats
    }

    /// Marks `id` live with workload factor `weight`.
    pub fn set_proxy(&mut self, id: ProxyId, weight: u32) {
        self.table_stale |= self.set.upsert(id, weight);
    }

    /// Marks `id` dead: no further packet goes to it.
    pub fn remove_proxy(&mut self, id: ProxyId) {
        self.table_stale |= self.set.remove(id);
        if self.current == Some(id) {
            self.current = None;
            self.left_in_burst = 0;
        }
        self.credit.retain(|c| c.0 != id);
    }

    /// Applies a failure-detector event to the proxy set.
    pub fn apply(&mut self, ev: &crate::detector::DetectorEvent) {
        use crate::detector::DetectorEvent as E;
        match *ev {
            E::ProxyUp { id, weight } | E::WeightChanged { id, weight } => {
                self.set_proxy(id, weight)
            }
            E::ProxyDown { id } => self.remove_proxy(id),
        }
    }

    /// The proxy for a packet from `src` to `dst` at `now`, or `None` when no
    /// proxy is live.
    pub fn choose(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Option<ProxyId> {
        let choice = match self.mode {
            LbMode::FlowHash => {
                if self.table_stale {
                    self.table = SlotTable::build(&self.set);
                    self.table_stale = false;
                }
                self.table.choose(src, dst)
            }
            LbMode::WeightedRandom { .. } => {
                let r = self.rng.next_u64();
                self.set.pick_by_fraction(r)
            }
            LbMode::BurstSpray { burst } => self.spray(burst.max(1)),
            LbMode::Flowlet { gap, .. } => self.flowlet(now, gap, flow_hash(src, dst)),
        };
        match choice {
            Some(_) => self.stats.chosen += 1,
            None => self.stats.no_proxy += 1,
        }
        choice
    }

    fn spray(&mut self, burst: u32) -> Option<ProxyId> {
        if self.left_in_burst == 0 || self.current.is_none() {
            self.current = self.next_burst_target();
            self.left_in_burst = burst;
        }
        self.left_in_burst = self.left_in_burst.saturating_sub(1);
        self.current
    }

    /// Smooth weighted round robin: every member gains its weight in credit,
    /// the richest wins and pays the total. Over ΣW picks each member is
    /// picked exactly W_i times, interleaved.
    fn next_burst_target(&mut self) -> Option<ProxyId> {
        let members: Vec<(ProxyId, u32)> = self.set.effective().collect();
        self.credit.retain(|c| members.iter().any(|m| m.0 == c.0));
        let total: i64 = members.iter().map(|m| i64::from(m.1)).sum();
        if total == 0 {
            return None;
        }
        let mut best: Option<(i64, ProxyId)> = None;
        for (id, w) in members {
            let slot = match self.credit.iter().position(|c| c.0 == id) {
                Some(i) => i,
                None => {
                    self.credit.push((id, 0));
                    self.credit.len() - 1
                }
            };
            self.credit[slot].1 += i64::from(w);
            let c = self.credit[slot].1;
            // Ties go to the lowest id (members are in id order).
            if best.is_none_or(|(bc, _)| c > bc) {
                best = Some((c, id));
            }
        }
        let (_, id) = best?;
        if let Some(c) = self.credit.iter_mut().find(|c| c.0 == id) {
            c.1 -= total;
        }
        Some(id)
    }

    fn flowlet(&mut self, now: Instant, gap: Duration, hash: u64) -> Option<ProxyId> {
        let n = self.flowlets.len() as u64;
        let idx = ((u128::from(hash) * u128::from(n)) >> 64) as usize;
        if let Some(slot) = self.flowlets.get(idx).copied().flatten() {
            let usable = self.set.effective().any(|m| m.0 == slot.proxy && m.1 > 0);
            if slot.hash == hash && now - slot.last < gap && usable {
                self.flowlets[idx] = Some(FlowletSlot { last: now, ..slot });
                return Some(slot.proxy);
            }
            self.stats.flowlet_switches += 1;
        }
        let r = self.rng.next_u64();
        let proxy = self.set.pick_by_fraction(r)?;
        if let Some(s) = self.flowlets.get_mut(idx) {
            *s = Some(FlowletSlot {
                hash,
                proxy,
                last: now,
            });
        }
        Some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::DetectorEvent;
    use core::net::Ipv4Addr;

    fn addr(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, last), port)
    }

    fn vip() -> SocketAddrV4 {
        addr(100, 80)
    }

    fn three(mode: LbMode) -> Balancer {
        let mut b = Balancer::new(mode);
        b.set_proxy(ProxyId(1), 100);
        b.set_proxy(ProxyId(2), 100);
        b.set_proxy(ProxyId(3), 200);
        b
    }

    fn counts(b: &mut Balancer, packets: u32, flows: u16) -> [u32; 4] {
        let mut c = [0u32; 4];
        for i in 0..packets {
            let src = addr(1, 10_000 + (i as u16 % flows));
            let p = b
                .choose(Instant::from_micros(u64::from(i)), src, vip())
                .unwrap();
            c[usize::from(p.0)] += 1;
        }
        c
    }

    fn set(members: &[(u16, u32)]) -> ProxySet {
        let mut s = ProxySet::new();
        for &(id, w) in members {
            s.upsert(ProxyId(id), w);
        }
        s
    }

    fn share(t: &SlotTable, id: u16) -> usize {
        t.slots().iter().filter(|&&p| p == ProxyId(id)).count()
    }

    #[test]
    fn slot_table_shares_follow_weights() {
        let t = SlotTable::build(&set(&[(1, 1), (2, 3)]));
        assert_eq!(t.slots().len(), SLOTS);
        // 1024 : 3072 expected; 3 sigma is about 83 slots.
        assert!((940..1110).contains(&share(&t, 1)), "{}", share(&t, 1));
        let t = SlotTable::build(&set(&[(1, 5), (2, 5), (3, 5), (4, 5)]));
        for id in 1..=4 {
            assert!((930..1120).contains(&share(&t, id)), "{}", share(&t, id));
        }
        // Zero weights drain; all zero counts equally; nothing is empty.
        let t = SlotTable::build(&set(&[(1, 0), (2, 9)]));
        assert_eq!(share(&t, 2), SLOTS);
        let t = SlotTable::build(&set(&[(1, 0), (2, 0)]));
        assert_eq!(share(&t, 1) + share(&t, 2), SLOTS);
        assert!(share(&t, 1) > 1800);
        assert!(SlotTable::build(&ProxySet::new()).is_empty());
        assert_eq!(SlotTable::default().choose(addr(1, 1), vip()), None);
    }

    #[test]
    fn slot_table_changes_move_only_the_changed_proxys_slots() {
        let all = SlotTable::build(&set(&[(1, 4), (2, 4), (3, 8)]));
        let without2 = SlotTable::build(&set(&[(1, 4), (3, 8)]));
        let heavier3 = SlotTable::build(&set(&[(1, 4), (2, 4), (3, 12)]));
        for k in 0..SLOTS {
            let before = all.get(k).unwrap();
            if before != ProxyId(2) {
                assert_eq!(without2.get(k), Some(before), "slot {k}");
            }
            // More weight for p3 only moves slots to p3.
            let after = heavier3.get(k).unwrap();
            assert!(after == before || after == ProxyId(3), "slot {k}");
        }
        // Equal weights, any scale, give the unweighted table.
        assert_eq!(
            SlotTable::build(&set(&[(1, 7), (2, 7)])),
            SlotTable::equal([ProxyId(1), ProxyId(2)])
        );
    }

    #[test]
    fn proxy_set_upsert_remove_keep_order() {
        let mut s = ProxySet::new();
        assert!(s.upsert(ProxyId(5), 1));
        assert!(s.upsert(ProxyId(2), 1));
        assert!(!s.upsert(ProxyId(2), 1));
        assert!(s.upsert(ProxyId(2), 7));
        assert_eq!(s.ids().collect::<Vec<_>>(), [ProxyId(2), ProxyId(5)]);
        assert_eq!(s.weight(ProxyId(2)), Some(7));
        assert!(s.remove(ProxyId(2)));
        assert!(!s.remove(ProxyId(2)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn flow_hash_is_sticky_weighted_and_moves_only_dead_flows() {
        let mut b = three(LbMode::FlowHash);
        let c = counts(&mut b, 8_000, 8_000);
        // Weights 1:1:2 -> 2000:2000:4000.
        assert!((1_800..2_200).contains(&c[1]), "{c:?}");
        assert!((3_700..4_300).contains(&c[3]), "{c:?}");
        let before: Vec<_> = (0..2_000u16)
            .map(|p| b.choose(Instant::ZERO, addr(2, p), vip()).unwrap())
            .collect();
        let again: Vec<_> = (0..2_000u16)
            .map(|p| b.choose(Instant::ZERO, addr(2, p), vip()).unwrap())
            .collect();
        assert_eq!(before, again);
        b.apply(&DetectorEvent::ProxyDown { id: ProxyId(2) });
        for (p, old) in before.iter().enumerate() {
            let new = b.choose(Instant::ZERO, addr(2, p as u16), vip()).unwrap();
            assert_ne!(new, ProxyId(2));
            if *old != ProxyId(2) {
                assert_eq!(new, *old, "flow {p} moved though its proxy lives");
            }
        }
    }

    #[test]
    fn weighted_random_follows_normalized_weights_and_seed() {
        let mut b = three(LbMode::WeightedRandom { seed: 7 });
        let c = counts(&mut b, 40_000, 1);
        assert!((9_400..10_600).contains(&c[1]), "{c:?}");
        assert!((9_400..10_600).contains(&c[2]), "{c:?}");
        assert!((19_000..21_000).contains(&c[3]), "{c:?}");
        let mut again = three(LbMode::WeightedRandom { seed: 7 });
        assert_eq!(counts(&mut again, 40_000, 1), c);
        let mut other = three(LbMode::WeightedRandom { seed: 8 });
        assert_ne!(counts(&mut other, 40_000, 1), c);
    }

    #[test]
    fn burst_spray_sends_bursts_in_weight_proportion() {
        let mut b = three(LbMode::BurstSpray { burst: 40 });
        let seq: Vec<ProxyId> = (0..160)
            .map(|_| b.choose(Instant::ZERO, addr(1, 1), vip()).unwrap())
            .collect();
        // Four bursts of 40: p3 twice (weight 2), p1 and p2 once each.
        for chunk in seq.chunks(40) {
            assert!(chunk.iter().all(|&p| p == chunk[0]), "burst split");
        }
        let mut firsts: Vec<u16> = seq.chunks(40).map(|c| c[0].0).collect();
        firsts.sort();
        assert_eq!(firsts, [1, 2, 3, 3]);
        // Dead proxy mid-burst: the very next packet goes elsewhere.
        let cur = b.choose(Instant::ZERO, addr(1, 1), vip()).unwrap();
        b.remove_proxy(cur);
        let next = b.choose(Instant::ZERO, addr(1, 1), vip()).unwrap();
        assert_ne!(next, cur);
    }

    #[test]
    fn flowlet_switches_only_after_gap_or_death() {
        let gap = Duration::from_millis(10);
        let mut b = three(LbMode::Flowlet {
            gap,
            seed: 3,
            slots: 1024,
        });
        let flow = addr(9, 4242);
        let t = |ms| Instant::from_millis(ms);
        let first = b.choose(t(0), flow, vip()).unwrap();
        for ms in 1..50 {
            assert_eq!(
                b.choose(t(ms), flow, vip()),
                Some(first),
                "switched without gap"
            );
        }
        assert_eq!(b.stats().flowlet_switches, 0);
        // After idle gaps the flow is re-placed; over many gaps it visits
        // more than one proxy.
        let mut seen = std::collections::BTreeSet::new();
        for k in 1..40u64 {
            seen.insert(b.choose(t(100 * k), flow, vip()).unwrap());
        }
        assert!(seen.len() > 1);
        assert!(b.stats().flowlet_switches >= 39);
        let cur = b.choose(t(5_000), flow, vip()).unwrap();
        b.remove_proxy(cur);
        assert_ne!(b.choose(t(5_001), flow, vip()), Some(cur));
    }

    #[test]
    fn zero_weights_drain_unless_all_zero_and_empty_set_yields_none() {
        let mut b = Balancer::new(LbMode::FlowHash);
        assert_eq!(b.choose(Instant::ZERO, addr(1, 1), vip()), None);
        assert_eq!(b.stats().no_proxy, 1);
        b.set_proxy(ProxyId(1), 0);
        b.set_proxy(ProxyId(2), 10);
        for p in 0..500 {
            assert_eq!(b.choose(Instant::ZERO, addr(1, p), vip()), Some(ProxyId(2)));
        }
        b.set_proxy(ProxyId(2), 0);
        let c = counts(&mut b, 2_000, 2_000);
        assert!(c[1] > 700 && c[2] > 700, "{c:?}");
        for mode in [
            LbMode::WeightedRandom { seed: 1 },
            LbMode::BurstSpray { burst: 3 },
        ] {
            let mut b = Balancer::new(mode);
            b.set_proxy(ProxyId(1), 0);
            b.set_proxy(ProxyId(2), 5);
            for _ in 0..100 {
                assert_eq!(b.choose(Instant::ZERO, addr(1, 1), vip()), Some(ProxyId(2)));
            }
        }
    }
}

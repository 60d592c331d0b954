//! Deterministic hashing shared by every proxy and load balancer: flow keys,
//! and (weighted) rendezvous hashing over a set of proxies. The functions are
//! fixed (no per-process random keys) so that every node computes the same
//! answer from the same inputs, and the simulator is reproducible.

use core::net::SocketAddrV4;

use crate::ids::ProxyId;

/// The SplitMix64 finalizer: a bijective 64-bit mixer with good avalanche.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hash of a directed 4-tuple (source, destination).
pub fn flow_hash(src: SocketAddrV4, dst: SocketAddrV4) -> u64 {
    let a = (u64::from(src.ip().to_bits()) << 16) | u64::from(src.port());
    let b = (u64::from(dst.ip().to_bits()) << 16) | u64::from(dst.port());
    mix64(mix64(a) ^ b.rotate_left(17))
}

/// Per-(key, proxy) hash used by rendezvous hashing.
fn pair_hash(key: u64, id: ProxyId) -> u64 {
    pair_hash_with(key, id_hash(id))
}

/// The proxy's half of [`pair_hash`], which does not depend on the key.
fn id_hash(id: ProxyId) -> u64 {
    mix64(u64::from(id.0) | 0x5a5a_0000_0000_0000)
}

/// [`pair_hash`] from the proxy's precomputed [`id_hash`].
fn pair_hash_with(key: u64, id_hash: u64) -> u64 {
    mix64(key ^ id_hash)
}

/// The weighted rendezvous score of a pair hash for weight `w` (> 0).
fn weighted_score(pair: u64, w: u32) -> f64 {
    // 53 random bits, strictly inside (0, 1).
    let u = ((pair >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(w) / -u.ln()
}

/// Unweighted rendezvous (highest random weight) hashing: the candidate with
/// the highest `hash(key, id)` wins. Removing a candidate only moves the keys
/// it owned; adding one only takes keys to the newcomer.
pub fn rendezvous(key: u64, candidates: impl IntoIterator<Item = ProxyId>) -> Option<ProxyId> {
    candidates
        .into_iter()
        .map(|id| (pair_hash(key, id), id))
        .max()
        .map(|(_, id)| id)
}

/// Weighted rendezvous hashing: candidate `i` wins with probability
/// `w_i / sum(w)` (score `-w / ln(u)` with `u` uniform in (0, 1) from the
/// pair hash). Zero weights never win. Like the unweighted form, a change to
/// one candidate only moves keys to or from that candidate.
pub fn weighted_rendezvous(
    key: u64,
    candidates: impl IntoIterator<Item = (ProxyId, u32)>,
) -> Option<ProxyId> {
    let mut best: Option<(f64, ProxyId)> = None;
    for (id, w) in candidates {
        if w == 0 {
            continue;
        }
        let score = weighted_score(pair_hash(key, id), w);
        // Ties (practically impossible) go to the higher id, like `max`.
        if best.is_none_or(|(s, b)| score > s || (score == s && id > b)) {
            best = Some((score, id));
        }
    }
    best.map(|(_, id)| id)
}

/// A fixed candidate set scored against many keys (a slot table's 4096
/// slots): each candidate's key-independent half of the pair hash is
/// computed once instead of once per key. Answers exactly what
/// [`rendezvous`] and [`weighted_rendezvous`] answer for the same
/// candidates in the same order.
#[derive(Clone, Debug)]
pub struct Candidates {
    members: Vec<(ProxyId, u32, u64)>,
}

impl Candidates {
    pub fn new(candidates: impl IntoIterator<Item = (ProxyId, u32)>) -> Candidates {
        Candidates {
            members: candidates
                .into_iter()
                .map(|(id, w)| (id, w, id_hash(id)))
                .collect(),
        }
    }

    /// [`rendezvous`] over the candidates (weights ignored).
    pub fn rendezvous(&self, key: u64) -> Option<ProxyId> {
        self.members
            .iter()
            .map(|&(id, _, h)| (pair_hash_with(key, h), id))
            .max()
            .map(|(_, id)| id)
    }

    /// [`weighted_rendezvous`] over the candidates.
    pub fn weighted_rendezvous(&self, key: u64) -> Option<ProxyId> {
        let mut best: Option<(f64, ProxyId)> = None;
        for &(id, w, h) in &self.members {
            if w == 0 {
                continue;
            }
            let score = weighted_score(pair_hash_with(key, h), w);
            if best.is_none_or(|(s, b)| score > s || (score == s && id > b)) {
                best = Some((score, id));
            }
        }
        best.map(|(_, id)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn ids(n: u16) -> Vec<ProxyId> {
        (1..=n).map(ProxyId).collect()
    }

    #[test]
    fn flow_hash_depends_on_every_field_and_direction() {
        let a = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 1000);
        let b = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);
        let h = flow_hash(a, b);
        assert_ne!(h, flow_hash(b, a));
        assert_ne!(h, flow_hash(SocketAddrV4::new(*a.ip(), 1001), b));
        assert_ne!(
            h,
            flow_hash(a, SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 3), 80))
        );
        assert_eq!(h, flow_hash(a, b));
    }

    #[test]
    fn rendezvous_only_moves_keys_of_removed_member() {
        let all = ids(5);
        let without3: Vec<_> = all.iter().copied().filter(|&i| i != ProxyId(3)).collect();
        let mut moved_from_3 = 0;
        for k in 0..10_000u64 {
            let before = rendezvous(mix64(k), all.iter().copied()).unwrap();
            let after = rendezvous(mix64(k), without3.iter().copied()).unwrap();
            if before == ProxyId(3) {
                moved_from_3 += 1;
                assert_ne!(after, ProxyId(3));
            } else {
                assert_eq!(before, after, "key {k} moved without cause");
            }
        }
        assert!((1_500..2_500).contains(&moved_from_3), "{moved_from_3}");
        assert_eq!(rendezvous(1, []), None);
    }

    #[test]
    fn weighted_rendezvous_follows_weights_and_is_stable() {
        let set = [(ProxyId(1), 1u32), (ProxyId(2), 3), (ProxyId(3), 0)];
        let mut counts = [0u32; 4];
        for k in 0..20_000u64 {
            let p = weighted_rendezvous(mix64(k), set).unwrap();
            counts[usize::from(p.0)] += 1;
        }
        assert_eq!(counts[3], 0, "zero weight must never win");
        // Expect 5000 : 15000 within a few percent.
        assert!((4_500..5_500).contains(&counts[1]), "{counts:?}");
        // Removing p1 only moves p1's keys.
        for k in 0..5_000u64 {
            let before = weighted_rendezvous(mix64(k), set).unwrap();
            let after = weighted_rendezvous(mix64(k), set[1..].iter().copied()).unwrap();
            if before != ProxyId(1) {
                assert_eq!(before, after);
            }
        }
        assert_eq!(weighted_rendezvous(9, [(ProxyId(1), 0)]), None);
    }

    proptest::proptest! {
        /// Prepared candidates pick what the one-shot functions pick, for
        /// any set, order, weights (zeros included) and key.
        #[test]
        fn prepared_candidates_match_one_shot_rendezvous(
            members in proptest::collection::vec((0u16..40, 0u32..4), 0..14),
            keys in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..50),
        ) {
            let set: Vec<(ProxyId, u32)> = members.iter().map(|&(i, w)| (ProxyId(i), w)).collect();
            let prepared = Candidates::new(set.iter().copied());
            for &k in &keys {
                proptest::prop_assert_eq!(
                    prepared.rendezvous(k),
                    rendezvous(k, set.iter().map(|m| m.0))
                );
                proptest::prop_assert_eq!(
                    prepared.weighted_rendezvous(k),
                    weighted_rendezvous(k, set.iter().copied())
                );
            }
        }
    }
}

//! The lb's control-plane side: the flow hash its XDP program uses (for
//! tests and tools predicting a flow's proxy), and the weighted slot table
//! (each proxy repeated in proportion to its workload factor W_i / sum W).

use crate::bpf_abi::{LbSlot, LB_SLOTS};

/// Mirror of `ft_flow_hash` in c/lb.c (host-order addresses, ports packed
/// as `sport << 16 | dport`).
pub fn flow_hash(saddr: u32, daddr: u32, ports: u32) -> u32 {
    let mut h: u32 = 0x9e37_79b9;
    h ^= saddr;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h ^= daddr;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h ^= ports;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// A live proxy as the lb sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyTarget {
    pub mac: [u8; 6],
    /// Workload factor W_i (available capacity); 0 takes no traffic.
    pub weight: u32,
}

/// Builds the slot table: `LB_SLOTS` slots shared by the proxies in
/// proportion to their weights (largest-remainder rounding), interleaved so
/// burst spraying visits them evenly. Empty when no proxy has weight.
pub fn slot_table(proxies: &[ProxyTarget], smac: [u8; 6], ifindex: u32) -> Vec<LbSlot> {
    let total: u64 = proxies.iter().map(|p| u64::from(p.weight)).sum();
    if total == 0 {
        return Vec::new();
    }
    let n = LB_SLOTS as u64;
    let mut counts: Vec<u64> = proxies
        .iter()
        .map(|p| u64::from(p.weight) * n / total)
        .collect();
    let mut rest = n - counts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..proxies.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((u64::from(proxies[i].weight) * n) % total));
    for &i in order.iter().cycle().take(proxies.len() * 2) {
        if rest == 0 {
            break;
        }
        if proxies[i].weight > 0 {
            counts[i] += 1;
            rest -= 1;
        }
    }
    // Interleave: slot k goes to the proxy furthest behind its share.
    let mut given = vec![0u64; proxies.len()];
    let mut slots = Vec::with_capacity(LB_SLOTS);
    for k in 1..=n {
        let i = (0..proxies.len())
            .filter(|&i| given[i] < counts[i])
            .max_by_key(|&i| (counts[i] * k).saturating_sub(given[i] * n))
            .unwrap_or(0);
        given[i] += 1;
        slots.push(LbSlot {
            dmac: proxies[i].mac,
            smac,
            ifindex,
        });
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u8, weight: u32) -> ProxyTarget {
        ProxyTarget {
            mac: [2, 0, 0, 0, 0, id],
            weight,
        }
    }

    fn share(slots: &[LbSlot], id: u8) -> usize {
        slots.iter().filter(|s| s.dmac[5] == id).count()
    }

    #[test]
    fn weights_split_the_table_proportionally() {
        let t = slot_table(&[p(1, 1), p(2, 3)], [2; 6], 7);
        assert_eq!(t.len(), LB_SLOTS);
        assert_eq!(share(&t, 1), 64);
        assert_eq!(share(&t, 2), 192);
        assert!(t.iter().all(|s| s.ifindex == 7 && s.smac == [2; 6]));
    }

    #[test]
    fn dead_proxies_get_nothing_and_no_weight_means_no_table() {
        let t = slot_table(&[p(1, 0), p(2, 5), p(3, 5)], [2; 6], 1);
        assert_eq!(share(&t, 1), 0);
        assert_eq!(share(&t, 2) + share(&t, 3), LB_SLOTS);
        assert!(slot_table(&[p(1, 0)], [2; 6], 1).is_empty());
        assert!(slot_table(&[], [2; 6], 1).is_empty());
    }

    #[test]
    fn table_is_interleaved() {
        let t = slot_table(&[p(1, 1), p(2, 1)], [2; 6], 1);
        for w in t.windows(2) {
            assert_ne!(w[0].dmac, w[1].dmac);
        }
    }

    #[test]
    fn uneven_weights_fill_every_slot() {
        let t = slot_table(&[p(1, 7), p(2, 11), p(3, 13)], [2; 6], 1);
        assert_eq!(t.len(), LB_SLOTS);
        assert!(share(&t, 1) >= 57 && share(&t, 1) <= 58);
    }

    #[test]
    fn flow_hash_spreads_and_is_stable() {
        let a = flow_hash(0xc612_010a, 0xc612_0001, 40000 << 16 | 80);
        assert_eq!(a, flow_hash(0xc612_010a, 0xc612_0001, 40000 << 16 | 80));
        let mut buckets = [0u32; 4];
        for port in 0..4000u32 {
            buckets
                [(flow_hash(0xc612_010a, 0xc612_0001, (port + 1024) << 16 | 80) % 4) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| b > 800), "{buckets:?}");
    }
}

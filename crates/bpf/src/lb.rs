//! The lb's control-plane side: the XDP slot table built from
//! `proto::lb::SlotTable` (the one model of the flow-hash choice, shared
//! with the simulator and the pre-splice owner rule), each slot holding the
//! MAC of its proxy.

use crate::bpf_abi::{LbSlot, LB_SLOTS, OWNER_SETTLED};
use ftsplice_proto::lb::{SlotTable, SLOTS};
use ftsplice_proto::ProxyId;
use std::net::Ipv4Addr;

const _: () = assert!(SLOTS == LB_SLOTS, "proto::lb::SLOTS must equal FT_LB_SLOTS");

/// The data-plane slots for `table`: slot `k` sends to `mac(table[k])`
/// from `smac` out of `ifindex`. Empty for an empty table. Fails with the
/// first proxy whose MAC `mac` does not know.
pub fn slot_table(
    table: &SlotTable,
    mac: impl Fn(ProxyId) -> Option<[u8; 6]>,
    smac: [u8; 6],
    ifindex: u32,
) -> Result<Vec<LbSlot>, ProxyId> {
    table
        .slots()
        .iter()
        .map(|&id| {
            mac(id)
                .map(|dmac| LbSlot {
                    dmac,
                    smac,
                    ifindex,
                })
                .ok_or(id)
        })
        .collect()
}

/// The proxies' client-side owner table for `table` (the lb's weighted
/// slot table) as proxy `me` uses it: slot `k` holds the address of its
/// owner, or 0.0.0.0 where `me` owns it or the owner's address is unknown
/// (the packet then stays here rather than go nowhere). Empty for an empty
/// table.
pub fn owner_addrs(
    table: &SlotTable,
    me: ProxyId,
    addr: impl Fn(ProxyId) -> Option<Ipv4Addr>,
) -> Vec<Ipv4Addr> {
    table
        .slots()
        .iter()
        .map(|&id| {
            if id == me {
                Ipv4Addr::UNSPECIFIED
            } else {
                addr(id).unwrap_or(Ipv4Addr::UNSPECIFIED)
            }
        })
        .collect()
}

/// Marks in `owners` (from [`owner_addrs`] for the same `table` and `me`)
/// the slots `me` owns for which `settled(slot)` holds as
/// [`OWNER_SETTLED`]: their orphaned client ACKs are reset
/// (`proto::orphan`, `FT_OWNER_SETTLED`). Own slots still in their grace
/// stay 0.0.0.0.
pub fn mark_settled(
    owners: &mut [Ipv4Addr],
    table: &SlotTable,
    me: ProxyId,
    settled: impl Fn(usize) -> bool,
) {
    for (k, o) in owners.iter_mut().enumerate() {
        if table.get(k) == Some(me) && settled(k) {
            *o = OWNER_SETTLED;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_proto::lb::ProxySet;

    #[test]
    fn only_settled_own_slots_are_marked() {
        let table = SlotTable::equal([ProxyId(1), ProxyId(2)]);
        let addr = |id: ProxyId| Some(Ipv4Addr::new(198, 18, 0, id.0 as u8));
        let before = owner_addrs(&table, ProxyId(1), addr);
        let mut owners = before.clone();
        mark_settled(&mut owners, &table, ProxyId(1), |k| k % 2 == 0);
        let mut marked = 0;
        for (k, (b, a)) in before.iter().zip(&owners).enumerate() {
            if table.get(k) == Some(ProxyId(1)) && k % 2 == 0 {
                assert_eq!(*a, OWNER_SETTLED);
                marked += 1;
            } else {
                assert_eq!(a, b, "slot {k}");
            }
        }
        assert!(marked > 800, "{marked}");
    }

    fn mac(id: ProxyId) -> Option<[u8; 6]> {
        (id.0 < 10).then_some([2, 0, 0, 0, 0, id.0 as u8])
    }

    #[test]
    fn slots_carry_the_tables_proxies_macs() {
        let mut set = ProxySet::new();
        set.upsert(ProxyId(1), 1);
        set.upsert(ProxyId(2), 3);
        let table = SlotTable::build(&set);
        let slots = slot_table(&table, mac, [2; 6], 7).unwrap();
        assert_eq!(slots.len(), LB_SLOTS);
        for (k, s) in slots.iter().enumerate() {
            assert_eq!(s.dmac, mac(table.get(k).unwrap()).unwrap());
            assert_eq!((s.smac, s.ifindex), ([2; 6], 7));
        }
        assert!(slot_table(&SlotTable::default(), mac, [2; 6], 7)
            .unwrap()
            .is_empty());
        set.upsert(ProxyId(11), 1);
        assert_eq!(
            slot_table(&SlotTable::build(&set), mac, [2; 6], 7),
            Err(ProxyId(11))
        );
    }

    #[test]
    fn owner_addresses_follow_the_weighted_table() {
        let mut set = ProxySet::new();
        set.upsert(ProxyId(1), 100);
        set.upsert(ProxyId(2), 300);
        set.upsert(ProxyId(3), 50);
        let table = SlotTable::build(&set);
        let addr = |id: ProxyId| (id.0 != 3).then_some(Ipv4Addr::new(198, 18, 0, id.0 as u8));
        let owners = owner_addrs(&table, ProxyId(1), addr);
        assert_eq!(owners.len(), LB_SLOTS);
        let mut mine = 0;
        for (k, a) in owners.iter().enumerate() {
            match table.get(k).unwrap() {
                ProxyId(1) | ProxyId(3) => assert!(a.is_unspecified()),
                id => assert_eq!(Some(*a), addr(id)),
            }
            mine += usize::from(table.get(k) == Some(ProxyId(1)));
        }
        // Weighted: proxy 1 holds about 100/450 of the slots.
        assert!((800..1_020).contains(&mine), "{mine}");
        assert!(owner_addrs(&SlotTable::default(), ProxyId(1), addr).is_empty());
    }
}

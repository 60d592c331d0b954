//! The lb's control-plane side: the XDP slot table built from
//! `proto::lb::SlotTable` (the one model of the flow-hash choice, shared
//! with the simulator and the pre-splice owner rule), each slot holding the
//! MAC of its proxy.

use crate::bpf_abi::{LbSlot, LB_SLOTS};
use ftsplice_proto::lb::{SlotTable, SLOTS};
use ftsplice_proto::ProxyId;

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

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_proto::lb::ProxySet;

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
}

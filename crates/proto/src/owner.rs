//! Pre-splice ownership: which proxy must see the packets of a connection
//! that is not spliced yet, and the redirect decision for a packet that
//! matches no splice (paper §6, steps 2–3; §7.2 `packetredirector`).
//!
//! - Client side: a not-yet-spliced client connection (client→vip) belongs to
//!   the live proxy owning its slot in the lb's weighted
//!   [`crate::lb::SlotTable`] over the live membership and the workload
//!   factors the proxies announce (each slot placed by rendezvous hashing).
//!   Every proxy computes the same owner from the same membership, and a
//!   membership change only moves the connections of the proxy that left or
//!   to the proxy that joined. When the LB runs
//!   [`crate::lb::LbMode::FlowHash`] (in the simulator or the XDP lb, whose
//!   table is built by the same [`crate::lb::SlotTable`]) its choice *is*
//!   this owner (same table, same hash), so pre-splice packets arrive at
//!   the owner without a redirect. [`client_owner`] is the equal-weight
//!   case.
//! - A client segment that reaches its owner with no socket there and no
//!   splice is an orphan (its pre-splice owner crashed, or it is stale):
//!   [`crate::orphan`] decides whether to reset it.
//! - Backend side: each proxy opens backend connections from the shared
//!   splice address (SSA) using ports of its own partition, so a backend
//!   packet to the SSA that matches no splice belongs to the proxy owning the
//!   destination port ([`PortPartitions`]).
//!
//! Known limit: a proxy's crash loses its pre-splice connections (their
//! only state was its sockets); [`crate::orphan`] makes their clients fail
//! fast instead of hanging. And when a proxy joins, client connections still in their
//! pre-splice phase (handshake to complete request) whose hash moves to the
//! newcomer lose their owner's socket; the daemon keeps packets of a
//! connection it has a local socket for (`has_local_socket`), but packets
//! the LB sends elsewhere are redirected to the newcomer.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::ops::RangeInclusive;

use crate::ids::ProxyId;
use crate::lb::{ProxySet, SlotTable};

/// The live proxy owning the pre-splice client connection `client`→`vip`.
/// Builds the table each call; [`Redirector`] keeps one per membership.
pub fn client_owner(
    client: SocketAddrV4,
    vip: SocketAddrV4,
    live: impl IntoIterator<Item = ProxyId>,
) -> Option<ProxyId> {
    SlotTable::equal(live).choose(client, vip)
}

/// Why a port partition configuration is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("port range {start}..={end} of {id} is empty or outside 1024..=65535")]
    BadRange { id: ProxyId, start: u16, end: u16 },
    #[error("port ranges of {a} and {b} overlap")]
    Overlap { a: ProxyId, b: ProxyId },
}

/// SSA source-port partitions: each proxy id owns disjoint port ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortPartitions {
    /// Sorted by start port, non-overlapping.
    ranges: Vec<(RangeInclusive<u16>, ProxyId)>,
}

impl PortPartitions {
    /// Validates and builds: every range non-empty, inside 1024..=65535, and
    /// no two ranges overlap. A proxy may own several ranges.
    pub fn new(
        ranges: impl IntoIterator<Item = (ProxyId, RangeInclusive<u16>)>,
    ) -> Result<Self, PartitionError> {
        let mut v: Vec<(RangeInclusive<u16>, ProxyId)> = Vec::new();
        for (id, r) in ranges {
            let (start, end) = (*r.start(), *r.end());
            if start < 1024 || start > end {
                return Err(PartitionError::BadRange { id, start, end });
            }
            v.push((r, id));
        }
        v.sort_by_key(|(r, id)| (*r.start(), *id));
        for w in v.windows(2) {
            if w[1].0.start() <= w[0].0.end() {
                return Err(PartitionError::Overlap {
                    a: w[0].1,
                    b: w[1].1,
                });
            }
        }
        Ok(PortPartitions { ranges: v })
    }

    /// Splits `first..=last` evenly among `ids` (in the given order).
    pub fn even(ids: &[ProxyId], first: u16, last: u16) -> Result<Self, PartitionError> {
        let n = ids.len() as u32;
        if n == 0 {
            return Ok(Self::default());
        }
        let span = u32::from(last).saturating_sub(u32::from(first)) + 1;
        let each = span / n;
        let ranges = ids.iter().enumerate().map(|(i, &id)| {
            let s = u32::from(first) + each * i as u32;
            let e = if i as u32 == n - 1 {
                u32::from(last)
            } else {
                s + each - 1
            };
            // `each == 0` yields an inverted range, rejected by `new`.
            (id, s.min(65535) as u16..=e.min(65535) as u16)
        });
        Self::new(ranges)
    }

    /// The proxy owning SSA port `port`.
    pub fn owner(&self, port: u16) -> Option<ProxyId> {
        let i = self.ranges.partition_point(|(r, _)| *r.start() <= port);
        let (r, id) = self.ranges.get(i.checked_sub(1)?)?;
        r.contains(&port).then_some(*id)
    }

    /// The ranges owned by `id`.
    pub fn ranges_of(&self, id: ProxyId) -> impl Iterator<Item = RangeInclusive<u16>> + '_ {
        self.ranges
            .iter()
            .filter(move |(_, o)| *o == id)
            .map(|(r, _)| r.clone())
    }
}

/// Why a packet that matches no splice is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Destination is neither the VIP nor the SSA.
    NotForService,
    /// No live proxy at all (membership empty).
    NoLiveProxy,
    /// SSA port outside every partition.
    PortUnowned,
    /// The SSA port's owner is dead; its pre-splice connection died with it.
    OwnerDead,
    /// The packet was already redirected once and still found no owner here
    /// (membership views disagree); dropping avoids redirect loops.
    RedirectLoop,
}

/// What to do with a packet that matches no splice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectDecision {
    /// Hand it to the local kernel stack (this proxy owns the connection).
    Local,
    /// Send it to the owning proxy.
    Redirect(ProxyId),
    Drop(DropReason),
}

/// A packet's tuple and the facts the decision needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmatched {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    /// This proxy has a local (pre-splice) socket for the connection.
    pub has_local_socket: bool,
    /// The packet reached us by redirection from another proxy.
    pub redirected: bool,
}

/// The per-proxy redirect logic.
#[derive(Clone, Debug)]
pub struct Redirector {
    me: ProxyId,
    vip: Ipv4Addr,
    ssa: Ipv4Addr,
    partitions: PortPartitions,
    /// Live proxies including this one, with their workload factors.
    members: ProxySet,
    /// Their ids, sorted.
    live: Vec<ProxyId>,
    /// The lb's weighted slot table over `members`.
    owners: SlotTable,
}

impl Redirector {
    /// Starts with this proxy alone, at workload factor 0 (not ready).
    pub fn new(me: ProxyId, vip: Ipv4Addr, ssa: Ipv4Addr, partitions: PortPartitions) -> Self {
        let mut members = ProxySet::new();
        members.upsert(me, 0);
        Redirector {
            me,
            vip,
            ssa,
            partitions,
            owners: SlotTable::build(&members),
            members,
            live: vec![me],
        }
    }

    fn rebuild(&mut self) {
        self.live = self.members.ids().collect();
        self.owners = SlotTable::build(&self.members);
    }

    /// Replaces the live membership, all at equal weight (this proxy is
    /// always counted live).
    pub fn set_live(&mut self, live: impl IntoIterator<Item = ProxyId>) {
        self.members = ProxySet::new();
        for id in live.into_iter().chain([self.me]) {
            self.members.upsert(id, 1);
        }
        self.rebuild();
    }

    /// A peer is up with workload factor `weight` (or changed it).
    pub fn proxy_up(&mut self, id: ProxyId, weight: u32) {
        if self.members.upsert(id, weight) {
            self.rebuild();
        }
    }

    /// This proxy's own workload factor (what it announces).
    pub fn set_own_weight(&mut self, weight: u32) {
        let me = self.me;
        self.proxy_up(me, weight);
    }

    pub fn proxy_down(&mut self, id: ProxyId) {
        if id != self.me && self.members.remove(id) {
            self.rebuild();
        }
    }

    pub fn live(&self) -> &[ProxyId] {
        &self.live
    }

    /// The client-owner table: the lb's weighted slot table over the live
    /// proxies and the workload factors they announce.
    pub fn table(&self) -> &SlotTable {
        &self.owners
    }

    pub fn partitions(&self) -> &PortPartitions {
        &self.partitions
    }

    /// Decides for a packet that matched no splice.
    pub fn decide(&self, p: &Unmatched) -> RedirectDecision {
        use RedirectDecision::*;
        if p.has_local_socket {
            return Local;
        }
        let owner = if *p.dst.ip() == self.vip {
            match self.owners.choose(p.src, p.dst) {
                Some(o) => o,
                None => return Drop(DropReason::NoLiveProxy),
            }
        } else if *p.dst.ip() == self.ssa {
            match self.partitions.owner(p.dst.port()) {
                None => return Drop(DropReason::PortUnowned),
                Some(o) if self.live.binary_search(&o).is_err() => {
                    return Drop(DropReason::OwnerDead)
                }
                Some(o) => o,
            }
        } else {
            return Drop(DropReason::NotForService);
        };
        if owner == self.me {
            Local
        } else if p.redirected {
            Drop(DropReason::RedirectLoop)
        } else {
            Redirect(owner)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const SSA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 200);

    fn p(n: u16) -> ProxyId {
        ProxyId(n)
    }

    fn parts() -> PortPartitions {
        PortPartitions::new([
            (p(1), 10_000..=19_999),
            (p(2), 20_000..=29_999),
            (p(3), 30_000..=39_999),
        ])
        .unwrap()
    }

    fn from_client(port: u16) -> Unmatched {
        Unmatched {
            src: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), port),
            dst: SocketAddrV4::new(VIP, 80),
            has_local_socket: false,
            redirected: false,
        }
    }

    fn from_backend(ssa_port: u16) -> Unmatched {
        Unmatched {
            src: SocketAddrV4::new(Ipv4Addr::new(198, 18, 5, 1), 8080),
            dst: SocketAddrV4::new(SSA, ssa_port),
            has_local_socket: false,
            redirected: false,
        }
    }

    #[test]
    fn partitions_validate() {
        assert!(PortPartitions::new([(p(1), 1000..=2000)]).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let inverted = 3000..=2000;
        assert!(PortPartitions::new([(p(1), inverted)]).is_err());
        assert_eq!(
            PortPartitions::new([(p(1), 2000..=3000), (p(2), 3000..=4000)]),
            Err(PartitionError::Overlap { a: p(1), b: p(2) })
        );
        let ok = PortPartitions::new([
            (p(2), 5000..=5999),
            (p(1), 2000..=2999),
            (p(2), 65000..=65535),
        ])
        .unwrap();
        assert_eq!(ok.owner(1999), None);
        assert_eq!(ok.owner(2000), Some(p(1)));
        assert_eq!(ok.owner(2999), Some(p(1)));
        assert_eq!(ok.owner(3000), None);
        assert_eq!(ok.owner(5500), Some(p(2)));
        assert_eq!(ok.owner(65535), Some(p(2)));
        assert_eq!(ok.ranges_of(p(2)).count(), 2);
    }

    #[test]
    fn even_split_covers_the_span() {
        let e = PortPartitions::even(&[p(1), p(2), p(3)], 1024, 65535).unwrap();
        assert_eq!(e.owner(1024), Some(p(1)));
        assert_eq!(e.owner(65535), Some(p(3)));
        for port in (1024..=65535u16).step_by(97) {
            assert!(e.owner(port).is_some());
        }
        assert!(PortPartitions::even(&[p(1), p(2)], 2000, 2000).is_err());
    }

    #[test]
    fn every_proxy_agrees_on_the_client_owner() {
        let mut r = [1, 2, 3].map(|i| Redirector::new(p(i), VIP, SSA, parts()));
        for x in r.iter_mut() {
            x.set_live([p(1), p(2), p(3)]);
        }
        let mut local_count = [0; 3];
        for port in 1000..1600 {
            let pkt = from_client(port);
            let owner = client_owner(pkt.src, pkt.dst, [p(1), p(2), p(3)]).unwrap();
            for (i, x) in r.iter().enumerate() {
                let d = x.decide(&pkt);
                if x.me == owner {
                    assert_eq!(d, RedirectDecision::Local);
                    local_count[i] += 1;
                } else {
                    assert_eq!(d, RedirectDecision::Redirect(owner));
                    let back = Unmatched {
                        redirected: true,
                        ..pkt
                    };
                    assert_eq!(
                        r[usize::from(owner.0) - 1].decide(&back),
                        RedirectDecision::Local
                    );
                }
            }
        }
        assert!(local_count.iter().all(|&c| c > 120), "{local_count:?}");
    }

    #[test]
    fn backend_packets_go_to_port_owner_or_are_dropped() {
        let mut r = Redirector::new(p(1), VIP, SSA, parts());
        r.set_live([p(2)]);
        assert_eq!(r.decide(&from_backend(12_000)), RedirectDecision::Local);
        assert_eq!(
            r.decide(&from_backend(25_000)),
            RedirectDecision::Redirect(p(2))
        );
        assert_eq!(
            r.decide(&from_backend(35_000)),
            RedirectDecision::Drop(DropReason::OwnerDead)
        );
        assert_eq!(
            r.decide(&from_backend(5_000)),
            RedirectDecision::Drop(DropReason::PortUnowned)
        );
        let other = Unmatched {
            dst: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80),
            ..from_backend(1)
        };
        assert_eq!(
            r.decide(&other),
            RedirectDecision::Drop(DropReason::NotForService)
        );
        r.proxy_down(p(2));
        assert_eq!(
            r.decide(&from_backend(25_000)),
            RedirectDecision::Drop(DropReason::OwnerDead)
        );
        r.proxy_down(p(1));
        assert_eq!(r.live(), [p(1)], "self is always live");
    }

    #[test]
    fn local_socket_wins_and_loops_are_cut() {
        let mut r = Redirector::new(p(1), VIP, SSA, parts());
        r.set_live([p(2), p(3)]);
        let pkt = (1000..2000)
            .map(from_client)
            .find(|u| r.decide(u) != RedirectDecision::Local)
            .unwrap();
        assert_eq!(
            r.decide(&Unmatched {
                has_local_socket: true,
                ..pkt
            }),
            RedirectDecision::Local
        );
        assert_eq!(
            r.decide(&Unmatched {
                redirected: true,
                ..pkt
            }),
            RedirectDecision::Drop(DropReason::RedirectLoop)
        );
    }

    #[test]
    fn flow_hash_lb_with_equal_weights_delivers_to_the_owner() {
        // With equal workload factors the LB's slot table is the owners'
        // table, so pre-splice packets need no redirect.
        let mut lb = crate::lb::Balancer::new(crate::lb::LbMode::FlowHash);
        for i in 1..=4 {
            lb.set_proxy(p(i), 500);
        }
        for port in 1000..3000 {
            let u = from_client(port);
            let chosen = lb.choose(crate::Instant::ZERO, u.src, u.dst);
            assert_eq!(chosen, client_owner(u.src, u.dst, [p(1), p(2), p(3), p(4)]));
        }
    }

    #[test]
    fn weighted_redirector_is_the_lbs_table_at_unequal_weights() {
        let mut lb = crate::lb::Balancer::new(crate::lb::LbMode::FlowHash);
        let mut r = Redirector::new(p(1), VIP, SSA, parts());
        for (i, w) in [(1, 100), (2, 300), (3, 0)] {
            lb.set_proxy(p(i), w);
            if i == 1 {
                r.set_own_weight(w);
            } else {
                r.proxy_up(p(i), w);
            }
        }
        assert_eq!(r.live(), [p(1), p(2), p(3)]);
        let (mut local, mut to2) = (0, 0);
        for port in 1000..3000 {
            let u = from_client(port);
            let chosen = lb.choose(crate::Instant::ZERO, u.src, u.dst).unwrap();
            assert_ne!(chosen, p(3), "weight 0 drains");
            assert_eq!(r.table().choose(u.src, u.dst), Some(chosen));
            match r.decide(&u) {
                RedirectDecision::Local => local += 1,
                RedirectDecision::Redirect(o) if o == p(2) => to2 += 1,
                d => panic!("{d:?}"),
            }
        }
        assert!(to2 > 2 * local, "{local} {to2}");
        // Weight changes are membership changes of the table.
        r.proxy_up(p(2), 100);
        r.proxy_down(p(2));
        assert_eq!(r.live(), [p(1), p(3)]);
        r.set_own_weight(0);
        assert!(
            (1000..1100).all(|port| r.decide(&from_client(port))
                != RedirectDecision::Drop(DropReason::NoLiveProxy)),
            "all weights 0 count equally"
        );
    }

    proptest! {
        /// A proxy leaving moves only its own pre-splice connections.
        #[test]
        fn leaving_moves_only_own_connections(port: u16, leaver in 1u16..=4) {
            let all = [p(1), p(2), p(3), p(4)];
            let pkt = from_client(port);
            let before = client_owner(pkt.src, pkt.dst, all).unwrap();
            let after = client_owner(pkt.src, pkt.dst, all.into_iter().filter(|&x| x != p(leaver))).unwrap();
            if before != p(leaver) {
                prop_assert_eq!(before, after);
            }
        }
    }
}

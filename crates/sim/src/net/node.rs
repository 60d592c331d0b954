//! What a simulated machine is: the [`Node`] trait every role implements, the
//! [`Frame`]s it exchanges, its interfaces and routing table, and the [`Ctx`]
//! through which a node sends frames, draws random numbers and records
//! statistics while the engine runs one of its handlers.
//!
//! Frames are IPv4 packets plus one L2 field: the address of the next hop
//! (standing in for its MAC). That is how the load balancer sends a packet
//! for the VIP to a chosen proxy without rewriting any IP header, and how a
//! backup takes over an address (an [`FrameKind::Announce`], the gratuitous
//! ARP of the simulation).

use crate::engine::rng::Rng;
use crate::stats::{Note, Stats};
use core::any::Any;
use core::net::Ipv4Addr;
use core::time::Duration;
use ftsplice_proto::Instant;

/// Index of a node in the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// Index of an interface within its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfaceId(pub u16);

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// An IPv4 packet in `bytes`.
    Ip,
    /// "This address is reachable through me": switches learn it (gratuitous
    /// ARP). `bytes` is empty.
    Announce(Ipv4Addr),
}

/// L2 destination of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L2Dst {
    /// The station owning this address (its "MAC").
    Host(Ipv4Addr),
    /// Every station on the segment.
    Broadcast,
}

/// One frame on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub l2_dst: L2Dst,
    /// The node that put the frame on the network (kept across switches);
    /// partitions are decided on it.
    pub origin: NodeId,
    pub bytes: Vec<u8>,
}

/// IPv4 destination address of a raw packet, if it is long enough.
pub fn ipv4_dst(bytes: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = bytes.get(16..20)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// IPv4 source address of a raw packet, if it is long enough.
pub fn ipv4_src(bytes: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = bytes.get(12..16)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// One interface: its address on the attached segment.
#[derive(Clone, Debug)]
pub struct Iface {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

/// A route: destinations in `net/len` leave through `iface`, to `gateway` if
/// set, else directly to the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub net: Ipv4Addr,
    pub len: u8,
    pub iface: IfaceId,
    pub gateway: Option<Ipv4Addr>,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// Longest-prefix-match routing table.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn add(&mut self, r: Route) {
        self.routes.push(r);
        // Longest prefix first; stable so equal prefixes keep insertion order.
        self.routes.sort_by_key(|r| core::cmp::Reverse(r.len));
    }

    /// (interface, next hop) for `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<(IfaceId, Ipv4Addr)> {
        let d = u32::from(dst);
        self.routes
            .iter()
            .find(|r| d & mask(r.len) == u32::from(r.net) & mask(r.len))
            .map(|r| (r.iface, r.gateway.unwrap_or(dst)))
    }
}

/// A node's network configuration.
#[derive(Clone, Debug, Default)]
pub struct NodeNet {
    pub ifaces: Vec<Iface>,
    pub routes: RouteTable,
}

impl NodeNet {
    /// Adds an interface and the on-link route for its prefix.
    pub fn add_iface(&mut self, addr: Ipv4Addr, prefix_len: u8) -> IfaceId {
        let id = IfaceId(self.ifaces.len() as u16);
        self.ifaces.push(Iface { addr, prefix_len });
        self.routes.add(Route {
            net: Ipv4Addr::from(u32::from(addr) & mask(prefix_len)),
            len: prefix_len,
            iface: id,
            gateway: None,
        });
        id
    }

    pub fn addr(&self, iface: IfaceId) -> Option<Ipv4Addr> {
        self.ifaces.get(usize::from(iface.0)).map(|i| i.addr)
    }
}

/// Everything a handler may touch besides its own state.
pub struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) node: NodeId,
    pub(crate) net: &'a NodeNet,
    pub(crate) rng: &'a mut Rng,
    pub(crate) stats: &'a mut Stats,
    pub(crate) out: &'a mut Vec<(IfaceId, Frame)>,
}

impl Ctx<'_> {
    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn net(&self) -> &NodeNet {
        self.net
    }

    pub fn rng(&mut self) -> &mut Rng {
        self.rng
    }

    pub fn stats(&mut self) -> &mut Stats {
        self.stats
    }

    /// Records a notable event (failure detected, takeover, ...).
    pub fn note(&mut self, note: Note) {
        let (now, node) = (self.now, self.node);
        self.stats.note(now, node, note);
    }

    /// Sends an IPv4 packet out of `iface` to the station owning `next_hop`.
    pub fn send_to(&mut self, iface: IfaceId, next_hop: Ipv4Addr, bytes: Vec<u8>) {
        let origin = self.node;
        self.out.push((
            iface,
            Frame {
                kind: FrameKind::Ip,
                l2_dst: L2Dst::Host(next_hop),
                origin,
                bytes,
            },
        ));
    }

    /// Routes an IPv4 packet by its destination address. Returns false (and
    /// counts a drop) if there is no route or the packet has no header.
    pub fn send_ip(&mut self, bytes: Vec<u8>) -> bool {
        let Some(dst) = ipv4_dst(&bytes) else {
            self.stats.drop("node: packet without IPv4 header");
            return false;
        };
        let Some((iface, hop)) = self.net.routes.lookup(dst) else {
            self.stats.drop("node: no route");
            return false;
        };
        self.send_to(iface, hop, bytes);
        true
    }

    /// Forwards a frame unchanged (switches).
    pub fn forward(&mut self, iface: IfaceId, frame: Frame) {
        self.out.push((iface, frame));
    }

    /// Announces on `iface` that `addr` is now reachable through this node.
    pub fn announce(&mut self, iface: IfaceId, addr: Ipv4Addr) {
        let origin = self.node;
        self.out.push((
            iface,
            Frame {
                kind: FrameKind::Announce(addr),
                l2_dst: L2Dst::Broadcast,
                origin,
                bytes: Vec::new(),
            },
        ));
    }
}

/// A simulated machine. Handlers run at simulated time `ctx.now()`; after
/// each one the engine asks [`Node::poll_timeout`] when to call
/// [`Node::handle_timeout`] next.
pub trait Node: Any {
    /// Short role name for tables ("lb", "proxy", "client", ...).
    fn kind(&self) -> &'static str;

    /// Called once when the simulation starts (and never again).
    fn start(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A frame arrived on `iface` (after the node's processing delay).
    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, iface: IfaceId, frame: Frame);

    /// The time from `poll_timeout` has come.
    fn handle_timeout(&mut self, _ctx: &mut Ctx<'_>) {}

    /// When the node next wants `handle_timeout`, if ever.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Processing time for `frame` on this node's single CPU queue; `default`
    /// is the node's configured per-packet cost.
    fn service_time(&self, _frame: &Frame, default: Duration) -> Duration {
        default
    }

    /// The machine lost power: drop every bit of volatile state.
    fn crash(&mut self);

    /// The machine boots again (from its configuration only).
    fn restart(&mut self, ctx: &mut Ctx<'_>) {
        self.start(ctx);
    }

    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let mut net = NodeNet::default();
        let lan = net.add_iface(Ipv4Addr::new(10, 0, 0, 1), 24);
        let wan = net.add_iface(Ipv4Addr::new(192, 168, 1, 1), 30);
        net.routes.add(Route {
            net: Ipv4Addr::UNSPECIFIED,
            len: 0,
            iface: wan,
            gateway: Some(Ipv4Addr::new(192, 168, 1, 2)),
        });
        assert_eq!(
            net.routes.lookup(Ipv4Addr::new(10, 0, 0, 77)),
            Some((lan, Ipv4Addr::new(10, 0, 0, 77)))
        );
        assert_eq!(
            net.routes.lookup(Ipv4Addr::new(8, 8, 8, 8)),
            Some((wan, Ipv4Addr::new(192, 168, 1, 2)))
        );
        assert_eq!(net.addr(lan), Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn no_default_route_means_no_route() {
        let mut net = NodeNet::default();
        net.add_iface(Ipv4Addr::new(10, 0, 0, 1), 24);
        assert_eq!(net.routes.lookup(Ipv4Addr::new(10, 0, 1, 1)), None);
    }

    #[test]
    fn header_address_accessors_reject_short_packets() {
        assert_eq!(ipv4_dst(&[0u8; 19]), None);
        let mut p = [0u8; 20];
        p[12..16].copy_from_slice(&[1, 2, 3, 4]);
        p[16..20].copy_from_slice(&[5, 6, 7, 8]);
        assert_eq!(ipv4_src(&p), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(ipv4_dst(&p), Some(Ipv4Addr::new(5, 6, 7, 8)));
    }
}

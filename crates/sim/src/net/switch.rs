//! An L2 switch: forwards each frame out of the port where its destination
//! address was last seen (statically configured or learned from
//! announcements), floods broadcasts, drops frames for unknown stations.
//! Output queueing happens on the links to the stations. A switch has no
//! CPU cost and never crashes in our scenarios, but can.

use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, L2Dst, Node};
use crate::FastMap;
use core::any::Any;
use core::net::Ipv4Addr;

/// A learning switch with `ports` interfaces.
pub struct Switch {
    ports: u16,
    /// Configured table, restored on restart.
    static_table: FastMap<Ipv4Addr, IfaceId>,
    table: FastMap<Ipv4Addr, IfaceId>,
}

impl Switch {
    pub fn new() -> Switch {
        Switch {
            ports: 0,
            static_table: FastMap::default(),
            table: FastMap::default(),
        }
    }

    /// Tells the switch a new port exists (the engine's builder does this).
    pub fn add_port(&mut self) -> IfaceId {
        let p = IfaceId(self.ports);
        self.ports += 1;
        p
    }

    /// Stations owning `addr` are behind `port`.
    pub fn learn(&mut self, addr: Ipv4Addr, port: IfaceId) {
        self.static_table.insert(addr, port);
        self.table.insert(addr, port);
    }

    pub fn port_of(&self, addr: Ipv4Addr) -> Option<IfaceId> {
        self.table.get(&addr).copied()
    }

    /// The port an IP frame to one station leaves by, when forwarding it is
    /// all that happens (the engine's fast path); `None` for everything
    /// [`Node::handle_frame`] must see (announcements, broadcasts, unknown
    /// stations, the ingress port).
    pub fn unicast_port(&self, frame: &Frame, ingress: IfaceId) -> Option<IfaceId> {
        match (frame.kind, frame.l2_dst) {
            (FrameKind::Ip, L2Dst::Host(addr)) => self.port_of(addr).filter(|&p| p != ingress),
            _ => None,
        }
    }
}

impl Default for Switch {
    fn default() -> Self {
        Switch::new()
    }
}

impl Node for Switch {
    fn kind(&self) -> &'static str {
        "switch"
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, iface: IfaceId, frame: Frame) {
        if let FrameKind::Announce(addr) = frame.kind {
            self.table.insert(addr, iface);
        }
        match frame.l2_dst {
            L2Dst::Host(addr) => match self.table.get(&addr) {
                Some(&port) if port != iface => ctx.forward(port, frame),
                Some(_) => ctx.stats().drop("switch: destination behind ingress port"),
                None => ctx.stats().drop("switch: unknown destination"),
            },
            L2Dst::Broadcast => {
                for p in 0..self.ports {
                    if IfaceId(p) != iface {
                        ctx.forward(IfaceId(p), frame.clone());
                    }
                }
            }
        }
    }

    fn crash(&mut self) {
        self.table.clear();
    }

    fn restart(&mut self, _ctx: &mut Ctx<'_>) {
        self.table = self.static_table.clone();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

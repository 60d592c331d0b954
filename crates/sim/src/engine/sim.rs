//! [`Sim`]: nodes, links, the clock and the event loop.
//!
//! Every frame crossing a link is one event (its arrival); a node with a
//! per-packet processing cost is a single-server FIFO queue, so a frame it
//! receives is handled when the CPU gets to it (a second event). Each node
//! has one timer, re-armed from [`Node::poll_timeout`] after every handler.
//! Ties are broken by scheduling order, randomness comes from per-component
//! streams of the run's seed: the same build, topology and seed replay
//! exactly.

use super::event::EventQueue;
use super::fault::{Fault, FaultRecord};
use super::rng::Rng;
use super::time::{nanos, SimTime};
use crate::net::link::{Link, LinkConfig, LinkEnd, LinkId};
use crate::net::node::{Ctx, Frame, IfaceId, Node, NodeId, NodeNet, Route};
use crate::net::pcap::PcapWriter;
use crate::net::switch::Switch;
use crate::stats::Stats;
use core::net::Ipv4Addr;
use core::time::Duration;
use ftsplice_proto::Instant;
use std::collections::VecDeque;
use std::io::Write;

/// Per-node engine options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeOpts {
    /// Processing time per received frame (0: infinitely fast).
    pub cpu_per_packet: Duration,
    /// Frames waiting for the CPU beyond which arrivals are dropped
    /// (0: unbounded).
    pub cpu_queue: usize,
    /// The node is powered off at the start; a [`Fault::Restart`] boots it.
    pub start_down: bool,
}

impl NodeOpts {
    pub fn cpu(per_packet: Duration, queue: usize) -> NodeOpts {
        NodeOpts {
            cpu_per_packet: per_packet,
            cpu_queue: queue,
            start_down: false,
        }
    }
}

struct Cpu {
    per_packet: Duration,
    queue_limit: usize,
    busy_until: SimTime,
    /// Completion times of frames accepted and not yet handled.
    pending: VecDeque<SimTime>,
}

struct NodeSlot {
    name: String,
    node: Box<dyn Node>,
    net: NodeNet,
    /// Link plugged into each interface (by `IfaceId`) and which end it is.
    links: Vec<Option<(LinkId, usize)>>,
    up: bool,
    /// Bumped on crash: events scheduled before are void.
    epoch: u32,
    rng: Rng,
    cpu: Cpu,
    timer: Option<SimTime>,
    /// When the timer last ran (spin guard).
    fired_at: Option<SimTime>,
    color: u32,
    transparent: bool,
}

enum Event {
    Arrive {
        link: LinkId,
        dir: u8,
        epoch: u32,
        frame: Frame,
    },
    Deliver {
        node: NodeId,
        iface: IfaceId,
        epoch: u32,
        frame: Frame,
    },
    Timer {
        node: NodeId,
        epoch: u32,
    },
    Fault(Fault),
}

/// A simulation run.
pub struct Sim {
    seed: u64,
    now: SimTime,
    queue: EventQueue<Event>,
    nodes: Vec<NodeSlot>,
    links: Vec<Link>,
    stats: Stats,
    out: Vec<(IfaceId, Frame)>,
    started: bool,
    pcap: Option<PcapWriter<Box<dyn Write>>>,
    faults: Vec<FaultRecord>,
    events: u64,
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        Sim {
            seed,
            now: SimTime::ZERO,
            queue: EventQueue::default(),
            nodes: Vec::new(),
            links: Vec::new(),
            stats: Stats::default(),
            out: Vec::new(),
            started: false,
            pcap: None,
            faults: Vec::new(),
            events: 0,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current simulated time as nodes see it.
    pub fn now(&self) -> Instant {
        self.now.instant()
    }

    pub fn now_precise(&self) -> SimTime {
        self.now
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }

    // ---- building -------------------------------------------------------

    /// Adds a node; its random stream is derived from the seed and `name`.
    pub fn add_node(&mut self, name: &str, node: impl Node, opts: NodeOpts) -> NodeId {
        self.add_boxed(name, Box::new(node), opts)
    }

    pub fn add_boxed(&mut self, name: &str, node: Box<dyn Node>, opts: NodeOpts) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        let transparent = node.kind() == "switch";
        self.nodes.push(NodeSlot {
            name: name.to_string(),
            node,
            net: NodeNet::default(),
            links: Vec::new(),
            up: !opts.start_down,
            epoch: 0,
            rng: Rng::stream_named(self.seed, name),
            cpu: Cpu {
                per_packet: opts.cpu_per_packet,
                queue_limit: opts.cpu_queue,
                busy_until: SimTime::ZERO,
                pending: VecDeque::new(),
            },
            timer: None,
            fired_at: None,
            color: 0,
            transparent,
        });
        if self.started && !opts.start_down {
            self.with_ctx(id, |n, ctx| n.start(ctx));
        }
        id
    }

    /// Adds an L2 switch.
    pub fn add_switch(&mut self, name: &str) -> NodeId {
        self.add_node(name, Switch::new(), NodeOpts::default())
    }

    /// Gives `node` an interface with `addr/prefix_len` (and its on-link route).
    pub fn add_iface(&mut self, node: NodeId, addr: Ipv4Addr, prefix_len: u8) -> IfaceId {
        let slot = &mut self.nodes[node.0 as usize];
        let id = slot.net.add_iface(addr, prefix_len);
        slot.links.resize(slot.net.ifaces.len(), None);
        id
    }

    pub fn add_route(&mut self, node: NodeId, route: Route) {
        self.nodes[node.0 as usize].net.routes.add(route);
    }

    /// Joins two interfaces with a full-duplex link (`ab` from a to b).
    pub fn connect(
        &mut self,
        a: (NodeId, IfaceId),
        b: (NodeId, IfaceId),
        ab: LinkConfig,
        ba: LinkConfig,
    ) -> LinkId {
        let id = LinkId(self.links.len() as u32);
        let rng = Rng::stream(self.seed, 0x4C49_4E4B_0000_0000 | u64::from(id.0));
        let ea = LinkEnd {
            node: a.0,
            iface: a.1,
        };
        let eb = LinkEnd {
            node: b.0,
            iface: b.1,
        };
        self.links.push(Link::new(ea, eb, ab, ba, rng));
        for (side, e) in [ea, eb].into_iter().enumerate() {
            let slot = &mut self.nodes[e.node.0 as usize];
            let i = usize::from(e.iface.0);
            if slot.links.len() <= i {
                slot.links.resize(i + 1, None);
            }
            slot.links[i] = Some((id, side));
        }
        id
    }

    /// Plugs `node`'s `iface` into a new port of `switch` with a symmetric
    /// link, and teaches the switch the interface's address.
    pub fn attach(
        &mut self,
        switch: NodeId,
        node: NodeId,
        iface: IfaceId,
        cfg: LinkConfig,
    ) -> LinkId {
        let addr = self.nodes[node.0 as usize].net.addr(iface);
        let port = self.switch_mut(switch).add_port();
        if let Some(addr) = addr {
            self.switch_mut(switch).learn(addr, port);
        }
        self.connect((node, iface), (switch, port), cfg, cfg)
    }

    /// Tells `switch` that `addr` lives behind the port `link` plugs into.
    pub fn switch_learn(&mut self, switch: NodeId, addr: Ipv4Addr, link: LinkId) {
        let l = &self.links[link.0 as usize];
        let port = if l.ends[0].node == switch {
            l.ends[0].iface
        } else {
            l.ends[1].iface
        };
        self.switch_mut(switch).learn(addr, port);
    }

    fn switch_mut(&mut self, switch: NodeId) -> &mut Switch {
        match self.node_mut::<Switch>(switch) {
            Some(s) => s,
            None => panic!("node {switch:?} is not a switch (topology construction bug)"),
        }
    }

    /// Writes every frame crossing `link` (on arrival) to `out` as pcap.
    /// All captured links share one file.
    pub fn capture(&mut self, link: LinkId, out: Box<dyn Write>) -> std::io::Result<()> {
        if self.pcap.is_none() {
            self.pcap = Some(PcapWriter::new(out)?);
        }
        self.links[link.0 as usize].capture = true;
        Ok(())
    }

    /// Flushes the capture file, if any.
    pub fn flush_capture(&mut self) -> std::io::Result<()> {
        match &mut self.pcap {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }

    // ---- inspection -----------------------------------------------------

    pub fn node<T: Node>(&self, id: NodeId) -> Option<&T> {
        self.nodes.get(id.0 as usize)?.node.as_any().downcast_ref()
    }

    pub fn node_mut<T: Node>(&mut self, id: NodeId) -> Option<&mut T> {
        self.nodes
            .get_mut(id.0 as usize)?
            .node
            .as_any_mut()
            .downcast_mut()
    }

    pub fn node_name(&self, id: NodeId) -> &str {
        &self.nodes[id.0 as usize].name
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.nodes.len() as u32).map(NodeId)
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes[id.0 as usize].up
    }

    pub fn net(&self, id: NodeId) -> &NodeNet {
        &self.nodes[id.0 as usize].net
    }

    pub fn link(&self, id: LinkId) -> &Link {
        &self.links[id.0 as usize]
    }

    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Runs `f` on node `id` with a context, as if it were a handler (for
    /// scenario actions such as "start the workload now").
    pub fn poke<T: Node, R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut T, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        self.ensure_started();
        let mut f = Some(f);
        let mut r = None;
        self.with_ctx(id, |n, ctx| {
            if let (Some(t), Some(f)) = (n.as_any_mut().downcast_mut::<T>(), f.take()) {
                r = Some(f(t, ctx));
            }
        });
        r
    }

    // ---- faults ---------------------------------------------------------

    /// Schedules `fault` at `at`.
    pub fn schedule(&mut self, at: Instant, fault: Fault) {
        self.queue
            .push(SimTime::from_instant(at), Event::Fault(fault));
    }

    /// Applies `fault` now.
    pub fn inject(&mut self, fault: Fault) {
        self.ensure_started();
        let target = match &fault {
            Fault::Crash(n) | Fault::Restart(n) => self.nodes[n.0 as usize].name.clone(),
            Fault::LinkDown(l) | Fault::LinkUp(l) => {
                let ends = self.links[l.0 as usize].ends;
                format!(
                    "{}-{}",
                    self.nodes[ends[0].node.0 as usize].name,
                    self.nodes[ends[1].node.0 as usize].name
                )
            }
            Fault::Partition(_) | Fault::Heal => String::new(),
        };
        self.faults.push(FaultRecord {
            at: self.now.instant(),
            fault: fault.clone(),
            target,
        });
        match fault {
            Fault::Crash(n) => {
                let slot = &mut self.nodes[n.0 as usize];
                if slot.up {
                    slot.up = false;
                    slot.epoch = slot.epoch.wrapping_add(1);
                    slot.timer = None;
                    slot.cpu.pending.clear();
                    slot.cpu.busy_until = self.now;
                    slot.node.crash();
                }
            }
            Fault::Restart(n) => {
                if !self.nodes[n.0 as usize].up {
                    self.nodes[n.0 as usize].up = true;
                    self.with_ctx(n, |node, ctx| node.restart(ctx));
                }
            }
            Fault::LinkDown(l) => self.links[l.0 as usize].set_down(self.now),
            Fault::LinkUp(l) => self.links[l.0 as usize].set_up(),
            Fault::Partition(groups) => {
                for s in &mut self.nodes {
                    s.color = 0;
                }
                for (g, members) in groups.iter().enumerate() {
                    for m in members {
                        self.nodes[m.0 as usize].color = g as u32 + 1;
                    }
                }
            }
            Fault::Heal => {
                for s in &mut self.nodes {
                    s.color = 0;
                }
            }
        }
    }

    // ---- running --------------------------------------------------------

    fn ensure_started(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for i in 0..self.nodes.len() {
            if self.nodes[i].up {
                self.with_ctx(NodeId(i as u32), |n, ctx| n.start(ctx));
            }
        }
    }

    /// Processes every event up to and including `end`; the clock then
    /// reads `end`.
    pub fn run_until(&mut self, end: Instant) {
        self.run_until_precise(SimTime::from_instant(end));
    }

    pub fn run_until_precise(&mut self, end: SimTime) {
        self.ensure_started();
        while let Some(t) = self.queue.peek_time() {
            if t > end {
                break;
            }
            self.step();
        }
        if end > self.now {
            self.now = end;
        }
    }

    /// Runs until `done` holds (checked every `every`) or `limit` passes.
    /// Returns whether `done` held.
    pub fn run_while(
        &mut self,
        limit: Instant,
        every: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> bool {
        self.ensure_started();
        loop {
            if done(self) {
                return true;
            }
            if self.now.instant() >= limit {
                return false;
            }
            let next = (self.now.instant() + every).min(limit);
            self.run_until(next);
        }
    }

    /// Processes the next event. Returns false if there is none.
    pub fn step(&mut self) -> bool {
        self.ensure_started();
        let Some((t, ev)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(t);
        self.events += 1;
        match ev {
            Event::Arrive {
                link,
                dir,
                epoch,
                frame,
            } => self.arrive(link, dir, epoch, frame),
            Event::Deliver {
                node,
                iface,
                epoch,
                frame,
            } => {
                let slot = &mut self.nodes[node.0 as usize];
                if slot.up && slot.epoch == epoch {
                    slot.cpu.pending.pop_front();
                    self.handle(node, iface, frame);
                }
            }
            Event::Timer { node, epoch } => {
                let slot = &mut self.nodes[node.0 as usize];
                if slot.up && slot.epoch == epoch && slot.timer == Some(t) {
                    slot.timer = None;
                    slot.fired_at = Some(t);
                    self.with_ctx(node, |n, ctx| n.handle_timeout(ctx));
                }
            }
            Event::Fault(f) => self.inject(f),
        }
        true
    }

    fn arrive(&mut self, link: LinkId, dir: u8, epoch: u32, frame: Frame) {
        let l = &self.links[link.0 as usize];
        if !l.up || l.epoch != epoch {
            self.stats.drop("link: down");
            return;
        }
        let to = l.ends[usize::from(dir ^ 1)];
        if l.capture {
            if let Some(p) = &mut self.pcap {
                if !frame.bytes.is_empty() && p.write(self.now.0, &frame.bytes).is_err() {
                    self.pcap = None;
                    self.stats.drop("pcap: write failed, capture stopped");
                }
            }
        }
        self.stats.hops += 1;
        let origin_color = self
            .nodes
            .get(frame.origin.0 as usize)
            .map_or(0, |s| s.color);
        let slot = &mut self.nodes[to.node.0 as usize];
        if !slot.up {
            self.stats.drop("node: down");
            return;
        }
        if !slot.transparent && slot.color != origin_color {
            self.stats.drop("partition");
            return;
        }
        if slot.cpu.per_packet.is_zero() {
            // A switch forwarding a unicast frame: the same steps as its
            // handler, without a handler context or a timer to re-arm.
            let port = match slot.transparent {
                true => slot
                    .node
                    .as_any()
                    .downcast_ref::<Switch>()
                    .and_then(|sw| sw.unicast_port(&frame, to.iface)),
                false => None,
            };
            match port {
                Some(port) => {
                    self.stats.handled += 1;
                    self.transmit(to.node, port, frame);
                }
                None => self.handle(to.node, to.iface, frame),
            }
            return;
        }
        let service = slot.node.service_time(&frame, slot.cpu.per_packet);
        let now = self.now;
        while slot.cpu.pending.front().is_some_and(|&c| c <= now) {
            slot.cpu.pending.pop_front();
        }
        if slot.cpu.queue_limit != 0 && slot.cpu.pending.len() >= slot.cpu.queue_limit {
            self.stats.drop("node: cpu queue full");
            return;
        }
        let done = slot.cpu.busy_until.max(now).plus(service);
        slot.cpu.busy_until = done;
        slot.cpu.pending.push_back(done);
        let epoch = slot.epoch;
        self.queue.push_lane(
            cpu_lane(to.node),
            done,
            Event::Deliver {
                node: to.node,
                iface: to.iface,
                epoch,
                frame,
            },
        );
    }

    fn handle(&mut self, node: NodeId, iface: IfaceId, frame: Frame) {
        self.stats.handled += 1;
        self.with_ctx(node, |n, ctx| n.handle_frame(ctx, iface, frame));
    }

    /// Runs a handler on `id`, then sends what it queued and re-arms its timer.
    fn with_ctx(&mut self, id: NodeId, f: impl FnOnce(&mut dyn Node, &mut Ctx<'_>)) {
        let now = self.now;
        let slot = &mut self.nodes[id.0 as usize];
        if !slot.up {
            return;
        }
        let mut out = std::mem::take(&mut self.out);
        {
            let mut ctx = Ctx {
                now: now.instant(),
                node: id,
                net: &slot.net,
                rng: &mut slot.rng,
                stats: &mut self.stats,
                out: &mut out,
            };
            f(slot.node.as_mut(), &mut ctx);
        }
        for (iface, frame) in out.drain(..) {
            self.transmit(id, iface, frame);
        }
        self.out = out;
        self.rearm(id);
    }

    fn rearm(&mut self, id: NodeId) {
        let now = self.now;
        let slot = &mut self.nodes[id.0 as usize];
        if !slot.up {
            return;
        }
        let Some(want) = slot.node.poll_timeout() else {
            return;
        };
        // Never schedule into the past; a node still asking for "now" right
        // after its timer ran at this instant gets the next microsecond, so
        // it cannot spin without time advancing.
        let mut at = SimTime::from_instant(want).max(now);
        if at == now && slot.fired_at == Some(now) {
            at = SimTime::from_instant(now.instant() + Duration::from_micros(1));
        }
        if slot.timer.is_none_or(|armed| at < armed) {
            slot.timer = Some(at);
            let epoch = slot.epoch;
            self.queue.push(at, Event::Timer { node: id, epoch });
        }
    }

    fn transmit(&mut self, from: NodeId, iface: IfaceId, frame: Frame) {
        let slot = &self.nodes[from.0 as usize];
        let Some(Some((lid, side))) = slot.links.get(usize::from(iface.0)).copied() else {
            self.stats.drop("node: interface not connected");
            return;
        };
        let now = self.now;
        let link = &mut self.links[lid.0 as usize];
        if !link.up {
            link.dirs[side].stats.dropped_down += 1;
            self.stats.drop("link: down");
            return;
        }
        let Link {
            dirs, rng, epoch, ..
        } = link;
        match dirs[side].transmit(now, frame.bytes.len(), rng) {
            Ok(at) => {
                let epoch = *epoch;
                self.queue.push_lane(
                    link_lane(lid, side),
                    at,
                    Event::Arrive {
                        link: lid,
                        dir: side as u8,
                        epoch,
                        frame,
                    },
                );
            }
            Err(why) => self.stats.drop(why.reason()),
        }
    }
}

/// Event-queue lane of a node CPU's completions (FIFO: each starts when
/// the previous one is done). Lanes interleave: odd for CPUs, even for
/// links.
fn cpu_lane(node: NodeId) -> u32 {
    node.0.saturating_mul(2).saturating_add(1)
}

/// Event-queue lane of one direction's arrivals (FIFO at a fixed delay).
fn link_lane(link: LinkId, side: usize) -> u32 {
    link.0.saturating_mul(4).saturating_add(2 * side as u32)
}

/// Nanoseconds in a duration (re-exported for topology helpers).
pub fn duration_ns(d: Duration) -> u64 {
    nanos(d)
}

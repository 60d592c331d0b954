//! The stateless load balancer: owns a service address (the VIP toward
//! clients, or the SSA toward backends), picks a live proxy for every packet
//! with `proto::lb` and hands the packet, unchanged, to that proxy's station
//! (the paper's MAC rewrite). Proxy liveness and workload come from
//! heartbeats through `proto::detector`.
//!
//! Primary/backup: the primary beats to the backup; a backup that declares
//! the primary dead announces the service address (gratuitous ARP) and
//! starts forwarding. Nothing else needs to move: the LB holds no
//! connection state.

use super::control::{send_udp, tcp_tuple, HB_PORT};
use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, Node};
use crate::net::udp;
use crate::stats::Note;
use core::any::Any;
use core::net::Ipv4Addr;
use core::time::Duration;
use ftsplice_proto::detector::{DetectorConfig, DetectorEvent, FailureDetector};
use ftsplice_proto::heartbeat::HeartbeatSender;
use ftsplice_proto::lb::{Balancer, LbMode};
use ftsplice_proto::{Instant, ProxyId};

/// Id the primary lb uses in its heartbeats to the backup.
pub const LB_HB_ID: ProxyId = ProxyId(0xFFFF);

/// Load balancer configuration.
#[derive(Clone, Debug)]
pub struct LbConfig {
    /// This lb's own address (heartbeats are sent here).
    pub addr: Ipv4Addr,
    /// The service address it balances.
    pub service: Ipv4Addr,
    /// Proxies by id and station address.
    pub proxies: Vec<(ProxyId, Ipv4Addr)>,
    pub mode: LbMode,
    pub detector: DetectorConfig,
    pub role: LbRole,
}

/// Primary or backup of a pair (or alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbRole {
    /// Active from the start; beats to the backup at `backup` if any.
    Primary { backup: Option<Ipv4Addr> },
    /// Takes over the service address when the primary's beats stop.
    Backup,
}

/// The lb node.
pub struct Lb {
    cfg: LbConfig,
    balancer: Balancer,
    detector: FailureDetector,
    /// Watches the primary (backup only).
    primary: FailureDetector,
    beat: Option<HeartbeatSender>,
    active: bool,
    /// Packets forwarded.
    pub forwarded: u64,
}

impl Lb {
    pub fn new(cfg: LbConfig) -> Lb {
        Lb {
            balancer: Balancer::new(cfg.mode),
            detector: FailureDetector::new(cfg.detector),
            // One peer (the primary): no other peer to tell a common
            // silence by, so the plain rule.
            primary: FailureDetector::new(DetectorConfig {
                hold: 0,
                ..cfg.detector
            }),
            beat: None,
            active: false,
            forwarded: 0,
            cfg,
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Live proxies in id order.
    pub fn live(&self) -> Vec<ProxyId> {
        self.detector.live().map(|(id, _)| id).collect()
    }

    fn addr_of(&self, id: ProxyId) -> Option<Ipv4Addr> {
        self.cfg.proxies.iter().find(|p| p.0 == id).map(|p| p.1)
    }

    fn take_over(&mut self, ctx: &mut Ctx<'_>) {
        if !self.active {
            self.active = true;
            ctx.announce(IfaceId(0), self.cfg.service);
            ctx.note(Note::Takeover(self.cfg.service));
        }
    }

    fn drain_events(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(ev) = self.detector.poll_event() {
            self.balancer.apply(&ev);
            match ev {
                DetectorEvent::ProxyDown { id } => {
                    if let Some(a) = self.addr_of(id) {
                        ctx.note(Note::PeerDead(a));
                    }
                }
                DetectorEvent::ProxyUp { id, .. } => {
                    if let Some(a) = self.addr_of(id) {
                        ctx.note(Note::PeerAlive(a));
                    }
                }
                DetectorEvent::WeightChanged { .. } => {}
            }
        }
        while let Some(ev) = self.primary.poll_event() {
            if let DetectorEvent::ProxyDown { .. } = ev {
                self.take_over(ctx);
            }
        }
    }

    fn send_beats(&mut self, ctx: &mut Ctx<'_>) {
        let LbRole::Primary { backup: Some(to) } = self.cfg.role else {
            return;
        };
        if let Some(b) = &mut self.beat {
            b.handle_timeout(ctx.now());
            while let Some(hb) = b.poll_transmit() {
                send_udp(ctx, self.cfg.addr, to, HB_PORT, &hb.encode());
            }
        }
    }
}

impl Node for Lb {
    fn kind(&self) -> &'static str {
        "lb"
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        if let LbRole::Primary { backup } = self.cfg.role {
            self.take_over(ctx);
            if backup.is_none() {
                return;
            }
            let epoch = ctx.rng().next_u32();
            self.beat = Some(HeartbeatSender::new(
                ctx.now(),
                LB_HB_ID,
                epoch,
                self.cfg.detector.interval,
                1,
            ));
            self.send_beats(ctx);
        }
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, iface: IfaceId, frame: Frame) {
        if frame.kind != FrameKind::Ip {
            return;
        }
        let now = ctx.now();
        let b = &frame.bytes;
        if b.len() >= 20 && b[16..20] == self.cfg.addr.octets() {
            match udp::parse(b) {
                Ok(d) if d.dst.port() == HB_PORT => {
                    let det = if d.src.ip() == &self.cfg.addr {
                        return;
                    } else if self.cfg.role == LbRole::Backup
                        && !self.cfg.proxies.iter().any(|p| p.1 == *d.src.ip())
                    {
                        &mut self.primary
                    } else {
                        &mut self.detector
                    };
                    if det.handle_datagram(now, d.payload).is_err() {
                        ctx.stats().drop("lb: bad heartbeat");
                    }
                    self.drain_events(ctx);
                }
                Ok(_) => ctx.stats().drop("lb: udp to unknown port"),
                Err(e) => ctx.stats().drop(e.reason()),
            }
            return;
        }
        if !self.active {
            ctx.stats().drop("lb: standby, not forwarding");
            return;
        }
        let Some((src, dst)) = tcp_tuple(b) else {
            ctx.stats().drop("lb: not tcp");
            return;
        };
        if *dst.ip() != self.cfg.service {
            ctx.stats().drop("lb: not for the service address");
            return;
        }
        match self
            .balancer
            .choose(now, src, dst)
            .and_then(|id| self.addr_of(id))
        {
            Some(hop) => {
                self.forwarded += 1;
                ctx.send_to(iface, hop, frame.bytes);
            }
            None => ctx.stats().drop("lb: no live proxy"),
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        self.detector.handle_timeout(now);
        self.primary.handle_timeout(now);
        self.drain_events(ctx);
        self.send_beats(ctx);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let b = self.beat.as_ref().map(|b| b.poll_timeout());
        [self.detector.poll_timeout(), self.primary.poll_timeout(), b]
            .into_iter()
            .flatten()
            .min()
    }

    fn crash(&mut self) {
        *self = Lb::new(self.cfg.clone());
    }

    fn restart(&mut self, ctx: &mut Ctx<'_>) {
        // A restarted primary comes back as a standby: the backup keeps the
        // address (no flapping), but it still beats so it could be watched.
        let epoch = ctx.rng().next_u32();
        if let LbRole::Primary { backup: Some(_) } = self.cfg.role {
            self.beat = Some(HeartbeatSender::new(
                ctx.now(),
                LB_HB_ID,
                epoch,
                self.cfg.detector.interval,
                1,
            ));
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Default heartbeat interval of the scenarios (the paper's best was 200 ms;
/// we run 10 ms, the floor `proto` allows).
pub const DEFAULT_HB: Duration = Duration::from_millis(10);

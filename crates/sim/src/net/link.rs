//! Full-duplex point-to-point links. Each direction is a FIFO transmitter of
//! fixed rate with a drop-tail queue bounded in bytes, a propagation delay
//! and independent random loss. Because the queue is FIFO at a constant rate
//! its backlog is implied by when the transmitter falls idle, so enqueueing
//! a frame computes its arrival time directly: one event per frame per hop.

use crate::engine::rng::Rng;
use crate::engine::time::{nanos, serialization_ns, SimTime};
use crate::net::node::{IfaceId, NodeId};
use core::time::Duration;

/// Index of a link in the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

/// Parameters of one direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Bits per second; 0 means infinitely fast.
    pub bandwidth_bps: u64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Drop-tail queue capacity in bytes (including the frame on the wire).
    pub queue_bytes: usize,
    /// Probability that a frame is lost in flight.
    pub loss: f64,
    /// Bytes added per frame on the wire (Ethernet header, FCS, preamble and
    /// inter-frame gap: 38).
    pub overhead_bytes: usize,
}

impl LinkConfig {
    /// Gigabit Ethernet with the given one-way delay and a 1 MB queue.
    pub fn gigabit(delay: Duration) -> LinkConfig {
        LinkConfig {
            bandwidth_bps: 1_000_000_000,
            delay,
            queue_bytes: 1 << 20,
            loss: 0.0,
            overhead_bytes: 38,
        }
    }

    pub fn with_bandwidth(mut self, bps: u64) -> Self {
        self.bandwidth_bps = bps;
        self
    }

    pub fn with_queue(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    pub fn with_loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    pub frames: u64,
    pub bytes: u64,
    pub dropped_queue: u64,
    pub dropped_loss: u64,
    pub dropped_down: u64,
}

/// Why a frame did not make it onto / across the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkDrop {
    QueueFull,
    Lost,
    Down,
}

impl LinkDrop {
    pub fn reason(self) -> &'static str {
        match self {
            LinkDrop::QueueFull => "link: queue full",
            LinkDrop::Lost => "link: random loss",
            LinkDrop::Down => "link: down",
        }
    }
}

/// One direction's transmitter state.
#[derive(Clone, Debug)]
pub struct LinkDir {
    cfg: LinkConfig,
    /// When the transmitter finishes everything queued so far.
    busy_until: SimTime,
    pub stats: DirStats,
    /// Per-frame constants of `cfg`, computed once: the queue's capacity
    /// and the propagation delay in nanoseconds.
    cap_ns: u64,
    delay_ns: u64,
    /// The last frame length serialized and its time: frames come in a few
    /// sizes (full segments, ACKs), so this saves a division per frame.
    last_ser: (usize, u64),
}

impl LinkDir {
    fn new(cfg: LinkConfig) -> LinkDir {
        LinkDir {
            cfg,
            busy_until: SimTime::ZERO,
            stats: DirStats::default(),
            cap_ns: serialization_ns(cfg.queue_bytes, cfg.bandwidth_bps),
            delay_ns: nanos(cfg.delay),
            last_ser: (0, serialization_ns(0, cfg.bandwidth_bps)),
        }
    }

    pub fn cfg(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Time to clock `wire` bytes out.
    fn ser_ns(&mut self, wire: usize) -> u64 {
        if self.last_ser.0 != wire {
            self.last_ser = (wire, serialization_ns(wire, self.cfg.bandwidth_bps));
        }
        self.last_ser.1
    }

    /// Enqueues a frame of `len` bytes at `now`: its arrival time at the far
    /// end, or why it was dropped.
    pub fn transmit(
        &mut self,
        now: SimTime,
        len: usize,
        rng: &mut Rng,
    ) -> Result<SimTime, LinkDrop> {
        let ser = self.ser_ns(len + self.cfg.overhead_bytes);
        let start = self.busy_until.max(now);
        let backlog = start.0 - now.0;
        if self.cfg.bandwidth_bps != 0 && backlog + ser > self.cap_ns {
            self.stats.dropped_queue += 1;
            return Err(LinkDrop::QueueFull);
        }
        self.busy_until = start.add_nanos(ser);
        if rng.chance(self.cfg.loss) {
            self.stats.dropped_loss += 1;
            return Err(LinkDrop::Lost);
        }
        self.stats.frames += 1;
        self.stats.bytes += len as u64;
        Ok(self.busy_until.add_nanos(self.delay_ns))
    }

    /// Bytes waiting or on the wire at `now`.
    pub fn backlog_bytes(&self, now: SimTime) -> u64 {
        let ns = self.busy_until.0.saturating_sub(now.0);
        (u128::from(ns) * u128::from(self.cfg.bandwidth_bps) / 8_000_000_000) as u64
    }
}

/// Where a link is plugged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEnd {
    pub node: NodeId,
    pub iface: IfaceId,
}

/// A full-duplex link between two interfaces.
#[derive(Clone, Debug)]
pub struct Link {
    pub ends: [LinkEnd; 2],
    /// `dirs[0]` carries frames from `ends[0]` to `ends[1]`.
    pub dirs: [LinkDir; 2],
    pub up: bool,
    /// Bumped when the link goes down, so frames in flight are lost.
    pub epoch: u32,
    pub rng: Rng,
    /// Frames crossing it are written to the capture file.
    pub capture: bool,
}

impl Link {
    pub fn new(a: LinkEnd, b: LinkEnd, ab: LinkConfig, ba: LinkConfig, rng: Rng) -> Link {
        Link {
            ends: [a, b],
            dirs: [LinkDir::new(ab), LinkDir::new(ba)],
            up: true,
            epoch: 0,
            rng,
            capture: false,
        }
    }

    /// Takes the link down: everything queued or in flight is lost.
    pub fn set_down(&mut self, now: SimTime) {
        if self.up {
            self.up = false;
            self.epoch = self.epoch.wrapping_add(1);
            for d in &mut self.dirs {
                d.busy_until = now;
            }
        }
    }

    pub fn set_up(&mut self) {
        self.up = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LinkConfig {
        LinkConfig {
            bandwidth_bps: 1_000_000_000,
            delay: Duration::from_micros(100),
            queue_bytes: 3_000,
            loss: 0.0,
            overhead_bytes: 0,
        }
    }

    #[test]
    fn frames_serialize_back_to_back_then_propagate() {
        let mut d = LinkDir::new(cfg());
        let mut rng = Rng::new(1);
        let t0 = SimTime(1_000);
        assert_eq!(
            d.transmit(t0, 1_500, &mut rng),
            Ok(SimTime(1_000 + 12_000 + 100_000))
        );
        assert_eq!(
            d.transmit(t0, 1_500, &mut rng),
            Ok(SimTime(1_000 + 24_000 + 100_000))
        );
        assert_eq!(d.backlog_bytes(t0), 3_000);
        // Queue (3000 B) is full now.
        assert_eq!(d.transmit(t0, 1, &mut rng), Err(LinkDrop::QueueFull));
        // After one frame has left there is room again.
        assert!(d.transmit(SimTime(13_000), 1_500, &mut rng).is_ok());
        assert_eq!(d.stats.frames, 3);
        assert_eq!(d.stats.dropped_queue, 1);
    }

    #[test]
    fn idle_link_starts_at_now() {
        let mut d = LinkDir::new(cfg());
        let mut rng = Rng::new(1);
        d.transmit(SimTime(0), 100, &mut rng).unwrap();
        let at = d.transmit(SimTime(1_000_000), 100, &mut rng).unwrap();
        assert_eq!(at, SimTime(1_000_000 + 800 + 100_000));
    }

    #[test]
    fn loss_rate_is_roughly_configured() {
        let mut d = LinkDir::new(cfg().with_loss(0.2).with_queue(usize::MAX / 16));
        let mut rng = Rng::new(5);
        let lost = (0..10_000)
            .filter(|i| d.transmit(SimTime(*i * 1_000_000), 100, &mut rng).is_err())
            .count();
        assert!((1_700..2_300).contains(&lost), "{lost}");
    }

    #[test]
    fn down_bumps_epoch_and_clears_backlog() {
        let e = LinkEnd {
            node: NodeId(0),
            iface: IfaceId(0),
        };
        let mut l = Link::new(e, e, cfg(), cfg(), Rng::new(1));
        let mut rng = Rng::new(2);
        l.dirs[0].transmit(SimTime(0), 1_500, &mut rng).unwrap();
        l.set_down(SimTime(5));
        assert!(!l.up);
        assert_eq!(l.epoch, 1);
        assert_eq!(l.dirs[0].backlog_bytes(SimTime(5)), 0);
        l.set_down(SimTime(6));
        assert_eq!(l.epoch, 1);
        l.set_up();
        assert!(l.up);
    }
}

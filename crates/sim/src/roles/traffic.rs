//! Synthetic traffic: a constant-bit-rate UDP [`Blaster`] and a counting
//! [`Sink`]. Used by engine tests, the engine benchmark and as background
//! load in studies.

use crate::net::node::{Ctx, Frame, IfaceId, Node};
use crate::net::udp;
use core::any::Any;
use core::net::SocketAddrV4;
use core::time::Duration;
use ftsplice_proto::Instant;

/// Sends `count` datagrams of `size` bytes (IP total length) from `src` to
/// `dst`, evenly spaced at `rate_bps`, starting at `start`.
pub struct Blaster {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub size: usize,
    pub count: u64,
    pub gap: Duration,
    pub start: Instant,
    /// Datagrams sent so far.
    pub sent: u64,
    next: Option<Instant>,
}

impl Blaster {
    pub fn new(
        src: SocketAddrV4,
        dst: SocketAddrV4,
        size: usize,
        count: u64,
        rate_bps: u64,
    ) -> Blaster {
        let size = size.max(28);
        let gap_ns = (size as u64 * 8 * 1_000_000_000)
            .checked_div(rate_bps)
            .unwrap_or(0);
        Blaster {
            src,
            dst,
            size,
            count,
            gap: Duration::from_nanos(gap_ns),
            start: Instant::ZERO,
            sent: 0,
            next: None,
        }
    }

    fn packet(&self) -> Vec<u8> {
        let mut payload = vec![0u8; self.size - 28];
        let n = self.sent.to_be_bytes();
        let k = payload.len().min(8);
        payload[..k].copy_from_slice(&n[..k]);
        udp::build(self.src, self.dst, &payload)
    }
}

impl Node for Blaster {
    fn kind(&self) -> &'static str {
        "blaster"
    }

    fn start(&mut self, _ctx: &mut Ctx<'_>) {
        self.next = (self.sent < self.count).then_some(self.start);
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, _frame: Frame) {
        ctx.stats().drop("blaster: unexpected frame");
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        // Send everything due (several per microsecond at high rates).
        while let Some(t) = self.next {
            if t > ctx.now() {
                break;
            }
            let p = self.packet();
            ctx.send_ip(p);
            self.sent += 1;
            self.next = (self.sent < self.count).then(|| self.start + self.gap * self.sent as u32);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    fn crash(&mut self) {
        self.next = None;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Counts the datagrams and bytes it receives and records them as goodput.
#[derive(Default)]
pub struct Sink {
    pub packets: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub last: Option<Instant>,
}

impl Node for Sink {
    fn kind(&self) -> &'static str {
        "sink"
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        match udp::parse(&frame.bytes) {
            Ok(d) => {
                self.packets += 1;
                self.bytes += d.payload.len() as u64;
                self.last = Some(ctx.now());
                let n = d.payload.len() as u64;
                let now = ctx.now();
                ctx.stats().goodput(now, n);
            }
            Err(e) => {
                self.malformed += 1;
                ctx.stats().drop(e.reason());
            }
        }
    }

    fn crash(&mut self) {
        *self = Sink::default();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

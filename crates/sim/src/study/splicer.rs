//! A proxy whose splices are already installed (the DSN'06 study's "already
//! established and spliced" connections; in SRDS'06 every proxy holds every
//! splice through replication). The splice maps the client side
//! `client:port <-> VIP:80` onto the server side `VIP:port <-> server:80`
//! with zero sequence offsets, so forwarding rewrites the IPv4 addresses and
//! patches both checksums incrementally (RFC 1624). Its cost is the engine's
//! per-packet CPU time of the node.

use crate::net::node::{Ctx, Frame, IfaceId, Node};
use crate::study::host::Addrs;
use core::any::Any;
use core::net::Ipv4Addr;
use core::time::Duration;
use ftsplice_wire::checksum::update_u32;

/// The forwarding proxy.
pub struct Splicer {
    pub addrs: Addrs,
    pub forwarded: u64,
    /// Extra CPU time per byte of datagram on top of the node's per-packet
    /// cost (the SRDS'06 calibration; zero for DSN'06).
    pub per_byte: Duration,
}

impl Splicer {
    pub fn new(addrs: Addrs) -> Splicer {
        Splicer {
            addrs,
            forwarded: 0,
            per_byte: Duration::ZERO,
        }
    }
}

/// Rewrites source and destination of an IPv4/TCP datagram in place; `None`
/// if it is not one (too short, options-bearing IP header, not TCP).
pub fn readdress(p: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Option<()> {
    if p.len() < 40 || p[0] != 0x45 || p[9] != 6 {
        return None;
    }
    let old_src = u32::from_be_bytes([p[12], p[13], p[14], p[15]]);
    let old_dst = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
    let (ns, nd) = (u32::from(src), u32::from(dst));
    let mut ipc = u16::from_be_bytes([p[10], p[11]]);
    let mut tcpc = u16::from_be_bytes([p[36], p[37]]);
    ipc = update_u32(update_u32(ipc, old_src, ns), old_dst, nd);
    tcpc = update_u32(update_u32(tcpc, old_src, ns), old_dst, nd);
    p[10..12].copy_from_slice(&ipc.to_be_bytes());
    p[36..38].copy_from_slice(&tcpc.to_be_bytes());
    p[12..16].copy_from_slice(&ns.to_be_bytes());
    p[16..20].copy_from_slice(&nd.to_be_bytes());
    Some(())
}

impl Node for Splicer {
    fn kind(&self) -> &'static str {
        "proxy"
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        let mut bytes = frame.bytes;
        let (Some(src), Some(dst)) = (
            crate::net::node::ipv4_src(&bytes),
            crate::net::node::ipv4_dst(&bytes),
        ) else {
            ctx.stats().drop("study proxy: not IPv4");
            return;
        };
        let a = &self.addrs;
        let (ns, nd) = if dst == a.vip && src == a.client {
            (a.vip, a.server)
        } else if dst == a.vip && src == a.server {
            (a.vip, a.client)
        } else {
            ctx.stats().drop("study proxy: no splice");
            return;
        };
        if readdress(&mut bytes, ns, nd).is_none() {
            ctx.stats().drop("study proxy: not TCP/IPv4");
            return;
        }
        self.forwarded += 1;
        ctx.send_to(IfaceId(0), nd, bytes);
    }

    fn service_time(&self, frame: &Frame, default: Duration) -> Duration {
        default + self.per_byte * frame.bytes.len() as u32
    }

    fn crash(&mut self) {}

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::segcodec;
    use ftsplice_tcp::{Flags, Segment};

    #[test]
    fn readdressed_datagram_still_verifies() {
        let seg = Segment {
            src_port: 10_001,
            dst_port: 80,
            flags: Flags::ACK,
            payload: vec![7u8; 100],
            ..Segment::default()
        };
        let c = Ipv4Addr::new(10, 0, 0, 1);
        let vip = Ipv4Addr::new(10, 0, 0, 10);
        let s = Ipv4Addr::new(10, 0, 2, 1);
        let mut b = segcodec::encode(c, vip, &seg).unwrap();
        readdress(&mut b, vip, s).unwrap();
        let (src, dst, back) = segcodec::decode(&b).unwrap();
        assert_eq!((src, dst), (vip, s));
        assert_eq!(back.payload, &[7u8; 100][..]);
    }

    #[test]
    fn short_or_non_tcp_is_refused() {
        assert!(readdress(&mut [0u8; 20], Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).is_none());
    }
}

//! Fuzz entry points: bodies of the `/fuzz` cargo-fuzz targets, public so
//! that unit and property tests run exactly the same code over random input.
//! They panic only on a bug (a parser panicking, or a successful parse that
//! does not survive emit + parse).

use core::net::Ipv4Addr;

use crate::ipv4_tcp::{emit_ipv4_tcp, parse_ipv4_tcp};
use crate::tcp::{TcpPacket, TcpRepr};
use crate::tcp_options::{TcpOptionIter, TcpOptions};
use crate::Ipv4Packet;

/// Runs every parser over `data`: as a whole datagram, as a bare TCP
/// segment and as an options area. Whatever parses must round-trip.
pub fn parse_any(data: &[u8]) {
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        let _ = (ip.payload(), ip.verify_checksum(), ip.is_fragment());
    }
    if let Ok((ip, tcp)) = parse_ipv4_tcp(data) {
        let mut out = Vec::new();
        // A parsed segment can still carry more options than we re-emit
        // (e.g. 4 SACK blocks next to a timestamp is legal but takes 48 bytes
        // in our canonical layout) -- that must be an error, not a panic.
        if emit_ipv4_tcp(&ip, &tcp, &mut out).is_ok() {
            let (ip2, tcp2) = parse_ipv4_tcp(&out).expect("emitted datagram parses");
            assert_eq!(tcp2, tcp, "tcp round trip");
            assert_eq!(ip2.src_addr, ip.src_addr, "ip round trip");
            assert_eq!(ip2.dst_addr, ip.dst_addr, "ip round trip");
        }
    }
    if let Ok(seg) = TcpPacket::new_checked(data) {
        let src = Ipv4Addr::new(198, 18, 0, 1);
        let dst = Ipv4Addr::new(198, 18, 0, 2);
        let _ = TcpRepr::parse(&seg, src, dst);
        for (at, _) in seg.option_iter().flatten() {
            assert!(at < seg.options().len());
        }
        let _ = (seg.payload(), seg.segment_len(), seg.flags());
    }
    let _ = TcpOptions::parse(data);
    let _ = TcpOptionIter::new(data).count();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_edge_inputs() {
        parse_any(&[]);
        parse_any(&[0x45]);
        parse_any(&[0xff; 64]);
        parse_any(&[0; 64]);
    }
}

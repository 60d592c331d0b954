//! Control traffic shared by the roles: well-known UDP ports, sending
//! heartbeats and replication messages, and pulling a TCP 4-tuple out of a
//! raw packet without a full parse (the fast path's lookup key).

use crate::net::node::Ctx;
use crate::net::udp;
use core::net::{Ipv4Addr, SocketAddrV4};
use ftsplice_proto::replication::{Codec, Message};
use ftsplice_proto::ProxyId;

/// Heartbeats (proxy -> lbs and peer proxies; primary lb -> backup).
pub const HB_PORT: u16 = 7401;
/// Splice replication between proxies and agents.
pub const REPL_PORT: u16 = 7400;

/// (source, destination) of an IPv4/TCP packet, if it is one.
pub fn tcp_tuple(p: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4)> {
    if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0F) * 4;
    let ports = p.get(ihl..ihl + 4)?;
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    Some((
        SocketAddrV4::new(src, u16::from_be_bytes([ports[0], ports[1]])),
        SocketAddrV4::new(dst, u16::from_be_bytes([ports[2], ports[3]])),
    ))
}

/// TCP flags byte of an IPv4/TCP packet.
pub fn tcp_flags(p: &[u8]) -> u8 {
    let ihl = usize::from(p.first().copied().unwrap_or(0) & 0x0F) * 4;
    p.get(ihl + 13).copied().unwrap_or(0)
}

/// Sends a heartbeat datagram.
pub fn send_udp(ctx: &mut Ctx<'_>, from: Ipv4Addr, to: Ipv4Addr, port: u16, payload: &[u8]) {
    let p = udp::build(
        SocketAddrV4::new(from, port),
        SocketAddrV4::new(to, port),
        payload,
    );
    ctx.send_ip(p);
}

/// Encodes and sends a replication message to `to`.
pub fn send_repl(
    ctx: &mut Ctx<'_>,
    codec: &Codec,
    me: ProxyId,
    from: Ipv4Addr,
    to: Ipv4Addr,
    msg: &Message,
) {
    match codec.encode(me, msg) {
        Ok(b) => send_udp(ctx, from, to, REPL_PORT, &b),
        Err(_) => ctx
            .stats()
            .drop("replication: message could not be encoded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_of_short_or_non_tcp_packets_is_none() {
        assert_eq!(tcp_tuple(&[0x45; 10]), None);
        let u = udp::build(
            SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 5),
            SocketAddrV4::new(Ipv4Addr::new(5, 6, 7, 8), 9),
            b"",
        );
        assert_eq!(tcp_tuple(&u), None);
        let mut t = u.clone();
        t[9] = 6;
        assert_eq!(
            tcp_tuple(&t),
            Some((
                SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 5),
                SocketAddrV4::new(Ipv4Addr::new(5, 6, 7, 8), 9)
            ))
        );
    }
}

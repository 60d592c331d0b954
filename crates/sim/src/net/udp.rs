//! Minimal IPv4/UDP encapsulation for the simulator's control traffic
//! (heartbeats, splice replication) and synthetic load. TCP packets are built
//! by `ftsplice-wire`; this only needs the 20-byte IPv4 header without
//! options and the 8-byte UDP header (checksum 0: "none", allowed on IPv4).

use core::net::{Ipv4Addr, SocketAddrV4};

pub const IPPROTO_UDP: u8 = 17;
const IP_HDR: usize = 20;
const UDP_HDR: usize = 8;

/// RFC 1071 checksum of an IPv4 header.
fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in h.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds an IPv4/UDP datagram carrying `payload`.
pub fn build(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let total = IP_HDR + UDP_HDR + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total.min(0xFFFF) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, IPPROTO_UDP, 0, 0]);
    p.extend_from_slice(&src.ip().octets());
    p.extend_from_slice(&dst.ip().octets());
    let ck = ipv4_checksum(&p[..IP_HDR]);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&((UDP_HDR + payload.len()).min(0xFFFF) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A parsed IPv4/UDP datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: &'a [u8],
}

/// Why a packet is not a well-formed IPv4/UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpError {
    Truncated,
    NotIpv4,
    NotUdp,
    BadChecksum,
    BadLength,
}

impl UdpError {
    pub fn reason(self) -> &'static str {
        match self {
            UdpError::Truncated => "udp: truncated",
            UdpError::NotIpv4 => "udp: not ipv4",
            UdpError::NotUdp => "udp: not udp",
            UdpError::BadChecksum => "udp: bad ipv4 checksum",
            UdpError::BadLength => "udp: bad length",
        }
    }
}

/// Parses untrusted bytes as IPv4/UDP.
pub fn parse(p: &[u8]) -> Result<Datagram<'_>, UdpError> {
    if p.len() < IP_HDR {
        return Err(UdpError::Truncated);
    }
    if p[0] >> 4 != 4 {
        return Err(UdpError::NotIpv4);
    }
    let ihl = usize::from(p[0] & 0x0F) * 4;
    if ihl < IP_HDR || p.len() < ihl + UDP_HDR {
        return Err(UdpError::Truncated);
    }
    if p[9] != IPPROTO_UDP {
        return Err(UdpError::NotUdp);
    }
    if ipv4_checksum(&p[..ihl]) != 0 {
        return Err(UdpError::BadChecksum);
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let ulen = usize::from(u16::from_be_bytes([p[ihl + 4], p[ihl + 5]]));
    if total > p.len() || total < ihl + UDP_HDR || ulen < UDP_HDR || ihl + ulen > total {
        return Err(UdpError::BadLength);
    }
    let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    let port = |o: usize| u16::from_be_bytes([p[o], p[o + 1]]);
    Ok(Datagram {
        src: SocketAddrV4::new(ip(12), port(ihl)),
        dst: SocketAddrV4::new(ip(16), port(ihl + 2)),
        payload: &p[ihl + UDP_HDR..ihl + ulen],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(a: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, a), port)
    }

    #[test]
    fn round_trip() {
        let p = build(sa(1, 5000), sa(2, 6000), b"hello");
        assert_eq!(p.len(), 33);
        let d = parse(&p).unwrap();
        assert_eq!(d.src, sa(1, 5000));
        assert_eq!(d.dst, sa(2, 6000));
        assert_eq!(d.payload, b"hello");
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        let mut p = build(sa(1, 1), sa(2, 2), b"x");
        assert_eq!(parse(&p[..10]), Err(UdpError::Truncated));
        p[15] ^= 1;
        assert_eq!(parse(&p), Err(UdpError::BadChecksum));
        let mut q = build(sa(1, 1), sa(2, 2), b"x");
        q[9] = 6;
        assert_eq!(parse(&q), Err(UdpError::NotUdp));
        let mut r = build(sa(1, 1), sa(2, 2), b"x");
        r[25] = 200;
        assert_eq!(parse(&r), Err(UdpError::BadLength));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn any_payload_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = build(sa(9, 1), sa(8, 2), &payload);
            let d = parse(&p).unwrap();
            prop_assert_eq!(d.payload, &payload[..]);
        }
    }
}

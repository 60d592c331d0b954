//! Glue between raw IPv4 packets and the endpoint TCP's [`Segment`] for the
//! simulator's hosts: socket addresses around `ftsplice_tcp::wire_conv`,
//! which owns the Segment <-> IPv4/TCP bytes conversion.

use core::net::{Ipv4Addr, SocketAddrV4};
use ftsplice_tcp::wire_conv::{emit_datagram, parse_datagram};
use ftsplice_tcp::Segment;

/// A parsed datagram: addresses and the segment borrowing its payload.
pub struct Parsed<'a> {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seg: Segment<&'a [u8]>,
}

/// Parses an IPv4/TCP datagram (checksums verified).
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, ftsplice_wire::Error> {
    let (src, dst, seg) = parse_datagram(bytes)?;
    Ok(Parsed {
        src: SocketAddrV4::new(src, seg.src_port),
        dst: SocketAddrV4::new(dst, seg.dst_port),
        seg,
    })
}

/// Emits `seg` from `src` to `dst` as an IPv4 datagram (empty if it cannot
/// be emitted: over-long options or > 64 KiB, which the endpoint never
/// produces; the caller drops an empty packet).
pub fn emit<P: AsRef<[u8]>>(src: Ipv4Addr, dst: Ipv4Addr, seg: &Segment<P>) -> Vec<u8> {
    let mut out = crate::net::pool::take(20 + 60 + seg.payload.as_ref().len());
    if emit_datagram(src, dst, 0, seg, &mut out).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_tcp::{Flags, SackBlock, SackBlocks, SeqNum, TcpOptions, Timestamp};

    #[test]
    fn round_trip_with_every_option() {
        let mut sack = SackBlocks::new();
        sack.push(SackBlock {
            start: SeqNum(100),
            end: SeqNum(200),
        });
        let seg = Segment {
            src_port: 1234,
            dst_port: 80,
            seq: SeqNum(0xFFFF_FFF0),
            ack: SeqNum(77),
            flags: Flags::ACK | Flags::PSH,
            window: 5000,
            options: TcpOptions {
                mss: None,
                window_scale: None,
                sack_permitted: false,
                sack,
                timestamp: Some(Timestamp { tsval: 5, tsecr: 6 }),
            },
            payload: b"hello".to_vec(),
        };
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let bytes = emit(a, b, &seg);
        let p = parse(&bytes).unwrap();
        assert_eq!(p.src, SocketAddrV4::new(a, 1234));
        assert_eq!(p.dst, SocketAddrV4::new(b, 80));
        assert_eq!(p.seg.to_owned_segment(), seg);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(&[0x45, 0, 0]).is_err());
        let mut ok = emit(
            Ipv4Addr::new(1, 1, 1, 1),
            Ipv4Addr::new(2, 2, 2, 2),
            &Segment::<Vec<u8>>::default(),
        );
        ok[30] ^= 0xFF;
        assert!(parse(&ok).is_err());
    }
}

//! Glue between raw IPv4 packets (`ftsplice-wire`) and the endpoint TCP's
//! [`Segment`] type (`ftsplice-tcp`): parse untrusted bytes into a segment
//! and emit a segment as a complete IPv4/TCP datagram.

use core::net::{Ipv4Addr, SocketAddrV4};
use ftsplice_tcp::{Flags, SackBlock, SackBlocks, Segment, SeqNum, TcpOptions, Timestamp};
use ftsplice_wire::{emit_ipv4_tcp, parse_ipv4_tcp, Ipv4Repr, TcpFlags, TcpRepr};

/// A parsed datagram: addresses and the segment borrowing its payload.
pub struct Parsed<'a> {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seg: Segment<&'a [u8]>,
}

/// Parses an IPv4/TCP datagram (checksums verified).
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, ftsplice_wire::Error> {
    let (ip, tcp) = parse_ipv4_tcp(bytes)?;
    let o = &tcp.options;
    let sack: SackBlocks = o
        .sack
        .as_slice()
        .iter()
        .map(|&(s, e)| SackBlock {
            start: SeqNum(s),
            end: SeqNum(e),
        })
        .collect();
    let options = TcpOptions {
        mss: o.mss,
        window_scale: o.window_scale,
        sack_permitted: o.sack_permitted,
        sack,
        timestamp: o.timestamp.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
    };
    Ok(Parsed {
        src: SocketAddrV4::new(ip.src_addr, tcp.src_port),
        dst: SocketAddrV4::new(ip.dst_addr, tcp.dst_port),
        seg: Segment {
            src_port: tcp.src_port,
            dst_port: tcp.dst_port,
            seq: SeqNum(tcp.seq),
            ack: SeqNum(tcp.ack),
            flags: Flags(tcp.flags.0 & 0x1F),
            window: tcp.window,
            options,
            payload: tcp.payload,
        },
    })
}

/// Emits `seg` from `src` to `dst` as an IPv4 datagram.
pub fn emit<P: AsRef<[u8]>>(src: Ipv4Addr, dst: Ipv4Addr, seg: &Segment<P>) -> Vec<u8> {
    let o = &seg.options;
    let mut sack = ftsplice_wire::SackBlocks::default();
    for b in o.sack.as_slice() {
        sack.push((b.start.0, b.end.0));
    }
    let options = ftsplice_wire::TcpOptions {
        mss: o.mss,
        window_scale: o.window_scale,
        sack_permitted: o.sack_permitted,
        sack,
        timestamp: o.timestamp.map(|t| (t.tsval, t.tsecr)),
    };
    let payload = seg.payload.as_ref();
    let tcp = TcpRepr {
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        seq: seg.seq.0,
        ack: seg.ack.0,
        flags: TcpFlags(seg.flags.0),
        window: seg.window,
        urgent: 0,
        options,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: 6,
        payload_len: 0,
        ttl: 64,
        ident: 0,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let mut out = Vec::with_capacity(20 + 60 + payload.len());
    // Emission fails only for over-long options or > 64 KiB datagrams, which
    // the endpoint never produces; an empty packet is dropped by the caller.
    if emit_ipv4_tcp(&ip, &tcp, &mut out).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

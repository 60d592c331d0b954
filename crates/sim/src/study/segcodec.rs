//! Turns `ftsplice_tcp` segments into IPv4 datagrams and back (through the
//! `wire` crate), for the study endpoints.

use core::net::Ipv4Addr;
use ftsplice_tcp::{Flags, SackBlock, SackBlocks, Segment, SeqNum, TcpOptions, Timestamp};
use ftsplice_wire::{emit_ipv4_tcp, parse_ipv4_tcp, Ipv4Repr, TcpFlags, TcpRepr};

/// Encodes `seg` from `src` to `dst` as an IPv4 datagram.
pub fn encode(src: Ipv4Addr, dst: Ipv4Addr, seg: &Segment) -> Option<Vec<u8>> {
    let mut sack = ftsplice_wire::SackBlocks::new();
    for b in seg.options.sack.as_slice() {
        sack.push((b.start.0, b.end.0));
    }
    let options = ftsplice_wire::TcpOptions {
        mss: seg.options.mss,
        window_scale: seg.options.window_scale,
        sack_permitted: seg.options.sack_permitted,
        sack,
        timestamp: seg.options.timestamp.map(|t| (t.tsval, t.tsecr)),
    };
    let tcp = TcpRepr {
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        seq: seg.seq.0,
        ack: seg.ack.0,
        flags: TcpFlags(seg.flags.0),
        window: seg.window,
        urgent: 0,
        options,
        payload: &seg.payload,
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
    let mut out = Vec::with_capacity(tcp.buffer_len() + 20);
    emit_ipv4_tcp(&ip, &tcp, &mut out).ok()?;
    Some(out)
}

/// Decodes a datagram into `(src, dst, segment)`; `Err` carries the reason
/// the bytes were not a valid TCP datagram.
pub fn decode(bytes: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, Segment<&[u8]>), &'static str> {
    let (ip, tcp) = parse_ipv4_tcp(bytes).map_err(|e| e.reason())?;
    let sack: SackBlocks = tcp
        .options
        .sack
        .as_slice()
        .iter()
        .map(|&(s, e)| SackBlock {
            start: SeqNum(s),
            end: SeqNum(e),
        })
        .collect();
    let options = TcpOptions {
        mss: tcp.options.mss,
        window_scale: tcp.options.window_scale,
        sack_permitted: tcp.options.sack_permitted,
        sack,
        timestamp: tcp
            .options
            .timestamp
            .map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
    };
    let seg = Segment {
        src_port: tcp.src_port,
        dst_port: tcp.dst_port,
        seq: SeqNum(tcp.seq),
        ack: SeqNum(tcp.ack),
        flags: Flags(tcp.flags.0),
        window: tcp.window,
        options,
        payload: tcp.payload,
    };
    Ok((ip.src_addr, ip.dst_addr, seg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let mut sack = SackBlocks::new();
        sack.push(SackBlock {
            start: SeqNum(10),
            end: SeqNum(20),
        });
        let seg = Segment {
            src_port: 1000,
            dst_port: 80,
            seq: SeqNum(0xFFFF_FFF0),
            ack: SeqNum(7),
            flags: Flags::ACK | Flags::PSH,
            window: 512,
            options: TcpOptions {
                sack,
                timestamp: Some(Timestamp { tsval: 5, tsecr: 6 }),
                ..TcpOptions::default()
            },
            payload: b"hello".to_vec(),
        };
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 2, 1));
        let bytes = encode(a, b, &seg).unwrap();
        let (s, d, back) = decode(&bytes).unwrap();
        assert_eq!((s, d), (a, b));
        assert_eq!(back.to_owned_segment(), seg);
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        assert!(decode(&[0x45, 0, 0]).is_err());
    }
}

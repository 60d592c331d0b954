//! Conversions between this crate's [`Segment`] and the wire crate's
//! `TcpRepr`, and whole IPv4 datagrams in one call, for the simulator.

use core::net::Ipv4Addr;

use ftsplice_wire::{emit_ipv4_tcp, parse_ipv4_tcp, Ipv4Repr, TcpFlags, TcpRepr};

use crate::options::{SackBlock, SackBlocks, TcpOptions, Timestamp};
use crate::segment::{Flags, Segment};
use crate::seq::SeqNum;

/// The segment a parsed `TcpRepr` describes (borrowing its payload).
/// URG and ECN bits and the urgent pointer are not modelled and dropped.
pub fn segment_from_repr<'a>(r: &TcpRepr<'a>) -> Segment<&'a [u8]> {
    let mask = Flags::FIN | Flags::SYN | Flags::RST | Flags::PSH | Flags::ACK;
    let o = &r.options;
    Segment {
        src_port: r.src_port,
        dst_port: r.dst_port,
        seq: SeqNum(r.seq),
        ack: SeqNum(r.ack),
        flags: Flags(r.flags.0 & mask.0),
        window: r.window,
        options: TcpOptions {
            mss: o.mss,
            window_scale: o.window_scale,
            sack_permitted: o.sack_permitted,
            sack: o
                .sack
                .as_slice()
                .iter()
                .map(|&(a, b)| SackBlock {
                    start: SeqNum(a),
                    end: SeqNum(b),
                })
                .collect::<SackBlocks>(),
            timestamp: o.timestamp.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
        },
        payload: r.payload,
    }
}

/// The `TcpRepr` to emit for `seg`.
pub fn segment_to_repr<P: AsRef<[u8]>>(seg: &Segment<P>) -> TcpRepr<'_> {
    let o = &seg.options;
    let mut sack = ftsplice_wire::SackBlocks::new();
    for b in o.sack.as_slice() {
        sack.push((b.start.0, b.end.0));
    }
    TcpRepr {
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        seq: seg.seq.0,
        ack: seg.ack.0,
        flags: TcpFlags(seg.flags.0),
        window: seg.window,
        urgent: 0,
        options: ftsplice_wire::TcpOptions {
            mss: o.mss,
            window_scale: o.window_scale,
            sack_permitted: o.sack_permitted,
            sack,
            timestamp: o.timestamp.map(|t| (t.tsval, t.tsecr)),
        },
        payload: seg.payload.as_ref(),
    }
}

/// A parsed datagram: source, destination and segment.
pub type Datagram<'a> = (Ipv4Addr, Ipv4Addr, Segment<&'a [u8]>);

/// Parses an IPv4/TCP datagram (checksums verified).
pub fn parse_datagram(bytes: &[u8]) -> ftsplice_wire::Result<Datagram<'_>> {
    let (ip, tcp) = parse_ipv4_tcp(bytes)?;
    Ok((ip.src_addr, ip.dst_addr, segment_from_repr(&tcp)))
}

/// Appends the IPv4/TCP datagram carrying `seg` from `src` to `dst` to
/// `out` (TTL 64, DF set, `ident` as given).
pub fn emit_datagram<P: AsRef<[u8]>>(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seg: &Segment<P>,
    out: &mut Vec<u8>,
) -> ftsplice_wire::Result<()> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: 6,
        payload_len: 0,
        ttl: 64,
        ident,
        dont_frag: true,
        dscp_ecn: 0,
    };
    emit_ipv4_tcp(&ip, &segment_to_repr(seg), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg_strategy() -> impl Strategy<Value = Segment> {
        (
            any::<(u16, u16, u32, u32)>(),
            0u8..0x20,
            any::<u16>(),
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..15),
            any::<bool>(),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=3),
            proptest::option::of(any::<(u32, u32)>()),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(
                |((sp, dp, seq, ack), fl, win, mss, ws, sp_ok, sack, ts, payload)| Segment {
                    src_port: sp,
                    dst_port: dp,
                    seq: SeqNum(seq),
                    ack: SeqNum(ack),
                    flags: Flags(fl),
                    window: win,
                    options: TcpOptions {
                        mss,
                        window_scale: ws,
                        sack_permitted: sp_ok,
                        sack: sack
                            .into_iter()
                            .map(|(a, b)| SackBlock {
                                start: SeqNum(a),
                                end: SeqNum(b),
                            })
                            .collect(),
                        timestamp: ts.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
                    },
                    payload,
                },
            )
    }

    proptest! {
        #[test]
        fn datagram_roundtrip(seg in seg_strategy()) {
            let src = Ipv4Addr::new(198, 18, 0, 1);
            let dst = Ipv4Addr::new(198, 18, 0, 2);
            let mut out = Vec::new();
            // Options may not fit (e.g. SYN options with 3 SACK blocks):
            // then emitting must fail cleanly.
            match emit_datagram(src, dst, 9, &seg, &mut out) {
                Ok(()) => {
                    let (s, d, back) = parse_datagram(&out).expect("parse what we emitted");
                    prop_assert_eq!((s, d), (src, dst));
                    prop_assert_eq!(back, seg.as_borrowed());
                }
                Err(_) => prop_assert!(out.is_empty()),
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = parse_datagram(&bytes);
        }
    }
}

//! Whole IPv4+TCP datagrams in one call: what the simulator and tests use to
//! turn bytes into representations and back.

use crate::error::{Error, Result};
use crate::ipv4::{Ipv4Packet, Ipv4Repr, PROTO_TCP};
use crate::tcp::{TcpPacket, TcpRepr};

/// Parses an unfragmented IPv4 datagram carrying TCP, verifying both
/// checksums and the TCP options.
pub fn parse_ipv4_tcp(bytes: &[u8]) -> Result<(Ipv4Repr, TcpRepr<'_>)> {
    let ip = Ipv4Packet::new_checked(bytes)?;
    let ip_repr = Ipv4Repr::parse(&ip)?;
    if ip_repr.protocol != PROTO_TCP {
        return Err(Error::NotTcp);
    }
    let tcp = TcpPacket::new_checked(ip.payload())?;
    let tcp_repr = TcpRepr::parse(&tcp, ip_repr.src_addr, ip_repr.dst_addr)?;
    Ok((ip_repr, tcp_repr))
}

/// True if `bytes` is an IPv4 datagram (not a fragment) carrying a TCP
/// segment whose IPv4 header checksum and TCP checksum both verify. Options
/// are not inspected.
pub fn checksums_valid(bytes: &[u8]) -> bool {
    let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
        return false;
    };
    if ip.version() != 4 || ip.protocol() != PROTO_TCP || !ip.verify_checksum() {
        return false;
    }
    TcpPacket::new_checked(ip.payload())
        .is_ok_and(|tcp| tcp.verify_checksum(ip.src_addr(), ip.dst_addr()))
}

/// Appends the datagram for `ip` and `tcp` to `out`. `ip.protocol` and
/// `ip.payload_len` are ignored: the datagram is always TCP and its length
/// is that of `tcp`. On error `out` is left as it was.
pub fn emit_ipv4_tcp(ip: &Ipv4Repr, tcp: &TcpRepr<'_>, out: &mut Vec<u8>) -> Result<()> {
    let ip = Ipv4Repr {
        protocol: PROTO_TCP,
        payload_len: tcp.buffer_len(),
        ..*ip
    };
    let start = out.len();
    let total = ip.buffer_len() + ip.payload_len;
    if total > usize::from(u16::MAX) {
        return Err(Error::BufferTooSmall);
    }
    // Headers zeroed, then the payload appended (not zeroed first: a
    // segment's payload is most of the datagram).
    out.reserve(total);
    out.resize(start + ip.buffer_len() + tcp.header_len(), 0);
    out.extend_from_slice(tcp.payload);
    let buf = &mut out[start..];
    let result = ip
        .emit(&mut Ipv4Packet::new_unchecked(&mut *buf))
        .and_then(|()| tcp.emit_header(&mut buf[ip.buffer_len()..], ip.src_addr, ip.dst_addr));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;
    use crate::tcp::TcpFlags;
    use crate::tcp_options::{TcpOption, TcpOptions};
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    fn ip(src: [u8; 4], dst: [u8; 4]) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::from(src),
            dst_addr: Ipv4Addr::from(dst),
            protocol: PROTO_TCP,
            payload_len: 0,
            ttl: 64,
            ident: 7,
            dont_frag: true,
            dscp_ecn: 0,
        }
    }

    #[test]
    fn roundtrip_and_errors() {
        let ipr = ip([198, 18, 0, 1], [198, 18, 0, 2]);
        let tcp = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: 3,
            ack: 4,
            flags: TcpFlags::SYN,
            window: 5,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamp: Some((1, 0)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let mut out = vec![0xee];
        emit_ipv4_tcp(&ipr, &tcp, &mut out).unwrap();
        assert_eq!(out[0], 0xee);
        let (i2, t2) = parse_ipv4_tcp(&out[1..]).unwrap();
        assert_eq!(t2, tcp);
        assert_eq!(
            i2,
            Ipv4Repr {
                payload_len: 40,
                ..ipr
            }
        );

        let mut udp = out[1..].to_vec();
        udp[9] = 17;
        Ipv4Packet::new_unchecked(&mut udp[..]).fill_checksum();
        assert_eq!(parse_ipv4_tcp(&udp).unwrap_err(), Error::NotTcp);
        assert_eq!(parse_ipv4_tcp(&out[1..30]).unwrap_err(), Error::BadTotalLen);

        let too_big = vec![0u8; 70_000];
        let big = TcpRepr {
            payload: &too_big,
            ..tcp
        };
        let mut out2 = vec![1, 2];
        assert_eq!(
            emit_ipv4_tcp(&ipr, &big, &mut out2),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(out2, [1, 2]);
    }

    /// A fixed-layout field of the datagram that a translator rewrites.
    #[derive(Clone, Copy, Debug)]
    enum Field {
        SrcAddr,
        DstAddr,
        SrcPort,
        DstPort,
        Seq,
        Ack,
        Window,
        /// The timestamp option's TSval (its offset depends on the layout).
        TsVal,
    }

    fn field_strategy() -> impl Strategy<Value = Field> {
        prop_oneof![
            Just(Field::SrcAddr),
            Just(Field::DstAddr),
            Just(Field::SrcPort),
            Just(Field::DstPort),
            Just(Field::Seq),
            Just(Field::Ack),
            Just(Field::Window),
            Just(Field::TsVal),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(
            src: [u8; 4], dst: [u8; 4], seq: u32, ack: u32, flags: u8, window: u16,
            ts in proptest::option::of(any::<(u32, u32)>()),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let ipr = ip(src, dst);
            let tcp = TcpRepr {
                src_port: 9, dst_port: 10, seq, ack, flags: TcpFlags(flags), window, urgent: 1,
                options: TcpOptions { timestamp: ts, ..TcpOptions::default() },
                payload: &payload,
            };
            let mut out = Vec::new();
            emit_ipv4_tcp(&ipr, &tcp, &mut out).unwrap();
            let (i2, t2) = parse_ipv4_tcp(&out).unwrap();
            prop_assert_eq!(t2, tcp);
            prop_assert_eq!(i2, Ipv4Repr { payload_len: tcp.buffer_len(), ..ipr });
        }

        /// Rewriting one field and updating both checksums incrementally
        /// gives exactly the fully recomputed checksums, whatever the field's
        /// alignment (a leading NOP shifts the timestamp to an odd offset).
        #[test]
        fn incremental_update_matches_full(
            src: [u8; 4], dst: [u8; 4], seq: u32, ack: u32, window: u16,
            ts: (u32, u32), odd_ts: bool, field in field_strategy(), new: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let tcp = TcpRepr {
                src_port: 9, dst_port: 10, seq, ack, flags: TcpFlags::ACK, window, urgent: 0,
                options: TcpOptions { timestamp: Some(ts), ..TcpOptions::default() },
                payload: &payload,
            };
            let mut out = Vec::new();
            emit_ipv4_tcp(&ip(src, dst), &tcp, &mut out).unwrap();
            if odd_ts {
                // Options "NOP NOP TS" -> "NOP TS NOP": TS at odd offset 21.
                out[20 + 21..20 + 31].copy_from_slice(&[8, 10].iter().chain(&ts.0.to_be_bytes())
                    .chain(&ts.1.to_be_bytes()).copied().collect::<Vec<_>>());
                out[20 + 31] = 1;
                let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
                TcpPacket::new_unchecked(&mut out[20..]).fill_checksum(s, d);
            }
            let ts_at = {
                let p = TcpPacket::new_unchecked(&out[20..]);
                let found = p.option_iter().find_map(|o| match o {
                    Ok((at, TcpOption::Timestamp { .. })) => Some(at),
                    _ => None,
                });
                20 + found.unwrap() + 2
            };
            let (ip_at, tcp_at, width) = match field {
                Field::SrcAddr => (Some(12), Some(12), 4),
                Field::DstAddr => (Some(16), Some(16), 4),
                Field::SrcPort => (None, Some(20), 2),
                Field::DstPort => (None, Some(22), 2),
                Field::Seq => (None, Some(24), 4),
                Field::Ack => (None, Some(28), 4),
                Field::Window => (None, Some(34), 2),
                Field::TsVal => (None, Some(20 + ts_at), 4),
            };
            let new = &new.to_be_bytes()[4 - width..];
            let at = ip_at.or(tcp_at).unwrap();
            let old = out[at..at + width].to_vec();
            out[at..at + width].copy_from_slice(new);
            let mut ipp = Ipv4Packet::new_unchecked(&mut out[..]);
            if ip_at.is_some() {
                let c = checksum::update_bytes(ipp.checksum(), at, &old, new);
                ipp.set_checksum(c);
            }
            let (s, d) = (ipp.src_addr(), ipp.dst_addr());
            let mut tcpp = TcpPacket::new_unchecked(&mut out[20..]);
            // Addresses enter the TCP sum via the pseudo-header (aligned).
            let c = checksum::update_bytes(tcpp.checksum(), at, &old, new);
            tcpp.set_checksum(c);
            let inc = (Ipv4Packet::new_unchecked(&out[..]).checksum(),
                       TcpPacket::new_unchecked(&out[20..]).checksum());
            Ipv4Packet::new_unchecked(&mut out[..]).fill_checksum();
            TcpPacket::new_unchecked(&mut out[20..]).fill_checksum(s, d);
            let full = (Ipv4Packet::new_unchecked(&out[..]).checksum(),
                        TcpPacket::new_unchecked(&out[20..]).checksum());
            prop_assert_eq!(inc, full);
            prop_assert!(parse_ipv4_tcp(&out).is_ok());
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            crate::fuzz::parse_any(&b);
        }
    }
}

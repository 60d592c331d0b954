//! Packet translation through a splice: rewrites an IPv4/TCP packet of one
//! spliced connection *in place* into the corresponding packet of the other
//! connection (addresses, ports, seq/ack, SACK blocks, timestamps, window),
//! updating both checksums incrementally (RFC 1624). The length never
//! changes, so the same algorithm runs in BPF (crates/bpf mirrors it and is
//! checked against `fixtures/translate.txt`).
//!
//! Validation happens before the first write: on any error the packet is
//! left untouched. Checks, in this order (the fixture verdicts depend on it):
//! shorter than 20 bytes -> `truncated`; version not 4 -> `not-ipv4`; IHL or
//! total length inconsistent with the buffer -> `bad-ip-header`; MF or
//! fragment offset -> `fragment`; protocol not TCP -> `not-tcp`; TCP segment
//! shorter than 20 bytes -> `truncated`; data offset below 5 or past the
//! segment -> `bad-tcp-header`; addresses/ports not the splice's incoming
//! tuple -> `tuple-mismatch`; SYN set -> `syn`; a malformed option or a
//! second timestamp or SACK option -> `bad-option`. Incoming checksums are
//! not verified (a corrupt packet stays corrupt and the receiver drops it).

use core::net::SocketAddrV4;

use ftsplice_wire::checksum::Incremental;
use ftsplice_wire::ipv4::{self, PROTO_TCP};
use ftsplice_wire::tcp_options::kind;
use ftsplice_wire::{
    tcp, Error as WireError, Ipv4Packet, TcpFlags, TcpOption, TcpOptions, TcpPacket,
};

use super::{Direction, Splice};

/// What a successful translation produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Translated {
    /// Source of the rewritten packet.
    pub src: SocketAddrV4,
    /// Destination of the rewritten packet.
    pub dst: SocketAddrV4,
    /// TCP flags of the segment (FIN/RST drive teardown).
    pub flags: TcpFlags,
    /// Sequence number after translation.
    pub seq: u32,
    /// Acknowledgment number after translation.
    pub ack: u32,
    /// TCP payload bytes.
    pub payload_len: usize,
}

/// Why a packet was not translated; the caller counts and drops it (or hands
/// it to the slow path, for `Syn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TranslateError {
    #[error("truncated")]
    Truncated,
    #[error("not ipv4")]
    NotIpv4,
    #[error("bad ipv4 header length or total length")]
    BadIpHeader,
    #[error("ipv4 fragment")]
    Fragment,
    #[error("not tcp")]
    NotTcp,
    #[error("bad tcp data offset")]
    BadTcpHeader,
    #[error("malformed or repeated tcp option")]
    BadOption,
    #[error("addresses/ports do not match the splice")]
    TupleMismatch,
    #[error("syn on an established splice")]
    Syn,
}

impl TranslateError {
    /// Every variant, for tables and counters.
    pub const ALL: [TranslateError; 9] = [
        TranslateError::Truncated,
        TranslateError::NotIpv4,
        TranslateError::BadIpHeader,
        TranslateError::Fragment,
        TranslateError::NotTcp,
        TranslateError::BadTcpHeader,
        TranslateError::BadOption,
        TranslateError::TupleMismatch,
        TranslateError::Syn,
    ];

    /// Stable short code (drop-counter label and fixture verdict).
    pub fn code(self) -> &'static str {
        match self {
            TranslateError::Truncated => "truncated",
            TranslateError::NotIpv4 => "not-ipv4",
            TranslateError::BadIpHeader => "bad-ip-header",
            TranslateError::Fragment => "fragment",
            TranslateError::NotTcp => "not-tcp",
            TranslateError::BadTcpHeader => "bad-tcp-header",
            TranslateError::BadOption => "bad-option",
            TranslateError::TupleMismatch => "tuple-mismatch",
            TranslateError::Syn => "syn",
        }
    }

    /// The variant with [`TranslateError::code`] `code`.
    pub fn from_code(code: &str) -> Option<TranslateError> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }
}

/// RFC 7323 caps shift counts at 14; larger values are treated as 14.
const MAX_WSCALE: u8 = 14;

/// The affine map one direction applies (translate or its inverse).
#[derive(Clone, Copy, Debug)]
struct Rewrite {
    /// (source, destination) the packet must have.
    expect: (SocketAddrV4, SocketAddrV4),
    /// (source, destination) it gets.
    out: (SocketAddrV4, SocketAddrV4),
    seq_add: u32,
    /// Added to the ack and to every SACK edge.
    ack_add: u32,
    /// (added to TSval, added to TSecr); `None` strips timestamps.
    ts_add: Option<(u32, u32)>,
    keep_sack: bool,
    win_shl: u8,
    win_shr: u8,
}

impl Rewrite {
    fn forward(s: &Splice, dir: Direction) -> Rewrite {
        let w = s.wscale;
        let (seq_add, ack_add, ts_add, win_shl, win_shr) = match dir {
            Direction::ClientToServer => (
                s.seq_delta,
                s.ack_delta,
                s.ts.map(|t| (t.c2s, t.s2c.wrapping_neg())),
                w.client,
                w.ssa,
            ),
            Direction::ServerToClient => (
                s.ack_delta.wrapping_neg(),
                s.seq_delta.wrapping_neg(),
                s.ts.map(|t| (t.s2c, t.c2s.wrapping_neg())),
                w.backend,
                w.vip,
            ),
        };
        Rewrite {
            expect: s.incoming_tuple(dir),
            out: s.outgoing_tuple(dir),
            seq_add,
            ack_add,
            ts_add,
            keep_sack: s.sack_ok,
            win_shl: win_shl.min(MAX_WSCALE),
            win_shr: win_shr.min(MAX_WSCALE),
        }
    }

    fn inverse(self) -> Rewrite {
        Rewrite {
            expect: self.out,
            out: self.expect,
            seq_add: self.seq_add.wrapping_neg(),
            ack_add: self.ack_add.wrapping_neg(),
            ts_add: self
                .ts_add
                .map(|(v, e)| (v.wrapping_neg(), e.wrapping_neg())),
            keep_sack: self.keep_sack,
            win_shl: self.win_shr,
            win_shr: self.win_shl,
        }
    }
}

/// Rescales a window field: `(win << shl) >> shr`, saturating at 65535.
pub fn rescale_window(win: u16, shl: u8, shr: u8) -> u16 {
    let bytes = u64::from(win) << shl.min(MAX_WSCALE);
    u16::try_from(bytes >> shr.min(MAX_WSCALE)).unwrap_or(u16::MAX)
}

/// Translates `packet` (IPv4 with TCP) travelling `dir` through `splice`, in
/// place. See the module docs for the checks; on error nothing is written.
pub fn translate(
    splice: &Splice,
    dir: Direction,
    packet: &mut [u8],
) -> Result<Translated, TranslateError> {
    rewrite(&Rewrite::forward(splice, dir), packet)
}

/// The inverse of [`translate`] for tests and tools: takes a packet
/// `translate(splice, dir, _)` produced and restores the original, except
/// where translation loses information (stripped timestamps or SACK blocks,
/// window bits shifted out or saturated).
pub fn untranslate(
    splice: &Splice,
    dir: Direction,
    packet: &mut [u8],
) -> Result<Translated, TranslateError> {
    rewrite(&Rewrite::forward(splice, dir).inverse(), packet)
}

/// Where the options to rewrite are, found during validation.
#[derive(Clone, Copy, Default)]
struct OptionSpots {
    /// Offset of the timestamp option's kind byte in the options area.
    ts: Option<usize>,
    /// Offset and total length of the SACK option.
    sack: Option<(usize, usize)>,
}

fn addr_tuple(a: SocketAddrV4) -> (u32, u16) {
    (u32::from(*a.ip()), a.port())
}

/// Validates the packet and returns (IP header length, IP total length).
fn validate_ip(packet: &[u8]) -> Result<(usize, usize), TranslateError> {
    if packet.len() < ipv4::HEADER_LEN {
        return Err(TranslateError::Truncated);
    }
    let ip = Ipv4Packet::new_unchecked(packet);
    if ip.version() != 4 {
        return Err(TranslateError::NotIpv4);
    }
    ip.check_len().map_err(|_| TranslateError::BadIpHeader)?;
    if ip.is_fragment() {
        return Err(TranslateError::Fragment);
    }
    if ip.protocol() != PROTO_TCP {
        return Err(TranslateError::NotTcp);
    }
    Ok((ip.header_len(), usize::from(ip.total_len())))
}

fn scan_options(seg: &TcpPacket<&[u8]>) -> Result<OptionSpots, TranslateError> {
    let mut spots = OptionSpots::default();
    // The common established segment: NOP, NOP, timestamp at offset 2.
    if TcpOptions::timestamp_only(seg.options()).is_some() {
        spots.ts = Some(2);
        return Ok(spots);
    }
    for item in seg.option_iter() {
        let repeated = match item.map_err(|_| TranslateError::BadOption)? {
            (at, TcpOption::Timestamp { .. }) => spots.ts.replace(at).is_some(),
            (at, TcpOption::Sack(blocks)) => {
                spots.sack.replace((at, 2 + 8 * blocks.len())).is_some()
            }
            _ => false,
        };
        if repeated {
            return Err(TranslateError::BadOption);
        }
    }
    Ok(spots)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn add_be32(b: &mut [u8], at: usize, add: u32) {
    let v = be32(b, at).wrapping_add(add);
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Rewrites the option bytes in `opts` (the options area, which starts at
/// the even segment offset 20) and records the checksum changes.
fn rewrite_options(rw: &Rewrite, spots: OptionSpots, opts: &mut [u8], sum: &mut Incremental) {
    let base = tcp::field::OPTIONS;
    if let Some(at) = spots.ts {
        let old: [u8; 10] = core::array::from_fn(|i| opts[at + i]);
        match rw.ts_add {
            Some((val_add, ecr_add)) => {
                add_be32(opts, at + 2, val_add);
                add_be32(opts, at + 6, ecr_add);
            }
            None => opts[at..at + 10].fill(kind::NOP),
        }
        sum.bytes(base + at, &old, &opts[at..at + 10]);
    }
    if let Some((at, len)) = spots.sack {
        let mut old = [0u8; 34];
        old[..len].copy_from_slice(&opts[at..at + len]);
        if rw.keep_sack {
            for edge in 0..(len - 2) / 4 {
                add_be32(opts, at + 2 + 4 * edge, rw.ack_add);
            }
        } else {
            opts[at..at + len].fill(kind::NOP);
        }
        sum.bytes(base + at, &old[..len], &opts[at..at + len]);
    }
}

fn rewrite(rw: &Rewrite, packet: &mut [u8]) -> Result<Translated, TranslateError> {
    // Validation: nothing is written before all checks pass.
    let (ihl, total) = validate_ip(packet)?;
    let ip = Ipv4Packet::new_unchecked(&packet[..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let seg = TcpPacket::new_checked(&packet[ihl..total]).map_err(|e| match e {
        WireError::Truncated => TranslateError::Truncated,
        _ => TranslateError::BadTcpHeader,
    })?;
    let from = (
        SocketAddrV4::new(src, seg.src_port()),
        SocketAddrV4::new(dst, seg.dst_port()),
    );
    if from != rw.expect {
        return Err(TranslateError::TupleMismatch);
    }
    let flags = seg.flags();
    if flags.contains(TcpFlags::SYN) {
        return Err(TranslateError::Syn);
    }
    let spots = scan_options(&seg)?;
    let (old_seq, old_ack, old_win) = (seg.seq_number(), seg.ack_number(), seg.window_len());
    let thl = seg.header_len();

    // Rewrite, accumulating checksum changes.
    let (seq, ack) = (
        old_seq.wrapping_add(rw.seq_add),
        old_ack.wrapping_add(rw.ack_add),
    );
    let win = rescale_window(old_win, rw.win_shl, rw.win_shr);
    let ((old_src, old_sport), (old_dst, old_dport)) = (addr_tuple(from.0), addr_tuple(from.1));
    let ((new_src, new_sport), (new_dst, new_dport)) = (addr_tuple(rw.out.0), addr_tuple(rw.out.1));

    let mut ip_sum = Incremental::new();
    ip_sum.u32(old_src, new_src);
    ip_sum.u32(old_dst, new_dst);
    // The pseudo-header carries the addresses into the TCP checksum too.
    let mut tcp_sum = ip_sum;
    tcp_sum.u16(old_sport, new_sport);
    tcp_sum.u16(old_dport, new_dport);
    tcp_sum.u32(old_seq, seq);
    tcp_sum.u32(old_ack, ack);
    tcp_sum.u16(old_win, win);

    let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
    ip.set_src_addr(*rw.out.0.ip());
    ip.set_dst_addr(*rw.out.1.ip());
    let check = ip_sum.apply(ip.checksum());
    ip.set_checksum(check);

    let mut seg = TcpPacket::new_unchecked(&mut packet[ihl..total]);
    seg.set_src_port(new_sport);
    seg.set_dst_port(new_dport);
    seg.set_seq_number(seq);
    seg.set_ack_number(ack);
    seg.set_window_len(win);
    rewrite_options(rw, spots, seg.options_mut(), &mut tcp_sum);
    let check = tcp_sum.apply(seg.checksum());
    seg.set_checksum(check);

    Ok(Translated {
        src: rw.out.0,
        dst: rw.out.1,
        flags,
        seq,
        ack,
        payload_len: total - ihl - thl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splice::test_support::{checksums_valid, packet, splice, PacketSpec};
    use crate::splice::{TsDeltas, WindowScales};
    use proptest::prelude::*;

    #[test]
    fn data_c2s_rewrites_every_field() {
        let s = splice();
        let spec = PacketSpec {
            seq: 1000,
            ack: 2000,
            window: 100,
            ts: Some((50, 60)),
            sack: vec![(2100, 2200)],
            payload: b"hello".to_vec(),
            ..PacketSpec::new(&s, Direction::ClientToServer)
        };
        let mut p = packet(&spec);
        let t = translate(&s, Direction::ClientToServer, &mut p).unwrap();
        assert_eq!((t.src, t.dst), (s.ssa, s.backend));
        assert_eq!(t.payload_len, 5);
        let (ipr, tcpr) = ftsplice_wire::parse_ipv4_tcp(&p).unwrap();
        assert_eq!((ipr.src_addr, ipr.dst_addr), (*s.ssa.ip(), *s.backend.ip()));
        assert_eq!(
            (tcpr.src_port, tcpr.dst_port),
            (s.ssa.port(), s.backend.port())
        );
        assert_eq!(tcpr.seq, 1000u32.wrapping_add(s.seq_delta));
        assert_eq!(tcpr.ack, 2000u32.wrapping_add(s.ack_delta));
        let ts = s.ts.unwrap();
        assert_eq!(
            tcpr.options.timestamp,
            Some((50u32.wrapping_add(ts.c2s), 60u32.wrapping_sub(ts.s2c)))
        );
        assert_eq!(
            tcpr.options.sack.as_slice(),
            &[(
                2100u32.wrapping_add(s.ack_delta),
                2200u32.wrapping_add(s.ack_delta)
            )]
        );
        // client scale 7, ssa scale 9: 100 << 7 >> 9 = 25.
        assert_eq!(tcpr.window, 25);
        assert_eq!((t.seq, t.ack), (tcpr.seq, tcpr.ack));
    }

    #[test]
    fn s2c_uses_negated_deltas_and_backend_scale() {
        let s = splice();
        let spec = PacketSpec {
            seq: 5,
            ack: 7,
            window: 1000,
            ts: Some((1, 2)),
            ..PacketSpec::new(&s, Direction::ServerToClient)
        };
        let mut p = packet(&spec);
        let t = translate(&s, Direction::ServerToClient, &mut p).unwrap();
        assert_eq!((t.src, t.dst), (s.vip, s.client));
        let (_, tcpr) = ftsplice_wire::parse_ipv4_tcp(&p).unwrap();
        assert_eq!(tcpr.seq, 5u32.wrapping_sub(s.ack_delta));
        assert_eq!(tcpr.ack, 7u32.wrapping_sub(s.seq_delta));
        let ts = s.ts.unwrap();
        assert_eq!(
            tcpr.options.timestamp,
            Some((1u32.wrapping_add(ts.s2c), 2u32.wrapping_sub(ts.c2s)))
        );
        // backend scale 2, vip scale 5: 1000 << 2 >> 5 = 125.
        assert_eq!(tcpr.window, 125);
    }

    #[test]
    fn seq_and_ack_wrap_around() {
        let mut s = splice();
        s.seq_delta = 0x20;
        s.ack_delta = 0xffff_fff0;
        let spec = PacketSpec {
            seq: 0xffff_fff0,
            ack: 0x10,
            ..PacketSpec::new(&s, Direction::ClientToServer)
        };
        let mut p = packet(&spec);
        let t = translate(&s, Direction::ClientToServer, &mut p).unwrap();
        assert_eq!((t.seq, t.ack), (0x10, 0));
        assert!(checksums_valid(&p));
    }

    #[test]
    fn window_rescaling_saturates_and_caps_shifts() {
        assert_eq!(rescale_window(65535, 14, 0), 65535);
        assert_eq!(rescale_window(1, 14, 0), 16384);
        assert_eq!(rescale_window(16384, 0, 14), 1);
        assert_eq!(rescale_window(3, 0, 2), 0);
        assert_eq!(rescale_window(7, 200, 200), 7);
        assert_eq!(rescale_window(1, 255, 0), 16384);
    }

    #[test]
    fn strips_ts_and_sack_when_not_negotiated() {
        let mut s = splice();
        s.ts = None;
        s.sack_ok = false;
        let spec = PacketSpec {
            ts: Some((1, 2)),
            sack: vec![(1, 2), (3, 4)],
            ..PacketSpec::new(&s, Direction::ClientToServer)
        };
        let mut p = packet(&spec);
        let len = p.len();
        translate(&s, Direction::ClientToServer, &mut p).unwrap();
        assert_eq!(p.len(), len);
        let (_, tcpr) = ftsplice_wire::parse_ipv4_tcp(&p).unwrap();
        assert_eq!(tcpr.options, ftsplice_wire::TcpOptions::default());
        assert!(p[40..40 + 32].iter().all(|&b| b == kind::NOP));
    }

    #[test]
    fn rejects_and_leaves_packet_untouched() {
        let s = splice();
        let base = packet(&PacketSpec::new(&s, Direction::ClientToServer));
        let check = |p: &mut Vec<u8>, dir, e| {
            let before = p.clone();
            assert_eq!(translate(&s, dir, p), Err(e));
            assert_eq!(*p, before);
        };
        check(
            &mut base.clone(),
            Direction::ServerToClient,
            TranslateError::TupleMismatch,
        );
        check(
            &mut base[..19].to_vec(),
            Direction::ClientToServer,
            TranslateError::Truncated,
        );
        check(
            &mut base[..39].to_vec(),
            Direction::ClientToServer,
            TranslateError::BadIpHeader,
        );
        let mut v6 = base.clone();
        v6[0] = 0x65;
        check(&mut v6, Direction::ClientToServer, TranslateError::NotIpv4);
        let mut frag = base.clone();
        frag[6] |= 0x20;
        check(
            &mut frag,
            Direction::ClientToServer,
            TranslateError::Fragment,
        );
        let mut udp = base.clone();
        udp[9] = 17;
        check(&mut udp, Direction::ClientToServer, TranslateError::NotTcp);
        let mut short = base.clone();
        short[3] = 39; // total length leaves a 19-byte segment
        check(
            &mut short,
            Direction::ClientToServer,
            TranslateError::Truncated,
        );
        let mut doff = base.clone();
        doff[32] = 0x40;
        check(
            &mut doff,
            Direction::ClientToServer,
            TranslateError::BadTcpHeader,
        );
        let mut syn = base.clone();
        syn[33] |= 0x02;
        check(&mut syn, Direction::ClientToServer, TranslateError::Syn);
        let ts = packet(&PacketSpec {
            ts: Some((1, 2)),
            ..PacketSpec::new(&s, Direction::ClientToServer)
        });
        let mut bad = ts.clone();
        bad[43] = 11; // TS length 11 runs past the options area
        check(
            &mut bad,
            Direction::ClientToServer,
            TranslateError::BadOption,
        );
        // Options "NOP NOP TS NOP NOP SACK(1)" with the SACK turned into a
        // second timestamp, then into a second SACK.
        let ts_sack = packet(&PacketSpec {
            ts: Some((1, 2)),
            sack: vec![(3, 4)],
            ..PacketSpec::new(&s, Direction::ClientToServer)
        });
        let mut twice = ts_sack.clone();
        twice[52..64].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        check(
            &mut twice,
            Direction::ClientToServer,
            TranslateError::BadOption,
        );
        let mut twice = ts_sack.clone();
        twice[40..52].copy_from_slice(&ts_sack[52..64]);
        check(
            &mut twice,
            Direction::ClientToServer,
            TranslateError::BadOption,
        );
        let mut ok = ts_sack.clone();
        assert!(translate(&s, Direction::ClientToServer, &mut ok).is_ok());
    }

    #[test]
    fn error_codes_round_trip() {
        for e in TranslateError::ALL {
            assert_eq!(TranslateError::from_code(e.code()), Some(e));
        }
        assert_eq!(TranslateError::from_code("nope"), None);
    }

    fn splice_strategy() -> impl Strategy<Value = Splice> {
        (
            any::<(u32, u32)>(),
            proptest::option::of(any::<(u32, u32)>()),
            any::<[u8; 4]>(),
            any::<bool>(),
        )
            .prop_map(|(deltas, ts, ws, sack_ok)| {
                let mut s = splice();
                s.seq_delta = deltas.0;
                s.ack_delta = deltas.1;
                s.ts = ts.map(|(c2s, s2c)| TsDeltas { c2s, s2c });
                s.wscale = WindowScales {
                    client: ws[0] % 15,
                    vip: ws[1] % 15,
                    ssa: ws[2] % 15,
                    backend: ws[3] % 15,
                };
                s.sack_ok = sack_ok;
                s
            })
    }

    fn spec_strategy(s: Splice, dir: Direction) -> impl Strategy<Value = PacketSpec> {
        (
            any::<(u32, u32, u16)>(),
            any::<u8>(),
            proptest::option::of(any::<(u32, u32)>()),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=3),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(move |((seq, ack, window), flags, ts, sack, odd, payload)| {
                PacketSpec {
                    seq,
                    ack,
                    window,
                    flags: TcpFlags(flags & !TcpFlags::SYN.bits()),
                    ts,
                    sack,
                    odd_ts: odd,
                    payload,
                    ..PacketSpec::new(&s, dir)
                }
            })
    }

    fn case() -> impl Strategy<Value = (Splice, Direction, PacketSpec)> {
        (splice_strategy(), any::<bool>()).prop_flat_map(|(s, c2s)| {
            let dir = if c2s {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            spec_strategy(s.clone(), dir).prop_map(move |p| (s.clone(), dir, p))
        })
    }

    proptest! {
        #[test]
        fn checksums_always_valid_after_translation((s, dir, spec) in case()) {
            let mut p = packet(&spec);
            prop_assert!(checksums_valid(&p));
            translate(&s, dir, &mut p).unwrap();
            prop_assert!(checksums_valid(&p));
        }

        #[test]
        fn translate_then_untranslate_is_identity((mut s, dir, spec) in case()) {
            s.sack_ok = true;
            if spec.ts.is_some() && s.ts.is_none() {
                s.ts = Some(TsDeltas { c2s: 3, s2c: 4 });
            }
            let orig = packet(&spec);
            let mut p = orig.clone();
            translate(&s, dir, &mut p).unwrap();
            untranslate(&s, dir, &mut p).unwrap();
            // The window survives only if no bits were shifted out.
            let (shl, shr) = match dir {
                Direction::ClientToServer => (s.wscale.client, s.wscale.ssa),
                Direction::ServerToClient => (s.wscale.backend, s.wscale.vip),
            };
            let w = spec.window;
            let there = rescale_window(w, shl, shr);
            if rescale_window(there, shr, shl) == w {
                prop_assert_eq!(&p, &orig);
            } else {
                // Everything but window and checksum is restored.
                let mut a = p.clone();
                let mut b = orig.clone();
                for v in [&mut a, &mut b] {
                    v[34..38].fill(0);
                }
                prop_assert_eq!(a, b);
                prop_assert!(checksums_valid(&p));
            }
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            crate::splice::fuzz::translate_any(&b);
        }
    }
}

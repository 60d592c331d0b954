//! Test helpers for the splice module, shared with the benchmarks and other
//! crates' tests: a sample splice and a builder for IPv4/TCP packets
//! travelling through it (timestamps, SACK blocks, and an odd-offset
//! timestamp layout to exercise unaligned checksum updates). Not for
//! production paths: the builder panics on specs that cannot be emitted.

use core::net::{Ipv4Addr, SocketAddrV4};

use ftsplice_wire::{
    emit_ipv4_tcp, Ipv4Repr, SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr,
};

use super::{Direction, Splice, SpliceId, TsDeltas, WindowScales};

pub use ftsplice_wire::checksums_valid;

/// A splice with distinct, non-trivial parameters everywhere.
pub fn splice() -> Splice {
    Splice {
        id: SpliceId(0x0001_0000_0000_0007),
        version: 1,
        client: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 40_000),
        vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 1), 80),
        ssa: SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, 1), 51_000),
        backend: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 5), 8080),
        seq_delta: 0x1234_5678,
        ack_delta: 0xfedc_ba98,
        ts: Some(TsDeltas {
            c2s: 0x1000_0001,
            s2c: 0xf000_0002,
        }),
        wscale: WindowScales {
            client: 7,
            vip: 5,
            ssa: 9,
            backend: 2,
        },
        sack_ok: true,
    }
}

/// What to put in a test packet.
#[derive(Clone, Debug)]
pub struct PacketSpec {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub flags: TcpFlags,
    pub ts: Option<(u32, u32)>,
    pub sack: Vec<(u32, u32)>,
    /// Lay the timestamp out as "NOP TS NOP" (TSval at an odd offset).
    pub odd_ts: bool,
    pub payload: Vec<u8>,
}

impl PacketSpec {
    /// A pure ACK on `splice`'s incoming tuple for `dir`.
    pub fn new(splice: &Splice, dir: Direction) -> PacketSpec {
        let (src, dst) = splice.incoming_tuple(dir);
        PacketSpec {
            src,
            dst,
            seq: 1,
            ack: 1,
            window: 1000,
            flags: TcpFlags::ACK,
            ts: None,
            sack: Vec::new(),
            odd_ts: false,
            payload: Vec::new(),
        }
    }
}

/// Builds the packet with valid checksums.
pub fn packet(spec: &PacketSpec) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: spec.src.port(),
        dst_port: spec.dst.port(),
        seq: spec.seq,
        ack: spec.ack,
        flags: spec.flags,
        window: spec.window,
        urgent: 0,
        options: TcpOptions {
            timestamp: spec.ts,
            sack: SackBlocks::from_slice(&spec.sack).expect("at most 4 SACK blocks"),
            ..TcpOptions::default()
        },
        payload: &spec.payload,
    };
    let ip = Ipv4Repr {
        src_addr: *spec.src.ip(),
        dst_addr: *spec.dst.ip(),
        protocol: ftsplice_wire::ipv4::PROTO_TCP,
        payload_len: 0,
        ttl: 64,
        ident: 0x4242,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let mut out = Vec::new();
    emit_ipv4_tcp(&ip, &tcp, &mut out).expect("test packet fits");
    if spec.odd_ts && spec.ts.is_some() {
        // "NOP NOP TS" -> "NOP TS NOP".
        out[41..52].rotate_left(1);
        TcpPacket::new_unchecked(&mut out[20..]).fill_checksum(ip.src_addr, ip.dst_addr);
    }
    out
}

//! From the replicated `Splice` record to the two `splices` map entries (one
//! per direction) the proxy and agent programs look up by incoming 4-tuple.
//! All "subtract" offsets of proto::splice become wrapping additions.

use crate::bpf_abi::{SpliceKey, SpliceVal, DIR_C2S, DIR_S2C, FLAG_HOLD, FLAG_SACK, FLAG_TS};
use core::net::SocketAddrV4;
use ftsplice_proto::splice::{Direction, Splice};

/// The key for packets travelling `src` -> `dst`.
pub fn key(src: SocketAddrV4, dst: SocketAddrV4) -> SpliceKey {
    SpliceKey {
        saddr: src.ip().octets(),
        daddr: dst.ip().octets(),
        sport: src.port().to_be_bytes(),
        dport: dst.port().to_be_bytes(),
    }
}

/// The map entry translating packets of `dir` through `s`.
pub fn entry(s: &Splice, dir: Direction) -> (SpliceKey, SpliceVal) {
    let (isrc, idst) = s.incoming_tuple(dir);
    let (osrc, odst) = s.outgoing_tuple(dir);
    let mut flags = 0;
    if s.ts.is_some() {
        flags |= FLAG_TS;
    }
    if s.sack_ok {
        flags |= FLAG_SACK;
    }
    let ts =
        s.ts.unwrap_or(ftsplice_proto::splice::TsDeltas { c2s: 0, s2c: 0 });
    let w = s.wscale;
    let (seq_add, ack_add, tsval_add, tsecr_add, wscale_in, wscale_out, d) = match dir {
        Direction::ClientToServer => (
            s.seq_delta,
            s.ack_delta,
            ts.c2s,
            ts.s2c.wrapping_neg(),
            w.client,
            w.ssa,
            DIR_C2S,
        ),
        Direction::ServerToClient => (
            s.ack_delta.wrapping_neg(),
            s.seq_delta.wrapping_neg(),
            ts.s2c,
            ts.c2s.wrapping_neg(),
            w.backend,
            w.vip,
            DIR_S2C,
        ),
    };
    let val = SpliceVal {
        saddr: osrc.ip().octets(),
        daddr: odst.ip().octets(),
        sport: osrc.port().to_be_bytes(),
        dport: odst.port().to_be_bytes(),
        seq_add,
        ack_add,
        tsval_add,
        tsecr_add,
        wscale_in,
        wscale_out,
        flags,
        dir: d,
        version: s.version,
        splice_id: s.id.0,
    };
    (key(isrc, idst), val)
}

/// Both entries of a splice, client-to-server first.
pub fn entries(s: &Splice) -> [(SpliceKey, SpliceVal); 2] {
    [
        entry(s, Direction::ClientToServer),
        entry(s, Direction::ServerToClient),
    ]
}

/// Entries that drop the splice's packets while it is being created
/// (sockets frozen, state not yet installed): peers retransmit them.
pub fn hold_entries(s: &Splice) -> [(SpliceKey, SpliceVal); 2] {
    entries(s).map(|(k, mut v)| {
        v.flags |= FLAG_HOLD;
        (k, v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_proto::splice::{SpliceId, TsDeltas, WindowScales};
    use std::net::Ipv4Addr;

    fn sample() -> Splice {
        Splice {
            id: SpliceId(0x0001_0000_0000_0007),
            version: 3,
            client: SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 10), 40000),
            vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            ssa: SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, 1), 50001),
            backend: SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, 20), 8080),
            seq_delta: 1000,
            ack_delta: 0xffff_fff0,
            ts: Some(TsDeltas { c2s: 5, s2c: 7 }),
            wscale: WindowScales {
                client: 7,
                vip: 9,
                ssa: 8,
                backend: 6,
            },
            sack_ok: true,
        }
    }

    #[test]
    fn client_to_server_entry() {
        let s = sample();
        let (k, v) = entry(&s, Direction::ClientToServer);
        assert_eq!(k, key(s.client, s.vip));
        assert_eq!((v.saddr, v.daddr), ([198, 18, 2, 1], [198, 18, 2, 20]));
        assert_eq!(
            (v.sport, v.dport),
            (50001u16.to_be_bytes(), 8080u16.to_be_bytes())
        );
        assert_eq!((v.seq_add, v.ack_add), (1000, 0xffff_fff0));
        assert_eq!((v.tsval_add, v.tsecr_add), (5, 7u32.wrapping_neg()));
        assert_eq!((v.wscale_in, v.wscale_out), (7, 8));
        assert_eq!(v.flags, FLAG_TS | FLAG_SACK);
        assert_eq!((v.dir, v.version, v.splice_id), (DIR_C2S, 3, s.id.0));
    }

    #[test]
    fn server_to_client_entry_inverts_the_offsets() {
        let s = sample();
        let (k, v) = entry(&s, Direction::ServerToClient);
        assert_eq!(k, key(s.backend, s.ssa));
        assert_eq!((v.saddr, v.daddr), ([198, 18, 0, 1], [198, 18, 1, 10]));
        assert_eq!((v.seq_add, v.ack_add), (16, 1000u32.wrapping_neg()));
        assert_eq!((v.tsval_add, v.tsecr_add), (7, 5u32.wrapping_neg()));
        assert_eq!((v.wscale_in, v.wscale_out), (6, 9));
        assert_eq!(v.dir, DIR_S2C);
    }

    #[test]
    fn round_trip_through_both_directions_is_identity() {
        // A client seq goes out with +seq_add and its ack comes back with
        // the S2C ack_add: the two must cancel.
        let s = sample();
        let [(_, c2s), (_, s2c)] = entries(&s);
        let seq = 0x1234_5678u32;
        assert_eq!(seq.wrapping_add(c2s.seq_add).wrapping_add(s2c.ack_add), seq);
        let bseq = 0xdead_beefu32;
        assert_eq!(
            bseq.wrapping_add(s2c.seq_add).wrapping_add(c2s.ack_add),
            bseq
        );
        let ts = 77u32;
        assert_eq!(
            ts.wrapping_add(c2s.tsval_add).wrapping_add(s2c.tsecr_add),
            ts
        );
    }

    #[test]
    fn no_timestamps_or_sack_clears_flags_and_hold_sets_hold() {
        let mut s = sample();
        s.ts = None;
        s.sack_ok = false;
        let [(_, v), _] = entries(&s);
        assert_eq!(v.flags, 0);
        assert_eq!((v.tsval_add, v.tsecr_add), (0, 0));
        for (_, v) in hold_entries(&s) {
            assert_eq!(v.flags, FLAG_HOLD);
        }
    }
}

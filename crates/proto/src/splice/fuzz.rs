//! Fuzz entry point for translation (body of the `/fuzz` `translate`
//! target), public so property tests run it too. Panics only on a bug:
//! translate panicking, changing a packet it rejects, producing invalid
//! checksums from valid ones, or not being undone by `untranslate`.

use core::net::{Ipv4Addr, SocketAddrV4};

use ftsplice_wire::{checksums_valid, Ipv4Packet, TcpFlags, TcpPacket};

use super::translate::{rescale_window, translate, untranslate};
use super::{Direction, Splice, SpliceId, TsDeltas, WindowScales};

/// Bytes of fuzz input spent on splice parameters.
const HEAD: usize = 24;

fn splice_from(h: &[u8; HEAD]) -> Splice {
    let r = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let port = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let flags = h[0];
    Splice {
        id: SpliceId(1),
        version: 1,
        client: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port(1)),
        vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
        ssa: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 3), port(3)),
        backend: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 4), 8080),
        seq_delta: r(5),
        ack_delta: r(9),
        ts: (flags & 1 != 0).then(|| TsDeltas {
            c2s: r(13),
            s2c: r(17),
        }),
        // Raw bytes on purpose: shift counts above 14 must be capped.
        wscale: WindowScales {
            client: h[21],
            vip: h[22],
            ssa: h[23],
            backend: h[21] ^ h[23],
        },
        sack_ok: flags & 2 != 0,
    }
}

/// Makes `p` carry the splice's incoming tuple with sane lengths, no SYN
/// and valid checksums, so that fuzzing reaches the option rewriting.
fn stamp(splice: &Splice, dir: Direction, p: &mut [u8]) {
    let Ok(total) = u16::try_from(p.len()) else {
        return;
    };
    if p.len() < 40 {
        return;
    }
    let (src, dst) = splice.incoming_tuple(dir);
    p[0] = 0x45;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[6] &= 0x40;
    p[7] = 0;
    p[9] = ftsplice_wire::ipv4::PROTO_TCP;
    if usize::from(p[32] >> 4) * 4 > p.len() - 20 || p[32] >> 4 < 5 {
        p[32] = 0x50;
    }
    p[33] &= !TcpFlags::SYN.bits();
    let mut ip = Ipv4Packet::new_unchecked(&mut *p);
    ip.set_src_addr(*src.ip());
    ip.set_dst_addr(*dst.ip());
    ip.fill_checksum();
    let mut tcp = TcpPacket::new_unchecked(&mut p[20..]);
    tcp.set_src_port(src.port());
    tcp.set_dst_port(dst.port());
    tcp.fill_checksum(*src.ip(), *dst.ip());
}

/// Derives a splice and direction from the first bytes of `data`, treats
/// the rest as a packet (optionally stamped to match the splice) and checks
/// translate's contract on it.
pub fn translate_any(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<HEAD>() else {
        return;
    };
    let splice = splice_from(head);
    let dir = if head[0] & 4 != 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    let mut p = rest.to_vec();
    if head[0] & 8 != 0 {
        stamp(&splice, dir, &mut p);
    }
    let before = p.clone();
    let valid = checksums_valid(&p);
    let Ok(t) = translate(&splice, dir, &mut p) else {
        assert_eq!(p, before, "translate changed a packet it rejected");
        return;
    };
    assert_eq!((t.src, t.dst), splice.outgoing_tuple(dir));
    if valid {
        assert!(checksums_valid(&p), "translation broke a valid checksum");
    }
    let mut back = p.clone();
    untranslate(&splice, dir, &mut back).expect("untranslate accepts translate's output");
    let w = splice.wscale;
    let (shl, shr) = match dir {
        Direction::ClientToServer => (w.client, w.ssa),
        Direction::ServerToClient => (w.backend, w.vip),
    };
    let ihl = Ipv4Packet::new_unchecked(&before[..]).header_len();
    let win = TcpPacket::new_unchecked(&before[ihl..]).window_len();
    let lossless = rescale_window(rescale_window(win, shl, shr), shr, shl) == win;
    if splice.ts.is_some() && splice.sack_ok && lossless {
        assert_eq!(back, before, "untranslate(translate(p)) != p");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_odd_inputs() {
        translate_any(&[]);
        translate_any(&[0xff; HEAD]);
        translate_any(&[0xff; 100]);
        translate_any(&[0x0f; 100]);
        let mut v = vec![0x0f; HEAD];
        v.extend_from_slice(&[0; 60]);
        translate_any(&v);
    }
}

//! Sends the resets of `proto::orphan_records` (the idle clients of a dead
//! peer's pre-splice connections) from a raw socket: `<SEQ=rst_seq><CTL=RST>`
//! from the VIP to the client. The socket marks its packets with
//! `ORPHAN_MARK`, so the proxy host's filter that drops every reset from
//! the VIP (docs/daemons.md, "Orphans") lets exactly these through.

use ftsplice_linux::bpf_abi::ORPHAN_MARK;
use ftsplice_proto::orphan::Reset;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddrV4;

/// IPv4 header + TCP header of a reset.
pub const RESET_LEN: usize = 40;

/// The reset as an IPv4 packet for a raw socket with `IP_HDRINCL`: the
/// kernel fills in the IP checksum and id; TTL 64, DF set.
pub fn reset_packet(r: &Reset) -> [u8; RESET_LEN] {
    let mut p = [0u8; RESET_LEN];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(RESET_LEN as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&r.from.ip().octets());
    p[16..20].copy_from_slice(&r.to.ip().octets());
    p[20..].copy_from_slice(&r.tcp_header());
    p
}

/// A raw socket sending marked resets.
pub struct ResetSender {
    sock: Socket,
}

impl ResetSender {
    /// Needs CAP_NET_RAW (raw socket) and CAP_NET_ADMIN (the mark).
    pub fn open() -> io::Result<ResetSender> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP))?;
        sock.set_header_included_v4(true)?;
        sock.set_mark(ORPHAN_MARK)?;
        sock.set_nonblocking(true)?;
        Ok(ResetSender { sock })
    }

    pub fn send(&self, r: &Reset) -> io::Result<()> {
        let to = SocketAddrV4::new(*r.to.ip(), 0);
        self.sock.send_to(&reset_packet(r), &to.into())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn packet_carries_the_reset() {
        let r = Reset {
            from: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 80),
            to: SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 2), 40_000),
            seq: 77,
        };
        let p = reset_packet(&r);
        assert_eq!(p[0], 0x45);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 40);
        assert_eq!(p[9], 6);
        assert_eq!(&p[12..16], &[198, 18, 0, 10]);
        assert_eq!(&p[16..20], &[198, 18, 1, 2]);
        assert_eq!(p[20..], r.tcp_header()[..]);
    }
}

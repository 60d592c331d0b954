//! ARP over an `AF_PACKET` socket: the lb resolves its proxies' MACs with
//! requests it sends and replies it reads itself (the kernel does not add
//! neighbour entries for replies it did not ask for), and announces a
//! service address it takes over with gratuitous ARP. Also the interface
//! facts the lb needs (ifindex, MAC, IPv4 address), read through ioctls so
//! they are right inside the caller's network namespace.
//!
//! [`ArpPacket`] is the pure codec (IPv4 over Ethernet only); parsing never
//! panics on untrusted bytes.

#![allow(unsafe_code)] // FFI: every block below has a `// SAFETY:` line.

use crate::{Error, Result};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
/// ARP payload length for IPv4 over Ethernet.
pub const ARP_LEN: usize = 28;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// One IPv4-over-Ethernet ARP packet (the payload after the Ethernet
/// header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: ArpOp,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// A request for `target` from `mac`/`ip`.
    pub fn request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: ArpOp::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: [0; 6],
            target_ip: target,
        }
    }

    /// A gratuitous ARP announcing `ip` at `mac` (a request for our own
    /// address, which every Linux host and switch learns from).
    pub fn gratuitous(mac: [u8; 6], ip: Ipv4Addr) -> ArpPacket {
        ArpPacket::request(mac, ip, ip)
    }

    pub fn encode(&self) -> [u8; ARP_LEN] {
        let mut b = [0u8; ARP_LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        b[2..4].copy_from_slice(&ETH_P_IP.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        let op: u16 = match self.op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        b[6..8].copy_from_slice(&op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// Parses an ARP payload; `None` for anything that is not IPv4 over
    /// Ethernet request/reply (trailing padding is allowed).
    pub fn decode(b: &[u8]) -> Option<ArpPacket> {
        let b = b.get(..ARP_LEN)?;
        if b[0..2] != [0, 1] || b[2..4] != ETH_P_IP.to_be_bytes() || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let op = match u16::from_be_bytes([b[6], b[7]]) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            _ => return None,
        };
        let mac = |i: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[i..i + 6]);
            m
        };
        let ip = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        Some(ArpPacket {
            op,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }
}

/// Fuzz entry (`fuzz/fuzz_targets/arp_decode.rs`, and the property tests
/// below): any bytes decode without a panic, and whatever decodes encodes
/// back to the 28 bytes it came from.
pub fn fuzz_decode(data: &[u8]) {
    if let Some(p) = ArpPacket::decode(data) {
        assert_eq!(p.encode()[..], data[..ARP_LEN]);
    }
}

/// An interface's index, MAC and first IPv4 address (if any), as seen from
/// the calling thread's network namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfaceInfo {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub ipv4: Option<Ipv4Addr>,
}

fn ifreq_for(name: &str) -> Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(Error::BadName(name.into(), "not an interface name"));
    }
    // SAFETY: ifreq is a plain C struct/union for which all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(Error::last_os("socket"));
    }
    // SAFETY: `fd` is a fresh descriptor we own exclusively.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads `name`'s ifindex, MAC and IPv4 address.
pub fn iface_info(name: &str) -> Result<IfaceInfo> {
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    let mut req = ifreq_for(name)?;
    // SAFETY: SIOCGIFINDEX reads ifr_name and writes ifr_ifindex of `req`,
    // which lives for the whole call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFINDEX, &mut req) } != 0 {
        return Err(Error::last_os("SIOCGIFINDEX"));
    }
    // SAFETY: the kernel filled the ifindex member of the union.
    let ifindex = unsafe { req.ifr_ifru.ifru_ifindex } as u32;
    let mut req = ifreq_for(name)?;
    // SAFETY: SIOCGIFHWADDR writes ifr_hwaddr of `req`, live for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } != 0 {
        return Err(Error::last_os("SIOCGIFHWADDR"));
    }
    // SAFETY: the kernel filled the hwaddr member of the union.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, &b) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *m = b as u8;
    }
    let mut req = ifreq_for(name)?;
    // SAFETY: SIOCGIFADDR writes ifr_addr of `req`, live for the call.
    let ipv4 = if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFADDR, &mut req) } == 0 {
        // SAFETY: for AF_INET the kernel wrote a sockaddr_in into ifr_addr,
        // which has the same size as sockaddr.
        let sin: libc::sockaddr_in = unsafe { std::mem::transmute(req.ifr_ifru.ifru_addr) };
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    } else {
        None
    };
    Ok(IfaceInfo { ifindex, mac, ipv4 })
}

/// An `AF_PACKET` datagram socket for ARP on one interface: the kernel adds
/// and strips the Ethernet header.
#[derive(Debug)]
pub struct ArpSocket {
    fd: OwnedFd,
    ifindex: u32,
}

fn sockaddr_ll(ifindex: u32, dst: [u8; 6]) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is a plain C struct for which all-zero is valid.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = ETH_P_ARP.to_be();
    sa.sll_ifindex = ifindex as i32;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&dst);
    sa
}

impl ArpSocket {
    /// Opens and binds to `ifindex`; needs CAP_NET_RAW.
    pub fn open(ifindex: u32) -> Result<ArpSocket> {
        let fd = socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM,
            i32::from(ETH_P_ARP.to_be()),
        )?;
        let sa = sockaddr_ll(ifindex, [0; 6]);
        // SAFETY: `sa` is a valid sockaddr_ll and its exact size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(Error::last_os("bind AF_PACKET"));
        }
        Ok(ArpSocket { fd, ifindex })
    }

    /// Sends `pkt` to the link-layer address `dst` (usually [`BROADCAST`]).
    pub fn send(&self, pkt: &ArpPacket, dst: [u8; 6]) -> Result<()> {
        let sa = sockaddr_ll(self.ifindex, dst);
        let b = pkt.encode();
        // SAFETY: `b` and `sa` are valid for the call; sizes are exact.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                0,
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(Error::last_os("sendto AF_PACKET"));
        }
        Ok(())
    }

    /// Waits up to `timeout` for an ARP packet; `Ok(None)` on timeout or
    /// when what arrived is not IPv4-over-Ethernet ARP.
    pub fn recv(&self, timeout: Duration) -> Result<Option<ArpPacket>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(Error::Sys {
                op: "poll",
                source: e,
            });
        }
        if rc == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; 128];
        // SAFETY: `buf` is writable for its whole length during the call.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(Error::Sys {
                op: "recv AF_PACKET",
                source: e,
            });
        }
        Ok(ArpPacket::decode(&buf[..n as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips_and_rejects_foreign_arp() {
        let p = ArpPacket::request(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        );
        let b = p.encode();
        assert_eq!(&b[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(ArpPacket::decode(&b), Some(p));
        let mut padded = b.to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(ArpPacket::decode(&padded), Some(p));
        assert_eq!(ArpPacket::decode(&b[..27]), None);
        let mut bad = b;
        bad[7] = 3;
        assert_eq!(ArpPacket::decode(&bad), None);
        let mut bad = b;
        bad[2] = 0x86;
        assert_eq!(ArpPacket::decode(&bad), None);
        let g = ArpPacket::gratuitous([2; 6], Ipv4Addr::new(198, 18, 0, 9));
        assert_eq!(g.sender_ip, g.target_ip);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            fuzz_decode(&data);
        }

        #[test]
        fn every_packet_round_trips(
            reply: bool,
            sender_mac: [u8; 6],
            sender_ip: [u8; 4],
            target_mac: [u8; 6],
            target_ip: [u8; 4],
            padding in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..18),
        ) {
            let p = ArpPacket {
                op: if reply { ArpOp::Reply } else { ArpOp::Request },
                sender_mac,
                sender_ip: Ipv4Addr::from(sender_ip),
                target_mac,
                target_ip: Ipv4Addr::from(target_ip),
            };
            let mut b = p.encode().to_vec();
            b.extend_from_slice(&padding);
            proptest::prop_assert_eq!(ArpPacket::decode(&b), Some(p));
            fuzz_decode(&b);
        }
    }
}

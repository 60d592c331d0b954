//! Test helpers: Ethernet/IPv4/TCP frames built byte by byte with correct
//! checksums, checksum verification of program output, and the forwarding
//! veth namespace the redirecting programs run in.
#![allow(dead_code)]

use ftsplice_linux::NetNs;
use std::net::SocketAddrV4;

pub const ETH_LEN: usize = 14;

/// Ones-complement sum of `data` as 16-bit big-endian words.
pub fn sum16(data: &[u8], mut acc: u64) -> u64 {
    for c in data.chunks(2) {
        acc += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    acc
}

pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// True if the IPv4 header and TCP checksums of the frame are valid.
pub fn checksums_ok(frame: &[u8]) -> bool {
    let ip = &frame[ETH_LEN..];
    let ihl = usize::from(ip[0] & 15) * 4;
    if fold(sum16(&ip[..ihl], 0)) != 0xffff {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let seg = &ip[ihl..total];
    let mut acc = sum16(&ip[12..20], 0);
    acc += 6 + seg.len() as u64;
    fold(sum16(seg, acc)) == 0xffff
}

/// A TCP segment description.
#[derive(Clone, Debug)]
pub struct Seg {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;
pub const SYN: u8 = 0x02;

impl Seg {
    pub fn new(src: SocketAddrV4, dst: SocketAddrV4) -> Seg {
        Seg {
            src,
            dst,
            seq: 1000,
            ack: 2000,
            flags: ACK,
            window: 500,
            options: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// The Ethernet frame with valid checksums.
    pub fn frame(&self) -> Vec<u8> {
        assert!(self.options.len() % 4 == 0 && self.options.len() <= 40);
        let tcp_len = 20 + self.options.len() + self.payload.len();
        let total = 20 + tcp_len;
        let mut f = Vec::with_capacity(ETH_LEN + total);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend_from_slice(&self.src.ip().octets());
        f.extend_from_slice(&self.dst.ip().octets());
        let c = !fold(sum16(&f[ETH_LEN..ETH_LEN + 20], 0));
        f[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
        let t = f.len();
        f.extend_from_slice(&self.src.port().to_be_bytes());
        f.extend_from_slice(&self.dst.port().to_be_bytes());
        f.extend_from_slice(&self.seq.to_be_bytes());
        f.extend_from_slice(&self.ack.to_be_bytes());
        f.push((((20 + self.options.len()) / 4) << 4) as u8);
        f.push(self.flags);
        f.extend_from_slice(&self.window.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(&self.options);
        f.extend_from_slice(&self.payload);
        let mut acc = sum16(&f[ETH_LEN + 12..ETH_LEN + 20], 0);
        acc += 6 + tcp_len as u64;
        let c = !fold(sum16(&f[t..], acc));
        f[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        f
    }
}

/// NOP, NOP, TS(tsval, tsecr).
pub fn ts_option(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&tsecr.to_be_bytes());
    o
}

/// NOP, NOP, SACK with the given blocks.
pub fn sack_option(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut o = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
    for (l, r) in blocks {
        o.extend_from_slice(&l.to_be_bytes());
        o.extend_from_slice(&r.to_be_bytes());
    }
    o
}

pub fn u32_at(f: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([f[off], f[off + 1], f[off + 2], f[off + 3]])
}

pub fn u16_at(f: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([f[off], f[off + 1]])
}

/// The frame with 4 bytes of IPv4 options (NOPs) inserted, headers fixed.
pub fn with_ip_options(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..ETH_LEN + 20].to_vec();
    f.extend_from_slice(&[1, 1, 1, 1]);
    f.extend_from_slice(&frame[ETH_LEN + 20..]);
    let ip = ETH_LEN;
    f[ip] = 0x46;
    let total = u16_at(&f, ip + 2) + 4;
    f[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    f[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let c = !fold(sum16(&f[ip..ip + 24], 0));
    f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    f
}

/// A namespace forwarding IPv4 with a veth pair d0/d1 up and `addr` on d0.
pub fn forwarding_veth_ns(name: &str, addr: &str) -> NetNs {
    let ns = NetNs::new(name).unwrap();
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"])
        .unwrap();
    ns.ip(&["addr", "add", addr, "dev", "d0"]).unwrap();
    for d in ["d0", "d1"] {
        ns.ip(&["link", "set", d, "up"]).unwrap();
    }
    ns.sysctl("net.ipv4.ip_forward", "1").unwrap();
    ns
}

/// Makes `ip` a permanent neighbour at `mac` on d0 (adding or replacing).
pub fn set_neighbour(ns: &NetNs, ip: &str, mac: &str) {
    ns.ip(&[
        "neigh",
        "replace",
        ip,
        "lladdr",
        mac,
        "dev",
        "d0",
        "nud",
        "permanent",
    ])
    .unwrap();
}

//! Orphaned client segments on a real proxy (`proto::orphan`, docs/daemons.md
//! "Orphans"): the proxy namespace has the production reset filter (every
//! RST its kernel sends from the VIP or SSA is dropped unless it carries
//! the orphan mark) and `net.ipv4.fwmark_reflect = 1`. A client ACK to the
//! VIP for a connection the proxy has no socket and no splice for (what a
//! client of a crashed proxy's pre-splice connection retransmits) is
//! answered with `<SEQ=SEG.ACK><CTL=RST>` once the proxy's slot has
//! settled, and not at all within the grace. The segment is crafted and
//! the reply read on raw sockets in the client namespace.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::bpf_abi::ORPHAN_MARK;
use ftsplice_linux::skip_unless_root;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// The orphan's client port (no socket in the client namespace either).
const PORT: u16 = 41_000;
/// The orphan's acknowledgment number: the reset's sequence number.
const ACK_NO: u32 = 0x1234_5678;

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// A TCP segment (header + 10 payload bytes, ACK|PSH) with its checksum.
fn orphan_segment(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&PORT.to_be_bytes());
    t.extend_from_slice(&80u16.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&ACK_NO.to_be_bytes());
    t.extend_from_slice(&[5 << 4, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(b"0123456789");
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
    let c = fold(sum16(&pseudo) + sum16(&t));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// Sends the orphan from the client namespace's raw socket and returns
/// the flags and sequence number of a reply from the VIP within `wait`.
fn probe(wait: Duration) -> Option<(u8, u32)> {
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let seg = orphan_segment(CLIENT, VIP);
    raw.send_to(&seg, &SocketAddrV4::new(VIP, 0).into())
        .unwrap();
    let end = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        let n = match (&raw).read(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let p = &buf[..n];
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if n < ihl + 20 || p[12..16] != VIP.octets() {
            continue;
        }
        let tcp = &p[ihl..];
        if u16::from_be_bytes([tcp[2], tcp[3]]) != PORT {
            continue;
        }
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        return Some((tcp[13], seq));
    }
    None
}

#[test]
fn a_settled_proxy_resets_an_orphan_and_the_filter_passes_only_that() {
    if skip_unless_root("a_settled_proxy_resets_an_orphan_and_the_filter_passes_only_that") {
        return;
    }
    let line = Line::new("or", LineOptions::default());
    let (t, c, p) = (&line.t, line.c, line.p);
    let px = t.node(p);
    px.sysctl("net.ipv4.fwmark_reflect", "1").unwrap();
    let rules = format!(
        "table ip ftsplice {{ chain out {{ type filter hook output priority 0; policy accept; \
         ip saddr {{ {VIP}, {SSA} }} tcp flags & rst == rst meta mark != {ORPHAN_MARK:#x} drop; }}; }}"
    );
    px.exec("nft", &[&rules]).unwrap();
    // Behind an lb (heartbeats to the client's address, which ignores
    // them): the proxy keeps the client-owner table, every slot its own.
    let toml = ProxyToml {
        tables: format!(
            "{FAST_TEARDOWN}[heartbeat]\nlb = [\"{CLIENT}:7000\"]\ninterval_ms = 10\nworkload = 100\n"
        ),
        ..ProxyToml::default()
    };
    // The daemon's control loop (and so the grace) starts after this.
    let t0 = Instant::now();
    let proxy = ProxyGuard::start(px, &toml.render());
    // Grace: 4 detection periods of the 50 ms peer heartbeat.
    let grace = Duration::from_millis(600);
    // Within the grace (when loading the data plane left time for a
    // probe in it) the kernel's reset is dropped by the filter.
    let early = t.node(c).run(|| probe(Duration::from_millis(200))).unwrap();
    if t0.elapsed() < grace {
        assert_eq!(early, None, "reset within the grace");
    }
    // Like a retransmitting client: a probe every 250 ms until answered.
    let reply = t
        .node(c)
        .run(|| (0..20).find_map(|_| probe(Duration::from_millis(250))))
        .unwrap();
    assert_eq!(
        reply,
        Some((0x04, ACK_NO)),
        "RST with seq = the orphan's ack"
    );
    assert!(t0.elapsed() >= grace, "answered before the grace ended");
    proxy.wait_metric(
        "ftsplice_dataplane_packets{reason=\"orphan_marked\"}",
        1,
        Duration::from_secs(2),
    );
}

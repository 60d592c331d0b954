//! Client data the proxy's kernel queued out of order (beyond a hole,
//! SACKed to the client) is not lost at the freeze: the proxy lifts the
//! hold until the client's retransmission fills the hole, relays it, and
//! splices once nothing is held out of order. The client never finds a
//! SACK reneged (a proxy that froze with the hole would make it resend the
//! SACKed bytes after a reneging timeout: `TCPSACKReneging` in its
//! namespace's `/proc/net/netstat`).
//!
//! The packet sequence is made deterministic with nftables: the proxy drops
//! the request's second segment (the hole) while the third arrives, and the
//! backend ignores ARP until the test lets the proxy's backend connect (and
//! so its hold and freeze) go ahead, after the third segment arrived.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::nft::NftTable;
use common::*;
use ftsplice_linux::{skip_unless_root, FrozenSocket};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SPLICED: &str = "ftsplice_proxy_connections_total{result=\"spliced\"}";
const RELAYED: &str = "ftsplice_proxy_connections_total{result=\"relayed\"}";
const LIFTS: &str = "ftsplice_hold_lifts_total{reason=\"client_out_of_order\"}";

/// A `TcpExt` counter of `/proc/net/netstat` in `ns`.
fn tcp_ext(ns: &ftsplice_linux::NetNs, name: &str) -> u64 {
    let text = ns.exec("cat", &["/proc/net/netstat"]).unwrap();
    let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no TcpExt {name} in {text}"))
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What a test has once the proxy reached its freeze with the request's
/// segment 1 missing and segments 2.. queued out of order in its client
/// socket (the proxy lifted its hold, or one without the check spliced).
struct Hole<'a> {
    client: TcpStream,
    proxy: ProxyGuard,
    _backend: Backend,
    /// The request body; `sent` bytes of it went out with the head.
    data: Vec<u8>,
    sent: usize,
    /// Drops segment 1 at the proxy until dropped.
    drop_rule: NftTable<'a>,
}

/// Sends a PUT of `4 MSS + later` body bytes, head and the first 4 MSS in
/// one write, and waits until the proxy has acted on the hole.
fn open_hole(line: &Line, later: usize) -> Hole<'_> {
    let (client_ns, proxy_ns, backend_ns) = (line.client(), line.proxy(), line.backend());
    // The proxy asks for the backend's MAC every 10 ms (for up to 3 s)
    // while the backend ignores ARP, so its connect waits for the test.
    proxy_ns
        .sysctl("net.ipv4.neigh.e1.retrans_time_ms", "10")
        .unwrap();
    proxy_ns
        .sysctl("net.ipv4.neigh.e1.mcast_solicit", "300")
        .unwrap();
    let arp_blocked = NftTable::new(backend_ns, "arp", "ooo_arp", "input", &["drop"]);
    let backend = Backend::start(backend_ns, std::net::SocketAddrV4::new(BACKEND, 8080));
    let proxy = ProxyGuard::start(proxy_ns, &ProxyToml::default().render());

    let client = connect_vip(client_ns, Duration::from_secs(20));
    client.set_nodelay(true).unwrap();
    // The client's next sequence number and MSS: one write of head and
    // body leaves in segments of `mss` bytes from `first`.
    let frozen = FrozenSocket::freeze(client).unwrap();
    let (first, mss) = (frozen.state().snd_nxt, frozen.state().info.snd_mss);
    let mut client = frozen.thaw().unwrap();
    let segment = |k: u32| first.wrapping_add(k * mss);
    let drop_rule = NftTable::new(
        proxy_ns,
        "ip",
        "ooo_hole",
        "input",
        &[&format!(
            "tcp dport 80 tcp sequence {} counter drop",
            segment(1)
        )],
    );
    let beyond_arrived = NftTable::new(
        proxy_ns,
        "ip",
        "ooo_beyond",
        "input",
        &[&format!("tcp dport 80 tcp sequence {} counter", segment(2))],
    );
    assert_eq!(tcp_ext(client_ns, "TCPSACKReneging"), 0);

    let sent = 4 * mss as usize;
    let data = body(sent + later);
    let mut request = format!(
        "PUT /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    request.extend_from_slice(&data[..sent]);
    client.write_all(&request).unwrap();
    wait_for("segment 2 at the proxy", Duration::from_secs(5), || {
        beyond_arrived.packets() >= 1
    });
    assert!(drop_rule.packets() >= 1, "segment 1 was not dropped");
    assert_eq!(
        proxy.metric(SPLICED) + proxy.metric(LIFTS),
        0,
        "the proxy reached its hold before the backend's ARP was let through"
    );

    // The proxy connects, holds and finds segments 2.. out of order behind
    // the hole (a proxy without the check freezes and splices here).
    drop(arp_blocked);
    wait_for("a lifted hold or a splice", Duration::from_secs(5), || {
        proxy.metric(LIFTS) + proxy.metric(SPLICED) >= 1
    });
    Hole {
        client,
        proxy,
        _backend: backend,
        data,
        sent,
        drop_rule,
    }
}

/// Reads the backend's answer to the PUT of `data`: a 200 with the body's
/// digest, and no SACKed segment reneged on the client (`client_ns`).
fn assert_answer_intact(client: &mut TcpStream, data: &[u8], client_ns: &ftsplice_linux::NetNs) {
    let (head, digest) = read_response(client);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8(digest).unwrap(), sha(data), "PUT body");
    assert_eq!(
        tcp_ext(client_ns, "TCPSACKReneging"),
        0,
        "the client found its SACKed segments reneged: the proxy dropped them at the freeze"
    );
}

#[test]
fn sacked_client_data_beyond_a_hole_survives_the_freeze() {
    if skip_unless_root("sacked_client_data_beyond_a_hole_survives_the_freeze") {
        return;
    }
    let line = Line::new("o", LineOptions::default());
    // Head and 4 MSS of the body now, the rest once spliced (the backend
    // must not answer and close while the proxy relays).
    let Hole {
        mut client,
        proxy,
        _backend,
        data,
        sent,
        drop_rule,
    } = open_hole(&line, 100_000);
    // The client's next retransmission of segment 1 gets through.
    drop(drop_rule);
    proxy.wait_metric(SPLICED, 1, Duration::from_secs(5));
    client.write_all(&data[sent..]).unwrap();

    assert_answer_intact(&mut client, &data, line.client());
    assert!(proxy.metric(LIFTS) >= 1);
    assert_eq!(proxy.metric(RELAYED), 0);
}

/// The whole request is in the first write: once the hole is filled (hold
/// lifted) the backend answers and closes at once, racing the proxy's
/// freeze. Whichever wins, the connection is spliced or relayed, never
/// lost, and the answer arrives intact.
#[test]
fn a_request_completed_while_the_hold_is_lifted_is_not_lost() {
    if skip_unless_root("a_request_completed_while_the_hold_is_lifted_is_not_lost") {
        return;
    }
    let line = Line::new("r", LineOptions::default());
    let Hole {
        mut client,
        proxy,
        _backend,
        data,
        drop_rule,
        ..
    } = open_hole(&line, 0);
    drop(drop_rule);
    assert_answer_intact(&mut client, &data, line.client());
    assert_eq!(proxy.metric(SPLICED) + proxy.metric(RELAYED), 1);
    assert_eq!(
        proxy.metric("ftsplice_proxy_connections_total{result=\"lost\"}"),
        0
    );
}

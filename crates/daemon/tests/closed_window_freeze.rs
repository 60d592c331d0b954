//! A client that is still sending when the proxy splices (a PUT whose body
//! filled the proxy socket's receive window while the backend connect was
//! under way) loses nothing to the hold, so it has nothing to retransmit:
//! the proxy relays the queued body without reading it, so the window
//! stays closed and the client has nothing in flight when the hold starts
//! dropping data. (Before, the proxy read the queue under the hold, which
//! reopened the window; the client sent into the hold, the hold dropped
//! it, and the client resent at its retransmission timeout, backed off:
//! second-long stalls in the testbed's 100-PUT runs.)
//!
//! Deterministic set-up: the backend ignores ARP until the test lets the
//! proxy's backend connect go ahead, so the client has filled the window
//! by then.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::nft::NftTable;
use common::*;
use ftsplice_linux::skip_unless_root;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SPLICED: &str = "ftsplice_proxy_connections_total{result=\"spliced\"}";
const RELAYED: &str = "ftsplice_proxy_connections_total{result=\"relayed\"}";
const TRANSLATED: &str = "ftsplice_dataplane_packets{reason=\"translated\"}";
const HOLD_DROPS: &str = "ftsplice_dataplane_packets{reason=\"hold_drop\"}";

/// A `Tcp:` counter of `/proc/net/snmp` in `ns` (`RetransSegs`: segments
/// retransmitted, tail loss probes included; zero-window probes are not).
fn tcp_snmp(ns: &ftsplice_linux::NetNs, name: &str) -> u64 {
    let text = ns.exec("cat", &["/proc/net/snmp"]).unwrap();
    let mut rows = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Tcp {name} in {text}"))
}

/// Bytes queued unread in the proxy's socket of the client connection
/// (`Recv-Q` of the `ss` line for the client's VIP connection).
fn proxy_recv_q(line: &Line) -> u64 {
    ss_lines(line.proxy(), &format!("{VIP}:80"))
        .iter()
        .filter(|l| l.starts_with("ESTAB"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_client_that_filled_its_window_before_the_splice_loses_nothing_to_the_hold() {
    if skip_unless_root(
        "a_client_that_filled_its_window_before_the_splice_loses_nothing_to_the_hold",
    ) {
        return;
    }
    let line = Line::new("w", LineOptions::default());
    let (client_ns, proxy_ns, backend_ns) = (line.client(), line.proxy(), line.backend());
    // The proxy asks for the backend's MAC every 10 ms (for up to 3 s)
    // while the backend ignores ARP, so its connect waits for the test.
    proxy_ns
        .sysctl("net.ipv4.neigh.e1.retrans_time_ms", "10")
        .unwrap();
    proxy_ns
        .sysctl("net.ipv4.neigh.e1.mcast_solicit", "300")
        .unwrap();
    let arp_blocked = NftTable::new(backend_ns, "arp", "win_arp", "input", &["drop"]);
    let _backend = Backend::start(backend_ns, std::net::SocketAddrV4::new(BACKEND, 8080));
    let proxy = ProxyGuard::start(proxy_ns, &ProxyToml::default().render());

    let mut client = client_ns
        .run(|| TcpStream::connect((VIP, 80)).unwrap())
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let data = body(8 << 20);
    let mut request = format!(
        "PUT /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    request.extend_from_slice(&data);
    let mut writer = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&request));

    // The body fills the proxy socket's window: its queue stops growing.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = (0, Instant::now());
    loop {
        assert!(
            Instant::now() < deadline,
            "the client never filled the window"
        );
        let q = proxy_recv_q(&line);
        if q != last.0 {
            last = (q, Instant::now());
        } else if q > 0 && last.1.elapsed() > Duration::from_millis(100) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(proxy.metric(SPLICED) + proxy.metric(RELAYED), 0);
    let before = tcp_snmp(client_ns, "RetransSegs");

    // The proxy connects, splices, and the rest of the body flows.
    drop(arp_blocked);
    proxy.wait_metric(SPLICED, 1, Duration::from_secs(5));
    sender.join().unwrap().unwrap();
    let (head, digest) = read_response(&mut client);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8(digest).unwrap(), sha(&data), "PUT body");
    assert_eq!(proxy.metric(RELAYED), 0);
    // The data plane's counters reach the metrics every 200 ms; once the
    // translated packets show, so does every drop of the hold (all before).
    proxy.wait_metric(TRANSLATED, 100, Duration::from_secs(5));
    eprintln!(
        "hold drops {}, client retransmissions {}",
        proxy.metric(HOLD_DROPS),
        tcp_snmp(client_ns, "RetransSegs") - before
    );
    assert_eq!(
        proxy.metric(HOLD_DROPS),
        0,
        "the hold dropped client data the client was allowed to send ({} segments \
         retransmitted by the client, congestion losses after the splice included)",
        tcp_snmp(client_ns, "RetransSegs") - before
    );
}

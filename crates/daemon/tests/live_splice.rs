//! The proxy daemon splicing real connections: client namespace -- proxy
//! namespace (daemon in process, BPF data plane on both veths) -- backend
//! namespace (a small HTTP server). A PUT and a GET of several MB cross the
//! splice with SHA-256 checked end to end; the proxy holds no socket of the
//! spliced connections (ss), its data plane counts the translated packets,
//! and teardown deletes the splices once both sides closed.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::{skip_unless_root, Topology};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::Duration;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 1);
const P_IN: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 2);
const P_OUT: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 1);
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 62, 10);
const SSA: Ipv4Addr = Ipv4Addr::new(198, 18, 62, 20);

const SIZE: usize = 8 << 20;

fn proxy_toml() -> String {
    format!(
        r#"
id = 1
vip = "{VIP}:80"
ssa = "{SSA}"
ssa_ports = "40000-40099"
mss_clamp = 1400
interface = ["e0", "e1"]
default_pool = "web"
[teardown]
linger_ms = 200
idle_ms = 10000
tick_ms = 50
[[pool]]
name = "web"
backends = ["{BACKEND}:8080"]
"#
    )
}

#[test]
fn put_and_get_cross_the_splice_byte_exact() {
    if skip_unless_root("put_and_get_cross_the_splice_byte_exact") {
        return;
    }
    let mut t = Topology::new();
    let (c, p, b) = (
        t.add_node("lc").unwrap(),
        t.add_node("lp").unwrap(),
        t.add_node("lb").unwrap(),
    );
    t.link(c, CLIENT, p, P_IN, 24).unwrap();
    t.link(p, P_OUT, b, BACKEND, 24).unwrap();
    t.route(c, VIP, 32, P_IN).unwrap();
    t.route(b, SSA, 32, P_OUT).unwrap();
    for a in [VIP, SSA] {
        t.node(p)
            .ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"])
            .unwrap();
    }
    t.forward(p).unwrap();
    let _backend = Backend::start(t.node(b), SocketAddrV4::new(BACKEND, 8080));
    let proxy = ProxyGuard::start(t.node(p), &proxy_toml());

    // PUT: head and the first 256 kB, then (once spliced) the rest.
    let data = body(SIZE);
    let mut put = t
        .node(c)
        .run(|| TcpStream::connect((VIP, 80)).unwrap())
        .unwrap();
    put.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let local = put.local_addr().unwrap().to_string();
    write!(
        put,
        "PUT /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {SIZE}\r\n\r\n"
    )
    .unwrap();
    put.write_all(&data[..256 << 10]).unwrap();
    proxy.wait_metric(
        "ftsplice_proxy_connections_total{result=\"spliced\"}",
        1,
        Duration::from_secs(10),
    );
    // The proxy holds no socket of the spliced connection, either side.
    let held = ss_lines(t.node(p), &local);
    assert!(
        held.is_empty(),
        "proxy still holds the client socket: {held:?}"
    );
    let held = ss_lines(t.node(p), &format!("{BACKEND}:8080"));
    assert!(
        held.is_empty(),
        "proxy still holds the backend socket: {held:?}"
    );
    put.write_all(&data[256 << 10..]).unwrap();
    let (head, digest) = read_response(&mut put);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8(digest).unwrap(), sha(&data), "PUT body");
    drop(put); // the client's FIN

    // GET through a second splice.
    let mut get = t
        .node(c)
        .run(|| TcpStream::connect((VIP, 80)).unwrap())
        .unwrap();
    get.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(get, "GET /blob/{SIZE} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let (head, got) = read_response(&mut get);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(got.len(), SIZE);
    assert_eq!(sha(&got), sha(&data), "GET body");
    drop(get);
    proxy.wait_metric(
        "ftsplice_proxy_connections_total{result=\"spliced\"}",
        2,
        Duration::from_secs(1),
    );
    assert_eq!(
        proxy.metric("ftsplice_proxy_connections_total{result=\"relayed\"}"),
        0
    );

    // The data plane translated (and redirected) the bulk of both transfers.
    let min = 2 * (SIZE / 1400) as i64;
    proxy.wait_metric(
        "ftsplice_dataplane_packets{reason=\"translated\"}",
        min,
        Duration::from_secs(3),
    );
    proxy.wait_metric(
        "ftsplice_dataplane_packets{reason=\"redirected\"}",
        min,
        Duration::from_secs(3),
    );
    // FINs both ways, then the linger: both splices are deleted and their
    // ports released.
    proxy.wait_metric(
        "ftsplice_splices_deleted_total{reason=\"closed\"}",
        2,
        Duration::from_secs(5),
    );
    assert_eq!(proxy.metric("ftsplice_splices_active"), 0);
    assert_eq!(proxy.metric("ftsplice_ssa_ports_in_use"), 0);
}

//! The proxy daemon splicing real connections: client namespace -- proxy
//! namespace (daemon in process, BPF data plane on both veths) -- backend
//! namespace (a small HTTP server). A PUT and a GET of several MB cross the
//! splice with SHA-256 checked end to end; the proxy holds no socket of the
//! spliced connections (ss), its data plane counts the translated packets,
//! and teardown deletes the splices once both sides closed.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::skip_unless_root;
use std::io::Write;
use std::net::SocketAddrV4;
use std::time::Duration;

const SIZE: usize = 8 << 20;

#[test]
fn put_and_get_cross_the_splice_byte_exact() {
    if skip_unless_root("put_and_get_cross_the_splice_byte_exact") {
        return;
    }
    let line = Line::new("l", LineOptions::default());
    let (t, c, p, b) = (&line.t, line.c, line.p, line.b);
    let _backend = Backend::start(t.node(b), SocketAddrV4::new(BACKEND, 8080));
    let proxy = ProxyGuard::start(t.node(p), &ProxyToml::default().render());

    // PUT: head and the first 256 kB, then (once spliced) the rest.
    let data = body(SIZE);
    let mut put = connect_vip(t.node(c), Duration::from_secs(30));
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
    get_blob(t.node(c), SIZE);
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

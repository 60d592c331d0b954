//! The accept pipeline's answers to requests it cannot splice, against a
//! live proxy daemon in a namespace: 400 (malformed head), 431 (head too
//! large), 408 (head too slow), 503 (no route), 502 (backend refuses), each
//! counted by reason; a good request on the same daemon is still spliced.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::{skip_unless_root, Topology};
use std::io::Write;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

fn proxy_toml() -> String {
    ProxyToml {
        id: 3,
        ssa_ports: "41000-41009",
        top: String::new(),
        tables: format!(
            r#"[head]
max_bytes = 512
timeout_ms = 300
[[pool]]
name = "dead"
backends = ["{BACKEND}:9"]
[[route]]
host = "ok.test"
pool = "web"
[[route]]
host = "down.test"
pool = "dead"
"#
        ),
        ..ProxyToml::default()
    }
    .render()
}

/// Sends `req` (and keeps the connection open) and returns the status line
/// and how long the answer took.
fn ask(t: &Topology, c: usize, req: &[u8]) -> (String, Duration) {
    let mut s = connect_vip(t.node(c), Duration::from_secs(10));
    let start = Instant::now();
    s.write_all(req).unwrap();
    let (head, _) = read_response(&mut s);
    (
        head.lines().next().unwrap_or_default().to_string(),
        start.elapsed(),
    )
}

#[test]
fn unspliceable_requests_get_http_errors() {
    if skip_unless_root("unspliceable_requests_get_http_errors") {
        return;
    }
    let line = Line::new("e", LineOptions::default());
    let (t, c, p, b) = (&line.t, line.c, line.p, line.b);
    let _backend = Backend::start(t.node(b), SocketAddrV4::new(BACKEND, 8080));
    let proxy = ProxyGuard::start(t.node(p), &proxy_toml());

    let (s, _) = ask(t, c, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    assert!(s.starts_with("HTTP/1.1 400 "), "{s}");
    let (s, _) = ask(t, c, b"NOT A REQUEST\r\n\r\n");
    assert!(s.starts_with("HTTP/1.1 400 "), "{s}");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: ok.test\r\nX: {}\r\n\r\n",
        "y".repeat(600)
    );
    let (s, _) = ask(t, c, big.as_bytes());
    assert!(s.starts_with("HTTP/1.1 431 "), "{s}");
    let (s, took) = ask(t, c, b"GET / HTTP/1.1\r\nHost: ok.te");
    assert!(s.starts_with("HTTP/1.1 408 "), "{s}");
    assert!(took >= Duration::from_millis(250), "408 after {took:?}");
    let (s, _) = ask(t, c, b"GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n");
    assert!(s.starts_with("HTTP/1.1 503 "), "{s}");
    let (s, _) = ask(t, c, b"GET / HTTP/1.1\r\nHost: down.test\r\n\r\n");
    assert!(s.starts_with("HTTP/1.1 502 "), "{s}");
    // The failed connect gave its port back.
    assert_eq!(proxy.metric("ftsplice_ssa_ports_in_use"), 0);
    let (s, _) = ask(t, c, b"GET /blob/100 HTTP/1.1\r\nHost: ok.test\r\n\r\n");
    assert!(s.starts_with("HTTP/1.1 200 "), "{s}");

    let m = |r: &str| {
        proxy.metric(&format!(
            "ftsplice_proxy_connections_total{{result=\"{r}\"}}"
        ))
    };
    assert_eq!(m("bad_head"), 2);
    assert_eq!(m("head_too_large"), 1);
    assert_eq!(m("head_timeout"), 1);
    assert_eq!(m("no_route"), 1);
    assert_eq!(m("backend_unreachable"), 1);
    assert_eq!(m("spliced"), 1);
}

//! Two proxy daemons replicating over the authenticated channel. The
//! backend's route to the SSA goes to proxy B from the start, so B forwards
//! the backend's pre-splice packets (SYN-ACK, ACKs) of A's connection to A
//! (A owns the SSA port's partition). A PUT is spliced by A and replicated
//! to B; A dies (links down, daemon killed); the client's route moves to B;
//! the rest of the upload crosses B's copy of the splice and the backend's
//! SHA-256 of the body matches. B then tears the splice down on its own (A
//! is detected down by its missing heartbeats).

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::skip_unless_root;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

const SIZE: usize = 8 << 20;
const FIRST: usize = 1 << 20;

fn proxy_toml(
    id: u16,
    ports: &'static str,
    me: Ipv4Addr,
    peer_id: u16,
    peer: Ipv4Addr,
    peer_ports: &str,
) -> String {
    ProxyToml {
        id,
        ssa_ports: ports,
        interfaces: r#"["e0", "e1", "e2"]"#,
        tables: format!(
            r#"[replication]
listen = "{me}:7100"
psk = "{PSK}"
ack_timeout_ms = 500
[[replication.peers]]
id = {peer_id}
addr = "{peer}:7100"
ssa_ports = "{peer_ports}"
{FAST_TEARDOWN}"#
        ),
        ..ProxyToml::default()
    }
    .render()
}

#[test]
fn replicated_splice_survives_the_proxy_that_made_it() {
    if skip_unless_root("replicated_splice_survives_the_proxy_that_made_it") {
        return;
    }
    let line = Line::new(
        "f",
        LineOptions {
            second_proxy: true,
            ..LineOptions::default()
        },
    );
    let (t, c, b) = (&line.t, line.c, line.b);
    let (pa, pb) = (line.p, line.p2.unwrap());
    let _backend = Backend::start(t.node(b), SocketAddrV4::new(BACKEND, 8080));
    let mut a = ProxyGuard::start(
        t.node(pa),
        &proxy_toml(1, "40000-40099", P_REPL, 2, P2_REPL, "40100-40199"),
    );
    let bp = ProxyGuard::start(
        t.node(pb),
        &proxy_toml(2, "40100-40199", P2_REPL, 1, P_REPL, "40000-40099"),
    );
    for p in [&a, &bp] {
        p.wait_metric("ftsplice_replication_peers_up", 1, Duration::from_secs(5));
    }

    let data = body(SIZE);
    let mut put = connect_vip(t.node(c), Duration::from_secs(30));
    write!(
        put,
        "PUT /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {SIZE}\r\n\r\n"
    )
    .unwrap();
    put.write_all(&data[..FIRST]).unwrap();
    a.wait_metric(
        "ftsplice_proxy_connections_total{result=\"spliced\"}",
        1,
        Duration::from_secs(10),
    );
    // B holds the replica (installed in its data plane), and forwarded the
    // backend's pre-splice packets to A.
    bp.wait_metric("ftsplice_splices_active", 1, Duration::from_secs(5));
    bp.wait_metric(
        "ftsplice_dataplane_packets{reason=\"presplice_redirect\"}",
        1,
        Duration::from_secs(3),
    );
    assert_eq!(
        a.metric("ftsplice_proxy_connections_total{result=\"relayed\"}"),
        0
    );
    assert_eq!(a.metric("ftsplice_replication_ack_timeouts_total"), 0);

    // A dies: its links go down with it, then the daemon.
    for dev in ["e0", "e1", "e2"] {
        t.node(pa).ip(&["link", "set", dev, "down"]).unwrap();
    }
    a.kill();
    // The network moves both directions to B.
    t.node(c)
        .ip(&[
            "route",
            "replace",
            &format!("{VIP}/32"),
            "via",
            &P2_IN.to_string(),
        ])
        .unwrap();
    t.node(b)
        .ip(&[
            "route",
            "replace",
            &format!("{SSA}/32"),
            "via",
            &P2_OUT.to_string(),
        ])
        .unwrap();

    put.write_all(&data[FIRST..]).unwrap();
    let (head, digest) = read_response(&mut put);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8(digest).unwrap(), sha(&data), "PUT body");
    drop(put);
    let min = ((SIZE - FIRST) / 1400) as i64;
    bp.wait_metric(
        "ftsplice_dataplane_packets{reason=\"translated\"}",
        min,
        Duration::from_secs(3),
    );
    // B notices A is gone and, now the splice's owner, deletes it after the
    // FINs and the linger.
    bp.wait_metric(
        "ftsplice_splices_deleted_total{reason=\"closed\"}",
        1,
        Duration::from_secs(5),
    );
    assert_eq!(bp.metric("ftsplice_splices_active"), 0);
    assert_eq!(bp.metric("ftsplice_replication_peers_up"), 0);
}

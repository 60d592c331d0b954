//! An idle pre-splice client of a proxy that dies (`proto::orphan_records`,
//! docs/daemons.md "Orphans"): the client sent part of a request head,
//! which proxy A acknowledged, and then waits; A dies (links down, daemon
//! killed) before any splice exists. The client sends nothing more, so no
//! segment of it reaches proxy B for the segment-triggered orphan reset.
//! B holds A's pre-splice record `{client, vip, ISS + 1}` and, once it has
//! declared A dead and its slot has settled, resets the client from a raw
//! socket with the orphan mark, through the production reset filter: the
//! client's read fails with ECONNRESET within about a second, instead of
//! hanging.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::bpf_abi::ORPHAN_MARK;
use ftsplice_linux::skip_unless_root;
use ftsplice_proto::lb::SlotTable;
use ftsplice_proto::ProxyId;
use socket2::{Domain, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

fn proxy_toml(
    id: u16,
    ports: &'static str,
    me: std::net::Ipv4Addr,
    peer_id: u16,
    peer: std::net::Ipv4Addr,
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
[heartbeat]
lb = ["{CLIENT}:7000"]
interval_ms = 10
workload = 100
{FAST_TEARDOWN}"#
        ),
        ..ProxyToml::default()
    }
    .render()
}

#[test]
fn idle_client_of_a_dead_proxy_is_reset_by_its_peer() {
    if skip_unless_root("idle_client_of_a_dead_proxy_is_reset_by_its_peer") {
        return;
    }
    let line = Line::new(
        "ir",
        LineOptions {
            second_proxy: true,
            ..LineOptions::default()
        },
    );
    let (t, c, b) = (&line.t, line.c, line.b);
    let (pa, pb) = (line.p, line.p2.unwrap());
    let q = t.node(pb);
    q.sysctl("net.ipv4.fwmark_reflect", "1").unwrap();
    let rules = format!(
        "table ip ftsplice {{ chain out {{ type filter hook output priority 0; policy accept; \
         ip saddr {{ {VIP}, {SSA} }} tcp flags & rst == rst meta mark != {ORPHAN_MARK:#x} drop; }}; }}"
    );
    q.exec("nft", &[&rules]).unwrap();
    let _backend = Backend::start(t.node(b), SocketAddrV4::new(BACKEND, 8080));
    let mut a = ProxyGuard::start(
        t.node(pa),
        &proxy_toml(1, "40000-40099", P_REPL, 2, P2_REPL, "40100-40199"),
    );
    let bp = ProxyGuard::start(
        q,
        &proxy_toml(2, "40100-40199", P2_REPL, 1, P_REPL, "40000-40099"),
    );
    for p in [&a, &bp] {
        p.wait_metric("ftsplice_replication_peers_up", 1, Duration::from_secs(5));
    }
    // A client port whose slot A owns while both proxies are up (so A
    // accepts the connection rather than redirecting it to B).
    let both = SlotTable::equal([ProxyId(1), ProxyId(2)]);
    let vip = SocketAddrV4::new(VIP, 80);
    let port = (42_000..43_000u16)
        .find(|&p| both.choose(SocketAddrV4::new(CLIENT, p), vip) == Some(ProxyId(1)))
        .unwrap();
    let mut client = t
        .node(c)
        .run(move || {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            s.bind(&SocketAddrV4::new(CLIENT, port).into()).unwrap();
            s.connect(&vip.into()).unwrap();
            TcpStream::from(s)
        })
        .unwrap();
    // Part of a head: A acknowledges it and waits for the rest.
    client
        .write_all(b"GET /idle HTTP/1.1\r\nHost: test\r\n")
        .unwrap();
    bp.wait_metric("ftsplice_presplice_records_held", 1, Duration::from_secs(5));

    // A dies: its links go down with it (its kernel's FIN never leaves),
    // then the daemon. The client's route moves to B, as the lb's would.
    for dev in ["e0", "e1", "e2"] {
        t.node(pa).ip(&["link", "set", dev, "down"]).unwrap();
    }
    a.kill();
    let died = Instant::now();
    t.node(c)
        .ip(&[
            "route",
            "replace",
            &format!("{VIP}/32"),
            "via",
            &P2_IN.to_string(),
        ])
        .unwrap();

    // Detection (3 missed 50 ms beats) and the grace (600 ms), then B's reset.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    let r = client.read(&mut buf);
    let waited = died.elapsed();
    match r {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected a reset after {waited:?}, got {other:?}"),
    }
    assert!(waited < Duration::from_secs(3), "reset after {waited:?}");
    bp.wait_metric(
        "ftsplice_orphan_record_resets_total{result=\"sent\"}",
        1,
        Duration::from_secs(1),
    );
}

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
use ftsplice_linux::{skip_unless_root, Topology};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::Duration;

const C_A: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 1);
const PA_IN: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 2);
const C_B: Ipv4Addr = Ipv4Addr::new(198, 18, 63, 1);
const PB_IN: Ipv4Addr = Ipv4Addr::new(198, 18, 63, 2);
const PA_OUT: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 1);
const B_A: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 2);
const PB_OUT: Ipv4Addr = Ipv4Addr::new(198, 18, 64, 1);
const B_B: Ipv4Addr = Ipv4Addr::new(198, 18, 64, 2);
const PA_REPL: Ipv4Addr = Ipv4Addr::new(198, 18, 65, 1);
const PB_REPL: Ipv4Addr = Ipv4Addr::new(198, 18, 65, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 62, 10);
const SSA: Ipv4Addr = Ipv4Addr::new(198, 18, 62, 20);

const SIZE: usize = 8 << 20;
const FIRST: usize = 1 << 20;

fn proxy_toml(
    id: u16,
    ports: &str,
    me: Ipv4Addr,
    peer_id: u16,
    peer: Ipv4Addr,
    peer_ports: &str,
) -> String {
    format!(
        r#"
id = {id}
vip = "{VIP}:80"
ssa = "{SSA}"
ssa_ports = "{ports}"
mss_clamp = 1400
interface = ["e0", "e1", "e2"]
default_pool = "web"
[replication]
listen = "{me}:7100"
psk = "{PSK}"
ack_timeout_ms = 500
[[replication.peers]]
id = {peer_id}
addr = "{peer}:7100"
ssa_ports = "{peer_ports}"
[teardown]
linger_ms = 200
idle_ms = 10000
tick_ms = 50
[[pool]]
name = "web"
backends = ["{B_A}:8080"]
"#
    )
}

#[test]
fn replicated_splice_survives_the_proxy_that_made_it() {
    if skip_unless_root("replicated_splice_survives_the_proxy_that_made_it") {
        return;
    }
    let mut t = Topology::new();
    let c = t.add_node("fc").unwrap();
    let pa = t.add_node("fa").unwrap();
    let pb = t.add_node("fb").unwrap();
    let b = t.add_node("fs").unwrap();
    t.link(c, C_A, pa, PA_IN, 24).unwrap(); // c e0, pa e0
    t.link(c, C_B, pb, PB_IN, 24).unwrap(); // c e1, pb e0
    t.link(pa, PA_OUT, b, B_A, 24).unwrap(); // pa e1, b e0
    t.link(pb, PB_OUT, b, B_B, 24).unwrap(); // pb e1, b e1
    t.link(pa, PA_REPL, pb, PB_REPL, 24).unwrap(); // pa e2, pb e2
    t.route(c, VIP, 32, PA_IN).unwrap();
    // Backend -> SSA lands on B, not on A (which opens the connection).
    t.route(b, SSA, 32, PB_OUT).unwrap();
    // B reaches the client's and the backend's addresses on A's links.
    t.route(pb, Ipv4Addr::new(198, 18, 60, 0), 24, C_B).unwrap();
    t.route(pb, Ipv4Addr::new(198, 18, 61, 0), 24, B_B).unwrap();
    for p in [pa, pb] {
        for a in [VIP, SSA] {
            t.node(p)
                .ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"])
                .unwrap();
        }
        t.forward(p).unwrap();
    }
    let _backend = Backend::start(t.node(b), SocketAddrV4::new(B_A, 8080));
    let mut a = ProxyGuard::start(
        t.node(pa),
        &proxy_toml(1, "40000-40099", PA_REPL, 2, PB_REPL, "40100-40199"),
    );
    let bp = ProxyGuard::start(
        t.node(pb),
        &proxy_toml(2, "40100-40199", PB_REPL, 1, PA_REPL, "40000-40099"),
    );
    for p in [&a, &bp] {
        p.wait_metric("ftsplice_replication_peers_up", 1, Duration::from_secs(5));
    }

    let data = body(SIZE);
    let mut put = t
        .node(c)
        .run(|| TcpStream::connect((VIP, 80)).unwrap())
        .unwrap();
    put.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
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
            &PB_IN.to_string(),
        ])
        .unwrap();
    t.node(b)
        .ip(&[
            "route",
            "replace",
            &format!("{SSA}/32"),
            "via",
            &PB_OUT.to_string(),
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

//! Split splice with live daemons: the proxy replicates its splice to the
//! backend's agent (a receive-only peer), whose `agent_egress` program
//! rewrites the backend's packets to the SSA into the VIP's packets to the
//! client and sends them over the backend's direct link to the client.
//! A GET of several MB arrives byte-exact over the backend's direct link
//! (the agent's egress hands large GSO packets to the device, so the link's
//! packet count, not the program's, shows the path); a later PUT (request
//! body through the proxy) works too.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::{skip_unless_root, Topology};
use std::io::Write;
use std::net::SocketAddrV4;
use std::time::Duration;

const SIZE: usize = 8 << 20;

fn proxy_toml() -> String {
    ProxyToml {
        top: "default_pool = \"web\"\n".into(),
        tables: format!(
            r#"[replication]
listen = "{P_OUT}:7100"
psk = "{PSK}"
ack_timeout_ms = 100
[[replication.peers]]
id = 100
addr = "{BACKEND}:7100"
agent = true
{FAST_TEARDOWN}"#
        ),
        ..ProxyToml::default()
    }
    .render()
}

fn agent_toml() -> String {
    format!(
        r#"
id = 100
backend = "{BACKEND}:8080"
vip = "{VIP}:80"
interface = ["e0", "e1"]
[replication]
listen = "{BACKEND}:7100"
psk = "{PSK}"
[[replication.peers]]
id = 1
addr = "{P_OUT}:7100"
"#
    )
}

/// Packets `dev` of node `n` received.
fn rx_packets(t: &Topology, n: usize, dev: &str) -> u64 {
    t.node(n)
        .exec(
            "cat",
            &[&format!("/sys/class/net/{dev}/statistics/rx_packets")],
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn backend_answers_go_straight_to_the_client() {
    if skip_unless_root("backend_answers_go_straight_to_the_client") {
        return;
    }
    let line = Line::new(
        "s",
        LineOptions {
            direct: true,
            ..LineOptions::default()
        },
    );
    let (t, c, p, b) = (&line.t, line.c, line.p, line.b);
    let _backend = Backend::start(t.node(b), SocketAddrV4::new(BACKEND, 8080));
    let proxy = ProxyGuard::start(t.node(p), &proxy_toml());
    let agent = ProxyGuard::start_agent(t.node(b), &agent_toml());
    // The agent hears the proxy's heartbeats and pulls its (empty) table.
    agent.wait_metric("ftsplice_replication_peers_up", 1, Duration::from_secs(5));

    let data = body(SIZE);
    get_blob(t.node(c), SIZE);
    assert_eq!(
        proxy.metric("ftsplice_proxy_connections_total{result=\"spliced\"}"),
        1
    );
    // The response reached the client over the backend's direct link,
    // translated by the agent; from the proxy came little more than the
    // handshake.
    let direct = rx_packets(t, c, "e1");
    let via_proxy = rx_packets(t, c, "e0");
    let segments = (SIZE / 1448) as u64;
    assert!(
        direct >= segments * 9 / 10,
        "{direct} packets on the direct link, ~{segments} segments"
    );
    assert!(
        via_proxy < 100,
        "{via_proxy} packets came through the proxy"
    );
    agent.wait_metric(
        "ftsplice_dataplane_packets{reason=\"translated\"}",
        1,
        Duration::from_secs(3),
    );

    // A PUT: the body goes through the proxy, the answer straight back.
    let mut put = connect_vip(t.node(c), Duration::from_secs(30));
    write!(
        put,
        "PUT /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {SIZE}\r\n\r\n"
    )
    .unwrap();
    put.write_all(&data).unwrap();
    let (head, digest) = read_response(&mut put);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8(digest).unwrap(), sha(&data), "PUT body");
    drop(put);
    // The proxy's teardown deletes both splices; the agent follows.
    proxy.wait_metric(
        "ftsplice_splices_deleted_total{reason=\"closed\"}",
        2,
        Duration::from_secs(5),
    );
    agent.wait_metric_at_most("ftsplice_splices_active", 0, Duration::from_secs(2));
}

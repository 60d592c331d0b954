//! The splice data plane with the veths' segmentation and checksum
//! offloads on (the bench's setting): the proxies (TC ingress) and the
//! split-splice agent (TC egress) translate GSO packets of many segments,
//! whose TCP checksum is CHECKSUM_PARTIAL (only the pseudo-header sum is in
//! the packet). Between veths such a checksum is never computed, so the
//! client's own link is set to compute and check checksums in software
//! (`tx off rx off` on both ends): a wrong pseudo-header update would make
//! the client drop every translated segment. A GET through the splice must
//! arrive byte-exact with no checksum error, and the data plane must have
//! translated more segments than its device received packets (it saw GSO
//! packets). Root only; in the root package for `CARGO_BIN_EXE_ftsplice`.

#![allow(clippy::disallowed_methods)] // real daemons: waits on the wall clock

use ftsplice_linux::{skip_unless_root, NetNs, Offloads};
use ftsplice_testbed::body::Body;
use ftsplice_testbed::system::plan::METRICS_PORT;
use ftsplice_testbed::system::{metric_with, scrape, Spec, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const SIZE: usize = 16 << 20;

/// One system at a time (two shared cores).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `name` of `/proc/net/snmp`'s Tcp line in `ns` (e.g. `InCsumErrors`).
fn tcp_stat(ns: &NetNs, name: &str) -> u64 {
    let text = ns.exec("cat", &["/proc/net/snmp"]).unwrap();
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(head), Some(vals)) = (tcp.next(), tcp.next()) else {
        panic!("no Tcp lines in /proc/net/snmp");
    };
    let i = head
        .split_whitespace()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no Tcp {name}"));
    vals.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// A counter of `dev`'s statistics in `ns`.
fn dev_stat(ns: &NetNs, dev: &str, stat: &str) -> u64 {
    ns.exec("cat", &[&format!("/sys/class/net/{dev}/statistics/{stat}")])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Segments the data plane of the daemon at `me` (metrics) translated.
fn translated(ns: &NetNs, me: Ipv4Addr) -> u64 {
    let m = scrape(ns, SocketAddrV4::new(me, METRICS_PORT)).expect("metrics");
    metric_with(&m, "ftsplice_dataplane_packets", "reason=\"translated\"").unwrap_or(0.0) as u64
}

fn get(ns: &NetNs, url: &str) -> Vec<u8> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "curl",
            "-sf",
            "--max-time",
            "30",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {url}: {}", out.status);
    out.stdout
}

fn gso_get_is_intact(split: bool) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let body = Body::new(11, 0, SIZE as u64).to_vec();
    let mut spec = Spec::new(&PathBuf::from(env!("CARGO_BIN_EXE_ftsplice")));
    spec.offloads = Offloads::Default;
    spec.split = split;
    spec.heartbeat_ms = 50;
    spec.files = vec![body.clone()];
    let sys = System::up(spec).unwrap_or_else(|e| panic!("{e:#}"));
    let c = sys.nodes.clients[0];
    let client = sys.ns(c);
    let port = sys
        .topo
        .ports()
        .iter()
        .find(|p| p.node == c)
        .expect("client port")
        .clone();
    client
        .exec("ethtool", &["-K", &port.dev, "tx", "off", "rx", "off"])
        .unwrap();
    sys.ns(port.switch)
        .exec("ethtool", &["-K", &port.port, "tx", "off", "rx", "off"])
        .unwrap();

    // Where the server-to-client segments are translated, and the device
    // whose packet count they are compared with.
    let planes: Vec<(&NetNs, Ipv4Addr)> = if split {
        let b = sys.nodes.backends[0];
        vec![(sys.ns(b), sys.plan.backend(0))]
    } else {
        sys.nodes
            .proxies
            .iter()
            .enumerate()
            .map(|(i, &p)| (sys.ns(p), sys.plan.proxy(i)))
            .collect()
    };
    let dev_packets = |ns: &NetNs| {
        if split {
            dev_stat(ns, "e0", "tx_packets")
        } else {
            dev_stat(ns, "e0", "rx_packets")
        }
    };
    let before: Vec<(u64, u64)> = planes
        .iter()
        .map(|(ns, me)| (translated(ns, *me), dev_packets(ns)))
        .collect();
    let errs = tcp_stat(client, "InCsumErrors");

    let got = get(client, &format!("http://{}/files/0.bin", sys.plan.vip()));
    assert_eq!(got.len(), body.len(), "split {split}");
    if let Some(i) = (0..body.len()).find(|&i| got[i] != body[i]) {
        panic!("split {split}: body differs from byte {i}");
    }
    assert_eq!(
        tcp_stat(client, "InCsumErrors"),
        errs,
        "split {split}: the client saw bad checksums"
    );
    // The daemons copy their BPF counters to the metrics every 200 ms.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (mut segs, mut packets) = (0, 0);
    for ((ns, me), (t0, p0)) in planes.iter().zip(&before) {
        segs += translated(ns, *me) - t0;
        packets += dev_packets(ns) - p0;
    }
    // At least the body's full-sized segments were translated, in fewer
    // device packets than that: GSO packets went through the programs.
    assert!(
        segs as usize >= SIZE / 1500,
        "split {split}: {segs} segments"
    );
    assert!(
        packets < segs,
        "split {split}: {segs} segments translated in {packets} device packets"
    );
}

#[test]
fn proxy_translates_gso_packets_the_client_verifies() {
    if skip_unless_root("proxy_translates_gso_packets_the_client_verifies") {
        return;
    }
    gso_get_is_intact(false);
}

#[test]
fn agent_translates_gso_packets_the_client_verifies() {
    if skip_unless_root("agent_translates_gso_packets_the_client_verifies") {
        return;
    }
    gso_get_is_intact(true);
}

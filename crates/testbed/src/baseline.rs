//! `baseline`: no ftsplice at all. Client -> router (kernel IP forwarding)
//! -> backend running nginx; curl fetches a known file N times and every
//! body is compared byte for byte; then an iperf3 stream over the same path.
//! Proves topology, tools and report.

use crate::iperf::{client_mbps, IperfServer};
use crate::nginx::Nginx;
use anyhow::{Context, Result};
use ftsplice_linux::Topology;
use ftsplice_report::{latency, Connections, Report};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 1);
const ROUTER_C: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 2);
const ROUTER_B: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 1);
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 61, 2);

/// Deterministic file content.
pub fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs the scenario with `requests` sequential GETs of a `size`-byte file,
/// then (if `iperf_secs > 0`) one iperf3 stream whose rate is the report's
/// throughput (else the GETs' goodput).
pub fn run(requests: u64, size: usize, seed: u64, iperf_secs: u32) -> Result<Report> {
    let mut t = Topology::new();
    let c = t.add_node("bc")?;
    let r = t.add_node("br")?;
    let b = t.add_node("bb")?;
    t.link(c, CLIENT, r, ROUTER_C, 24)?;
    t.link(r, ROUTER_B, b, BACKEND, 24)?;
    t.forward(r)?;
    t.route(c, Ipv4Addr::new(198, 18, 61, 0), 24, ROUTER_C)?;
    t.route(b, Ipv4Addr::new(198, 18, 60, 0), 24, ROUTER_B)?;
    let want = body(size, seed);
    let nginx = Nginx::start(
        t.node(b),
        SocketAddrV4::new(BACKEND, 80),
        &[("file.bin", &want)],
    )?;
    let out = nginx.dir().join("download.bin");
    let url = format!("http://{BACKEND}/file.bin");
    let mut conns = Connections {
        total: requests,
        ..Connections::default()
    };
    let mut lat = Vec::new();
    let start = Instant::now();
    for _ in 0..requests {
        let _ = std::fs::remove_file(&out);
        let res = t.node(c).exec(
            "curl",
            &[
                "-s",
                "-f",
                "--max-time",
                "10",
                "-o",
                &out.display().to_string(),
                "-w",
                "%{time_total}",
                &url,
            ],
        );
        match res {
            Ok(time) => {
                let got = std::fs::read(&out).context("reading curl's output")?;
                if got == want {
                    conns.completed += 1;
                } else {
                    conns.corrupted += 1;
                }
                lat.push(time.trim().parse::<f64>().unwrap_or(0.0) * 1000.0);
            }
            Err(_) => conns.broken += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let mut throughput_mbps = (conns.completed as f64 * size as f64 * 8.0) / secs / 1e6;
    if iperf_secs > 0 {
        let srv = IperfServer::start(t.node(b), SocketAddrV4::new(BACKEND, 5201))?;
        throughput_mbps = client_mbps(t.node(c), srv.addr, iperf_secs)?;
    }
    let mut report = Report::new("baseline", "testbed", seed);
    report.throughput_mbps = throughput_mbps;
    report.connections = conns;
    report.latency_ms = latency(&lat);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_deterministic_and_seeded() {
        assert_eq!(body(100, 1), body(100, 1));
        assert_ne!(body(100, 1), body(100, 2));
    }
}

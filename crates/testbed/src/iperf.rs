//! An unmodified iperf3 server in a namespace (one test, then it exits;
//! killed by pid on drop) and the client run that measures throughput.

use anyhow::{bail, Context, Result};
use ftsplice_linux::NetNs;
use std::net::SocketAddrV4;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `iperf3 -s -1` bound to one namespace address.
pub struct IperfServer {
    child: Child,
    pub addr: SocketAddrV4,
}

impl IperfServer {
    pub fn start(ns: &NetNs, addr: SocketAddrV4) -> Result<IperfServer> {
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "iperf3", "-s", "-1", "-B"])
            .arg(addr.ip().to_string())
            .args(["-p", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting iperf3 (is it installed? see scripts/setup.sh)")?;
        let mut s = IperfServer { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        // iperf3 -1 serves exactly one client: probe the port without
        // connecting (a probe connection would be that client) by waiting
        // for the listening socket to show up.
        loop {
            let out = ns.exec("ss", &["-Hltn", &format!("sport = :{}", addr.port())])?;
            if !out.trim().is_empty() {
                return Ok(s);
            }
            if let Some(st) = s.child.try_wait()? {
                bail!("iperf3 server exited with {st}");
            }
            if Instant::now() > deadline {
                bail!("iperf3 did not listen on {addr} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for IperfServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `iperf3 -c` from `ns` for `secs` seconds; received Mbit/s.
pub fn client_mbps(ns: &NetNs, server: SocketAddrV4, secs: u32) -> Result<f64> {
    let out = ns.exec(
        "iperf3",
        &[
            "-c",
            &server.ip().to_string(),
            "-p",
            &server.port().to_string(),
            "-t",
            &secs.to_string(),
            "-J",
        ],
    )?;
    parse_received_mbps(&out)
}

/// `end.sum_received.bits_per_second` of iperf3's JSON, in Mbit/s.
pub fn parse_received_mbps(json: &str) -> Result<f64> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 JSON")?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e6)
        .context("no end.sum_received.bits_per_second in iperf3 output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_received_rate() {
        let j = r#"{"end":{"sum_received":{"bits_per_second":2.5e9}}}"#;
        assert_eq!(parse_received_mbps(j).unwrap(), 2500.0);
        assert!(parse_received_mbps("{}").is_err());
        assert!(parse_received_mbps("not json").is_err());
    }
}

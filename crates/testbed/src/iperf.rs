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
        IperfServer::spawn(ns, addr, true)
    }

    /// Serves on every address of `ns` (`addr` only names the port and
    /// what [`IperfServer::addr`] reports).
    pub fn start_any(ns: &NetNs, addr: SocketAddrV4) -> Result<IperfServer> {
        IperfServer::spawn(ns, addr, false)
    }

    fn spawn(ns: &NetNs, addr: SocketAddrV4, bind: bool) -> Result<IperfServer> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name(), "iperf3", "-s", "-1"]);
        if bind {
            cmd.arg("-B").arg(addr.ip().to_string());
        }
        let child = cmd
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
    parse_received_mbps(&client_json(ns, server, secs, false, None)?)
}

/// Runs `iperf3 -c -J` from `ns` (`reverse`: the server sends; `interval`:
/// seconds between interval reports) and returns its JSON output.
pub fn client_json(
    ns: &NetNs,
    server: SocketAddrV4,
    secs: u32,
    reverse: bool,
    interval: Option<f64>,
) -> Result<String> {
    let out = client_command(ns, server, secs, reverse, interval)
        .stdin(Stdio::null())
        .output()
        .context("starting iperf3 (is it installed? see scripts/setup.sh)")?;
    if !out.status.success() {
        bail!(
            "iperf3 client to {server} exited with {}: {}",
            out.status,
            iperf_error(&out.stdout, &out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `iperf3 -c -J` command line of [`client_json`], to spawn and wait
/// for later.
pub fn client_command(
    ns: &NetNs,
    server: SocketAddrV4,
    secs: u32,
    reverse: bool,
    interval: Option<f64>,
) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns.name(), "iperf3", "-c"])
        .arg(server.ip().to_string())
        .args(["-p", &server.port().to_string(), "-t", &secs.to_string()])
        .args(["-J", "--connect-timeout", "5000"]);
    if reverse {
        c.arg("-R");
    }
    if let Some(i) = interval {
        c.args(["-i", &i.to_string()]);
    }
    c
}

/// iperf3's `error` field (it reports failures inside its JSON), else its
/// stderr.
pub fn iperf_error(stdout: &[u8], stderr: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdout)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(stderr).trim().to_string())
}

/// Per-interval receive rates of iperf3's JSON: (end of interval in
/// seconds since the test start, Mbit/s).
pub fn parse_intervals(json: &str) -> Result<Vec<(f64, f64)>> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 JSON")?;
    let ivs = v["intervals"]
        .as_array()
        .context("no intervals in iperf3 output")?;
    Ok(ivs
        .iter()
        .filter_map(|i| {
            let s = &i["sum"];
            Some((s["end"].as_f64()?, s["bits_per_second"].as_f64()? / 1e6))
        })
        .collect())
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
    fn reports_iperf_errors_from_json() {
        let e = iperf_error(br#"{"error":"unable to connect"}"#, b"x");
        assert_eq!(e, "unable to connect");
        assert_eq!(iperf_error(b"", b" boom \n"), "boom");
    }

    #[test]
    fn parses_intervals() {
        let j = r#"{"intervals":[{"sum":{"end":0.1,"bits_per_second":1e9}},{"sum":{"end":0.2,"bits_per_second":0}}]}"#;
        assert_eq!(parse_intervals(j).unwrap(), vec![(0.1, 1000.0), (0.2, 0.0)]);
        assert!(parse_intervals("{}").is_err());
    }

    #[test]
    fn parses_received_rate() {
        let j = r#"{"end":{"sum_received":{"bits_per_second":2.5e9}}}"#;
        assert_eq!(parse_received_mbps(j).unwrap(), 2500.0);
        assert!(parse_received_mbps("{}").is_err());
        assert!(parse_received_mbps("not json").is_err());
    }
}

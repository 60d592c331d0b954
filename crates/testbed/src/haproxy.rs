//! An unmodified HAProxy in TCP mode (the bench's user-space proxy
//! baseline): one process in the foreground (`-db`), config generated into
//! the run directory, supervised like the daemons.

use crate::system::process::Proc;
use anyhow::Result;
use ftsplice_linux::NetNs;
use std::net::SocketAddrV4;
use std::path::Path;

/// haproxy.cfg relaying each `(listen, server)` pair at layer 4.
pub fn config(relays: &[(SocketAddrV4, SocketAddrV4)]) -> String {
    let mut s = String::from(
        "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
         timeout client 120s\n  timeout server 120s\n",
    );
    for (i, (listen, server)) in relays.iter().enumerate() {
        s.push_str(&format!(
            "frontend f{i}\n  bind {listen}\n  default_backend b{i}\n\
             backend b{i}\n  server s{i} {server}\n"
        ));
    }
    s
}

/// Starts HAProxy in `ns`; ready once every listening socket exists.
pub fn start(ns: &NetNs, dir: &Path, relays: &[(SocketAddrV4, SocketAddrV4)]) -> Result<Proc> {
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, config(relays))?;
    let cfg = cfg.display().to_string();
    let mut p = Proc::spawn(
        ns,
        dir,
        "haproxy",
        Path::new("haproxy"),
        &["-db", "-f", &cfg],
    )?;
    // A probe connection would be relayed to the iperf3 server, which takes
    // it as its one client: wait for the listening sockets instead.
    p.wait_ready(std::time::Duration::from_secs(10), || {
        relays.iter().all(|(l, _)| {
            ns.exec("ss", &["-Hltn", &format!("sport = :{}", l.port())])
                .is_ok_and(|o| !o.trim().is_empty())
        })
    })?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn config_relays_tcp() {
        let at = |h, port| SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, h), port);
        let c = config(&[(at(6, 5201), at(101, 5201)), (at(6, 80), at(101, 80))]);
        assert!(c.contains("mode tcp"));
        assert!(c.contains("bind 198.18.0.6:5201"));
        assert!(c.contains("server s0 198.18.0.101:5201"));
        assert!(c.contains("bind 198.18.0.6:80"));
        assert!(c.contains("server s1 198.18.0.101:80"));
    }
}

//! An unmodified HAProxy in TCP mode (the bench's user-space proxy
//! baseline): one process in the foreground (`-db`), config generated into
//! the run directory, supervised like the daemons.

use crate::system::process::Proc;
use anyhow::Result;
use ftsplice_linux::NetNs;
use std::net::SocketAddrV4;
use std::path::Path;

/// haproxy.cfg relaying `listen` to `server` at layer 4.
pub fn config(listen: SocketAddrV4, server: SocketAddrV4) -> String {
    format!(
        "global\n\
         \x20 maxconn 4096\n\
         defaults\n\
         \x20 mode tcp\n\
         \x20 timeout connect 5s\n\
         \x20 timeout client 120s\n\
         \x20 timeout server 120s\n\
         frontend f\n\
         \x20 bind {listen}\n\
         \x20 default_backend b\n\
         backend b\n\
         \x20 server s1 {server}\n"
    )
}

/// Starts HAProxy in `ns`; ready once `listen` accepts connections.
pub fn start(ns: &NetNs, dir: &Path, listen: SocketAddrV4, server: SocketAddrV4) -> Result<Proc> {
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, config(listen, server))?;
    let cfg = cfg.display().to_string();
    let mut p = Proc::spawn(
        ns,
        dir,
        "haproxy",
        Path::new("haproxy"),
        &["-db", "-f", &cfg],
    )?;
    // A probe connection is relayed to the iperf3 server, which takes it as
    // a client: wait for the listening socket instead.
    let port = format!("sport = :{}", listen.port());
    p.wait_ready(std::time::Duration::from_secs(10), || {
        ns.exec("ss", &["-Hltn", &port])
            .is_ok_and(|o| !o.trim().is_empty())
    })?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn config_relays_tcp() {
        let c = config(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 6), 5201),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 101), 5201),
        );
        assert!(c.contains("mode tcp"));
        assert!(c.contains("bind 198.18.0.6:5201"));
        assert!(c.contains("server s1 198.18.0.101:5201"));
    }
}

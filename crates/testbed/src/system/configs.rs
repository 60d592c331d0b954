//! TOML configs of every daemon of a system, generated from its [`Plan`]
//! (schemas: `ftsplice_daemon::config`). The replication key goes into a
//! file of its own (`psk_file`), never into a config.

use super::plan::{Plan, HEARTBEAT_PORT, HTTP_PORT, METRICS_PORT, REPLICATION_PORT};
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The data-plane device of every node: its one port on the switch.
pub const DEV: &str = "e0";

/// Which lb instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbRole {
    /// Owns the VIP toward clients.
    Primary,
    /// Takes the VIP over when the primary dies.
    Backup,
    /// Owns the SSA toward backends (the stateless hop to a live proxy).
    Gateway,
}

/// What the proxies route to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The port behind the VIP (clients connect to VIP:port).
    pub vip_port: u16,
    /// The port every backend serves on.
    pub backend_port: u16,
    /// Spliced as an L4 route (`[[l4_route]]` on VIP:vip_port, no request
    /// head read); otherwise HTTP on `vip`.
    pub l4: bool,
}

/// Options shared by the generated configs.
#[derive(Clone, Debug)]
pub struct ConfigOptions {
    pub heartbeat_ms: u64,
    pub misses: u32,
    /// Path of the file holding the replication key (64 hex digits).
    pub psk_file: String,
    /// Run agents on the backends and replicate splices to them.
    pub split: bool,
    /// How long a proxy waits for a request head (then answers 408).
    pub head_timeout_ms: u64,
}

fn q(s: impl std::fmt::Display) -> String {
    format!("\"{s}\"")
}

/// `lb.toml` for `role`.
pub fn lb(plan: &Plan, role: LbRole, o: &ConfigOptions) -> String {
    let (vip, me) = match role {
        LbRole::Primary => (plan.vip(), plan.lb()),
        LbRole::Backup => (plan.vip(), plan.backup_lb()),
        LbRole::Gateway => (plan.ssa(), plan.gateway()),
    };
    let mut s = String::new();
    let _ = writeln!(s, "vip = {}", q(vip));
    let _ = writeln!(s, "interface = {}", q(DEV));
    // The gateway sends backend packets to the proxy owning the SSA port
    // (its pre-splice socket) while it lives; spliced ones by flow hash.
    let mode = match role {
        LbRole::Gateway => "port-owner",
        _ => "flow-hash",
    };
    let _ = writeln!(s, "mode = {}", q(mode));
    let _ = writeln!(s, "metrics = {}", q(SocketAddrV4::new(me, METRICS_PORT)));
    let _ = writeln!(s, "\n[heartbeat]");
    let _ = writeln!(s, "listen = {}", q(SocketAddrV4::new(me, HEARTBEAT_PORT)));
    let _ = writeln!(s, "interval_ms = {}", o.heartbeat_ms);
    let _ = writeln!(s, "misses = {}", o.misses);
    // The primary and the backup watch each other (docs/daemons.md, lb).
    let peer = match role {
        LbRole::Primary => Some((plan.backup_lb(), "primary")),
        LbRole::Backup => Some((plan.lb(), "backup")),
        LbRole::Gateway => None,
    };
    if let Some((addr, r)) = peer {
        let _ = writeln!(
            s,
            "\n[peer]\naddr = {}\nrole = {}",
            q(SocketAddrV4::new(addr, HEARTBEAT_PORT)),
            q(r)
        );
    }
    for i in 0..plan.proxies {
        let _ = writeln!(
            s,
            "\n[[proxy]]\nid = {}\naddr = {}",
            i + 1,
            q(plan.proxy(i))
        );
        if role == LbRole::Gateway {
            let (lo, hi) = plan.ssa_ports(i);
            let _ = writeln!(s, "ssa_ports = \"{lo}-{hi}\"");
        }
    }
    let _ = writeln!(s, "\n[log]\nformat = \"json\"");
    s
}

/// Every lb instance proxies send heartbeats to.
pub fn heartbeat_targets(plan: &Plan) -> Vec<Ipv4Addr> {
    vec![plan.lb(), plan.backup_lb(), plan.gateway()]
}

/// `proxy.toml` of proxy `i` (id `i + 1`).
pub fn proxy(plan: &Plan, i: usize, svc: &Service, o: &ConfigOptions) -> String {
    let me = plan.proxy(i);
    let (lo, hi) = plan.ssa_ports(i);
    let mut s = String::new();
    let _ = writeln!(s, "id = {}", i + 1);
    // An L4 service keeps HTTP on port 80 of the VIP (no route: 503).
    let http_port = if svc.l4 { HTTP_PORT } else { svc.vip_port };
    let _ = writeln!(s, "vip = {}", q(SocketAddrV4::new(plan.vip(), http_port)));
    let _ = writeln!(s, "ssa = {}", q(plan.ssa()));
    let _ = writeln!(s, "ssa_ports = \"{lo}-{hi}\"");
    let _ = writeln!(s, "ssa_bind = \"local\"");
    let _ = writeln!(s, "interface = {}", q(DEV));
    let _ = writeln!(s, "metrics = {}", q(SocketAddrV4::new(me, METRICS_PORT)));
    if !svc.l4 {
        let _ = writeln!(s, "default_pool = \"backends\"");
    }
    let _ = writeln!(s, "\n[head]\ntimeout_ms = {}", o.head_timeout_ms);
    let _ = writeln!(s, "\n[heartbeat]");
    let lbs: Vec<String> = heartbeat_targets(plan)
        .into_iter()
        .map(|a| q(SocketAddrV4::new(a, HEARTBEAT_PORT)))
        .collect();
    let _ = writeln!(s, "lb = [{}]", lbs.join(", "));
    let _ = writeln!(s, "interval_ms = {}", o.heartbeat_ms);
    let _ = writeln!(s, "\n[replication]");
    let _ = writeln!(s, "listen = {}", q(SocketAddrV4::new(me, REPLICATION_PORT)));
    let _ = writeln!(s, "psk_file = {}", q(&o.psk_file));
    for j in (0..plan.proxies).filter(|&j| j != i) {
        let _ = writeln!(
            s,
            "[[replication.peers]]\nid = {}\naddr = {}",
            j + 1,
            q(SocketAddrV4::new(plan.proxy(j), REPLICATION_PORT))
        );
    }
    if o.split {
        for b in 0..plan.backends {
            let _ = writeln!(
                s,
                "[[replication.peers]]\nid = {}\naddr = {}\nagent = true",
                plan.agent_id(b),
                q(SocketAddrV4::new(plan.backend(b), REPLICATION_PORT))
            );
        }
    }
    let backends: Vec<String> = (0..plan.backends)
        .map(|b| q(SocketAddrV4::new(plan.backend(b), svc.backend_port)))
        .collect();
    let _ = writeln!(s, "\n[[pool]]\nname = \"backends\"");
    let _ = writeln!(s, "backends = [{}]", backends.join(", "));
    if svc.l4 {
        let _ = writeln!(
            s,
            "\n[[l4_route]]\nlisten = {}\npool = \"backends\"",
            q(SocketAddrV4::new(plan.vip(), svc.vip_port))
        );
    }
    let _ = writeln!(s, "\n[log]\nformat = \"json\"");
    s
}

/// `agent.toml` of backend `b`.
pub fn agent(plan: &Plan, b: usize, svc: &Service, o: &ConfigOptions) -> String {
    let me = plan.backend(b);
    let mut s = String::new();
    let _ = writeln!(s, "id = {}", plan.agent_id(b));
    let _ = writeln!(
        s,
        "backend = {}",
        q(SocketAddrV4::new(me, svc.backend_port))
    );
    let _ = writeln!(
        s,
        "vip = {}",
        q(SocketAddrV4::new(plan.vip(), svc.vip_port))
    );
    let _ = writeln!(s, "interface = {}", q(DEV));
    let _ = writeln!(s, "metrics = {}", q(SocketAddrV4::new(me, METRICS_PORT)));
    let _ = writeln!(s, "\n[replication]");
    let _ = writeln!(s, "listen = {}", q(SocketAddrV4::new(me, REPLICATION_PORT)));
    let _ = writeln!(s, "psk_file = {}", q(&o.psk_file));
    for j in 0..plan.proxies {
        let _ = writeln!(
            s,
            "[[replication.peers]]\nid = {}\naddr = {}",
            j + 1,
            q(SocketAddrV4::new(plan.proxy(j), REPLICATION_PORT))
        );
    }
    let _ = writeln!(s, "\n[log]\nformat = \"json\"");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_daemon::config::Source;
    use ftsplice_daemon::config::{AgentConfig, LbConfig, ProxyConfig};

    fn opts(dir: &std::path::Path, split: bool) -> ConfigOptions {
        let psk = dir.join("psk");
        std::fs::write(&psk, "ab".repeat(32)).unwrap();
        ConfigOptions {
            heartbeat_ms: 10,
            misses: 3,
            psk_file: psk.display().to_string(),
            split,
            head_timeout_ms: 5000,
        }
    }

    fn http() -> Service {
        Service {
            vip_port: 80,
            backend_port: 80,
            l4: false,
        }
    }

    #[test]
    fn generated_configs_pass_the_daemons_validation() {
        let dir = std::env::temp_dir().join(ftsplice_linux::unique_name("cfgtest"));
        std::fs::create_dir_all(&dir).unwrap();
        let plan = Plan::new(3, 2, 2).unwrap();
        let o = opts(&dir, true);
        for role in [LbRole::Primary, LbRole::Backup, LbRole::Gateway] {
            let text = lb(&plan, role, &o);
            let c = LbConfig::from_source(&Source::new("lb.toml", text.clone()))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(c.proxies.len(), 3);
            assert_eq!(c.heartbeat_interval.as_millis(), 10);
            let want = if role == LbRole::Gateway {
                plan.ssa()
            } else {
                plan.vip()
            };
            assert_eq!(c.vip, want);
            assert_eq!(c.peer.is_some(), role != LbRole::Gateway);
            assert_eq!(c.proxies[0].ssa_ports.is_some(), role == LbRole::Gateway);
        }
        for i in 0..3 {
            let text = proxy(&plan, i, &http(), &o);
            let c = ProxyConfig::from_source(&Source::new("proxy.toml", text.clone()))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(c.id as usize, i + 1);
            let r = c.replication.unwrap();
            // Two other proxies and both agents.
            assert_eq!(r.peers.len(), 4);
            assert_eq!(r.peers.iter().filter(|p| p.agent).count(), 2);
            assert!(r.peers.iter().all(|p| p.id as usize != i + 1));
            assert_eq!(r.psk, [0xab; 32]);
            assert_eq!(c.heartbeat.unwrap().lb.len(), 3);
            assert_eq!(c.pools[0].backends.len(), 2);
            assert_eq!(*c.ssa_ports.start(), plan.ssa_ports(i).0);
        }
        for b in 0..2 {
            let text = agent(&plan, b, &http(), &o);
            let c = AgentConfig::from_source(&Source::new("agent.toml", text.clone()))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(c.backend.ip(), &plan.backend(b));
            assert_eq!(c.replication.peers.len(), 3);
        }
        let text = proxy(&plan, 0, &http(), &opts(&dir, false));
        let c = ProxyConfig::from_source(&Source::new("proxy.toml", text)).unwrap();
        assert_eq!(c.replication.unwrap().peers.len(), 2);
        assert!(c.l4_routes.is_empty());
        // iperf3: an L4 route on VIP:5201, HTTP left on VIP:80.
        let iperf = Service {
            vip_port: 5201,
            backend_port: 5201,
            l4: true,
        };
        let text = proxy(&plan, 0, &iperf, &o);
        let c = ProxyConfig::from_source(&Source::new("proxy.toml", text.clone()))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.vip.port(), 80);
        assert_eq!(c.default_pool, None);
        assert_eq!(c.l4_routes.len(), 1);
        assert_eq!(c.l4_routes[0].listen, SocketAddrV4::new(plan.vip(), 5201));
        assert_eq!(c.pools[0].backends[0].port(), 5201);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

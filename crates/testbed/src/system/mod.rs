//! The full ftsplice system in namespaces: one switch (a namespace holding
//! a Linux bridge, the paper's one-switch testbed), clients, a primary and a
//! backup lb owning the VIP, an SSA gateway (an lb instance owning the SSA,
//! the stateless hop that brings backend->SSA packets to a live proxy), N
//! proxies with the VIP and the SSA on `lo`, and backends running nginx
//! (and iperf3 on demand), optionally with a split-splice agent. Addresses:
//! [`plan`]; configs: [`configs`]; daemons run as supervised children
//! ([`process`]) of this process's own binary, logs in the run directory.
//!
//! Dropping a [`System`] kills every daemon and server (they are fields
//! declared before the topology), then deletes every namespace; a process
//! that dies without dropping leaves namespaces `ftsplice testbed down`
//! removes.

pub mod configs;
pub mod plan;
pub mod process;

use crate::nginx::Nginx;
use anyhow::{bail, Context, Result};
use configs::{ConfigOptions, LbRole, Service, DEV};
use ftsplice_linux::{unique_name, NetNs, Offloads, Topology};
use plan::{Plan, HTTP_PORT, IPERF_PORT, METRICS_PORT, PREFIX};
use process::Proc;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Path (under nginx's root) of the sparse bulk file ([`Spec::big_file`]).
pub const BIG_FILE: &str = "big.bin";

/// The sparse bulk file, on tmpfs (`/dev/shm`) where there is one: a hole
/// there is sent as the shared zero page, so every read costs the same. On
/// a disk file system the first read of each page allocates and zeroes it
/// and later reads hit the page cache, so a measurement would depend on how
/// far earlier ones read. Removed on drop.
pub struct BigFile {
    pub path: PathBuf,
}

impl BigFile {
    fn create(len: u64, fallback_dir: &Path) -> Result<BigFile> {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { shm } else { fallback_dir };
        let path = dir.join(unique_name("big"));
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(len))
            .with_context(|| format!("creating the sparse file {}", path.display()))?;
        Ok(BigFile { path })
    }
}

impl Drop for BigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the proxies splice to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// VIP:80 -> nginx on backend:80.
    Http,
    /// VIP:5201 -> backend:5201 as an L4 route (no request head read),
    /// where iperf3 runs when a scenario starts it (nginx still runs on
    /// backend:80; HTTP to VIP:80 gets 503).
    Iperf,
}

/// The shape of a system.
#[derive(Clone, Debug)]
pub struct Spec {
    pub proxies: usize,
    pub clients: usize,
    pub backends: usize,
    /// Agents on the backends (split splice).
    pub split: bool,
    /// Start the ftsplice daemons (false: the network and servers only).
    pub daemons: bool,
    pub service: ServiceKind,
    pub heartbeat_ms: u64,
    pub misses: u32,
    /// Files nginx serves (`files/<i>.bin`).
    pub files: Vec<Vec<u8>>,
    /// Length of a sparse file nginx serves as [`BIG_FILE`] (bulk GETs).
    pub big_file: Option<u64>,
    /// Add the bench-only router and HAProxy hosts.
    pub bench_hosts: bool,
    /// Offloads of every veth (the bench: [`Offloads::Default`]).
    pub offloads: Offloads,
    /// The `ftsplice` binary the daemons are started from.
    pub bin: PathBuf,
}

impl Spec {
    pub fn new(bin: &Path) -> Spec {
        Spec {
            proxies: 2,
            clients: 1,
            backends: 1,
            split: false,
            daemons: true,
            service: ServiceKind::Http,
            heartbeat_ms: 10,
            misses: 3,
            files: Vec::new(),
            big_file: None,
            bench_hosts: false,
            offloads: Offloads::Off,
            bin: bin.to_path_buf(),
        }
    }
}

/// A directory for configs and logs, removed on drop unless kept.
pub struct RunDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Node indices into the topology.
#[derive(Clone, Debug, Default)]
pub struct Nodes {
    pub switch: usize,
    pub lb: usize,
    pub backup_lb: usize,
    pub gateway: usize,
    pub proxies: Vec<usize>,
    pub clients: Vec<usize>,
    pub backends: Vec<usize>,
    pub router: Option<usize>,
    pub haproxy: Option<usize>,
}

/// A running system. Field order is drop order: processes first.
pub struct System {
    pub daemons: Vec<Proc>,
    pub nginx: Vec<Nginx>,
    pub big_file: Option<BigFile>,
    pub topo: Topology,
    pub plan: Plan,
    pub nodes: Nodes,
    pub spec: Spec,
    pub run: RunDir,
}

fn sysctls(ns: &NetNs, kv: &[(&str, &str)]) -> Result<()> {
    let args: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut all = vec!["-q", "-w"];
    all.extend(args.iter().map(String::as_str));
    ns.exec("sysctl", &all)?;
    Ok(())
}

/// Loose reverse-path and redirect settings every host of the LAN gets: a
/// spliced packet's source (the VIP, the SSA) is not where a strict
/// reverse-path check expects it.
const HOST_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.accept_redirects", "0"),
    ("net.ipv4.conf.all.send_redirects", "0"),
];

/// Holders of the VIP/SSA on `lo` that must not answer ARP for them, nor use
/// them as ARP sources (the LVS direct-routing settings).
const HIDDEN_VIP_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
];

fn add_lo(ns: &NetNs, addr: Ipv4Addr) -> Result<()> {
    ftsplice_linux::check_test_addr(addr)?;
    ns.ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"])?;
    Ok(())
}

impl System {
    /// Builds the network, starts the servers and (if `spec.daemons`) the
    /// daemons, and waits until they are ready.
    pub fn up(spec: Spec) -> Result<System> {
        let plan =
            Plan::new(spec.proxies, spec.clients, spec.backends).map_err(anyhow::Error::msg)?;
        let run = RunDir {
            path: std::env::temp_dir().join(unique_name("run")),
            keep: false,
        };
        std::fs::create_dir_all(&run.path)?;
        let mut t = Topology::with_offloads(spec.offloads);
        let mut n = Nodes {
            switch: t.add_switch("sw")?,
            ..Nodes::default()
        };
        let host = |t: &mut Topology, tag: &str, addr: Ipv4Addr| -> Result<usize> {
            let i = t.add_node(tag)?;
            t.attach(i, n.switch, addr, PREFIX)?;
            sysctls(t.node(i), HOST_SYSCTLS)?;
            Ok(i)
        };
        n.lb = host(&mut t, "lb", plan.lb())?;
        n.backup_lb = host(&mut t, "lb2", plan.backup_lb())?;
        n.gateway = host(&mut t, "gw", plan.gateway())?;
        for i in 0..plan.proxies {
            n.proxies
                .push(host(&mut t, &format!("p{}", i + 1), plan.proxy(i))?);
        }
        for i in 0..plan.clients {
            n.clients
                .push(host(&mut t, &format!("c{}", i + 1), plan.client(i))?);
        }
        for i in 0..plan.backends {
            n.backends
                .push(host(&mut t, &format!("b{}", i + 1), plan.backend(i))?);
        }
        if spec.bench_hosts {
            n.router = Some(host(&mut t, "rt", plan.router())?);
            n.haproxy = Some(host(&mut t, "hap", plan.haproxy())?);
        }
        // The lbs hold no VIP/SSA: the active one answers ARP for it
        // itself (docs/daemons.md), so a killed lb leaves nothing behind.
        for (i, &p) in n.proxies.iter().enumerate() {
            add_lo(t.node(p), plan.vip())?;
            add_lo(t.node(p), plan.ssa())?;
            sysctls(t.node(p), HIDDEN_VIP_SYSCTLS)?;
            sysctls(
                t.node(p),
                &[(&format!("net.ipv4.conf.{DEV}.send_redirects"), "0")],
            )?;
            // The data plane forwards with bpf_fib_lookup, which needs it
            // (docs/daemons.md).
            t.forward(p)?;
            route_ssa_ports_to_owners(t.node(p), &plan, i)?;
            drop_kernel_resets(t.node(p), &plan, &run.path)?;
        }
        if spec.split {
            for &b in &n.backends {
                t.forward(b)?;
            }
        }
        if let Some(r) = n.router {
            setup_routed_path(&t, &plan, r, n.clients[0], n.backends[0])?;
        }
        let big_file = match spec.big_file {
            Some(len) => Some(BigFile::create(len, &run.path)?),
            None => None,
        };
        let mut nginx = Vec::new();
        {
            let names: Vec<String> = (0..spec.files.len())
                .map(|i| format!("files/{i}.bin"))
                .collect();
            let files: Vec<(&str, &[u8])> = names
                .iter()
                .map(String::as_str)
                .zip(spec.files.iter().map(Vec::as_slice))
                .collect();
            for (i, &b) in n.backends.iter().enumerate() {
                let mut addrs = vec![SocketAddrV4::new(plan.backend(i), HTTP_PORT)];
                if i == 0 && n.router.is_some() {
                    addrs.push(SocketAddrV4::new(plan.routed_backend(), HTTP_PORT));
                }
                let ng = Nginx::start_on(t.node(b), &addrs, &files)?;
                if let Some(big) = &big_file {
                    std::os::unix::fs::symlink(&big.path, ng.dir().join("www").join(BIG_FILE))?;
                }
                nginx.push(ng);
            }
        }
        let mut sys = System {
            daemons: Vec::new(),
            nginx,
            big_file,
            topo: t,
            plan,
            nodes: n,
            spec,
            run,
        };
        if sys.spec.daemons {
            sys.start_daemons()?;
        }
        Ok(sys)
    }

    fn service(&self) -> Service {
        match self.spec.service {
            ServiceKind::Http => Service {
                vip_port: HTTP_PORT,
                backend_port: HTTP_PORT,
                l4: false,
            },
            ServiceKind::Iperf => Service {
                vip_port: IPERF_PORT,
                backend_port: IPERF_PORT,
                l4: true,
            },
        }
    }

    fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.run.path.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }

    fn start_daemons(&mut self) -> Result<()> {
        let psk = self.write("replication.psk", &random_hex32()?)?;
        let o = ConfigOptions {
            heartbeat_ms: self.spec.heartbeat_ms,
            misses: self.spec.misses,
            psk_file: psk.display().to_string(),
            split: self.spec.split,
            head_timeout_ms: 5000,
        };
        let svc = self.service();
        let bin = self.spec.bin.clone();
        let mut to_start: Vec<(usize, String, &str, PathBuf, Ipv4Addr)> = Vec::new();
        for (role, name, node, me) in [
            (LbRole::Primary, "lb", self.nodes.lb, self.plan.lb()),
            (
                LbRole::Backup,
                "lb2",
                self.nodes.backup_lb,
                self.plan.backup_lb(),
            ),
            (
                LbRole::Gateway,
                "gw",
                self.nodes.gateway,
                self.plan.gateway(),
            ),
        ] {
            let cfg = self.write(&format!("{name}.toml"), &configs::lb(&self.plan, role, &o))?;
            to_start.push((node, name.into(), "lb", cfg, me));
        }
        for i in 0..self.plan.proxies {
            let name = format!("proxy{}", i + 1);
            let cfg = self.write(
                &format!("{name}.toml"),
                &configs::proxy(&self.plan, i, &svc, &o),
            )?;
            to_start.push((
                self.nodes.proxies[i],
                name,
                "proxy",
                cfg,
                self.plan.proxy(i),
            ));
        }
        if self.spec.split {
            for b in 0..self.plan.backends {
                let name = format!("agent{}", b + 1);
                let cfg = self.write(
                    &format!("{name}.toml"),
                    &configs::agent(&self.plan, b, &svc, &o),
                )?;
                to_start.push((
                    self.nodes.backends[b],
                    name,
                    "agent",
                    cfg,
                    self.plan.backend(b),
                ));
            }
        }
        for (node, name, role, cfg, _) in &to_start {
            let cfg = cfg.display().to_string();
            let p = Proc::spawn(
                self.topo.node(*node),
                &self.run.path,
                name,
                &bin,
                &[role, "--config", &cfg],
            )?;
            self.daemons.push(p);
        }
        // Ready when each daemon's metrics endpoint answers.
        for (k, (node, _, _, _, me)) in to_start.iter().enumerate() {
            let ns = self.topo.node(*node);
            let addr = SocketAddrV4::new(*me, METRICS_PORT);
            let proc = &mut self.daemons[k];
            proc.wait_ready(Duration::from_secs(20), || port_open(ns, addr))?;
        }
        // Traffic may start once the gateway and one of the lb pair are
        // active and forward to every proxy (their tables hold them all).
        let n = self.plan.proxies as f64;
        let full = |m: &str| {
            metric(m, "ftsplice_lb_table_proxies") == Some(n)
                && metric(m, "ftsplice_lb_active") == Some(1.0)
        };
        let gw = (self.topo.node(self.nodes.gateway), self.plan.gateway());
        let lbs = [
            (self.topo.node(self.nodes.lb), self.plan.lb()),
            (self.topo.node(self.nodes.backup_lb), self.plan.backup_lb()),
        ];
        let proc = self
            .daemons
            .iter_mut()
            .find(|d| d.name == "gw")
            .context("no gateway daemon")?;
        proc.wait_ready(Duration::from_secs(20), || {
            scrape(gw.0, SocketAddrV4::new(gw.1, METRICS_PORT)).is_some_and(|m| full(&m))
                && lbs.iter().any(|(ns, a)| {
                    scrape(ns, SocketAddrV4::new(*a, METRICS_PORT)).is_some_and(|m| full(&m))
                })
        })
        .with_context(|| {
            format!("the gateway and an lb never both forwarded to all {n} proxies")
        })?;
        self.check()
    }

    /// The lb of the pair that owns the VIP now (`lb` or `lb2`), from
    /// their metrics.
    pub fn active_lb(&self) -> Result<&'static str> {
        for (name, node, me) in [
            ("lb", self.nodes.lb, self.plan.lb()),
            ("lb2", self.nodes.backup_lb, self.plan.backup_lb()),
        ] {
            let m = scrape(self.topo.node(node), SocketAddrV4::new(me, METRICS_PORT));
            if m.is_some_and(|m| metric(&m, "ftsplice_lb_active") == Some(1.0)) {
                return Ok(name);
            }
        }
        bail!("no lb is active")
    }

    /// An error if a daemon died without being killed by us.
    pub fn check(&mut self) -> Result<()> {
        for d in &mut self.daemons {
            d.check()?;
        }
        Ok(())
    }

    /// The daemon called `name` (`lb`, `lb2`, `gw`, `proxyN`, `agentN`).
    pub fn daemon(&mut self, name: &str) -> Result<&mut Proc> {
        self.daemons
            .iter_mut()
            .find(|d| d.name == name)
            .with_context(|| format!("no daemon {name}"))
    }

    pub fn ns(&self, node: usize) -> &NetNs {
        self.topo.node(node)
    }

    pub fn clients(&self) -> Vec<&NetNs> {
        self.nodes
            .clients
            .iter()
            .map(|&c| self.topo.node(c))
            .collect()
    }

    /// Namespaces, addresses, logs and example commands (`testbed up`).
    pub fn describe(&self) -> String {
        let p = &self.plan;
        let mut s = String::new();
        let mut row = |role: &str, node: usize, addr: String| {
            s.push_str(&format!(
                "  {role:<10} {:<28} {addr}\n",
                self.topo.node(node).name()
            ));
        };
        row(
            "switch",
            self.nodes.switch,
            format!("bridge {}", ftsplice_linux::BRIDGE),
        );
        row("lb", self.nodes.lb, format!("{} (VIP {})", p.lb(), p.vip()));
        row("lb backup", self.nodes.backup_lb, p.backup_lb().to_string());
        row(
            "gateway",
            self.nodes.gateway,
            format!("{} (SSA {})", p.gateway(), p.ssa()),
        );
        for (i, &n) in self.nodes.proxies.iter().enumerate() {
            row(
                &format!("proxy{}", i + 1),
                n,
                format!("{} (+VIP, SSA on lo)", p.proxy(i)),
            );
        }
        for (i, &n) in self.nodes.clients.iter().enumerate() {
            row(&format!("client{}", i + 1), n, p.client(i).to_string());
        }
        for (i, &n) in self.nodes.backends.iter().enumerate() {
            row(
                &format!("backend{}", i + 1),
                n,
                format!("{} (nginx :80, PUT /up/)", p.backend(i)),
            );
        }
        let c = self.topo.node(self.nodes.clients[0]).name();
        s.push_str(&format!(
            "run directory (configs, daemon logs): {}\n\
             examples:\n\
             \x20 ip netns exec {c} curl -s http://{vip}/files/0.bin | sha256sum\n\
             \x20 ip netns exec {c} curl -s -T /etc/os-release http://{vip}/up/x\n\
             \x20 kill -9 <pid of proxy1 below>   # the proxy-crash fault\n\
             \x20 ftsplice testbed down            # removes everything\n",
            self.run.path.display(),
            vip = p.vip()
        ));
        for d in &self.daemons {
            s.push_str(&format!(
                "  {:<8} pid {:<8} log {}\n",
                d.name,
                d.pid(),
                d.log_path().display()
            ));
        }
        s
    }
}

/// The bench's kernel-forwarding path: backend 0 also owns
/// [`Plan::routed_backend`] (on `lo`); the client reaches it only via the
/// router, and the backend answers from it only via the router (a policy
/// rule), so both directions cross one forwarding hop.
fn setup_routed_path(
    t: &Topology,
    plan: &Plan,
    router: usize,
    client: usize,
    backend: usize,
) -> Result<()> {
    let alt = plan.routed_backend();
    let rt = t.node(router);
    t.forward(router)?;
    sysctls(rt, &[(&format!("net.ipv4.conf.{DEV}.send_redirects"), "0")])?;
    rt.ip(&[
        "route",
        "add",
        &format!("{alt}/32"),
        "via",
        &plan.backend(0).to_string(),
    ])?;
    let b = t.node(backend);
    add_lo(b, alt)?;
    b.ip(&["rule", "add", "from", &alt.to_string(), "table", "100"])?;
    b.ip(&[
        "route",
        "add",
        "default",
        "via",
        &plan.router().to_string(),
        "table",
        "100",
    ])?;
    t.node(client).ip(&[
        "route",
        "add",
        &format!("{alt}/32"),
        "via",
        &plan.router().to_string(),
    ])?;
    Ok(())
}

/// `GET /metrics` of a daemon's Prometheus endpoint, from inside `ns`.
pub fn scrape(ns: &NetNs, addr: SocketAddrV4) -> Option<String> {
    use std::io::{Read, Write};
    ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    })
    .ok()
    .flatten()
}

/// The value of the first sample of `name` (any labels) in a Prometheus
/// text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = match rest.chars().next()? {
            '{' => &rest[rest.find('}')? + 1..],
            ' ' => rest,
            _ => return None,
        };
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The value of the first sample of `name` whose labels contain `label`
/// (e.g. `result="bad_head"`).
pub fn metric_with(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The pre-splice owner rule for backend->SSA packets: the SSA gateway
/// picks a proxy by flow hash, which is usually not the proxy whose port
/// partition holds the connection's SSA port (the one with the socket). On
/// proxy `me`, a packet to `SSA:port` of another proxy's partition that
/// reaches the stack is necessarily unspliced (spliced packets are
/// translated on TC ingress, before routing), so policy routing forwards it
/// to the port's owner, ahead of local delivery (the `local` table rule
/// moves behind ours).
fn route_ssa_ports_to_owners(ns: &NetNs, plan: &Plan, me: usize) -> Result<()> {
    let ssa = format!("{}/32", plan.ssa());
    ns.ip(&["rule", "add", "pref", "1000", "lookup", "local"])?;
    ns.ip(&["rule", "del", "pref", "0"])?;
    for j in (0..plan.proxies).filter(|&j| j != me) {
        let (lo, hi) = plan.ssa_ports(j);
        let table = (100 + j).to_string();
        ns.ip(&[
            "route",
            "add",
            &ssa,
            "via",
            &plan.proxy(j).to_string(),
            "dev",
            DEV,
            "table",
            &table,
        ])?;
        ns.ip(&[
            "rule",
            "add",
            "pref",
            "100",
            "to",
            &ssa,
            "ipproto",
            "tcp",
            "dport",
            &format!("{lo}-{hi}"),
            "lookup",
            &table,
        ])?;
    }
    Ok(())
}

/// A proxy's own kernel must not reset spliced connections: once its
/// daemon is killed (the proxy-crash fault) the splices leave its data
/// plane, but its kernel stays up and, until the lbs notice, receives the
/// connections' packets; with no socket for them it would answer RST from
/// the VIP or SSA and break them. Dropping locally generated RSTs from those
/// addresses (netfilter output hook; translated packets are redirected by
/// the data plane and never pass it) leaves the packets unanswered, so the
/// endpoints retransmit through a live proxy. Except the resets of
/// orphans (`proto::orphan`): a live data plane marks a client ACK that
/// no proxy can serve any more (its pre-splice proxy died) with
/// `ORPHAN_MARK`, and with `fwmark_reflect` the kernel's reset carries the
/// mark, so that client fails fast instead of hanging. A killed daemon's
/// data plane is gone and marks nothing.
fn drop_kernel_resets(ns: &NetNs, plan: &Plan, dir: &Path) -> Result<()> {
    sysctls(ns, &[("net.ipv4.fwmark_reflect", "1")])?;
    let rules = format!(
        "table ip ftsplice {{\n\
         \x20 chain out {{\n\
         \x20   type filter hook output priority 0; policy accept;\n\
         \x20   ip saddr {{ {}, {} }} tcp flags & rst == rst meta mark != {:#x} drop\n\
         \x20 }}\n\
         }}\n",
        plan.vip(),
        plan.ssa(),
        ftsplice_linux::bpf_abi::ORPHAN_MARK
    );
    let file = dir.join(format!("{}.nft", ns.name()));
    std::fs::write(&file, rules)?;
    ns.exec("nft", &["-f", &file.display().to_string()])
        .context("nft (package nftables, see scripts/setup.sh)")?;
    Ok(())
}

/// Whether a TCP connect to `addr` from inside `ns` succeeds.
pub fn port_open(ns: &NetNs, addr: SocketAddrV4) -> bool {
    ns.run(move || TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_ok())
        .unwrap_or(false)
}

/// 32 random bytes as 64 hex digits, from the kernel.
fn random_hex32() -> Result<String> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    if key == [0; 32] {
        bail!("/dev/urandom gave zeros");
    }
    Ok(key.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_samples() {
        let m = "# HELP ftsplice_lb_active x\n# TYPE ftsplice_lb_active gauge\n\
                 ftsplice_lb_active 1\n\
                 ftsplice_lb_active_other 7\n\
                 ftsplice_lb_proxy_up{proxy=\"1\"} 1\n\
                 ftsplice_lb_table_proxies 2\n";
        assert_eq!(metric(m, "ftsplice_lb_active"), Some(1.0));
        assert_eq!(metric(m, "ftsplice_lb_table_proxies"), Some(2.0));
        assert_eq!(metric(m, "ftsplice_lb_proxy_up"), Some(1.0));
        assert_eq!(metric(m, "ftsplice_lb"), None);
        assert_eq!(metric(m, "missing"), None);
        let c = "x_total{result=\"spliced\"} 5\nx_total{result=\"bad_head\"} 2\n";
        assert_eq!(metric_with(c, "x_total", "result=\"bad_head\""), Some(2.0));
        assert_eq!(metric_with(c, "x_total", "result=\"lost\""), None);
    }
}

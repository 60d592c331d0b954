//! `proxy.toml`: service address, shared splice address and this proxy's
//! port partition, request-head limits, heartbeats to the lb(s), the
//! replication channel, backend pools and L7 routing rules.
//!
//! ```toml
//! id = 1
//! vip = "198.18.0.10:80"
//! ssa = "198.18.4.1"
//! ssa_ports = "40000-44999"
//! ssa_bind = "local"             # or "freebind", "transparent"
//! mss_clamp = 1400
//! interface = ["e0", "e1"]       # data-plane device(s) (BPF attach), or "e0"
//! metrics = "198.18.2.1:9100"
//! default_pool = "web"
//!
//! [head]
//! max_bytes = 8192
//! timeout_ms = 5000
//!
//! [heartbeat]
//! lb = ["198.18.1.1:7000"]
//! interval_ms = 10
//!
//! [replication]
//! listen = "198.18.2.1:7100"
//! psk = "<64 hex digits>"
//! ack_timeout_ms = 200
//! [[replication.peers]]
//! id = 2
//! addr = "198.18.2.2:7100"
//! ssa_ports = "45000-49999"      # its partition: pre-splice packets to
//!                                # these SSA ports are forwarded to it
//! [[replication.peers]]          # a backend's split-splice agent:
//! id = 100                       # gets creates/deletes, never counts
//! addr = "198.18.3.2:7100"       # as the ack a creation waits for
//! agent = true
//!
//! [teardown]                     # optional; defaults shown
//! linger_ms = 60000              # splice kept after FINs both ways
//! idle_ms = 300000               # splice deleted after this long unused
//! tick_ms = 1000                 # teardown timer period
//!
//! [[pool]]
//! name = "web"
//! backends = ["198.18.3.2:80"]
//! policy = "round-robin"         # or "hash"
//!
//! [[route]]
//! host = "*.example.com"         # exact, "*.suffix", or absent = any
//! path_prefix = "/api"
//! method = "GET"
//! pool = "web"
//!
//! [[l4_route]]                   # non-HTTP: no request head is read
//! listen = "198.18.0.10:5201"    # accepted here, spliced to the pool
//! pool = "web"
//! ```

use super::common::*;
use core::ops::RangeInclusive;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// How the proxy sources backend connections from the shared splice address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsaBind {
    /// `IP_FREEBIND`: bind to the SSA before the interface holding it is
    /// up (the kernel still refuses to route from an address no interface
    /// has, so the SSA must be assigned by the time of connect).
    Freebind,
    /// `IP_TRANSPARENT`: connect from the SSA without it being local
    /// (CAP_NET_ADMIN; replies need policy routing to be delivered locally).
    Transparent,
    /// The SSA is assigned on a local interface (e.g. `lo`, like the VIP on
    /// every proxy); plain bind. The default.
    Local,
}

/// Request-head limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadConfig {
    pub max_bytes: usize,
    pub max_headers: usize,
    /// From accept to a complete head.
    pub timeout: Duration,
}

/// Where heartbeats go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatTarget {
    /// The lb and its backups.
    pub lb: Vec<SocketAddrV4>,
    pub interval: Duration,
    /// Workload factor announced (share of capacity, 1..=1000).
    pub workload: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationPeer {
    pub id: u16,
    pub addr: SocketAddrV4,
    /// A split-splice agent (receive-only), not a proxy.
    pub agent: bool,
    /// The peer proxy's partition of SSA ports, if given.
    pub ssa_ports: Option<RangeInclusive<u16>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    pub listen: SocketAddrV4,
    /// Pre-shared key authenticating every replication message.
    pub psk: [u8; 32],
    pub peers: Vec<ReplicationPeer>,
    /// How long a splice creation waits for the first peer ack.
    pub ack_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolPolicy {
    RoundRobin,
    Hash,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub backends: Vec<SocketAddrV4>,
    pub policy: PoolPolicy,
}

/// One L7 rule; absent conditions match anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRule {
    /// Exact host, or `*.suffix` (the domain and its subdomains).
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub method: Option<String>,
    pub pool: String,
}

/// An L4 route: connections accepted on `listen` go to `pool` without
/// reading anything from the client (for protocols that are not HTTP, or
/// where the server speaks first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L4Route {
    pub listen: SocketAddrV4,
    pub pool: String,
}

/// Splice teardown timers (`proto::teardown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TeardownTimers {
    pub linger: Duration,
    pub idle: Duration,
    pub tick: Duration,
}

/// A validated `proxy.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub id: u16,
    pub vip: SocketAddrV4,
    pub ssa: Ipv4Addr,
    pub ssa_ports: RangeInclusive<u16>,
    pub ssa_bind: SsaBind,
    /// MSS set on backend connections (`TCP_MAXSEG`) so spliced segments
    /// fit both paths.
    pub mss_clamp: Option<u16>,
    /// Devices the data plane attaches to (TC ingress); empty: none.
    pub interfaces: Vec<String>,
    pub metrics: Option<SocketAddrV4>,
    pub head: HeadConfig,
    pub heartbeat: Option<HeartbeatTarget>,
    pub replication: Option<ReplicationConfig>,
    pub pools: Vec<Pool>,
    pub routes: Vec<RouteRule>,
    /// Listeners spliced by address alone (no request head).
    pub l4_routes: Vec<L4Route>,
    pub default_pool: Option<String>,
    /// Largest number of splice creations in flight.
    pub max_pending: usize,
    pub teardown: TeardownTimers,
    pub log: LogConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: Spanned<u16>,
    vip: Spanned<String>,
    ssa: Spanned<String>,
    ssa_ports: Spanned<String>,
    ssa_bind: Option<Spanned<String>>,
    mss_clamp: Option<Spanned<u16>>,
    interface: Option<Spanned<OneOrMany>>,
    metrics: Option<Spanned<String>>,
    default_pool: Option<Spanned<String>>,
    max_pending: Option<Spanned<u32>>,
    #[serde(default)]
    head: RawHead,
    heartbeat: Option<RawHeartbeat>,
    replication: Option<RawReplication>,
    #[serde(default)]
    pool: Vec<RawPool>,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    l4_route: Vec<RawL4Route>,
    #[serde(default)]
    teardown: RawTeardown,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTeardown {
    linger_ms: Option<Spanned<u64>>,
    idle_ms: Option<Spanned<u64>>,
    tick_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHead {
    max_bytes: Option<Spanned<u32>>,
    max_headers: Option<Spanned<u32>>,
    timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    lb: Spanned<Vec<Spanned<String>>>,
    interval_ms: Option<Spanned<u64>>,
    workload: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplication {
    listen: Spanned<String>,
    psk: Option<Spanned<String>>,
    psk_file: Option<Spanned<String>>,
    ack_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    peers: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    id: Spanned<u16>,
    addr: Spanned<String>,
    #[serde(default)]
    agent: bool,
    ssa_ports: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    name: Spanned<String>,
    backends: Spanned<Vec<Spanned<String>>>,
    policy: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    host: Option<Spanned<String>>,
    path_prefix: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    pool: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawL4Route {
    listen: Spanned<String>,
    pool: Spanned<String>,
}

impl ProxyConfig {
    pub fn load(path: &Path) -> Result<ProxyConfig, ConfigError> {
        ProxyConfig::from_source(&Source::read(path)?)
    }

    pub fn from_source(src: &Source) -> Result<ProxyConfig, ConfigError> {
        let raw: Raw = src.parse()?;
        let id = within(src, &raw.id, "id", 1, u16::MAX)?;
        let vip = service_addr(src, &raw.vip, "vip")?;
        let ssa = ip_addr(src, &raw.ssa, "ssa")?;
        let ssa_ports = port_range(src, &raw.ssa_ports, "ssa_ports")?;
        let ssa_bind = match &raw.ssa_bind {
            None => SsaBind::Local,
            Some(v) => match v.get_ref().as_str() {
                "freebind" => SsaBind::Freebind,
                "transparent" => SsaBind::Transparent,
                "local" => SsaBind::Local,
                o => {
                    return Err(src.err(
                        v.span(),
                        "ssa_bind",
                        format!("'{o}' is not one of 'freebind', 'transparent', 'local'"),
                    ))
                }
            },
        };
        let mss_clamp = raw
            .mss_clamp
            .as_ref()
            .map(|v| within(src, v, "mss_clamp", 536, 9000))
            .transpose()?;
        let interfaces = match &raw.interface {
            None => Vec::new(),
            Some(v) => ifnames(src, v, "interface")?,
        };
        let metrics = raw
            .metrics
            .as_ref()
            .map(|v| sock_addr(src, v, "metrics"))
            .transpose()?;
        let head = HeadConfig {
            max_bytes: opt_within(
                src,
                &raw.head.max_bytes,
                "head.max_bytes",
                256,
                65_536,
                8192,
            )? as usize,
            max_headers: opt_within(src, &raw.head.max_headers, "head.max_headers", 1, 1000, 100)?
                as usize,
            timeout: Duration::from_millis(opt_within(
                src,
                &raw.head.timeout_ms,
                "head.timeout_ms",
                1,
                600_000,
                5000,
            )?),
        };
        let heartbeat = raw
            .heartbeat
            .as_ref()
            .map(|h| validate_heartbeat(src, h))
            .transpose()?;
        let replication = raw
            .replication
            .as_ref()
            .map(|r| validate_replication(src, r, id))
            .transpose()?;
        if let (Some(r), Some(rr)) = (&replication, &raw.replication) {
            for (p, raw_p) in r.peers.iter().zip(&rr.peers) {
                let Some(theirs) = &p.ssa_ports else { continue };
                if theirs.start() <= ssa_ports.end() && ssa_ports.start() <= theirs.end() {
                    let span = raw_p.ssa_ports.as_ref().map_or(0..0, |v| v.span());
                    return Err(src.err(
                        span,
                        "replication.peers.ssa_ports",
                        format!(
                            "peer {}'s ports {}-{} overlap this proxy's {}-{}",
                            p.id,
                            theirs.start(),
                            theirs.end(),
                            ssa_ports.start(),
                            ssa_ports.end()
                        ),
                    ));
                }
            }
        }
        let pools = validate_pools(src, &raw.pool)?;
        let names: BTreeSet<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        let mut routes = Vec::new();
        for (i, r) in raw.route.iter().enumerate() {
            routes.push(validate_route(src, r, i, &names)?);
        }
        let l4_routes = validate_l4_routes(src, &raw.l4_route, vip, ssa, &names)?;
        let default_pool = match &raw.default_pool {
            None => None,
            Some(v) if names.contains(v.get_ref().as_str()) => Some(v.get_ref().clone()),
            Some(v) => {
                return Err(src.err(
                    v.span(),
                    "default_pool",
                    format!("no [[pool]] named '{}'", v.get_ref()),
                ))
            }
        };
        if routes.is_empty() && default_pool.is_none() && l4_routes.is_empty() {
            return Err(ConfigError {
                file: src.file.clone(),
                line: None,
                key: Some("default_pool".into()),
                msg: "no [[route]], no [[l4_route]] and no default_pool: no connection could be routed".into(),
            });
        }
        let max_pending =
            opt_within(src, &raw.max_pending, "max_pending", 1, 1_000_000, 4096)? as usize;
        let t = &raw.teardown;
        let ms = Duration::from_millis;
        let teardown = TeardownTimers {
            linger: ms(opt_within(
                src,
                &t.linger_ms,
                "teardown.linger_ms",
                0,
                3_600_000,
                60_000,
            )?),
            idle: ms(opt_within(
                src,
                &t.idle_ms,
                "teardown.idle_ms",
                100,
                86_400_000,
                300_000,
            )?),
            tick: ms(opt_within(
                src,
                &t.tick_ms,
                "teardown.tick_ms",
                10,
                60_000,
                1000,
            )?),
        };
        Ok(ProxyConfig {
            id,
            vip,
            ssa,
            ssa_ports,
            ssa_bind,
            mss_clamp,
            interfaces,
            metrics,
            head,
            heartbeat,
            replication,
            pools,
            routes,
            l4_routes,
            default_pool,
            max_pending,
            teardown,
            log: raw.log.validate(src)?,
        })
    }
}

fn opt_within<T>(
    src: &Source,
    v: &Option<Spanned<T>>,
    key: &str,
    lo: T,
    hi: T,
    default: T,
) -> Result<T, ConfigError>
where
    T: Copy + PartialOrd + core::fmt::Display,
{
    match v {
        None => Ok(default),
        Some(v) => within(src, v, key, lo, hi),
    }
}

fn validate_heartbeat(src: &Source, h: &RawHeartbeat) -> Result<HeartbeatTarget, ConfigError> {
    if h.lb.get_ref().is_empty() {
        return Err(src.err(h.lb.span(), "heartbeat.lb", "needs at least one lb address"));
    }
    let lb =
        h.lb.get_ref()
            .iter()
            .map(|a| service_addr(src, a, "heartbeat.lb"))
            .collect::<Result<Vec<_>, _>>()?;
    Ok(HeartbeatTarget {
        lb,
        interval: Duration::from_millis(opt_within(
            src,
            &h.interval_ms,
            "heartbeat.interval_ms",
            10,
            5000,
            10,
        )?),
        workload: opt_within(src, &h.workload, "heartbeat.workload", 1, 1000, 100)?,
    })
}

pub(crate) fn validate_replication(
    src: &Source,
    r: &RawReplication,
    me: u16,
) -> Result<ReplicationConfig, ConfigError> {
    let listen = service_addr(src, &r.listen, "replication.listen")?;
    let psk = match (&r.psk, &r.psk_file) {
        (Some(k), None) => psk_hex(src, k, "replication.psk")?,
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f.get_ref()).map_err(|e| {
                src.err(
                    f.span(),
                    "replication.psk_file",
                    format!("cannot read '{}': {e}", f.get_ref()),
                )
            })?;
            parse_hex32(text.trim()).ok_or_else(|| {
                src.err(
                    f.span(),
                    "replication.psk_file",
                    format!("'{}' must hold 64 hex digits (a 32-byte key)", f.get_ref()),
                )
            })?
        }
        (Some(k), Some(_)) => {
            return Err(src.err(
                k.span(),
                "replication.psk",
                "give either psk or psk_file, not both",
            ))
        }
        (None, None) => return Err(src.missing("replication.psk")),
    };
    let mut seen = BTreeSet::new();
    let mut peers = Vec::new();
    for p in &r.peers {
        let id = within(src, &p.id, "replication.peers.id", 1, u16::MAX)?;
        if id == me {
            return Err(src.err(
                p.id.span(),
                "replication.peers.id",
                format!("{id} is this proxy's own id"),
            ));
        }
        if !seen.insert(id) {
            return Err(src.err(
                p.id.span(),
                "replication.peers.id",
                format!("peer id {id} appears twice"),
            ));
        }
        peers.push(ReplicationPeer {
            id,
            addr: service_addr(src, &p.addr, "replication.peers.addr")?,
            agent: p.agent,
            ssa_ports: p
                .ssa_ports
                .as_ref()
                .map(|v| port_range(src, v, "replication.peers.ssa_ports"))
                .transpose()?,
        });
    }
    Ok(ReplicationConfig {
        listen,
        psk,
        peers,
        ack_timeout: Duration::from_millis(opt_within(
            src,
            &r.ack_timeout_ms,
            "replication.ack_timeout_ms",
            1,
            60_000,
            200,
        )?),
    })
}

fn validate_pools(src: &Source, raw: &[RawPool]) -> Result<Vec<Pool>, ConfigError> {
    let mut pools: Vec<Pool> = Vec::new();
    for p in raw {
        let name = p.name.get_ref();
        if name.is_empty() {
            return Err(src.err(p.name.span(), "pool.name", "must not be empty"));
        }
        if pools.iter().any(|q| &q.name == name) {
            return Err(src.err(
                p.name.span(),
                "pool.name",
                format!("pool '{name}' is defined twice"),
            ));
        }
        if p.backends.get_ref().is_empty() {
            return Err(src.err(
                p.backends.span(),
                "pool.backends",
                format!("pool '{name}' has no backends"),
            ));
        }
        let backends = p
            .backends
            .get_ref()
            .iter()
            .map(|a| service_addr(src, a, "pool.backends"))
            .collect::<Result<Vec<_>, _>>()?;
        let policy = match &p.policy {
            None => PoolPolicy::RoundRobin,
            Some(v) => match v.get_ref().as_str() {
                "round-robin" => PoolPolicy::RoundRobin,
                "hash" => PoolPolicy::Hash,
                o => {
                    return Err(src.err(
                        v.span(),
                        "pool.policy",
                        format!("'{o}' is not one of 'round-robin', 'hash'"),
                    ))
                }
            },
        };
        pools.push(Pool {
            name: name.clone(),
            backends,
            policy,
        });
    }
    Ok(pools)
}

fn validate_l4_routes(
    src: &Source,
    raw: &[RawL4Route],
    vip: SocketAddrV4,
    ssa: Ipv4Addr,
    pools: &BTreeSet<&str>,
) -> Result<Vec<L4Route>, ConfigError> {
    let mut out: Vec<L4Route> = Vec::new();
    for r in raw {
        let listen = service_addr(src, &r.listen, "l4_route.listen")?;
        let clash = if listen == vip {
            Some("is the HTTP service address `vip`".to_string())
        } else if *listen.ip() == ssa {
            Some("is on the shared splice address `ssa`".to_string())
        } else if listen.ip().is_unspecified() {
            Some("must be a specific address (the VIP), not 0.0.0.0".to_string())
        } else if out.iter().any(|o| o.listen == listen) {
            Some("is the listen address of another [[l4_route]]".to_string())
        } else {
            None
        };
        if let Some(why) = clash {
            return Err(src.err(
                r.listen.span(),
                "l4_route.listen",
                format!("{listen} {why}"),
            ));
        }
        if !pools.contains(r.pool.get_ref().as_str()) {
            return Err(src.err(
                r.pool.span(),
                "l4_route.pool",
                format!("no [[pool]] named '{}'", r.pool.get_ref()),
            ));
        }
        out.push(L4Route {
            listen,
            pool: r.pool.get_ref().clone(),
        });
    }
    Ok(out)
}

fn validate_route(
    src: &Source,
    r: &RawRoute,
    _index: usize,
    pools: &BTreeSet<&str>,
) -> Result<RouteRule, ConfigError> {
    if !pools.contains(r.pool.get_ref().as_str()) {
        return Err(src.err(
            r.pool.span(),
            "route.pool",
            format!("no [[pool]] named '{}'", r.pool.get_ref()),
        ));
    }
    if let Some(h) = &r.host {
        let t = h.get_ref();
        let name = t.strip_prefix("*.").unwrap_or(t);
        if name.is_empty()
            || name.contains('*')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ':')
        {
            return Err(src.err(
                h.span(),
                "route.host",
                format!("'{t}' is not a host name or *.domain pattern"),
            ));
        }
    }
    if let Some(p) = &r.path_prefix {
        if !p.get_ref().starts_with('/') {
            return Err(src.err(p.span(), "route.path_prefix", "must start with '/'"));
        }
    }
    if let Some(m) = &r.method {
        let t = m.get_ref();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(src.err(
                m.span(),
                "route.method",
                format!("'{t}' is not an HTTP method (upper-case letters)"),
            ));
        }
    }
    Ok(RouteRule {
        host: r.host.as_ref().map(|h| h.get_ref().to_ascii_lowercase()),
        path_prefix: r.path_prefix.as_ref().map(|p| p.get_ref().clone()),
        method: r.method.as_ref().map(|m| m.get_ref().clone()),
        pool: r.pool.get_ref().clone(),
    })
}

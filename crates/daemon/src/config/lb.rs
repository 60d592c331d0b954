//! `lb.toml`: the service address, the data-plane interface, the choice
//! policy, where heartbeats arrive and how many may be missed, the proxies
//! (their real addresses; the lb forwards to their MACs) and, optionally,
//! the peer of a primary/backup pair. The same file format configures the
//! SSA gateway (vip = the shared splice address, on the backend side).
//!
//! ```toml
//! vip = "198.18.0.10"
//! interface = "e1"
//! mode = "flow-hash"          # or "weighted", "burst", "flowlet", "port-owner"
//! burst = 40                  # packets per burst in "burst" mode
//! xdp_mode = "auto"           # or "native", "generic", "tc" (auto: tc on a veth)
//! announce_vip = true         # answer ARP for vip while active, gratuitous ARP on takeover
//! resolve_ms = 1000           # re-ARP period for the proxies' MACs
//! metrics = "198.18.1.1:9100"
//!
//! [heartbeat]
//! listen = "198.18.1.1:7000"
//! interval_ms = 10
//! misses = 3
//! hold = 2                    # extra intervals a verdict waits while all proxies are silent
//!
//! [peer]                      # optional: primary/backup pair
//! addr = "198.18.1.9:7000"    # the other lb's heartbeat.listen
//! role = "primary"            # or "backup"
//!
//! [[proxy]]
//! id = 1
//! addr = "198.18.1.2"
//! ssa_ports = "40000-44999"   # SSA gateway ("port-owner"): ports it owns
//! ```

use super::common::*;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// How the lb picks a proxy for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbMode {
    /// Hash of the 4-tuple over live proxies (a connection sticks to one).
    FlowHash,
    /// Weighted random by announced workload, per flow.
    Weighted,
    /// Bursts of packets of one connection sprayed over proxies.
    Burst,
    /// New proxy after an idle gap in the flow.
    Flowlet,
    /// SSA gateway: TCP to the proxy owning the destination port (its
    /// `ssa_ports`) while it is live, else flow hash.
    PortOwner,
}

/// How the balancer is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// TC on a veth; elsewhere the kernel's choice of XDP (native where the
    /// driver supports it), else generic XDP.
    Auto,
    Native,
    Generic,
    /// The same program on TC ingress instead of XDP (no copy of GSO
    /// packets, which generic XDP linearizes).
    Tc,
}

/// Side of a primary/backup pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    Primary,
    Backup,
}

/// The other lb of a primary/backup pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbPeer {
    /// The peer's `heartbeat.listen`; lb<->lb beats go there.
    pub addr: SocketAddrV4,
    pub role: PeerRole,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbProxy {
    pub id: u16,
    /// The proxy's real (non-VIP) address; its MAC is the forwarding target.
    pub addr: Ipv4Addr,
    /// SSA ports this proxy opens backend connections from (`port-owner`).
    pub ssa_ports: Option<RangeInclusive<u16>>,
}

/// A validated `lb.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbConfig {
    pub vip: Ipv4Addr,
    pub interface: Option<String>,
    pub mode: LbMode,
    pub metrics: Option<SocketAddrV4>,
    pub heartbeat_listen: SocketAddrV4,
    pub heartbeat_interval: Duration,
    /// Missed heartbeats after which a proxy is declared dead.
    pub misses: u32,
    /// Extra intervals a verdict is held while every proxy is silent
    /// together (`proto::detector`'s common-silence rule; 0: off).
    pub hold: u32,
    pub proxies: Vec<LbProxy>,
    pub log: LogConfig,
    /// Packets per burst in `burst` mode (default 40, paper §7.1).
    pub burst: u32,
    pub xdp_mode: XdpMode,
    /// While active, answer ARP for `vip` on `interface` and announce it
    /// with gratuitous ARP on takeover (the address is never added to the
    /// interface). Off: ARP for the vip is the operator's business (e.g. a
    /// static entry at the router, as in the paper's testbed).
    pub announce_vip: bool,
    /// Period of the ARP requests refreshing the proxies' MACs.
    pub resolve_interval: Duration,
    pub peer: Option<LbPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    vip: Spanned<String>,
    interface: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    metrics: Option<Spanned<String>>,
    heartbeat: RawHeartbeat,
    burst: Option<Spanned<u32>>,
    xdp_mode: Option<Spanned<String>>,
    announce_vip: Option<bool>,
    resolve_ms: Option<Spanned<u64>>,
    peer: Option<RawPeer>,
    #[serde(default)]
    proxy: Vec<RawProxy>,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    listen: Spanned<String>,
    interval_ms: Option<Spanned<u64>>,
    misses: Option<Spanned<u32>>,
    hold: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    addr: Spanned<String>,
    role: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    id: Spanned<u16>,
    addr: Spanned<String>,
    ssa_ports: Option<Spanned<String>>,
}

impl LbConfig {
    pub fn load(path: &Path) -> Result<LbConfig, ConfigError> {
        LbConfig::from_source(&Source::read(path)?)
    }

    pub fn from_source(src: &Source) -> Result<LbConfig, ConfigError> {
        let raw: Raw = src.parse()?;
        let vip = ip_addr(src, &raw.vip, "vip")?;
        let interface = raw
            .interface
            .as_ref()
            .map(|v| ifname(src, v, "interface"))
            .transpose()?;
        let mode = match &raw.mode {
            None => LbMode::FlowHash,
            Some(v) => match v.get_ref().as_str() {
                "flow-hash" => LbMode::FlowHash,
                "weighted" => LbMode::Weighted,
                "burst" => LbMode::Burst,
                "flowlet" => LbMode::Flowlet,
                "port-owner" => LbMode::PortOwner,
                o => {
                    return Err(src.err(
                        v.span(),
                        "mode",
                        format!(
                            "'{o}' is not one of 'flow-hash', 'weighted', 'burst', 'flowlet', \
                             'port-owner'"
                        ),
                    ))
                }
            },
        };
        let metrics = raw
            .metrics
            .as_ref()
            .map(|v| sock_addr(src, v, "metrics"))
            .transpose()?;
        let hb = &raw.heartbeat;
        let heartbeat_listen = service_addr(src, &hb.listen, "heartbeat.listen")?;
        let heartbeat_interval = match &hb.interval_ms {
            None => Duration::from_millis(10),
            Some(v) => millis(src, v, "heartbeat.interval_ms", 10, 5000)?,
        };
        let misses = match &hb.misses {
            None => 3,
            Some(v) => within(src, v, "heartbeat.misses", 1, 100)?,
        };
        let hold = match &hb.hold {
            None => ftsplice_proto::detector::LB_HOLD,
            Some(v) => within(src, v, "heartbeat.hold", 0, 100)?,
        };
        let mut ids = BTreeSet::new();
        let mut proxies = Vec::new();
        for p in &raw.proxy {
            // 65535 is the lb pair's own heartbeat id.
            let id = within(src, &p.id, "proxy.id", 1, u16::MAX - 1)?;
            if !ids.insert(id) {
                return Err(src.err(
                    p.id.span(),
                    "proxy.id",
                    format!("proxy id {id} appears twice"),
                ));
            }
            let ssa_ports = p
                .ssa_ports
                .as_ref()
                .map(|v| port_range(src, v, "proxy.ssa_ports"))
                .transpose()?;
            if let (Some(r), Some(v)) = (&ssa_ports, &p.ssa_ports) {
                if let Some(o) = proxies.iter().find(|o: &&LbProxy| {
                    o.ssa_ports
                        .as_ref()
                        .is_some_and(|q| q.start() <= r.end() && r.start() <= q.end())
                }) {
                    return Err(src.err(
                        v.span(),
                        "proxy.ssa_ports",
                        format!("overlaps the ssa_ports of proxy {}", o.id),
                    ));
                }
            }
            proxies.push(LbProxy {
                id,
                addr: ip_addr(src, &p.addr, "proxy.addr")?,
                ssa_ports,
            });
        }
        let burst = match &raw.burst {
            None => 40,
            Some(v) => within(src, v, "burst", 1, 1_000_000)?,
        };
        let xdp_mode = match &raw.xdp_mode {
            None => XdpMode::Auto,
            Some(v) => match v.get_ref().as_str() {
                "auto" => XdpMode::Auto,
                "native" => XdpMode::Native,
                "generic" => XdpMode::Generic,
                "tc" => XdpMode::Tc,
                o => {
                    return Err(src.err(
                        v.span(),
                        "xdp_mode",
                        format!("'{o}' is not one of 'auto', 'native', 'generic', 'tc'"),
                    ))
                }
            },
        };
        let resolve_interval = match &raw.resolve_ms {
            None => Duration::from_secs(1),
            Some(v) => millis(src, v, "resolve_ms", 10, 60_000)?,
        };
        let peer = match &raw.peer {
            None => None,
            Some(p) => {
                let addr = service_addr(src, &p.addr, "peer.addr")?;
                if addr == heartbeat_listen {
                    return Err(src.err(
                        p.addr.span(),
                        "peer.addr",
                        "the peer's address is this lb's own heartbeat.listen",
                    ));
                }
                let role = match p.role.get_ref().as_str() {
                    "primary" => PeerRole::Primary,
                    "backup" => PeerRole::Backup,
                    o => {
                        return Err(src.err(
                            p.role.span(),
                            "peer.role",
                            format!("'{o}' is not one of 'primary', 'backup'"),
                        ))
                    }
                };
                Some(LbPeer { addr, role })
            }
        };
        Ok(LbConfig {
            burst,
            xdp_mode,
            announce_vip: raw.announce_vip.unwrap_or(true),
            resolve_interval,
            peer,
            vip,
            interface,
            mode,
            metrics,
            heartbeat_listen,
            heartbeat_interval,
            misses,
            hold,
            proxies,
            log: raw.log.validate(src)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "vip = \"198.18.0.10\"\ninterface = \"e0\"\n\n[heartbeat]\nlisten = \"198.18.1.1:7000\"\n";

    fn load(text: &str) -> Result<LbConfig, ConfigError> {
        LbConfig::from_source(&Source::new("lb.toml", text))
    }

    #[test]
    fn defaults_keep_old_configs_valid() {
        let c = load(BASE).unwrap();
        assert_eq!(c.peer, None);
        assert_eq!(
            (c.burst, c.xdp_mode, c.announce_vip),
            (40, XdpMode::Auto, true)
        );
        assert_eq!(c.resolve_interval, Duration::from_secs(1));
        assert_eq!((c.misses, c.hold), (3, 2));
        let c = load(&format!("{BASE}hold = 0\n")).unwrap();
        assert_eq!(c.hold, 0);
        let e = load(&format!("{BASE}hold = 101\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("heartbeat.hold"), "{e}");
    }

    #[test]
    fn peer_and_data_plane_keys_parse() {
        let text = format!(
            "burst = 8\nxdp_mode = \"generic\"\nannounce_vip = false\nresolve_ms = 200\n{BASE}\n[peer]\naddr = \"198.18.1.9:7000\"\nrole = \"backup\"\n"
        );
        let c = load(&text).unwrap();
        assert_eq!(
            c.peer,
            Some(LbPeer {
                addr: "198.18.1.9:7000".parse().unwrap(),
                role: PeerRole::Backup
            })
        );
        assert_eq!(
            (c.burst, c.xdp_mode, c.announce_vip),
            (8, XdpMode::Generic, false)
        );
        assert_eq!(c.resolve_interval, Duration::from_millis(200));
    }

    #[test]
    fn bad_peer_values_name_key_and_line() {
        let e = load(&format!(
            "{BASE}\n[peer]\naddr = \"198.18.1.9:7000\"\nrole = \"leader\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("peer.role"), Some(9)));
        let e = load(&format!(
            "{BASE}\n[peer]\naddr = \"198.18.1.1:7000\"\nrole = \"backup\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("peer.addr"));
        let e = load(&format!("xdp_mode = \"fast\"\n{BASE}")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("xdp_mode"), Some(1)));
        let e = load(&format!(
            "{BASE}\n[[proxy]]\nid = 65535\naddr = \"198.18.1.2\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("proxy.id"));
    }
}

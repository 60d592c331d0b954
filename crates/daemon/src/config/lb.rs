//! `lb.toml`: the service address, the data-plane interface, the choice
//! policy, where heartbeats arrive and how many may be missed, and the
//! proxies (their real addresses; the lb forwards to their MACs).
//!
//! ```toml
//! vip = "198.18.0.10"
//! interface = "e1"
//! mode = "flow-hash"          # or "weighted", "burst", "flowlet"
//! metrics = "198.18.1.1:9100"
//!
//! [heartbeat]
//! listen = "198.18.1.1:7000"
//! interval_ms = 10
//! misses = 3
//!
//! [[proxy]]
//! id = 1
//! addr = "198.18.1.2"
//! ```

use super::common::*;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbProxy {
    pub id: u16,
    /// The proxy's real (non-VIP) address; its MAC is the forwarding target.
    pub addr: Ipv4Addr,
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
    pub proxies: Vec<LbProxy>,
    pub log: LogConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    vip: Spanned<String>,
    interface: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    metrics: Option<Spanned<String>>,
    heartbeat: RawHeartbeat,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    id: Spanned<u16>,
    addr: Spanned<String>,
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
                o => {
                    return Err(src.err(
                        v.span(),
                        "mode",
                        format!("'{o}' is not one of 'flow-hash', 'weighted', 'burst', 'flowlet'"),
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
        let mut ids = BTreeSet::new();
        let mut proxies = Vec::new();
        for p in &raw.proxy {
            let id = within(src, &p.id, "proxy.id", 1, u16::MAX)?;
            if !ids.insert(id) {
                return Err(src.err(
                    p.id.span(),
                    "proxy.id",
                    format!("proxy id {id} appears twice"),
                ));
            }
            proxies.push(LbProxy {
                id,
                addr: ip_addr(src, &p.addr, "proxy.addr")?,
            });
        }
        Ok(LbConfig {
            vip,
            interface,
            mode,
            metrics,
            heartbeat_listen,
            heartbeat_interval,
            misses,
            proxies,
            log: raw.log.validate(src)?,
        })
    }
}

//! `agent.toml`: a backend's split-splice agent. It receives splices for its
//! backend from the proxies over the authenticated replication channel and
//! installs them on the backend's egress.
//!
//! ```toml
//! id = 100
//! backend = "198.18.3.2:80"
//! vip = "198.18.0.10:80"
//! interface = "e0"
//! metrics = "198.18.3.2:9100"
//!
//! [replication]
//! listen = "198.18.3.2:7100"
//! psk = "<64 hex digits>"
//!
//! [teardown]
//! idle_ms = 300000               # entry dropped after this long unused
//! ```

use super::common::*;
use super::proxy::{validate_replication, RawReplication, ReplicationConfig};
use serde::Deserialize;
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// A validated `agent.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// Id on the replication channel (distinct from every proxy's).
    pub id: u16,
    pub backend: SocketAddrV4,
    pub vip: SocketAddrV4,
    /// Devices the agent's program attaches to (TC egress); empty: none.
    pub interfaces: Vec<String>,
    pub metrics: Option<SocketAddrV4>,
    pub replication: ReplicationConfig,
    /// An entry its data plane saw no packet of for this long is dropped
    /// (a proxy's delete may have been lost).
    pub idle: Duration,
    pub log: LogConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: Spanned<u16>,
    backend: Spanned<String>,
    vip: Spanned<String>,
    interface: Option<Spanned<OneOrMany>>,
    metrics: Option<Spanned<String>>,
    replication: RawReplication,
    #[serde(default)]
    teardown: RawTeardown,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTeardown {
    idle_ms: Option<Spanned<u64>>,
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        AgentConfig::from_source(&Source::read(path)?)
    }

    pub fn from_source(src: &Source) -> Result<AgentConfig, ConfigError> {
        let raw: Raw = src.parse()?;
        let id = within(src, &raw.id, "id", 1, u16::MAX)?;
        Ok(AgentConfig {
            id,
            backend: service_addr(src, &raw.backend, "backend")?,
            vip: service_addr(src, &raw.vip, "vip")?,
            interfaces: match &raw.interface {
                None => Vec::new(),
                Some(v) => ifnames(src, v, "interface")?,
            },
            metrics: raw
                .metrics
                .as_ref()
                .map(|v| sock_addr(src, v, "metrics"))
                .transpose()?,
            replication: validate_replication(src, &raw.replication, id)?,
            idle: Duration::from_millis(match &raw.teardown.idle_ms {
                None => 300_000,
                Some(v) => within(src, v, "teardown.idle_ms", 100, 86_400_000)?,
            }),
            log: raw.log.validate(src)?,
        })
    }
}

//! TOML configuration of the three daemons, validated into typed configs.
//! Every error names the file, the line and the key it is about
//! (`proxy.toml: line 7: key 'ssa_ports': range 40000-39000 is empty`),
//! using the byte spans toml keeps for each value.

mod agent;
mod common;
mod fuzz;
mod lb;
mod proxy;

pub use agent::AgentConfig;
pub use common::{ConfigError, LogConfig, LogFormat, Source};
pub use fuzz::fuzz_parse;
pub use lb::{LbConfig, LbMode, LbPeer, LbProxy, PeerRole, XdpMode};
pub use proxy::{
    HeadConfig, HeartbeatTarget, L4Route, Pool, PoolPolicy, ProxyConfig, ReplicationConfig,
    ReplicationPeer, RouteRule, SsaBind, TeardownTimers,
};

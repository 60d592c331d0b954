//! Deterministic discrete-event simulator: event heap, links, nodes, faults,
//! workloads and scenarios, driving the same sans-IO protocol logic as the
//! Linux daemons.
#![forbid(unsafe_code)]

pub mod engine;
pub mod net;
pub mod report;
pub mod roles;
pub mod scenario;
pub mod stats;
pub mod study;
pub mod workload;

/// Hash map with a fast, fixed (deterministic) hasher for the simulator's
/// per-packet lookups (std's SipHash was a visible cost per frame).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

pub use engine::fault::Fault;
pub use engine::sim::{NodeOpts, Sim};
pub use engine::time::SimTime;
pub use net::link::{LinkConfig, LinkId};
pub use net::node::{Ctx, Frame, IfaceId, Node, NodeId};
pub use report::Report;

//! Sans-IO protocol logic of ftsplice. Everything here takes `now` and packets
//! in and gives packets, timers and events out: no clocks, threads or sockets.
//!
//! State machines share one API shape: `handle_*(now, input)`,
//! `poll_transmit()`, `poll_timeout()`, `poll_event()`.
#![forbid(unsafe_code)]

pub mod detector;
pub mod hash;
pub mod heartbeat;
pub mod ids;
pub mod lb;
pub mod lb_control;
pub mod lb_fuzz;
pub mod lb_pair;
pub mod orphan;
pub mod orphan_records;
pub mod owner;
pub mod replication;
pub mod rng;
pub mod route;
pub mod splice;
pub mod teardown;
pub mod time;

pub use ids::ProxyId;
pub use time::Instant;

//! The ftsplice daemons as thin tokio drivers around the sans-IO `proto`
//! crate and the kernel glue of `linux`: configs ([`config`]), metrics
//! ([`metrics`], and a strict reader of what they render: [`exposition`]), logs ([`logging`]), the XDP load balancer ([`lb`]), the
//! proxy daemon with its splice creation on kernel sockets ([`proxy`]), the
//! split-splice agent ([`agent`]), replication and teardown around the data
//! plane ([`control`]), and the data-plane seam ([`sink`], [`bpf_sink`]).
#![forbid(unsafe_code)]
// An I/O driver: it reads the clock to feed `proto::Instant`s.
#![allow(clippy::disallowed_methods)]

pub mod agent;
pub mod bpf_sink;
pub mod clock;
pub mod config;
pub mod control;
pub mod exposition;
pub mod frozen;
pub mod heartbeat;
pub mod lb;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod resets;
pub mod sink;

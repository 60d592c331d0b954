//! The ftsplice daemons as thin tokio drivers around the sans-IO `proto`
//! crate and the kernel glue of `linux`: configs ([`config`]), metrics
//! ([`metrics`]), logs ([`logging`]), the proxy's splice creation with
//! kernel sockets ([`proxy`]), and the data-plane seam ([`sink`]).
#![forbid(unsafe_code)]
// An I/O driver: it reads the clock to feed `proto::Instant`s.
#![allow(clippy::disallowed_methods)]

pub mod clock;
pub mod config;
pub mod frozen;
pub mod heartbeat;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod sink;

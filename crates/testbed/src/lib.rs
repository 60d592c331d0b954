//! Namespace testbeds for ftsplice: topologies of client, router/lb and
//! backend namespaces joined by veth (198.18.0.0/15 only), unmodified
//! servers (nginx, iperf3) and clients (curl, iperf3), scenarios, and the DESIGN.md JSON
//! report.
#![forbid(unsafe_code)]
#![allow(clippy::disallowed_methods)] // drives real processes on the wall clock

pub mod baseline;
pub mod cleanup;
pub mod iperf;
pub mod nginx;

//! Namespace testbeds for ftsplice: the full system (switch, clients, lbs,
//! proxies, SSA gateway, backends running unmodified nginx and iperf3) in
//! network namespaces (198.18.0.0/15 only) with the daemons as supervised
//! children ([`system`]), the client load and its verification ([`load`],
//! [`body`], [`timeline`]), scenarios with faults, the throughput bench, and
//! the DESIGN.md report (`ftsplice_report`).
#![forbid(unsafe_code)]
#![allow(clippy::disallowed_methods)] // drives real processes on the wall clock

pub mod baseline;
pub mod bench;
pub mod body;
pub mod cleanup;
pub mod haproxy;
pub mod iperf;
pub mod load;
pub mod logscan;
pub mod nginx;
pub mod scenario;
pub mod system;
pub mod timeline;
pub mod verify;

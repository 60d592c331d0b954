//! Kernel glue: network namespaces and veth pairs, TCP_REPAIR, raw `bpf()`
//! calls, ARP over packet sockets. This is the only crate allowed `unsafe`; every block carries a
//! `// SAFETY:` line.
//!
//! Everything that touches the network does so inside namespaces the caller
//! creates ([`NetNs`], [`Topology`]); [`Topology`] refuses addresses outside
//! the benchmarking range 198.18.0.0/15.

pub mod arp;
pub mod bpf_abi;
mod cmd;
pub mod cpu;
mod error;
pub mod link;
mod load;
mod netns;
mod privilege;
pub mod repair;
pub mod sched;
mod topology;
pub mod udp;

pub use cmd::run_cmd;
pub use error::Error;
pub use load::load_average;
pub use netns::{unique_name, NetNs};
pub use privilege::{is_root, pin_current_thread, skip_unless_root};
pub use repair::{FreezeFailed, FrozenSocket, Queue, RepairWindow, SocketState, TcpInfoLite};
pub use topology::{check_test_addr, Link, Offloads, Port, Topology, BRIDGE};

pub type Result<T, E = Error> = core::result::Result<T, E>;

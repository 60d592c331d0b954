//! A sans-IO TCP endpoint that behaves like Linux defaults (RFC 6298 RTO with a
//! 200 ms floor, SACK-based loss recovery, timestamps, window scaling), used by
//! the simulator for clients, servers and the proxies' pre-splice sockets.
//!
//! See [`Connection`] for the driving loop and [`Listener`] for passive opens.
#![forbid(unsafe_code)]

pub mod buffer;
pub mod config;
pub mod congestion;
pub mod connection;
pub mod event;
pub mod listener;
pub mod options;
pub mod rack;
pub mod reassembly;
pub mod repair;
pub mod rtt;
pub mod sack;
pub mod segment;
pub mod seq;
pub mod wire_conv;

pub use config::Config;
pub use congestion::Algorithm;
pub use connection::Connection;
pub use event::{DropReason, Event, State, Stats};
pub use listener::Listener;
pub use options::{SackBlock, SackBlocks, TcpOptions, Timestamp};
pub use repair::{RepairState, RepairTimestamps};
pub use segment::{reset_for, Flags, Segment};
pub use seq::SeqNum;

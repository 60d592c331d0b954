//! Packet views and representations for IPv4 and TCP (with options), and the
//! RFC 1071 / RFC 1624 checksum arithmetic. No I/O, no allocation on the parse
//! path: `Packet<T: AsRef<[u8]>>` views over caller bytes, `new_checked` for
//! untrusted input, `Repr` structs for high-level parse/emit.
#![forbid(unsafe_code)]

mod bytes;
pub mod checksum;
pub mod error;
pub mod fuzz;
pub mod ipv4;
mod ipv4_tcp;
pub mod tcp;
pub mod tcp_options;

pub use error::{Error, Result};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv4_tcp::{checksums_valid, emit_ipv4_tcp, parse_ipv4_tcp};
pub use tcp::{TcpFlags, TcpPacket, TcpRepr};
pub use tcp_options::{SackBlocks, TcpOption, TcpOptionIter, TcpOptions};

//! Packet views and representations for IPv4 and TCP (with options), and the
//! RFC 1071 / RFC 1624 checksum arithmetic. No I/O, no allocation on the parse
//! path: `Packet<T: AsRef<[u8]>>` views over caller bytes, `new_checked` for
//! untrusted input, `Repr` structs for high-level parse/emit.
#![forbid(unsafe_code)]

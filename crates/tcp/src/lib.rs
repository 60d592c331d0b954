//! A sans-IO TCP endpoint that behaves like Linux defaults, used by the
//! simulator for clients, servers and the proxies' pre-splice sockets.
//!
//! # Driving a connection
//!
//! - Open: [`Connection::connect`] (active) or [`Listener::accept_syn`] /
//!   [`Connection::accept_syn`] (passive). The caller supplies the ISN and the
//!   timestamp offset from its seeded RNG; time is always a
//!   [`ftsplice_proto::Instant`] passed in.
//! - Input: [`Connection::handle_segment`] with every segment of the 4-tuple
//!   (payload may be borrowed: `Segment<&[u8]>`; [`wire_conv`] converts
//!   to/from IPv4 datagrams). Segments for no connection: [`reset_for`].
//! - Timers: call [`Connection::handle_timeout`] once
//!   [`Connection::poll_timeout`] has passed.
//! - Output: after every call above and after `send`/`recv`/`close`, drain
//!   [`Connection::poll_transmit`] until `None`, then [`Connection::poll_event`].
//! - Application: [`Connection::send`] (bounded send buffer, returns bytes
//!   taken), [`Connection::recv`], [`Connection::close`] (FIN after queued
//!   data), [`Connection::abort`] (RST).
//! - Splicing: [`Connection::repair_state`] (what TCP_REPAIR reports) and
//!   [`Connection::freeze`] (nothing sent or processed afterwards).
//!
//! # Linux behaviour modelled
//!
//! MSS option (1460) with timestamp space deducted (1448-byte payloads);
//! window scaling with the smallest shift covering the receive buffer (256 kB
//! -> 3), the window advertised from free buffer space and never shrunk;
//! timestamps with a per-connection offset, RTT from them when Karn forbids a
//! send-time sample, PAWS for data segments; SACK and DSACK generation with
//! up to 3 (4 without timestamps) blocks, most recent first; sender
//! scoreboard with RFC 6675 `pipe`, RACK-style loss detection (RFC 8985, as
//! Linux's default `tcp_recovery=1`) with a reordering window widened by
//! DSACKs, undo of spurious reductions (DSACK or timestamps); NewReno with
//! dup-ACK counting when SACK is off; RTO = SRTT + max(4·RTTVAR, 200 ms),
//! initial 1 s, doubling backoff capped at 120 s, give up after 15 timeouts
//! (6 SYN / 5 SYN-ACK retries); CUBIC (default; Reno selectable) with
//! initial window 10 and slow start, window growth only while cwnd-limited,
//! window restart after an idle RTO (`tcp_slow_start_after_idle`);
//! delayed ACK (40 ms, every second full segment, immediate on
//! out-of-order, hole fill, FIN, duplicates, 16 quick ACKs after the
//! handshake or a loss); zero-window probing; RFC 5961 challenge ACKs; full
//! FIN handshake and TIME-WAIT (60 s).
//!
//! Deliberately simpler than Linux: Nagle is off (every write may go out as
//! a short segment, like `TCP_NODELAY`); no pacing, no tail loss probe, no
//! F-RTO beyond the timestamp undo, no keepalive, no urgent data, no SYN
//! cookies, no data on SYNs; the retry limit counts timeouts rather than
//! Linux's time-based `tcp_retries2` formula; the delayed-ACK timeout does not
//! adapt (fixed 40 ms); PAWS ignores the 24-day rule.
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

//! Backend crash tolerance, after Marwah, Mishra and Fetzer, "Enhanced
//! Server Fault-Tolerance for Improved User Experience" (`shared/papers/
//! backend-server-fault-tolerance.txt`), as sans-IO state machines: no
//! clocks, sockets or threads; time comes in as [`ftsplice_proto::Instant`].
//!
//! # Pieces
//!
//! | module | paper | owns |
//! |---|---|---|
//! | [`offsets`] | §3.1 | 32-bit sequence numbers -> 64-bit stream offsets |
//! | [`log`] | §3.1, §5 | per-connection byte log of both directions; "never forward an unlogged byte"; caps and backpressure |
//! | [`http`] | §3.1, §5 | HTTP/1.1 transactionalizer: requests/responses -> offsets, paired into transactions |
//! | [`tags`] | §3.1 | tag table (deterministic, read-only, idempotent) with a conservative default |
//! | [`detector`] | §3.5 | adaptive failure detector per request kind, idle heartbeat |
//! | [`logger`] | §3, §4.1 | one backend's logger: the above glued together, trimming, hand-over to recovery |
//! | [`plan`] | §4.2-4.3 | the equations: T_L, p, Ack_TL, Ack_CL, T_SP (eq. 1-2), T_R (eq. 3), replay set |
//! | [`recovery`] | §4.3 | the recovery of one connection as a state machine of actions |
//! | [`state_sync`] | §4.1 | session-state push (async; sync for non-deterministic) and its application at the alternate |
//! | [`aux`] | §3.2, §4.3 | aux logger answering replayed aux requests by transaction id |
//!
//! # How a driver (the simulator's logger node, or a daemon) uses it
//!
//! The logger sits on the backend's gateway hop and sees the spliced
//! connection *B* (shared splice address <-> backend) in both directions.
//! Per backend it keeps one [`logger::Logger`]:
//!
//! 1. At B's SYN/SYN-ACK: `open(conn)`, and a [`SeqSpace`] per direction to
//!    turn sequence numbers into offsets.
//! 2. Every data segment: `on_segment(now, conn, dir, offset, payload)`;
//!    forward **only** the returned `forward` range (trim the payload; if it
//!    is empty drop the segment: the sender retransmits). Every ACK it
//!    forwards: `on_ack(conn, dir, ack_offset)` (acks from the client are
//!    Ack_CL). FINs: `on_fin`.
//! 3. `poll_event()`: on `ResponseLogged{tx}` tell the alternate backend
//!    to apply `tx`'s state (§4.1 step 5); when it confirms, call
//!    `on_state_applied(conn, t_s)` so the log can be trimmed.
//! 4. Timers: `poll_timeout()` / `handle_timeout(now)`; send each
//!    `poll_transmit()` probe to the backend, report replies with
//!    `on_probe_reply`.
//! 5. On `BackendFailed`: for every connection, `recover(now, conn)` gives a
//!    [`recovery::Recovery`]. Drive it: execute each `poll_action()`
//!    (stop relaying to the failed backend, re-send logged bytes to the
//!    client, tell the alternate T_L, connect to it, have it apply state,
//!    send it the replayed requests), feed it
//!    the alternate's T_S/T_A (`handle_state_report`), the connection
//!    (`handle_alternate_connected`), the alternate's bytes
//!    (`handle_alternate_data`: returns how many it absorbed; the rest go to
//!    the client once `Resplice` was emitted) and the client's acks. It ends
//!    in `Done` (re-spliced: install the deltas from
//!    [`recovery::Resplice::splice_deltas`]) or `ResetClient` (send a RST).
//!
//! The backend side uses [`state_sync::SyncGate`] to hold responses of
//! non-deterministic transactions until their state reached the alternate,
//! which keeps an [`state_sync::AlternateState`] per client connection. The
//! aux logger is an [`aux::AuxLog`] keyed by [`aux::TxId`].
//!
//! # Limits
//!
//! - A connection stalls (withheld, counted) if one transaction's request
//!   plus its response in flight exceed the per-connection cap: those bytes
//!   are needed for recovery and are never dropped. The paper logs the
//!   location of large files instead; that is not implemented.
//! - HTTP/1.1 only; protocol upgrades and malformed streams make a
//!   connection non-recoverable (its client is reset on failure).
#![forbid(unsafe_code)]

pub mod aux;
pub mod detector;
pub mod fuzz;
pub mod http;
pub mod log;
pub mod logger;
pub mod offsets;
pub mod plan;
pub mod recovery;
pub mod state_sync;
pub mod tags;

#[cfg(test)]
mod fixtures;

pub use offsets::SeqSpace;

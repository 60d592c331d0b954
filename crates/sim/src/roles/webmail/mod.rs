//! The webmail service of the `backend-crash` scenarios: the application
//! ([`app`]), its backends with state push and crash points ([`backend`]),
//! the measuring client with the traditional retry baseline ([`client`]),
//! and the UDP control messages between backends, logger and client
//! ([`control`]).

pub mod app;
pub mod backend;
pub mod client;
pub mod control;

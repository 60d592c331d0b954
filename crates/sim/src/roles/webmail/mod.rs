//! The webmail service of the `backend-crash` scenarios: the application
//! ([`app`]), its backends with state push and crash points ([`backend`]),
//! the measuring client with the traditional retry baseline ([`client`]),
//! the aux mail store ([`aux`]) and the UDP control messages between
//! backends, logger, aux server and client ([`control`]).

pub mod app;
pub mod aux;
pub mod backend;
pub mod client;
pub mod control;

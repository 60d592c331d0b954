//! Backend crash tolerance (backend-server-fault-tolerance paper), sans-IO:
//! the logger that never forwards an unlogged byte, the HTTP/1.1
//! transactionalizer, transaction tags, the adaptive failure detector and the
//! recovery planner.
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

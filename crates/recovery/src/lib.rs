//! Backend crash tolerance (backend-server-fault-tolerance paper), sans-IO:
//! the logger that never forwards an unlogged byte, the HTTP/1.1
//! transactionalizer, transaction tags, the adaptive failure detector and the
//! recovery planner.
#![forbid(unsafe_code)]

pub mod log;
pub mod offsets;

pub use offsets::SeqSpace;
pub mod fuzz;
pub mod http;
pub mod tags;

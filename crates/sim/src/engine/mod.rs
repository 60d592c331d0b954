//! The discrete-event engine: time, the event queue, seeded randomness,
//! faults and the [`Sim`] that ties nodes and links together.

pub mod event;
pub mod fault;
pub mod rng;
pub mod sim;
pub mod time;

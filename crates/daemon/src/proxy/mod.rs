//! The proxy's splice creation with kernel sockets (paper Figure 6): the
//! backend connection from the shared splice address ([`connect`]) with a
//! port of this proxy's partition ([`ports`]).

pub mod connect;
pub mod ports;

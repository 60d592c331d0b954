//! The proxy daemon (paper Figure 6 with kernel sockets): the accept
//! pipeline that turns each client connection into a splice
//! ([`pipeline`]), the backend connection from the shared splice address
//! ([`connect`]) with a port of this proxy's partition ([`ports`]), L7
//! routing and error answers ([`routing`]), and the daemon that wires them
//! to the data plane, replication, teardown, heartbeats and metrics
//! ([`daemon`]).

pub mod connect;
pub mod daemon;
pub mod pipeline;
pub mod ports;
pub mod routing;

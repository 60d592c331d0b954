//! The network: nodes and their interfaces, links, switches, captures.

pub mod link;
pub mod node;
pub mod pcap;
pub mod pool;
pub mod switch;
pub mod udp;

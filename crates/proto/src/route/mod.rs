//! L7 routing for the proxy: parse the client's HTTP/1.1 request head
//! ([`head`]), choose a backend pool by rules ([`rules`]) and a backend
//! within the pool.

pub mod head;
pub mod rules;

pub use head::{parse_head, HeadError, HeadLimits, Parsed, RequestHead};
pub use rules::{HostMatch, Pool, PoolPolicy, Router, Rule};

//! Splice replication between proxies: the messages ([`message`]), their
//! versioned, optionally authenticated wire form ([`codec`]) and the
//! per-proxy state machine that applies and acknowledges them
//! ([`replicator`]).

pub mod codec;
pub mod message;
pub mod replicator;

pub use codec::{fuzz_decode, Codec, DecodeError, Key};
pub use message::{Envelope, Message};
pub use replicator::{Replicator, ReplicatorConfig, ReplicatorEvent};

//! The crate's error type.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// An external command (e.g. `ip`) could not run or exited non-zero.
    #[error("command `{cmd}` failed: {detail}")]
    Command { cmd: String, detail: String },
    /// An address outside 198.18.0.0/15 was given to the test topology.
    #[error("address {0} is outside 198.18.0.0/15, the only range test hosts may use")]
    AddrOutOfRange(std::net::Ipv4Addr),
    /// A name is too long or has characters the kernel refuses.
    #[error("invalid name {0:?}: {1}")]
    BadName(String, &'static str),
    /// A socket is in a state the operation cannot use.
    #[error("socket state: {0}")]
    State(String),
    /// The closure run inside a namespace panicked.
    #[error("thread inside namespace {0} panicked")]
    Panicked(String),
}

impl Error {
    pub(crate) fn last_os(op: &'static str) -> Self {
        Error::Sys {
            op,
            source: io::Error::last_os_error(),
        }
    }
}

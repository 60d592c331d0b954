//! The HTTP/1.1 transactionalizer (paper §3.1, §5): cuts each direction's
//! byte stream into messages, maps them to stream offsets and pairs request
//! *i* with response *i* into a [`Transaction`].
//!
//! Framing follows RFC 9112: Content-Length, chunked transfer coding with
//! extensions and trailers, no body for HEAD responses and 1xx/204/304
//! (1xx interim responses are part of their transaction's response),
//! pipelined requests, keep-alive and `Connection: close` (HTTP/1.0 closes
//! unless `keep-alive`), response bodies delimited by the server's close.
//! Malformed input puts the transactionalizer into a terminal error state
//! with the reason ([`HttpError`]); the connection is then not recoverable.
//! A protocol switch (101, CONNECT 2xx) is reported the same way: the
//! stream is no longer HTTP and cannot be cut into transactions.

mod body;
mod head;
mod transactions;

pub use transactions::{Transaction, Transactionalizer, TxEvent, TxNum};

use crate::log::Direction;
use thiserror::Error;

/// Longest message head accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// Why a stream could not be cut into transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum ErrorKind {
    #[error("message head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("line not ended by CRLF")]
    BadLineEnding,
    #[error("malformed request line")]
    BadRequestLine,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("HTTP version other than 1.0/1.1")]
    UnsupportedVersion,
    #[error("malformed header field")]
    BadHeader,
    #[error("obsolete line folding")]
    ObsoleteLineFolding,
    #[error("invalid or conflicting Content-Length")]
    BadContentLength,
    #[error("both Transfer-Encoding and Content-Length")]
    ConflictingFraming,
    #[error("request Transfer-Encoding not ending in chunked")]
    BadTransferEncoding,
    #[error("malformed chunked body")]
    BadChunk,
    #[error("response bytes with no request to answer")]
    ResponseWithoutRequest,
    #[error("bytes after the connection was closed")]
    DataAfterClose,
    #[error("connection switched protocols (101 or CONNECT)")]
    Upgraded,
    #[error("stream ended inside a message")]
    Truncated,
    #[error("too many requests waiting for responses")]
    TooManyOutstanding,
}

/// A terminal transactionalizer error: where and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[error("{dir:?} at offset {offset}: {kind}")]
pub struct HttpError {
    pub dir: Direction,
    pub offset: u64,
    pub kind: ErrorKind,
}

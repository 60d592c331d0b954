//! The one error type of the wire crate: why a buffer is not a usable
//! IPv4/TCP packet (or why a representation cannot be emitted). Every variant
//! has a stable, short [`Error::reason`] suitable as a drop-counter key.

use core::fmt;

/// Why parsing or emitting failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than a fixed header or than a declared length.
    Truncated,
    /// IP version field is not 4.
    BadVersion,
    /// IPv4 IHL below 5 or beyond the buffer.
    BadHeaderLen,
    /// IPv4 total length below the header length or beyond the buffer.
    BadTotalLen,
    /// The IPv4 packet is a fragment (MF set or non-zero offset).
    Fragment,
    /// The IPv4 payload is not TCP.
    NotTcp,
    /// TCP data offset below 5 or beyond the segment.
    BadDataOffset,
    /// A TCP option's length byte is missing or runs past the options area.
    OptionTruncated,
    /// A known TCP option has a length its kind does not allow.
    BadOptionLen,
    /// A checksum does not verify.
    BadChecksum,
    /// The options to emit need more than the 40 bytes TCP allows.
    OptionsTooLong,
    /// The buffer given to `emit` is too small for the representation.
    BufferTooSmall,
}

impl Error {
    /// A short, stable description (used as a drop-reason label).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "ip version not 4",
            Error::BadHeaderLen => "bad ipv4 header length",
            Error::BadTotalLen => "bad ipv4 total length",
            Error::Fragment => "ipv4 fragment",
            Error::NotTcp => "not tcp",
            Error::BadDataOffset => "bad tcp data offset",
            Error::OptionTruncated => "tcp option truncated",
            Error::BadOptionLen => "bad tcp option length",
            Error::BadChecksum => "bad checksum",
            Error::OptionsTooLong => "tcp options exceed 40 bytes",
            Error::BufferTooSmall => "emit buffer too small",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Error {}

/// Result of wire operations.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct() {
        let all = [
            Error::Truncated,
            Error::BadVersion,
            Error::BadHeaderLen,
            Error::BadTotalLen,
            Error::Fragment,
            Error::NotTcp,
            Error::BadDataOffset,
            Error::OptionTruncated,
            Error::BadOptionLen,
            Error::BadChecksum,
            Error::OptionsTooLong,
            Error::BufferTooSmall,
        ];
        let mut reasons: Vec<_> = all.iter().map(Error::reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), all.len());
        assert_eq!(Error::NotTcp.to_string(), "not tcp");
    }
}

//! Big-endian field access and the header-length check shared by the IPv4
//! and TCP views: both headers are 20 fixed bytes followed by options whose
//! length a header field states.

use core::net::Ipv4Addr;
use core::ops::Range;

use crate::error::{Error, Result};

/// Length of the fixed part of both the IPv4 and the TCP header.
pub(crate) const FIXED_HEADER_LEN: usize = 20;

pub(crate) fn be16(b: &[u8], f: Range<usize>) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

pub(crate) fn be32(b: &[u8], f: Range<usize>) -> u32 {
    u32::from_be_bytes([b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3]])
}

pub(crate) fn addr(b: &[u8], f: Range<usize>) -> Ipv4Addr {
    Ipv4Addr::from(be32(b, f))
}

pub(crate) fn put16(b: &mut [u8], f: Range<usize>, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put32(b: &mut [u8], f: Range<usize>, v: u32) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

/// A buffer of `len` bytes holds a header that claims `header_len` bytes:
/// the fixed part must fit (`Truncated`), and the claimed length must be at
/// least the fixed part and fit too (`bad`).
pub(crate) fn check_header(len: usize, header_len: impl Fn() -> usize, bad: Error) -> Result<()> {
    if len < FIXED_HEADER_LEN {
        return Err(Error::Truncated);
    }
    let hl = header_len();
    if hl < FIXED_HEADER_LEN || hl > len {
        return Err(bad);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_order() {
        let mut b = [0u8; 8];
        put16(&mut b, 0..2, 0x1234);
        put32(&mut b, 4..8, 0xc612_0001);
        assert_eq!(b[..2], [0x12, 0x34]);
        assert_eq!(be16(&b, 0..2), 0x1234);
        assert_eq!(be32(&b, 4..8), 0xc612_0001);
        assert_eq!(addr(&b, 4..8), Ipv4Addr::new(198, 18, 0, 1));
    }

    #[test]
    fn header_checks_name_the_problem() {
        let bad = Error::BadDataOffset;
        assert_eq!(check_header(19, || 20, bad), Err(Error::Truncated));
        assert_eq!(check_header(40, || 16, bad), Err(bad));
        assert_eq!(check_header(40, || 44, bad), Err(bad));
        assert_eq!(check_header(40, || 40, bad), Ok(()));
    }
}

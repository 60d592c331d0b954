//! TCP header: the zero-copy [`TcpPacket`] view (`mod field` byte ranges,
//! getters and setters, checksum with the IPv4 pseudo-header), the
//! [`TcpFlags`] set and the high-level [`TcpRepr`] with parse/emit.

use core::fmt;
use core::net::Ipv4Addr;

use crate::bytes::{be16, be32, check_header, put16, put32, FIXED_HEADER_LEN};
use crate::checksum;
use crate::error::{Error, Result};
use crate::tcp_options::{TcpOptionIter, TcpOptions, MAX_OPTIONS_LEN};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = FIXED_HEADER_LEN;

/// Byte ranges of the TCP header fields.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble of byte 12) and flags (byte 13).
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    /// Options start here and run to the header length.
    pub const OPTIONS: usize = 20;
}

/// The eight TCP flag bits (byte 13 of the header).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    pub const fn empty() -> Self {
        TcpFlags(0)
    }

    /// True if every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any flag of `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn union(self, other: TcpFlags) -> Self {
        TcpFlags(self.0 | other.0)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// A read/write view of a TCP segment (header, options, payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic on short
    /// buffers. Use [`TcpPacket::new_checked`] for untrusted bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`TcpPacket::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Validates that a fixed header fits and the data offset is at least 5
    /// and within the segment.
    pub fn check_len(&self) -> Result<()> {
        check_header(
            self.buffer.as_ref().len(),
            || self.header_len(),
            Error::BadDataOffset,
        )
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS.start + 1])
    }

    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }

    /// The raw options area.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// Iterates the options (each with its offset in the options area).
    pub fn option_iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter::new(self.options())
    }

    /// Length of the payload in bytes.
    pub fn payload_len(&self) -> usize {
        self.buffer.as_ref().len() - self.header_len()
    }

    /// Sequence space the segment occupies (payload + SYN + FIN).
    pub fn segment_len(&self) -> usize {
        let f = self.flags();
        self.payload_len()
            + usize::from(f.contains(TcpFlags::SYN))
            + usize::from(f.contains(TcpFlags::FIN))
    }

    /// True if the checksum verifies for a segment from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header(src, dst, crate::ipv4::PROTO_TCP, len);
        checksum::combine(pseudo, checksum::sum(b)) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The payload, borrowed for the buffer's lifetime.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn put16(&mut self, f: field::Field, v: u16) {
        put16(self.buffer.as_mut(), f, v);
    }

    fn put32(&mut self, f: field::Field, v: u32) {
        put32(self.buffer.as_mut(), f, v);
    }

    pub fn set_src_port(&mut self, v: u16) {
        self.put16(field::SRC_PORT, v);
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.put16(field::DST_PORT, v);
    }

    pub fn set_seq_number(&mut self, v: u32) {
        self.put32(field::SEQ_NUM, v);
    }

    pub fn set_ack_number(&mut self, v: u32) {
        self.put32(field::ACK_NUM, v);
    }

    /// Sets the data offset from a header length (multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[field::FLAGS.start] = (((len / 4) as u8) << 4) | (b[field::FLAGS.start] & 0x0f);
    }

    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS.start + 1] = f.0;
    }

    pub fn set_window_len(&mut self, v: u16) {
        self.put16(field::WIN_SIZE, v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.put16(field::CHECKSUM, v);
    }

    pub fn set_urgent_at(&mut self, v: u16) {
        self.put16(field::URGENT, v);
    }

    /// The options area, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes and stores the checksum (full RFC 1071 computation over the
    /// pseudo-header and the whole segment).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::tcp(src, dst, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// High-level TCP segment. `ack` is carried even without the ACK flag so
/// that parse/emit round-trips exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a checked segment from `src` to `dst`, verifying its checksum
    /// and options.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options: TcpOptions::parse(packet.options())?,
            payload: packet.payload(),
        })
    }

    /// Header length (with options) of the emitted segment.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.buffer_len()
    }

    /// Bytes [`TcpRepr::emit`] writes: header, options and payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment with its checksum into `buf`, which must be exactly
    /// [`TcpRepr::buffer_len`] bytes (the checksum covers the whole buffer).
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<()> {
        if self.options.buffer_len() > MAX_OPTIONS_LEN {
            return Err(Error::OptionsTooLong);
        }
        if buf.len() != self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        buf[self.header_len()..].copy_from_slice(self.payload);
        self.emit_header(buf, src, dst)
    }

    /// [`TcpRepr::emit`] into a buffer that already holds the payload after
    /// [`TcpRepr::header_len`] zeroed bytes (the header is written and the
    /// checksum computed over the whole buffer).
    pub(crate) fn emit_header(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<()> {
        if self.options.buffer_len() > MAX_OPTIONS_LEN {
            return Err(Error::OptionsTooLong);
        }
        if buf.len() != self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        let hl = self.header_len();
        self.options.emit(&mut buf[field::OPTIONS..hl])?;
        let mut p = TcpPacket::new_unchecked(buf);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        p.buffer[field::FLAGS.start] = 0;
        p.set_header_len(hl);
        p.set_flags(self.flags);
        p.set_window_len(self.window);
        p.set_urgent_at(self.urgent);
        p.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_options::SackBlocks;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn sample_repr(payload: &[u8]) -> TcpRepr<'_> {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 0xdead_beef,
            ack: 0x0102_0304,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 502,
            urgent: 0,
            options: TcpOptions {
                timestamp: Some((7, 9)),
                ..TcpOptions::default()
            },
            payload,
        }
    }

    #[test]
    fn emit_layout_and_getters() {
        let r = sample_repr(b"hello");
        let mut buf = vec![0; r.buffer_len()];
        r.emit(&mut buf, SRC, DST).unwrap();
        assert_eq!(buf.len(), 20 + 12 + 5);
        assert_eq!(&buf[0..4], &[0x9c, 0x40, 0x00, 0x50]);
        assert_eq!(buf[12], 0x80); // data offset 8
        assert_eq!(buf[13], 0x18); // PSH|ACK
        assert_eq!(&buf[20..24], &[1, 1, 8, 10]);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.seq_number(), 0xdead_beef);
        assert_eq!(p.ack_number(), 0x0102_0304);
        assert_eq!(p.window_len(), 502);
        assert_eq!(p.payload(), b"hello");
        assert_eq!(p.segment_len(), 5);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(198, 18, 0, 3)));
        assert_eq!(format!("{:?}", p.flags()), "PSH|ACK");
        assert_eq!(format!("{:?}", TcpFlags::empty()), "-");
    }

    #[test]
    fn check_len_rejects() {
        let r = sample_repr(b"");
        let mut buf = vec![0; r.buffer_len()];
        r.emit(&mut buf, SRC, DST).unwrap();
        assert_eq!(
            TcpPacket::new_checked(&buf[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&buf[..31]).unwrap_err(),
            Error::BadDataOffset
        );
        buf[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&buf[..]).unwrap_err(),
            Error::BadDataOffset
        );
    }

    #[test]
    fn parse_rejects_bad_checksum_and_options() {
        let r = sample_repr(b"x");
        let mut buf = vec![0; r.buffer_len()];
        r.emit(&mut buf, SRC, DST).unwrap();
        let mut bad = buf.clone();
        bad[32] ^= 1;
        let p = TcpPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, SRC, DST), Err(Error::BadChecksum));
        // Truncate the timestamp option's length and fix the checksum.
        let mut bad = buf.clone();
        bad[23] = 12;
        TcpPacket::new_unchecked(&mut bad[..]).fill_checksum(SRC, DST);
        let p = TcpPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, SRC, DST), Err(Error::OptionTruncated));
    }

    #[test]
    fn emit_checks_buffer() {
        let r = sample_repr(b"abc");
        assert_eq!(r.emit(&mut [0; 10], SRC, DST), Err(Error::BufferTooSmall));
        let mut big = r;
        big.options.sack = SackBlocks::from_slice(&[(1, 2); 4]).unwrap();
        let mut buf = vec![0; big.buffer_len()];
        assert_eq!(big.emit(&mut buf, SRC, DST), Err(Error::OptionsTooLong));
    }

    proptest! {
        #[test]
        fn parse_emit_roundtrip(
            ports: (u16, u16), seq: u32, ack: u32, flags: u8, window: u16, urgent: u16,
            options in crate::tcp_options::tests::options_strategy(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let r = TcpRepr {
                src_port: ports.0, dst_port: ports.1, seq, ack,
                flags: TcpFlags(flags), window, urgent, options, payload: &payload,
            };
            let mut buf = vec![0; r.buffer_len()];
            r.emit(&mut buf, SRC, DST).unwrap();
            let p = TcpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(TcpRepr::parse(&p, SRC, DST).unwrap(), r);
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = TcpPacket::new_checked(&b[..]) {
                let _ = TcpRepr::parse(&p, SRC, DST);
                let _ = p.option_iter().count();
                let _ = (p.payload(), p.segment_len());
            }
        }
    }
}

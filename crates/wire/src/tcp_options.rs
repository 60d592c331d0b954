//! TCP options (RFC 9293, RFC 7323, RFC 2018): a validating iterator over the
//! raw options area that yields each option with its offset (so translators
//! can rewrite it in place), and the parsed [`TcpOptions`] summary with a
//! canonical, 4-byte aligned emitter. Truncated or mis-sized options are
//! errors, never panics.

use crate::error::{Error, Result};

/// Option kinds this crate understands.
pub mod kind {
    pub const END_OF_LIST: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// Maximum bytes of TCP options (data offset 15 minus the fixed header).
pub const MAX_OPTIONS_LEN: usize = 40;

/// Up to four SACK blocks `(left, right)`; unused slots are always zero so
/// equality compares only the blocks present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SackBlocks {
    len: u8,
    blocks: [(u32, u32); 4],
}

impl SackBlocks {
    /// Most blocks an option can carry.
    pub const MAX: usize = 4;

    pub const fn new() -> Self {
        SackBlocks {
            len: 0,
            blocks: [(0, 0); 4],
        }
    }

    /// The blocks of `s`, or `None` if there are more than four.
    pub fn from_slice(s: &[(u32, u32)]) -> Option<Self> {
        let mut b = SackBlocks::new();
        for &block in s {
            if !b.push(block) {
                return None;
            }
        }
        Some(b)
    }

    /// Appends a block; false (and unchanged) if already full.
    pub fn push(&mut self, block: (u32, u32)) -> bool {
        let i = usize::from(self.len);
        if i >= Self::MAX {
            return false;
        }
        self.blocks[i] = block;
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One option as found in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    MaxSegmentSize(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(SackBlocks),
    Timestamp {
        tsval: u32,
        tsecr: u32,
    },
    /// An option of a kind not listed above (its data without kind/length).
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterates the options area, yielding `(offset, option)` with the offset of
/// the option's kind byte in the area. Stops after End-of-List (bytes after
/// it are padding) or after the first error.
#[derive(Clone, Debug)]
pub struct TcpOptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> TcpOptionIter<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptionIter {
            data,
            pos: 0,
            done: false,
        }
    }

    fn next_option(&mut self) -> Result<(usize, TcpOption<'a>)> {
        let at = self.pos;
        let d = self.data;
        let k = d[at];
        match k {
            kind::END_OF_LIST => {
                self.done = true;
                return Ok((at, TcpOption::EndOfList));
            }
            kind::NOP => {
                self.pos += 1;
                return Ok((at, TcpOption::NoOperation));
            }
            _ => {}
        }
        let len = usize::from(*d.get(at + 1).ok_or(Error::OptionTruncated)?);
        if len < 2 {
            return Err(Error::BadOptionLen);
        }
        let body = d.get(at + 2..at + len).ok_or(Error::OptionTruncated)?;
        let be32 = |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let opt = match (k, len) {
            (kind::MSS, 4) => TcpOption::MaxSegmentSize(u16::from_be_bytes([body[0], body[1]])),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(body[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::TIMESTAMP, 10) => TcpOption::Timestamp {
                tsval: be32(0),
                tsecr: be32(4),
            },
            (kind::SACK, _) if (len - 2) % 8 == 0 && (1..=4).contains(&((len - 2) / 8)) => {
                let mut blocks = SackBlocks::new();
                for i in 0..(len - 2) / 8 {
                    blocks.push((be32(i * 8), be32(i * 8 + 4)));
                }
                TcpOption::Sack(blocks)
            }
            (
                kind::MSS
                | kind::WINDOW_SCALE
                | kind::SACK_PERMITTED
                | kind::TIMESTAMP
                | kind::SACK,
                _,
            ) => return Err(Error::BadOptionLen),
            _ => TcpOption::Unknown {
                kind: k,
                data: body,
            },
        };
        self.pos += len;
        Ok((at, opt))
    }
}

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<(usize, TcpOption<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let r = self.next_option();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// The options of a segment that matter to ftsplice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub sack: SackBlocks,
    /// `(tsval, tsecr)`.
    pub timestamp: Option<(u32, u32)>,
}

impl TcpOptions {
    /// Parses an options area; unknown kinds are skipped (but must be
    /// well-formed), a repeated option overrides the earlier one.
    pub fn parse(data: &[u8]) -> Result<TcpOptions> {
        if let Some(ts) = TcpOptions::timestamp_only(data) {
            return Ok(TcpOptions {
                timestamp: Some(ts),
                ..TcpOptions::default()
            });
        }
        let mut o = TcpOptions::default();
        for item in TcpOptionIter::new(data) {
            match item?.1 {
                TcpOption::MaxSegmentSize(v) => o.mss = Some(v),
                TcpOption::WindowScale(v) => o.window_scale = Some(v),
                TcpOption::SackPermitted => o.sack_permitted = true,
                TcpOption::Sack(b) => o.sack = b,
                TcpOption::Timestamp { tsval, tsecr } => o.timestamp = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(o)
    }

    /// `(tsval, tsecr)` when the options area is exactly NOP, NOP,
    /// timestamp: the layout of every established segment without SACK
    /// blocks (ours and Linux's), recognised without walking the options.
    /// Parsing such an area the long way gives the same answer.
    pub fn timestamp_only(data: &[u8]) -> Option<(u32, u32)> {
        match data {
            [kind::NOP, kind::NOP, kind::TIMESTAMP, 10, v0, v1, v2, v3, e0, e1, e2, e3] => Some((
                u32::from_be_bytes([*v0, *v1, *v2, *v3]),
                u32::from_be_bytes([*e0, *e1, *e2, *e3]),
            )),
            _ => None,
        }
    }

    /// Bytes [`TcpOptions::emit`] writes (a multiple of 4; may exceed 40,
    /// in which case emitting fails).
    pub fn buffer_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        n += match (self.sack_permitted, self.timestamp.is_some()) {
            (_, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        if self.window_scale.is_some() {
            n += 4;
        }
        if !self.sack.is_empty() {
            n += 4 + 8 * self.sack.len();
        }
        n
    }

    /// Writes the options in Linux's layout (MSS, SACK-permitted+TS or
    /// NOP-padded TS, NOP+WS, NOP NOP SACK) into `buf`; returns the length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.buffer_len();
        if n > MAX_OPTIONS_LEN {
            return Err(Error::OptionsTooLong);
        }
        let out = buf.get_mut(..n).ok_or(Error::BufferTooSmall)?;
        let mut w = 0;
        let mut put = |bytes: &[u8]| {
            out[w..w + bytes.len()].copy_from_slice(bytes);
            w += bytes.len();
        };
        if let Some(mss) = self.mss {
            put(&[kind::MSS, 4]);
            put(&mss.to_be_bytes());
        }
        match (self.sack_permitted, self.timestamp) {
            (sp, Some((tsval, tsecr))) => {
                put(&if sp {
                    [kind::SACK_PERMITTED, 2]
                } else {
                    [kind::NOP, kind::NOP]
                });
                put(&[kind::TIMESTAMP, 10]);
                put(&tsval.to_be_bytes());
                put(&tsecr.to_be_bytes());
            }
            (true, None) => put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(ws) = self.window_scale {
            put(&[kind::NOP, kind::WINDOW_SCALE, 3, ws]);
        }
        if !self.sack.is_empty() {
            put(&[
                kind::NOP,
                kind::NOP,
                kind::SACK,
                (2 + 8 * self.sack.len()) as u8,
            ]);
            for &(l, r) in self.sack.as_slice() {
                put(&l.to_be_bytes());
                put(&r.to_be_bytes());
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The options walk, without the timestamp-only shortcut.
    fn parse_long_way(data: &[u8]) -> Result<TcpOptions> {
        let mut o = TcpOptions::default();
        for item in TcpOptionIter::new(data) {
            match item?.1 {
                TcpOption::MaxSegmentSize(v) => o.mss = Some(v),
                TcpOption::WindowScale(v) => o.window_scale = Some(v),
                TcpOption::SackPermitted => o.sack_permitted = true,
                TcpOption::Sack(b) => o.sack = b,
                TcpOption::Timestamp { tsval, tsecr } => o.timestamp = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(o)
    }

    proptest! {
        /// The timestamp-only shortcut answers what walking the options
        /// answers, for areas with its prefix (any length) and any others.
        #[test]
        fn timestamp_only_shortcut_matches_the_walk(
            prefixed in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut data = if prefixed { vec![kind::NOP, kind::NOP, kind::TIMESTAMP, 10] } else { Vec::new() };
            data.extend_from_slice(&tail);
            data.truncate(40);
            prop_assert_eq!(TcpOptions::parse(&data), parse_long_way(&data));
            if let Some(ts) = TcpOptions::timestamp_only(&data) {
                prop_assert_eq!(parse_long_way(&data).ok().and_then(|o| o.timestamp), Some(ts));
            }
        }
    }

    #[test]
    fn parses_linux_syn_options() {
        // MSS 1460, SACK-permitted, TS, NOP, WS 7 (a Linux SYN).
        let d = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let o = TcpOptions::parse(&d).unwrap();
        assert_eq!(o.mss, Some(1460));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamp, Some((1, 0)));
        assert_eq!(o.window_scale, Some(7));
        assert!(o.sack.is_empty());
        let offsets: Vec<usize> = TcpOptionIter::new(&d).map(|r| r.unwrap().0).collect();
        assert_eq!(offsets, [0, 4, 6, 16, 17]);
    }

    #[test]
    fn parses_sack_blocks_and_stops_at_eol() {
        let mut d = vec![1, 1, 5, 18];
        for v in [10u32, 20, 30, 40] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        d.extend_from_slice(&[0, 2, 4]); // EOL then garbage padding
        let o = TcpOptions::parse(&d).unwrap();
        assert_eq!(o.sack.as_slice(), &[(10, 20), (30, 40)]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(TcpOptions::parse(&[2]), Err(Error::OptionTruncated));
        assert_eq!(TcpOptions::parse(&[2, 4, 5]), Err(Error::OptionTruncated));
        assert_eq!(TcpOptions::parse(&[2, 3, 5]), Err(Error::BadOptionLen));
        assert_eq!(TcpOptions::parse(&[99, 1]), Err(Error::BadOptionLen));
        assert_eq!(TcpOptions::parse(&[99, 0]), Err(Error::BadOptionLen));
        assert_eq!(
            TcpOptions::parse(&[8, 8, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadOptionLen)
        );
        assert_eq!(TcpOptions::parse(&[5, 2]), Err(Error::BadOptionLen));
        assert_eq!(
            TcpOptions::parse(&[5, 9, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadOptionLen)
        );
        let mut five = vec![5, 42];
        five.extend_from_slice(&[0; 40]);
        assert_eq!(TcpOptions::parse(&five), Err(Error::BadOptionLen));
        // Unknown but well-formed options are skipped.
        assert_eq!(
            TcpOptions::parse(&[99, 3, 7, 2, 4, 1, 0]).unwrap().mss,
            Some(0x100)
        );
    }

    #[test]
    fn iterator_stops_after_error() {
        let mut it = TcpOptionIter::new(&[1, 2, 3, 1, 1]);
        assert!(matches!(it.next(), Some(Ok((0, TcpOption::NoOperation)))));
        assert_eq!(it.next(), Some(Err(Error::BadOptionLen)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn emit_rejects_too_long() {
        let o = TcpOptions {
            timestamp: Some((1, 2)),
            sack: SackBlocks::from_slice(&[(1, 2); 4]).unwrap(),
            ..TcpOptions::default()
        };
        assert_eq!(o.buffer_len(), 48);
        assert_eq!(o.emit(&mut [0; 64]), Err(Error::OptionsTooLong));
        let o = TcpOptions {
            mss: Some(1),
            ..TcpOptions::default()
        };
        assert_eq!(o.emit(&mut [0; 3]), Err(Error::BufferTooSmall));
        assert!(SackBlocks::from_slice(&[(0, 0); 5]).is_none());
    }

    pub(crate) fn options_strategy() -> impl Strategy<Value = TcpOptions> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
            proptest::option::of(any::<(u32, u32)>()),
        )
            .prop_map(|(mss, ws, sp, sack, ts)| TcpOptions {
                mss,
                window_scale: ws,
                sack_permitted: sp,
                sack: SackBlocks::from_slice(&sack).unwrap_or_default(),
                timestamp: ts,
            })
            .prop_filter("fits in 40 bytes", |o| o.buffer_len() <= MAX_OPTIONS_LEN)
    }

    proptest! {
        #[test]
        fn parse_emit_roundtrip(o in options_strategy()) {
            let mut buf = [0u8; MAX_OPTIONS_LEN];
            let n = o.emit(&mut buf).unwrap();
            prop_assert_eq!(n % 4, 0);
            prop_assert_eq!(TcpOptions::parse(&buf[..n]).unwrap(), o);
        }

        #[test]
        fn random_bytes_never_panic(d in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = TcpOptions::parse(&d);
            for (at, _) in TcpOptionIter::new(&d).flatten() {
                prop_assert!(at < d.len());
            }
        }
    }
}

//! TCP options this endpoint speaks (MSS, window scale, SACK-permitted, SACK
//! blocks, timestamps) as plain values, plus the on-wire length they need so
//! senders can keep header + payload within the MSS (RFC 6691).

use crate::seq::SeqNum;

/// At most 4 SACK blocks fit in the 40 option bytes (3 next to timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// A SACK block: bytes `[start, end)` received (RFC 2018).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SackBlock {
    pub start: SeqNum,
    pub end: SeqNum,
}

/// Up to [`MAX_SACK_BLOCKS`] SACK blocks, first block first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SackBlocks {
    blocks: [SackBlock; MAX_SACK_BLOCKS],
    len: u8,
}

impl SackBlocks {
    pub const fn new() -> Self {
        SackBlocks {
            blocks: [SackBlock {
                start: SeqNum(0),
                end: SeqNum(0),
            }; MAX_SACK_BLOCKS],
            len: 0,
        }
    }

    /// Appends a block; returns false (and ignores it) when full.
    pub fn push(&mut self, b: SackBlock) -> bool {
        if usize::from(self.len) >= MAX_SACK_BLOCKS {
            return false;
        }
        self.blocks[usize::from(self.len)] = b;
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[SackBlock] {
        &self.blocks[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n.min(MAX_SACK_BLOCKS) as u8);
    }
}

impl FromIterator<SackBlock> for SackBlocks {
    fn from_iter<I: IntoIterator<Item = SackBlock>>(iter: I) -> Self {
        let mut s = SackBlocks::new();
        for b in iter {
            if !s.push(b) {
                break;
            }
        }
        s
    }
}

/// RFC 7323 timestamp option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Timestamp {
    pub tsval: u32,
    pub tsecr: u32,
}

/// The options of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpOptions {
    /// Maximum segment size (SYN only).
    pub mss: Option<u16>,
    /// Window scale shift count (SYN only).
    pub window_scale: Option<u8>,
    /// SACK-permitted (SYN only).
    pub sack_permitted: bool,
    pub sack: SackBlocks,
    pub timestamp: Option<Timestamp>,
}

/// Bytes the timestamp option takes with its usual 2 NOPs of padding.
pub const TS_OPTION_LEN: usize = 12;

/// Bytes `n` SACK blocks take with 2 NOPs of padding.
pub const fn sack_option_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        2 + 2 + 8 * n
    }
}

/// Largest option space of a TCP header.
pub const MAX_OPTIONS_LEN: usize = 40;

impl TcpOptions {
    /// Bytes the options occupy on the wire, padded to 4-byte words as Linux
    /// lays them out.
    pub fn wire_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4; // NOP + 3
        }
        match (self.sack_permitted, self.timestamp.is_some()) {
            (true, true) => n += 12, // SACK-perm(2) + TS(10)
            (true, false) => n += 4,
            (false, true) => n += TS_OPTION_LEN,
            (false, false) => {}
        }
        n + sack_option_len(self.sack.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sack_blocks_cap_at_four() {
        let mut s = SackBlocks::new();
        for i in 0..5u32 {
            let ok = s.push(SackBlock {
                start: SeqNum(i * 10),
                end: SeqNum(i * 10 + 5),
            });
            assert_eq!(ok, i < 4);
        }
        assert_eq!(s.len(), 4);
        assert_eq!(s.as_slice()[3].start, SeqNum(30));
        s.truncate(2);
        assert_eq!(s.len(), 2);
        assert!(!s.is_empty());
    }

    #[test]
    fn wire_lengths_match_linux_layout() {
        let syn = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some(Timestamp::default()),
            ..Default::default()
        };
        assert_eq!(syn.wire_len(), 20);
        let mut data = TcpOptions {
            timestamp: Some(Timestamp::default()),
            ..Default::default()
        };
        assert_eq!(data.wire_len(), 12);
        for _ in 0..3 {
            data.sack.push(SackBlock::default());
        }
        assert_eq!(data.wire_len(), 40);
        assert_eq!(sack_option_len(4), 36);
    }
}

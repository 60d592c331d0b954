//! Out-of-order receive bookkeeping: which sequence ranges beyond RCV.NXT are
//! held (the bytes themselves live in the receive ring), with a bounded
//! number of disjoint ranges, and the SACK blocks (RFC 2018) describing them,
//! most recently changed first.

use crate::options::{SackBlock, SackBlocks};
use crate::seq::SeqNum;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: SeqNum,
    end: SeqNum,
    /// When this range last grew (monotonic counter), for SACK ordering.
    touched: u64,
}

/// Disjoint, sorted out-of-order ranges.
#[derive(Clone, Debug)]
pub struct Reassembly {
    ranges: Vec<Range>,
    max_ranges: usize,
    clock: u64,
}

/// The segment would create more disjoint ranges than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyHoles;

impl Reassembly {
    pub fn new(max_ranges: usize) -> Self {
        Reassembly {
            ranges: Vec::with_capacity(max_ranges.min(64)),
            max_ranges: max_ranges.max(1),
            clock: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn num_ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Highest sequence number held, if any.
    pub fn highest(&self) -> Option<SeqNum> {
        self.ranges.last().map(|r| r.end)
    }

    /// Records that `[start, end)` is held. Merges with overlapping or
    /// adjacent ranges.
    pub fn insert(&mut self, start: SeqNum, end: SeqNum) -> Result<(), TooManyHoles> {
        if end <= start {
            return Ok(());
        }
        self.clock += 1;
        // First range that ends at or after `start` (may merge).
        let first = self.ranges.partition_point(|r| r.end < start);
        // Ranges from `first` up to `last` (exclusive) touch [start, end].
        let last = first + self.ranges[first..].partition_point(|r| r.start <= end);
        if first == last {
            if self.ranges.len() >= self.max_ranges {
                return Err(TooManyHoles);
            }
            self.ranges.insert(
                first,
                Range {
                    start,
                    end,
                    touched: self.clock,
                },
            );
            return Ok(());
        }
        let merged = Range {
            start: self.ranges[first].start.min(start),
            end: self.ranges[last - 1].end.max(end),
            touched: self.clock,
        };
        self.ranges.drain(first + 1..last);
        self.ranges[first] = merged;
        Ok(())
    }

    /// Forgets everything below `rcv_nxt`; if a held range starts at or
    /// before it, removes that range and returns its end (the new RCV.NXT).
    pub fn advance(&mut self, rcv_nxt: SeqNum) -> Option<SeqNum> {
        let below = self.ranges.partition_point(|r| r.end <= rcv_nxt);
        self.ranges.drain(..below);
        match self.ranges.first() {
            Some(r) if r.start <= rcv_nxt => {
                let end = r.end;
                self.ranges.remove(0);
                Some(end)
            }
            _ => None,
        }
    }

    /// Up to `max` SACK blocks, the most recently changed range first.
    pub fn sack_blocks(&self, max: usize) -> SackBlocks {
        let mut out = SackBlocks::new();
        // Selection by recency; `touched` values are unique.
        let mut below = u64::MAX;
        for _ in 0..max.min(crate::options::MAX_SACK_BLOCKS) {
            let Some(r) = self
                .ranges
                .iter()
                .filter(|r| r.touched < below)
                .max_by_key(|r| r.touched)
            else {
                break;
            };
            below = r.touched;
            out.push(SackBlock {
                start: r.start,
                end: r.end,
            });
        }
        out
    }

    pub fn clear(&mut self) {
        self.ranges.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    #[test]
    fn merges_and_advances() {
        let mut r = Reassembly::new(8);
        r.insert(s(20), s(30)).unwrap();
        r.insert(s(40), s(50)).unwrap();
        r.insert(s(30), s(40)).unwrap();
        assert_eq!(r.num_ranges(), 1);
        assert_eq!(r.highest(), Some(s(50)));
        assert_eq!(r.advance(s(10)), None);
        assert_eq!(r.advance(s(25)), Some(s(50)));
        assert!(r.is_empty());
    }

    #[test]
    fn drops_ranges_already_covered() {
        let mut r = Reassembly::new(8);
        r.insert(s(20), s(30)).unwrap();
        r.insert(s(50), s(60)).unwrap();
        assert_eq!(r.advance(s(40)), None);
        assert_eq!(r.num_ranges(), 1);
        assert_eq!(r.advance(s(50)), Some(s(60)));
    }

    #[test]
    fn bounds_the_number_of_holes() {
        let mut r = Reassembly::new(2);
        r.insert(s(10), s(20)).unwrap();
        r.insert(s(30), s(40)).unwrap();
        assert_eq!(r.insert(s(50), s(60)), Err(TooManyHoles));
        // Extending an existing range is still fine.
        r.insert(s(40), s(45)).unwrap();
        r.insert(s(5), s(10)).unwrap();
        assert_eq!(r.num_ranges(), 2);
    }

    #[test]
    fn sack_blocks_most_recent_first() {
        let mut r = Reassembly::new(8);
        r.insert(s(100), s(110)).unwrap();
        r.insert(s(300), s(310)).unwrap();
        r.insert(s(200), s(210)).unwrap();
        r.insert(s(500), s(510)).unwrap();
        r.insert(s(400), s(410)).unwrap();
        r.insert(s(110), s(120)).unwrap();
        let b = r.sack_blocks(3);
        let starts: Vec<u32> = b.as_slice().iter().map(|b| b.start.0).collect();
        assert_eq!(starts, vec![100, 400, 500]);
        assert_eq!(b.as_slice()[0].end, s(120));
        assert_eq!(r.sack_blocks(4).len(), 4);
    }

    #[test]
    fn works_across_wraparound() {
        let mut r = Reassembly::new(4);
        let base = SeqNum(u32::MAX - 5);
        r.insert(base + 10, base + 20).unwrap();
        r.insert(base + 2, base + 10).unwrap();
        assert_eq!(r.num_ranges(), 1);
        assert_eq!(r.advance(base + 2), Some(base + 20));
    }
}

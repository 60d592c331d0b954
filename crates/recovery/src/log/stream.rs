//! One direction's byte log: a contiguous run of logged bytes
//! `[base, end)` kept in a ring buffer, plus out-of-order segments logged
//! beyond `end` (so a reordered packet can be forwarded as soon as it is
//! logged). Bytes below `base` have been trimmed: they were logged once and
//! are no longer needed. Memory accounting is left to the caller ([`super`]).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

/// What [`StreamLog::accept`] did with a segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamAccept {
    /// Prefix of the segment that is logged and may be forwarded.
    pub forward: Range<u64>,
    /// Bytes newly stored (charged to the budget).
    pub stored: usize,
    /// Logging stopped at a byte differing from the one already logged at
    /// the same offset.
    pub conflict: bool,
    /// Logging stopped because `room` ran out.
    pub out_of_room: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct StreamLog {
    base: u64,
    buf: VecDeque<u8>,
    /// Non-overlapping segments, all starting after `end()`.
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// The receiver's cumulative acknowledgement (offset of the next byte it expects).
    pub acked: u64,
    /// Lowest offset still needed for replay or comparison.
    pub keep_from: u64,
    /// Offset of the FIN, once seen.
    pub fin: Option<u64>,
}

impl StreamLog {
    pub fn base(&self) -> u64 {
        self.base
    }

    /// End of the contiguous logged run.
    pub fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Bytes held (contiguous and out of order).
    pub fn held(&self) -> usize {
        self.buf.len() + self.ooo_bytes
    }

    /// Logs what it can of the segment `data` at `offset`, storing at most
    /// `room` new bytes, and returns the loggable prefix.
    pub fn accept(&mut self, offset: u64, data: &[u8], mut room: usize) -> StreamAccept {
        let seg_end = offset.saturating_add(data.len() as u64);
        let mut out = StreamAccept {
            forward: offset..offset,
            ..StreamAccept::default()
        };
        // Trimmed bytes were logged once; a retransmission of them is harmless.
        let mut pos = offset.max(self.base).min(seg_end);
        let byte = |p: u64| data[(p - offset) as usize];
        // Bytes already in the contiguous run must match.
        while pos < seg_end && pos < self.end() {
            if self.buf[(pos - self.base) as usize] != byte(pos) {
                out.conflict = true;
                out.forward.end = pos;
                return out;
            }
            pos += 1;
        }
        while pos < seg_end {
            // An out-of-order segment covering `pos`?
            let covering = self
                .ooo
                .range(..=pos)
                .next_back()
                .filter(|(k, v)| **k + v.len() as u64 > pos)
                .map(|(k, v)| (*k, v.len() as u64));
            if let Some((k, len)) = covering {
                let stop = seg_end.min(k + len);
                let seg = &self.ooo[&k];
                while pos < stop {
                    if seg[(pos - k) as usize] != byte(pos) {
                        out.conflict = true;
                        out.forward.end = pos;
                        return out;
                    }
                    pos += 1;
                }
                continue;
            }
            let next = self.ooo.range(pos..).next().map_or(seg_end, |(k, _)| *k);
            let gap_end = seg_end.min(next);
            let take = ((gap_end - pos) as usize).min(room);
            if take == 0 {
                out.out_of_room = true;
                break;
            }
            let piece = &data[(pos - offset) as usize..(pos - offset) as usize + take];
            if pos == self.end() {
                self.buf.extend(piece);
            } else {
                self.ooo.insert(pos, piece.to_vec());
                self.ooo_bytes += take;
            }
            room -= take;
            out.stored += take;
            pos += take as u64;
        }
        self.merge_ooo();
        out.forward.end = pos;
        out
    }

    fn merge_ooo(&mut self) {
        loop {
            let end = self.end();
            let Some(entry) = self.ooo.first_entry() else {
                break;
            };
            if *entry.key() != end {
                break;
            }
            let seg = entry.remove();
            self.ooo_bytes -= seg.len();
            self.buf.extend(seg);
        }
    }

    /// Drops the contiguous bytes below `min(acked, keep_from)`; returns how
    /// many were freed.
    pub fn trim(&mut self) -> usize {
        let to = self.acked.min(self.keep_from).min(self.end());
        if to <= self.base {
            return 0;
        }
        let n = (to - self.base) as usize;
        self.buf.drain(..n);
        self.base = to;
        n
    }

    /// A copy of the logged bytes `range`, if all of them are held contiguously.
    pub fn read(&self, range: Range<u64>) -> Option<Vec<u8>> {
        if range.start < self.base || range.end > self.end() || range.start > range.end {
            return None;
        }
        let a = (range.start - self.base) as usize;
        let b = (range.end - self.base) as usize;
        Some(self.buf.range(a..b).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_segments_are_appended_and_forwarded_whole() {
        let mut s = StreamLog::default();
        let a = s.accept(0, b"hello", 100);
        assert_eq!((a.forward, a.stored), (0..5, 5));
        let a = s.accept(5, b" world", 100);
        assert_eq!((a.forward, a.stored), (5..11, 6));
        assert_eq!(s.read(0..11).unwrap(), b"hello world");
    }

    #[test]
    fn retransmission_is_forwarded_without_storing_again() {
        let mut s = StreamLog::default();
        s.accept(0, b"hello", 100);
        let a = s.accept(2, b"llo wo", 100);
        assert_eq!((a.forward, a.stored), (2..8, 3));
        assert_eq!(s.held(), 8);
    }

    #[test]
    fn out_of_order_segment_is_logged_then_merged() {
        let mut s = StreamLog::default();
        let a = s.accept(5, b"world", 100);
        assert_eq!((a.forward, a.stored), (5..10, 5));
        assert_eq!(s.end(), 0);
        assert_eq!(s.held(), 5);
        let a = s.accept(0, b"hello", 100);
        assert_eq!(a.forward, 0..5);
        assert_eq!(s.end(), 10);
        assert_eq!(s.read(0..10).unwrap(), b"helloworld");
    }

    #[test]
    fn segment_spanning_holes_fills_only_the_gaps() {
        let mut s = StreamLog::default();
        s.accept(2, b"cd", 100);
        s.accept(6, b"gh", 100);
        let a = s.accept(0, b"abcdefghij", 100);
        assert_eq!((a.forward, a.stored), (0..10, 6));
        assert_eq!(s.read(0..10).unwrap(), b"abcdefghij");
        assert_eq!(s.held(), 10);
    }

    #[test]
    fn conflicting_bytes_stop_the_forwardable_prefix() {
        let mut s = StreamLog::default();
        s.accept(0, b"hello", 100);
        let a = s.accept(3, b"LO!", 100);
        assert!(a.conflict);
        assert_eq!(a.forward, 3..3);
        s.accept(10, b"xyz", 100);
        let a = s.accept(5, b"     xYz", 100);
        assert!(a.conflict);
        assert_eq!(a.forward, 5..11);
    }

    #[test]
    fn no_room_logs_a_prefix_only() {
        let mut s = StreamLog::default();
        let a = s.accept(0, b"hello world", 4);
        assert_eq!((a.forward, a.stored, a.out_of_room), (0..4, 4, true));
        let a = s.accept(4, b"o world", 0);
        assert_eq!((a.forward, a.out_of_room), (4..4, true));
        assert_eq!(s.end(), 4);
    }

    #[test]
    fn trim_needs_both_ack_and_release() {
        let mut s = StreamLog::default();
        s.accept(0, b"0123456789", 100);
        s.acked = 8;
        assert_eq!(s.trim(), 0, "keep_from still 0");
        s.keep_from = 5;
        assert_eq!(s.trim(), 5);
        assert_eq!(s.base(), 5);
        assert_eq!(s.read(4..6), None);
        assert_eq!(s.read(5..10).unwrap(), b"56789");
        s.keep_from = 100;
        assert_eq!(s.trim(), 3);
        // A retransmission of trimmed bytes is forwardable, stores nothing.
        let a = s.accept(0, b"0123456789", 100);
        assert_eq!((a.forward, a.stored), (0..10, 0));
    }
}

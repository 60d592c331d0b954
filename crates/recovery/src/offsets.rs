//! Stream offsets: the position of a byte in one direction of a TCP
//! connection, counted from 0 at the first data byte (the byte with sequence
//! number ISN+1). Everything in this crate speaks in offsets (`u64`, never
//! wrapping); [`SeqSpace`] converts the 32-bit wrapping sequence numbers a
//! forwarder sees on the wire into offsets and back.

/// One direction's sequence space, anchored at its initial sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqSpace {
    isn: u32,
    /// Highest offset seen so far: unwrapping picks the candidate nearest to it.
    high: u64,
}

impl SeqSpace {
    /// The space of a direction whose SYN carried `isn`.
    pub fn new(isn: u32) -> Self {
        SeqSpace { isn, high: 0 }
    }

    /// The offset of sequence number `seq`: the value within 2^31 of the
    /// highest offset seen so far. `None` if that would lie before the first
    /// data byte (e.g. the SYN itself or a stale segment from a previous
    /// wrap), which the caller treats as not loggable.
    pub fn offset(&mut self, seq: u32) -> Option<u64> {
        let rel = seq.wrapping_sub(self.isn.wrapping_add(1));
        // Signed distance from the highest offset, on the 32-bit circle.
        let diff = rel.wrapping_sub(self.high as u32) as i32;
        let off = i128::from(self.high) + i128::from(diff);
        let off = u64::try_from(off).ok()?;
        self.high = self.high.max(off);
        Some(off)
    }

    /// The sequence number of byte `offset`.
    pub fn seq(&self, offset: u64) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(offset as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_is_offset_zero_and_syn_is_rejected() {
        let mut s = SeqSpace::new(1000);
        assert_eq!(s.offset(1001), Some(0));
        assert_eq!(s.offset(1000), None);
        assert_eq!(s.offset(1101), Some(100));
        assert_eq!(s.seq(100), 1101);
    }

    #[test]
    fn unwraps_across_the_32_bit_boundary() {
        let mut s = SeqSpace::new(u32::MAX - 10);
        assert_eq!(s.offset(u32::MAX), Some(9));
        assert_eq!(s.offset(5), Some(15));
        // Walk forward past 2^32 bytes in steps below 2^31.
        let mut off = 15u64;
        for _ in 0..5 {
            off += 1 << 30;
            assert_eq!(s.offset(s.seq(off)), Some(off));
        }
        assert!(off > 1 << 32);
        // An old retransmission just below the high mark maps back, not ahead.
        assert_eq!(s.offset(s.seq(off - 500)), Some(off - 500));
    }
}

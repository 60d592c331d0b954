//! Wrapping 32-bit sequence numbers (RFC 9293 §3.4): comparisons are modulo
//! 2^32 and valid only for numbers less than 2^31 apart.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number. Ordered by wrapping distance, so `a < b` means `b`
/// is less than 2^31 ahead of `a`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Signed distance from `other` to `self` (`self - other`).
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Bytes from `earlier` to `self`, 0 if `self` is not after `earlier`.
    pub fn since(self, earlier: SeqNum) -> usize {
        let d = self.diff(earlier);
        if d > 0 {
            d as usize
        } else {
            0
        }
    }

    pub fn max(self, other: SeqNum) -> SeqNum {
        if self >= other {
            self
        } else {
            other
        }
    }

    pub fn min(self, other: SeqNum) -> SeqNum {
        if self <= other {
            self
        } else {
            other
        }
    }

    /// `start <= self < end`.
    pub fn in_range(self, start: SeqNum, end: SeqNum) -> bool {
        self >= start && self < end
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Wrapping order. Not a total order over all of `u32` (it is not transitive
/// across more than 2^31), which is fine for numbers inside one window.
impl Ord for SeqNum {
    fn cmp(&self, other: &Self) -> Ordering {
        self.diff(*other).cmp(&0)
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<usize> for SeqNum {
    fn add_assign(&mut self, n: usize) {
        *self = *self + n;
    }
}

impl Sub<usize> for SeqNum {
    type Output = SeqNum;
    fn sub(self, n: usize) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n as u32))
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Wrapping "a is older than b" for 32-bit timestamps (RFC 7323 §5.3).
pub fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_wraparound() {
        let a = SeqNum(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b.0, 9);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(b.since(a), 20);
        assert_eq!(a.since(b), 0);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert!(SeqNum(0).in_range(a, b));
        assert!(!b.in_range(a, b));
        assert_eq!(b - 20, a);
    }

    #[test]
    fn timestamps_wrap() {
        assert!(ts_before(u32::MAX, 1));
        assert!(!ts_before(1, u32::MAX));
        assert!(!ts_before(5, 5));
    }
}

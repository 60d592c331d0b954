//! This proxy's partition of SSA ports: hands out a free port for each
//! backend connection and takes it back when the splice ends.

use core::ops::RangeInclusive;
use std::collections::BTreeSet;

/// Free/used ports of one partition, handed out round-robin so a port is
/// reused as late as possible (the backend may still hold TIME-WAIT state).
#[derive(Clone, Debug)]
pub struct PortAllocator {
    range: RangeInclusive<u16>,
    next: u16,
    used: BTreeSet<u16>,
}

impl PortAllocator {
    pub fn new(range: RangeInclusive<u16>) -> PortAllocator {
        PortAllocator {
            next: *range.start(),
            range,
            used: BTreeSet::new(),
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    pub fn capacity(&self) -> usize {
        usize::from(*self.range.end()) - usize::from(*self.range.start()) + 1
    }

    /// A free port, or `None` if every port of the partition is in use.
    pub fn allocate(&mut self) -> Option<u16> {
        if self.used.len() >= self.capacity() {
            return None;
        }
        loop {
            let p = self.next;
            self.next = if p == *self.range.end() {
                *self.range.start()
            } else {
                p + 1
            };
            if self.used.insert(p) {
                return Some(p);
            }
        }
    }

    /// Returns `port`; false if it was not handed out by this allocator.
    pub fn release(&mut self, port: u16) -> bool {
        self.used.remove(&port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_each_port_once_then_reuses_released() {
        let mut a = PortAllocator::new(40000..=40002);
        assert_eq!(a.capacity(), 3);
        assert_eq!(a.allocate(), Some(40000));
        assert_eq!(a.allocate(), Some(40001));
        assert_eq!(a.allocate(), Some(40002));
        assert_eq!(a.allocate(), None);
        assert!(a.release(40001));
        assert!(!a.release(40001));
        assert!(!a.release(1));
        assert_eq!(a.allocate(), Some(40001));
        assert_eq!(a.in_use(), 3);
    }

    #[test]
    fn full_range_does_not_overflow() {
        let mut a = PortAllocator::new(65535..=65535);
        assert_eq!(a.allocate(), Some(65535));
        assert_eq!(a.allocate(), None);
        assert!(a.release(65535));
        assert_eq!(a.allocate(), Some(65535));
    }
}

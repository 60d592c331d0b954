//! Recycled packet buffers: a frame's bytes are allocated when a host emits
//! a packet and freed when the receiving host has parsed it, millions of
//! times per run, at sizes (~1.5 kB) beyond the allocator's fast per-thread
//! caches. Hosts hand consumed buffers back here and take them for the next
//! packet. The pool is per thread (every simulation runs on one thread) and
//! only ever holds empty buffers, so it cannot change what a run computes.

use std::cell::RefCell;

/// Buffers kept at most (a few windows' worth of packets in flight are
/// allocated anyway; this only bounds the idle pool).
const MAX_POOLED: usize = 1024;
/// Buffers larger than this are not kept (jumbo or reassembled packets are
/// rare; keeping them would pin memory).
const MAX_CAPACITY: usize = 16 * 1024;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `len` bytes.
pub fn take(len: usize) -> Vec<u8> {
    let mut v = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    v.reserve(len);
    v
}

/// Returns a buffer whose contents are no longer needed.
pub fn give(mut v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > MAX_CAPACITY {
        return;
    }
    v.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < MAX_POOLED {
            p.push(v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_their_room() {
        let mut v = take(1500);
        assert!(v.is_empty() && v.capacity() >= 1500);
        v.extend_from_slice(&[7; 1500]);
        give(v);
        let w = take(100);
        assert!(w.is_empty(), "a recycled buffer is cleared");
        assert!(w.capacity() >= 1500, "and keeps its allocation");
        give(Vec::with_capacity(MAX_CAPACITY + 1));
        give(w);
        let x = take(10);
        assert!(
            x.capacity() <= MAX_CAPACITY,
            "oversized buffers are not kept"
        );
    }
}

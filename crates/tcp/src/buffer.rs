//! Bounded byte buffers: the send buffer (bytes from SND.UNA on, both
//! unacknowledged and not yet sent) and the receive ring, which also holds
//! out-of-order bytes at their offset beyond the in-order data so nothing is
//! allocated per received segment.

use std::collections::VecDeque;

/// Bytes the application wrote that are not yet acknowledged.
#[derive(Clone, Debug)]
pub struct SendBuffer {
    data: VecDeque<u8>,
    cap: usize,
}

impl SendBuffer {
    pub fn new(cap: usize) -> Self {
        SendBuffer {
            data: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// Appends as much of `bytes` as fits; returns how much.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.free());
        self.data.extend(&bytes[..n]);
        n
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn free(&self) -> usize {
        self.cap - self.data.len()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Drops `n` acknowledged bytes from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
    }

    /// The `len` bytes starting `offset` bytes after the front, if they are
    /// all held and contiguous in memory (not wrapping around the ring).
    pub fn slice(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        let (a, b) = self.data.as_slices();
        if end <= a.len() {
            return a.get(offset..end);
        }
        let (o, e) = (offset.checked_sub(a.len())?, end - a.len());
        b.get(o..e)
    }

    /// Appends `len` bytes starting `offset` bytes after the front to `out`.
    pub fn copy_range(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        let end = (offset + len).min(self.data.len());
        if offset >= end {
            return;
        }
        let (a, b) = self.data.as_slices();
        if offset < a.len() {
            out.extend_from_slice(&a[offset..end.min(a.len())]);
        }
        if end > a.len() {
            out.extend_from_slice(&b[offset.saturating_sub(a.len())..end - a.len()]);
        }
    }
}

/// Fixed ring of `cap` bytes: `len` readable bytes at `head`, followed by the
/// window in which out-of-order bytes are stored at their offset.
#[derive(Clone, Debug)]
pub struct RecvBuffer {
    ring: Vec<u8>,
    head: usize,
    len: usize,
}

impl RecvBuffer {
    pub fn new(cap: usize) -> Self {
        RecvBuffer {
            ring: vec![0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// In-order bytes ready for the application.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Space after the readable bytes (the receive window).
    pub fn window(&self) -> usize {
        self.ring.len() - self.len
    }

    /// Stores `bytes` at `offset` past the readable bytes. The caller has
    /// trimmed them to the window; extra bytes are dropped.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let cap = self.ring.len();
        let room = self.window().saturating_sub(offset);
        let bytes = &bytes[..bytes.len().min(room)];
        let mut pos = (self.head + self.len + offset) % cap;
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rest.len().min(cap - pos);
            self.ring[pos..pos + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            pos = (pos + n) % cap;
        }
    }

    /// Makes `n` bytes written past the readable end readable.
    pub fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.ring.len());
    }

    /// Copies readable bytes out, consuming them.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let cap = self.ring.len();
        let n = out.len().min(self.len);
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.ring[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.ring[..n - first]);
        self.head = (self.head + n) % cap;
        self.len -= n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_buffer_is_bounded_and_copies_ranges() {
        let mut b = SendBuffer::new(10);
        assert_eq!(b.write(b"0123456789abc"), 10);
        assert_eq!(b.free(), 0);
        b.consume(4);
        assert_eq!(b.write(b"xyz"), 3);
        let mut out = Vec::new();
        b.copy_range(2, 7, &mut out);
        assert_eq!(out, b"6789xyz");
        out.clear();
        b.copy_range(8, 100, &mut out);
        assert_eq!(out, b"z");
        out.clear();
        b.copy_range(20, 1, &mut out);
        assert!(out.is_empty());
        assert_eq!(b.len(), 9);
    }

    #[test]
    fn send_buffer_slices_are_the_copied_ranges_when_contiguous() {
        let mut b = SendBuffer::new(10);
        assert_eq!(b.write(b"0123456789"), 10);
        b.consume(6);
        assert_eq!(b.write(b"abcdef"), 6);
        let mut some = 0;
        for off in 0..12 {
            for len in 0..12 {
                let mut out = Vec::new();
                b.copy_range(off, len, &mut out);
                if let Some(s) = b.slice(off, len) {
                    assert_eq!(s, &out[..], "{off}+{len}");
                    assert_eq!(s.len(), len);
                    some += 1;
                } else {
                    assert!(off + len > b.len() || len > 0, "{off}+{len}");
                }
            }
        }
        assert!(some > 10);
        assert_eq!(b.slice(3, 8), None, "beyond the held bytes");
        assert_eq!(b.slice(10, 0), Some(&[][..]));
    }

    #[test]
    fn recv_ring_wraps_and_holds_out_of_order_bytes() {
        let mut r = RecvBuffer::new(8);
        r.write_at(0, b"abcde");
        r.commit(5);
        let mut out = [0u8; 4];
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.window(), 7);
        // Out of order: 2 bytes after a 3-byte hole, wrapping the ring.
        r.write_at(3, b"ij");
        r.write_at(0, b"fgh");
        r.commit(5);
        let mut out = [0u8; 8];
        assert_eq!(r.read(&mut out), 6);
        assert_eq!(&out[..6], b"efghij");
        assert!(r.is_empty());
    }

    #[test]
    fn recv_ring_drops_bytes_beyond_window() {
        let mut r = RecvBuffer::new(4);
        r.write_at(2, b"xyzw");
        r.write_at(0, b"ab");
        r.commit(4);
        let mut out = [0u8; 8];
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(&out[..4], b"abxy");
    }
}

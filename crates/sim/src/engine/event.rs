//! The event queue: events come out ordered by (time, insertion sequence),
//! so events at the same time run in the order they were scheduled and every
//! run with the same inputs replays identically.
//!
//! Most events are frames in FIFOs whose times never decrease (a link
//! direction's arrivals, a node CPU's completions). Those are pushed into a
//! *lane*: a plain queue whose head alone sits in the binary heap. The heap
//! then holds one entry per busy lane plus the loose events (timers,
//! faults), instead of every frame in flight, and the order is exactly the
//! one a single heap of all events would give: each lane is sorted by
//! (time, sequence), so the global minimum is always some lane's head. A
//! lane push earlier than the lane's tail falls back to the heap.

use super::time::SimTime;
use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};

/// Marks a heap key whose event is the head of a lane, not a slab slot.
const LANE: u32 = 1 << (SRC_BITS - 1);

/// Bits of a key's low word that hold its source (a lane flag and 2^27
/// slab slots or lanes); the sequence number takes the 36 bits above them,
/// 6.9 * 10^10 events per run (hours of simulation at our speed).
const SRC_BITS: u32 = 28;
/// Events one queue can ever take.
const MAX_SEQ: u64 = 1 << (64 - SRC_BITS);
const SRC_MASK: u64 = (1 << SRC_BITS) - 1;

/// Heap key: the event itself waits in a slab or a lane, so sifting moves
/// small keys instead of whole frame-carrying events. `ord` packs (time,
/// sequence, source) into one integer, so a comparison is a single one and
/// a key is 16 bytes: the sequence is unique, so the source below it never
/// decides an order.
#[derive(Clone, Copy)]
struct Key {
    ord: u128,
}

impl Key {
    fn new(at: SimTime, seq: u64, src: u32) -> Key {
        debug_assert!(seq < MAX_SEQ && u64::from(src) <= SRC_MASK);
        Key {
            ord: (u128::from(at.0) << 64) | u128::from((seq << SRC_BITS) | u64::from(src)),
        }
    }

    fn at(&self) -> SimTime {
        SimTime((self.ord >> 64) as u64)
    }

    /// Slab slot, or `LANE | lane index`.
    fn src(&self) -> u32 {
        (self.ord as u64 & SRC_MASK) as u32
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.ord == other.ord
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.ord.cmp(&self.ord)
    }
}

/// Deterministic priority queue of events.
pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    lanes: Vec<VecDeque<(SimTime, u64, E)>>,
    next_seq: u64,
    len: usize,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            lanes: Vec::new(),
            next_seq: 0,
            len: 0,
        }
    }
}

impl<E> EventQueue<E> {
    fn seq(&mut self) -> u64 {
        let seq = self.next_seq;
        // An engine limit, not input: the order of events past it would be
        // wrong, so stop instead.
        assert!(
            seq < MAX_SEQ,
            "event queue: more than 2^36 events in one run"
        );
        self.next_seq += 1;
        self.len += 1;
        seq
    }

    pub fn push(&mut self, at: SimTime, event: E) {
        let seq = self.seq();
        self.push_loose(at, seq, event);
    }

    fn push_loose(&mut self, at: SimTime, seq: u64, event: E) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(event);
                i
            }
            None => {
                self.slab.push(Some(event));
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Key::new(at, seq, slot));
    }

    /// Pushes `event` into FIFO `lane` (any small index the caller owns):
    /// cheap when `at` is not earlier than the lane's last event, which is
    /// the case the lanes exist for; otherwise the event goes to the heap
    /// like [`EventQueue::push`]. The order of events is the same either way.
    pub fn push_lane(&mut self, lane: u32, at: SimTime, event: E) {
        let seq = self.seq();
        let i = lane as usize;
        if i >= self.lanes.len() {
            if lane >= LANE {
                self.push_loose(at, seq, event);
                return;
            }
            self.lanes.resize_with(i + 1, VecDeque::new);
        }
        let q = &mut self.lanes[i];
        match q.back() {
            None => {
                q.push_back((at, seq, event));
                self.heap.push(Key::new(at, seq, LANE | lane));
            }
            Some(&(last, _, _)) if at >= last => q.push_back((at, seq, event)),
            Some(_) => self.push_loose(at, seq, event),
        }
    }

    /// Time of the earliest event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(Key::at)
    }

    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        loop {
            let mut top = self.heap.peek_mut()?;
            let k = *top;
            let src = k.src();
            let e = if src & LANE != 0 {
                let lane = src & !LANE;
                let Some(q) = self.lanes.get_mut(lane as usize) else {
                    PeekMut::pop(top);
                    continue;
                };
                let e = q.pop_front().map(|(_, _, e)| e);
                // The lane's next event takes its head's place in the heap:
                // one sift instead of a pop and a push.
                match q.front() {
                    Some(&(at, seq, _)) => *top = Key::new(at, seq, LANE | lane),
                    None => {
                        PeekMut::pop(top);
                    }
                }
                e
            } else {
                PeekMut::pop(top);
                let e = self.slab.get_mut(src as usize).and_then(Option::take);
                self.free.push(src);
                e
            };
            // A key always has its event, so this always holds.
            if let Some(e) = e {
                self.len -= 1;
                return Some((k.at(), e));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pops_by_time_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(SimTime(5), "c");
        q.push(SimTime(1), "a");
        q.push(SimTime(5), "d");
        q.push(SimTime(1), "b");
        q.push(SimTime(3), "x");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["a", "b", "x", "c", "d"]);
        assert!(q.is_empty());
    }

    #[test]
    fn lanes_interleave_with_loose_events() {
        let mut q = EventQueue::default();
        q.push_lane(0, SimTime(2), "l0-2");
        q.push_lane(1, SimTime(1), "l1-1");
        q.push(SimTime(2), "t-2");
        q.push_lane(0, SimTime(2), "l0-2b");
        // Earlier than its lane's tail: still comes out in time order.
        q.push_lane(0, SimTime(1), "l0-1");
        q.push_lane(1, SimTime(3), "l1-3");
        assert_eq!(q.len(), 6);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["l1-1", "l0-1", "l0-2", "t-2", "l0-2b", "l1-3"]);
        assert!(q.is_empty());
    }

    proptest! {
        /// Whatever mix of lanes and loose pushes, interleaved with pops,
        /// the queue yields what one heap ordered by (time, sequence) would.
        #[test]
        fn lanes_match_one_heap(ops in proptest::collection::vec((0u8..5, 0u64..50, any::<bool>()), 1..300)) {
            let mut q = EventQueue::default();
            let mut reference: Vec<(u64, u64)> = Vec::new();
            let mut now = 0u64;
            for (n, (lane, dt, pop)) in ops.into_iter().enumerate() {
                if pop {
                    reference.sort();
                    let want = (!reference.is_empty()).then(|| reference.remove(0));
                    let got = q.pop().map(|(t, s)| (t.0, s));
                    prop_assert_eq!(got, want);
                    if let Some((t, _)) = got {
                        now = t;
                    }
                    continue;
                }
                let at = now + dt;
                let seq = n as u64;
                if lane == 4 {
                    q.push(SimTime(at), seq);
                } else {
                    q.push_lane(u32::from(lane), SimTime(at), seq);
                }
                reference.push((at, seq));
            }
            reference.sort();
            let rest: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(t, s)| (t.0, s)).collect();
            prop_assert_eq!(rest, reference);
        }
    }
}

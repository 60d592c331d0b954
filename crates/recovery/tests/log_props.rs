//! Property tests of the byte log: whatever the segmentation, reordering,
//! duplication and memory pressure, every forwardable byte is a logged byte
//! equal to the sender's, and with room everything ends up logged in order.

use ftsplice_recovery::log::{Budget, ConnLog, Direction, LogLimits, Withheld};
use proptest::prelude::*;

fn segments() -> impl Strategy<Value = (Vec<u8>, Vec<(usize, usize)>, usize)> {
    (
        proptest::collection::vec(any::<u8>(), 1..400),
        proptest::collection::vec((0usize..400, 1usize..80), 1..40),
        0usize..500,
    )
}

proptest! {
    #[test]
    fn forwarded_bytes_are_always_logged_and_equal((stream, segs, cap) in segments()) {
        let mut budget = Budget::new(cap);
        let mut log = ConnLog::new(LogLimits { per_conn: cap, global: cap });
        let dir = Direction::ClientToServer;
        let mut forwarded = vec![false; stream.len()];
        for (start, len) in segs {
            let start = start % stream.len();
            let end = (start + len).min(stream.len());
            let a = log.accept(&mut budget, dir, start as u64, &stream[start..end]);
            prop_assert_eq!(a.forward.start, start as u64);
            prop_assert!(a.forward.end <= end as u64);
            for i in a.forward.clone() {
                forwarded[i as usize] = true;
            }
            prop_assert!(budget.used() <= cap);
            prop_assert_eq!(budget.used(), log.held());
        }
        // Nothing was trimmed, so every byte ever forwarded is still held.
        prop_assert!(log.held() >= forwarded.iter().filter(|f| **f).count());
        // Every forwarded byte below the contiguous end is logged and equal.
        let end = log.end(dir) as usize;
        let logged = log.read(dir, 0..end as u64).unwrap();
        prop_assert_eq!(&logged[..], &stream[..end]);
        // Out-of-order bytes hold the sender's bytes too: a full in-order
        // pass meets no conflict, and with enough room logs everything.
        let a = log.accept(&mut budget, dir, 0, &stream);
        prop_assert_ne!(a.withheld, Some(Withheld::Conflict));
        if cap >= stream.len() {
            prop_assert_eq!(a.forward, 0..stream.len() as u64);
            prop_assert_eq!(log.read(dir, 0..stream.len() as u64).unwrap(), stream);
        }
    }
}

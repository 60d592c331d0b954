//! Heartbeats from each proxy to the load balancer(s): the wire codec and the
//! sender's schedule. The receiver side is [`crate::detector`].
//!
//! A heartbeat carries the proxy's id, its incarnation (`epoch`, chosen anew
//! at every start so a restarted proxy is recognised even though its
//! sequence numbers start over), a sequence number and the workload factor
//! `W_i` (available capacity; the LB balances by `W_i / ΣW`, paper §5.1).
//!
//! Wire format, version 1, 28 bytes, big-endian:
//!
//! ```text
//!  0      4    5     6       8     10    12      16      24        28
//!  | "FTHB" | ver | flags | len | id  | rsv | epoch | seq   | workload |
//! ```
//! `flags` and `rsv` must be 0 and `len` must equal the datagram length;
//! anything else is rejected with a [`HeartbeatError`].

use core::time::Duration;

use crate::ids::ProxyId;
use crate::Instant;

/// Magic at the start of every heartbeat datagram.
pub const MAGIC: [u8; 4] = *b"FTHB";
/// The only heartbeat version this code speaks.
pub const VERSION: u8 = 1;
/// Length of a version-1 heartbeat.
pub const LEN: usize = 28;

/// One heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    pub id: ProxyId,
    /// Incarnation of the sender; changes when the proxy restarts.
    pub epoch: u32,
    /// Incremented by one per heartbeat within an epoch.
    pub seq: u64,
    /// Available capacity (any scale shared by all proxies; 0 = draining).
    pub workload: u32,
}

/// Why a datagram is not a valid heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    #[error("heartbeat truncated: {0} bytes")]
    Truncated(usize),
    #[error("not a heartbeat (bad magic)")]
    BadMagic,
    #[error("unsupported heartbeat version {0}")]
    UnsupportedVersion(u8),
    #[error("heartbeat length field {field} but datagram has {actual} bytes")]
    LengthMismatch { field: usize, actual: usize },
    #[error("heartbeat reserved bits set")]
    ReservedBits,
}

impl Heartbeat {
    /// The wire form.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[6..8].copy_from_slice(&(LEN as u16).to_be_bytes());
        b[8..10].copy_from_slice(&self.id.0.to_be_bytes());
        b[12..16].copy_from_slice(&self.epoch.to_be_bytes());
        b[16..24].copy_from_slice(&self.seq.to_be_bytes());
        b[24..28].copy_from_slice(&self.workload.to_be_bytes());
        b
    }

    /// Parses untrusted bytes; never panics.
    pub fn decode(b: &[u8]) -> Result<Heartbeat, HeartbeatError> {
        if b.len() < 8 {
            return Err(HeartbeatError::Truncated(b.len()));
        }
        if b[0..4] != MAGIC {
            return Err(HeartbeatError::BadMagic);
        }
        if b[4] != VERSION {
            return Err(HeartbeatError::UnsupportedVersion(b[4]));
        }
        let field = usize::from(u16::from_be_bytes([b[6], b[7]]));
        if field != b.len() || field != LEN {
            return Err(HeartbeatError::LengthMismatch {
                field,
                actual: b.len(),
            });
        }
        if b[5] != 0 || b[10] != 0 || b[11] != 0 {
            return Err(HeartbeatError::ReservedBits);
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[16..24]);
        Ok(Heartbeat {
            id: ProxyId(u16::from_be_bytes([b[8], b[9]])),
            epoch: u32_at(12),
            seq: u64::from_be_bytes(seq),
            workload: u32_at(24),
        })
    }
}

/// Smallest heartbeat interval accepted by [`HeartbeatSender`] and the
/// detector.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Largest heartbeat interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(5);

/// Clamps an interval into `MIN_INTERVAL..=MAX_INTERVAL`.
pub fn clamp_interval(d: Duration) -> Duration {
    d.clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// The proxy side: emits one heartbeat every `interval`, the first at start.
#[derive(Clone, Debug)]
pub struct HeartbeatSender {
    id: ProxyId,
    epoch: u32,
    interval: Duration,
    seq: u64,
    workload: u32,
    next_at: Instant,
    queued: Option<Heartbeat>,
}

impl HeartbeatSender {
    /// `epoch` must differ between incarnations of the same proxy (a boot
    /// counter, or random bits from the caller's seeded source).
    /// `interval` is clamped into 10 ms ..= 5 s.
    pub fn new(now: Instant, id: ProxyId, epoch: u32, interval: Duration, workload: u32) -> Self {
        HeartbeatSender {
            id,
            epoch,
            interval: clamp_interval(interval),
            seq: 0,
            workload,
            next_at: now,
            queued: None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Sets the workload factor carried by the next heartbeats.
    pub fn set_workload(&mut self, workload: u32) {
        self.workload = workload;
    }

    /// When the next heartbeat is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_at
    }

    /// Queues a heartbeat if one is due. After a stall longer than the
    /// interval only one heartbeat is sent and the schedule restarts from
    /// `now` (no burst of stale beats).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_at {
            return;
        }
        self.queued = Some(Heartbeat {
            id: self.id,
            epoch: self.epoch,
            seq: self.seq,
            workload: self.workload,
        });
        self.seq = self.seq.wrapping_add(1);
        let next = self.next_at + self.interval;
        self.next_at = if next > now {
            next
        } else {
            now + self.interval
        };
    }

    /// The heartbeat to send now, if any (encode with [`Heartbeat::encode`]).
    pub fn poll_transmit(&mut self) -> Option<Heartbeat> {
        self.queued.take()
    }
}

/// Fuzz entry point: decoding arbitrary bytes must never panic, and whatever
/// decodes re-encodes to the same bytes.
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(hb) = Heartbeat::decode(data) {
        assert_eq!(&hb.encode()[..], data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hb() -> Heartbeat {
        Heartbeat {
            id: ProxyId(3),
            epoch: 0xdead_beef,
            seq: 42,
            workload: 750,
        }
    }

    #[test]
    fn encode_layout_is_stable() {
        let b = hb().encode();
        assert_eq!(&b[0..8], b"FTHB\x01\x00\x00\x1c");
        assert_eq!(&b[8..12], &[0, 3, 0, 0]);
        assert_eq!(&b[12..16], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(b[23], 42);
        assert_eq!(&b[24..28], &750u32.to_be_bytes());
        assert_eq!(Heartbeat::decode(&b), Ok(hb()));
    }

    #[test]
    fn decode_rejects_each_kind_of_bad_input() {
        let good = hb().encode();
        assert_eq!(
            Heartbeat::decode(&good[..5]),
            Err(HeartbeatError::Truncated(5))
        );
        let mut b = good;
        b[0] = b'X';
        assert_eq!(Heartbeat::decode(&b), Err(HeartbeatError::BadMagic));
        let mut b = good;
        b[4] = 2;
        assert_eq!(
            Heartbeat::decode(&b),
            Err(HeartbeatError::UnsupportedVersion(2))
        );
        assert_eq!(
            Heartbeat::decode(&good[..27]),
            Err(HeartbeatError::LengthMismatch {
                field: 28,
                actual: 27
            })
        );
        let mut long = good.to_vec();
        long.push(0);
        assert!(matches!(
            Heartbeat::decode(&long),
            Err(HeartbeatError::LengthMismatch { .. })
        ));
        let mut b = good;
        b[5] = 1;
        assert_eq!(Heartbeat::decode(&b), Err(HeartbeatError::ReservedBits));
        let mut b = good;
        b[11] = 1;
        assert_eq!(Heartbeat::decode(&b), Err(HeartbeatError::ReservedBits));
    }

    #[test]
    fn sender_beats_on_schedule_and_recovers_from_stall() {
        let t = Instant::from_millis;
        let mut s = HeartbeatSender::new(t(0), ProxyId(1), 9, Duration::from_millis(100), 5);
        assert_eq!(s.poll_timeout(), t(0));
        s.handle_timeout(t(0));
        assert_eq!(s.poll_transmit().map(|h| h.seq), Some(0));
        assert_eq!(s.poll_transmit(), None);
        assert_eq!(s.poll_timeout(), t(100));
        s.handle_timeout(t(99));
        assert_eq!(s.poll_transmit(), None, "early timeout must not beat");
        s.set_workload(7);
        s.handle_timeout(t(103));
        let h = s.poll_transmit().unwrap();
        assert_eq!((h.seq, h.workload, h.epoch), (1, 7, 9));
        // The schedule keeps its phase after a slightly late wakeup.
        assert_eq!(s.poll_timeout(), t(200));
        // A long stall yields one beat, then the schedule restarts from now.
        s.handle_timeout(t(1_000));
        assert_eq!(s.poll_transmit().map(|h| h.seq), Some(2));
        assert_eq!(s.poll_timeout(), t(1_100));
        // Intervals are clamped.
        let fast = HeartbeatSender::new(t(0), ProxyId(1), 0, Duration::from_millis(1), 0);
        assert_eq!(fast.interval(), MIN_INTERVAL);
        let slow = HeartbeatSender::new(t(0), ProxyId(1), 0, Duration::from_secs(60), 0);
        assert_eq!(slow.interval(), MAX_INTERVAL);
    }

    proptest! {
        #[test]
        fn roundtrip(id: u16, epoch: u32, seq: u64, workload: u32) {
            let h = Heartbeat { id: ProxyId(id), epoch, seq, workload };
            prop_assert_eq!(Heartbeat::decode(&h.encode()), Ok(h));
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            fuzz_decode(&data);
        }

        #[test]
        fn mutated_heartbeats_never_panic(pos in 0usize..28, val: u8, cut in 0usize..29) {
            let mut b = hb().encode();
            b[pos] = val;
            fuzz_decode(&b[..cut]);
            fuzz_decode(&b);
        }
    }
}

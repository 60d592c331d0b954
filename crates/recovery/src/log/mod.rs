//! The logger's per-connection byte log of both directions, keyed by stream
//! offsets ([`crate::offsets`]).
//!
//! **Invariant: never forward a byte that is not logged.** The forwarder
//! hands every data segment to [`ConnLog::accept`] and forwards only the
//! range it returns (trimming the segment's payload to it). If the range is
//! shorter than the segment the rest is *withheld*: the forwarder does not
//! send it, the sender's TCP retransmits it later, and by then there may be
//! room. This is the backpressure used when memory is full:
//!
//! - each connection may hold at most [`LogLimits::per_conn`] bytes and all
//!   connections of one logger together at most [`LogLimits::global`]
//!   (tracked by a shared [`Budget`]);
//! - logged data is never dropped to make room; bytes leave the log only by
//!   trimming, which needs both the receiver's acknowledgement
//!   ([`ConnLog::on_ack`]) and the transaction layer's release
//!   ([`ConnLog::keep_from`]: everything below is no longer needed for replay
//!   or for comparing a regenerated response);
//! - every withheld segment is counted by reason in [`ConnLogStats`].
//!
//! A retransmission whose bytes differ from the logged ones is withheld too
//! (counted as a conflict): what is forwarded is always what is logged.

mod stream;

use std::ops::Range;

pub use ftsplice_proto::splice::Direction;
use stream::StreamLog;

/// Memory caps of one logger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    /// Bytes one connection may hold (both directions together).
    pub per_conn: usize,
    /// Bytes all connections of the logger may hold together.
    pub global: usize,
}

impl Default for LogLimits {
    /// 4 MiB per connection, 256 MiB in all.
    fn default() -> Self {
        LogLimits {
            per_conn: 4 << 20,
            global: 256 << 20,
        }
    }
}

/// The global byte budget shared by all connection logs of a logger.
#[derive(Clone, Debug)]
pub struct Budget {
    cap: usize,
    used: usize,
}

impl Budget {
    pub fn new(cap: usize) -> Self {
        Budget { cap, used: 0 }
    }

    pub fn used(&self) -> usize {
        self.used
    }

    pub fn available(&self) -> usize {
        self.cap - self.used
    }
}

/// Why (part of) a segment was not logged and must not be forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Withheld {
    /// The connection's cap is reached.
    ConnFull,
    /// The logger's global cap is reached.
    GlobalFull,
    /// The bytes differ from those already logged at the same offsets.
    Conflict,
}

/// The answer to [`ConnLog::accept`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The logged prefix of the segment: forward exactly these bytes.
    pub forward: Range<u64>,
    /// Why the rest (if any) was withheld.
    pub withheld: Option<Withheld>,
    /// Offsets that became contiguously logged through this segment (to feed
    /// the transactionalizer, in order).
    pub newly_contiguous: Range<u64>,
}

/// Counters of one connection's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnLogStats {
    pub stored_bytes: u64,
    pub trimmed_bytes: u64,
    pub withheld_conn_full: u64,
    pub withheld_global_full: u64,
    pub withheld_conflict: u64,
    pub withheld_bytes: u64,
    /// Acks for bytes beyond the contiguous log (clamped; should not happen).
    pub acks_beyond_log: u64,
}

/// The byte log of one connection, both directions.
#[derive(Clone, Debug)]
pub struct ConnLog {
    c2s: StreamLog,
    s2c: StreamLog,
    cap: usize,
    stats: ConnLogStats,
}

impl ConnLog {
    /// A new log holding at most `limits.per_conn` bytes.
    pub fn new(limits: LogLimits) -> Self {
        ConnLog {
            c2s: StreamLog::default(),
            s2c: StreamLog::default(),
            cap: limits.per_conn,
            stats: ConnLogStats::default(),
        }
    }

    fn stream(&self, dir: Direction) -> &StreamLog {
        match dir {
            Direction::ClientToServer => &self.c2s,
            Direction::ServerToClient => &self.s2c,
        }
    }

    fn stream_mut(&mut self, dir: Direction) -> &mut StreamLog {
        match dir {
            Direction::ClientToServer => &mut self.c2s,
            Direction::ServerToClient => &mut self.s2c,
        }
    }

    /// Bytes held in both directions.
    pub fn held(&self) -> usize {
        self.c2s.held() + self.s2c.held()
    }

    pub fn stats(&self) -> ConnLogStats {
        self.stats
    }

    /// Logs the data segment `data` at stream offset `offset` of `dir` and
    /// returns the part that may be forwarded (see the module docs).
    pub fn accept(
        &mut self,
        budget: &mut Budget,
        dir: Direction,
        offset: u64,
        data: &[u8],
    ) -> Accepted {
        let conn_room = self.cap.saturating_sub(self.held());
        let room = conn_room.min(budget.available());
        let before = self.stream(dir).end();
        let a = self.stream_mut(dir).accept(offset, data, room);
        budget.used += a.stored;
        self.stats.stored_bytes += a.stored as u64;
        let withheld = if a.conflict {
            Some(Withheld::Conflict)
        } else if a.out_of_room {
            Some(if conn_room <= budget.available() + a.stored {
                Withheld::ConnFull
            } else {
                Withheld::GlobalFull
            })
        } else {
            None
        };
        if let Some(w) = withheld {
            match w {
                Withheld::ConnFull => self.stats.withheld_conn_full += 1,
                Withheld::GlobalFull => self.stats.withheld_global_full += 1,
                Withheld::Conflict => self.stats.withheld_conflict += 1,
            }
            self.stats.withheld_bytes += (data.len() as u64).saturating_sub(a.forward.end - offset);
        }
        Accepted {
            forward: a.forward,
            withheld,
            newly_contiguous: before..self.stream(dir).end(),
        }
    }

    /// The receiver of `dir` acknowledged every byte below `ack` (for
    /// server-to-client this is the client's ack, Ack_CL of the paper).
    /// Trims what is also released; returns the bytes freed.
    pub fn on_ack(&mut self, budget: &mut Budget, dir: Direction, ack: u64) -> usize {
        let s = self.stream_mut(dir);
        let clamped = ack.min(s.end());
        let beyond = ack > s.end();
        s.acked = s.acked.max(clamped);
        if beyond {
            self.stats.acks_beyond_log += 1;
        }
        self.trim(budget, dir)
    }

    /// Bytes of `dir` below `offset` are no longer needed for recovery
    /// (monotonic). Trims what is also acknowledged; returns the bytes freed.
    pub fn keep_from(&mut self, budget: &mut Budget, dir: Direction, offset: u64) -> usize {
        let s = self.stream_mut(dir);
        s.keep_from = s.keep_from.max(offset);
        self.trim(budget, dir)
    }

    fn trim(&mut self, budget: &mut Budget, dir: Direction) -> usize {
        let freed = self.stream_mut(dir).trim();
        budget.used -= freed;
        self.stats.trimmed_bytes += freed as u64;
        freed
    }

    /// Records the offset of `dir`'s FIN (the offset after its last byte).
    pub fn set_fin(&mut self, dir: Direction, offset: u64) {
        self.stream_mut(dir).fin.get_or_insert(offset);
    }

    pub fn fin(&self, dir: Direction) -> Option<u64> {
        self.stream(dir).fin
    }

    /// Lowest offset still held.
    pub fn base(&self, dir: Direction) -> u64 {
        self.stream(dir).base()
    }

    /// End of the contiguously logged bytes.
    pub fn end(&self, dir: Direction) -> u64 {
        self.stream(dir).end()
    }

    /// The receiver's cumulative ack, clamped to the log.
    pub fn acked(&self, dir: Direction) -> u64 {
        self.stream(dir).acked
    }

    /// A copy of logged bytes, if all are held contiguously.
    pub fn read(&self, dir: Direction, range: Range<u64>) -> Option<Vec<u8>> {
        self.stream(dir).read(range)
    }

    /// Returns this log's memory to the budget (call when the connection is
    /// forgotten; the log is empty afterwards).
    pub fn release(&mut self, budget: &mut Budget) {
        budget.used -= self.held();
        self.c2s = StreamLog::default();
        self.s2c = StreamLog::default();
    }

    /// What recovery needs from the log: the contiguously held bytes of
    /// both directions and the receivers' acks.
    pub fn snapshot(&self) -> LogSnapshot {
        let snap = |s: &StreamLog| StreamSnapshot {
            base: s.base(),
            bytes: s.read(s.base()..s.end()).unwrap_or_default(),
            acked: s.acked,
            fin: s.fin,
        };
        LogSnapshot {
            c2s: snap(&self.c2s),
            s2c: snap(&self.s2c),
        }
    }
}

/// One direction of a [`LogSnapshot`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// Offset of `bytes[0]`.
    pub base: u64,
    pub bytes: Vec<u8>,
    /// The receiver's cumulative ack.
    pub acked: u64,
    pub fin: Option<u64>,
}

impl StreamSnapshot {
    /// Offset after the last logged byte.
    pub fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// The logged bytes `range`, if held.
    pub fn get(&self, range: Range<u64>) -> Option<&[u8]> {
        if range.start < self.base || range.end > self.end() || range.start > range.end {
            return None;
        }
        self.bytes
            .get((range.start - self.base) as usize..(range.end - self.base) as usize)
    }
}

/// A frozen copy of a connection's log, taken when its backend failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSnapshot {
    pub c2s: StreamSnapshot,
    pub s2c: StreamSnapshot,
}

impl LogSnapshot {
    pub fn dir(&self, dir: Direction) -> &StreamSnapshot {
        match dir {
            Direction::ClientToServer => &self.c2s,
            Direction::ServerToClient => &self.s2c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};

    fn limits(per_conn: usize, global: usize) -> LogLimits {
        LogLimits { per_conn, global }
    }

    #[test]
    fn per_connection_cap_withholds_and_counts() {
        let mut b = Budget::new(1000);
        let mut l = ConnLog::new(limits(8, 1000));
        let a = l.accept(&mut b, C2S, 0, b"GET / HTTP/1.1\r\n");
        assert_eq!(a.forward, 0..8);
        assert_eq!(a.withheld, Some(Withheld::ConnFull));
        assert_eq!(a.newly_contiguous, 0..8);
        let a = l.accept(&mut b, S2C, 0, b"HTTP");
        assert_eq!((a.forward, a.withheld), (0..0, Some(Withheld::ConnFull)));
        let s = l.stats();
        assert_eq!((s.withheld_conn_full, s.withheld_bytes), (2, 12));
        assert_eq!(b.used(), 8);
    }

    #[test]
    fn global_cap_is_shared_between_connections() {
        let mut b = Budget::new(10);
        let mut x = ConnLog::new(limits(100, 10));
        let mut y = ConnLog::new(limits(100, 10));
        assert_eq!(x.accept(&mut b, C2S, 0, b"0123456").forward, 0..7);
        let a = y.accept(&mut b, C2S, 0, b"abcdef");
        assert_eq!((a.forward, a.withheld), (0..3, Some(Withheld::GlobalFull)));
        assert_eq!(y.stats().withheld_global_full, 1);
        // Freeing x's bytes makes room for y's retransmission.
        x.keep_from(&mut b, C2S, 7);
        assert_eq!(x.on_ack(&mut b, C2S, 7), 7);
        let a = y.accept(&mut b, C2S, 0, b"abcdef");
        assert_eq!((a.forward, a.withheld), (0..6, None));
        assert_eq!(a.newly_contiguous, 3..6);
        assert_eq!(b.used(), 6);
        y.release(&mut b);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn conflicting_retransmission_is_withheld() {
        let mut b = Budget::new(100);
        let mut l = ConnLog::new(LogLimits::default());
        l.accept(&mut b, S2C, 0, b"HTTP/1.1 200 OK");
        let a = l.accept(&mut b, S2C, 9, b"500");
        assert_eq!((a.forward, a.withheld), (9..9, Some(Withheld::Conflict)));
        assert_eq!(l.read(S2C, 9..12).unwrap(), b"200");
    }

    #[test]
    fn ack_beyond_the_log_is_clamped_and_counted() {
        let mut b = Budget::new(100);
        let mut l = ConnLog::new(LogLimits::default());
        l.accept(&mut b, S2C, 0, b"abc");
        l.keep_from(&mut b, S2C, 100);
        assert_eq!(l.on_ack(&mut b, S2C, 10), 3);
        assert_eq!(l.acked(S2C), 3);
        assert_eq!(l.stats().acks_beyond_log, 1);
    }

    #[test]
    fn snapshot_holds_contiguous_bytes_and_acks() {
        let mut b = Budget::new(100);
        let mut l = ConnLog::new(LogLimits::default());
        l.accept(&mut b, C2S, 0, b"req1req2");
        l.accept(&mut b, C2S, 20, b"ooo");
        l.accept(&mut b, S2C, 0, b"resp1");
        l.on_ack(&mut b, S2C, 4);
        l.keep_from(&mut b, C2S, 4);
        l.on_ack(&mut b, C2S, 8);
        l.set_fin(S2C, 5);
        let s = l.snapshot();
        assert_eq!((s.c2s.base, s.c2s.end()), (4, 8));
        assert_eq!(s.c2s.get(4..8), Some(&b"req2"[..]));
        assert_eq!(s.c2s.get(0..8), None);
        assert_eq!((s.s2c.acked, s.s2c.fin), (4, Some(5)));
        assert_eq!(s.dir(S2C).get(1..5), Some(&b"esp1"[..]));
    }
}

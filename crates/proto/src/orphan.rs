//! Orphaned client segments: what the proxy owning a client flow's slot does
//! with a segment to the VIP that matches no splice and for which it has no
//! socket.
//!
//! Such a segment belongs to a connection nobody can serve any more: most
//! often one that was in its pre-splice phase (handshake done, request head
//! being read, splice not yet created and replicated) on a proxy that
//! crashed. Its socket died with that proxy and no replica exists, so the
//! client retransmits into the proxy tier forever (the paper loses these
//! connections too, silently). Answering with a reset makes the client
//! fail fast, so its application can retry at once; this module decides
//! when that is safe.
//!
//! Rules, in order (RFC 9293 §3.10.7.2, the LISTEN state, since the VIP
//! port is a listener to everyone but the socket's holder):
//! 1. A segment with RST is dropped (a reset is never answered).
//! 2. A segment with ACK is answered `<SEQ=SEG.ACK><CTL=RST>`, *if the
//!    slot is settled* (below); otherwise dropped.
//! 3. A SYN without ACK is a new connection ([`OrphanVerdict::Accept`]).
//! 4. Anything else (no SYN, no ACK) is dropped.
//!
//! Settled: the slot's owner in this proxy's view has not changed for
//! `grace`, and this proxy has been running for `grace`. A connection can
//! only be alive on another proxy while its segments reach this one when
//! the views of this proxy, the lb and the socket's holder disagree (a
//! liveness flap: a proxy declared dead that comes back, or a join or
//! weight change not yet seen everywhere). Every such disagreement moves
//! the slot in some view; if it moved in this proxy's view, the stamp
//! holds the reset back for `grace`, during which a proxy declared dead by
//! mistake heartbeats again (the slot moves back and its packets are
//! redirected to it). The client retransmits at its RTO (at least 200 ms
//! on Linux), so a grace of a few detection periods delays the reset by
//! about one retransmission, never more than `grace` plus one RTO.
//!
//! Flows with a splice never get here: the caller looks the packet up in
//! the replicated splice table first and only consults this module on a
//! miss, so a connection whose splice reached this proxy is never reset.
//!
//! Residual risk (documented in docs/ARCHITECTURE.md): a connection held
//! by a proxy that this proxy has believed dead for longer than `grace`
//! while the lb still sent it packets here. Both would have to be wrong
//! about a live proxy for `grace`; that connection was also unreachable
//! the whole time.

use core::net::SocketAddrV4;
use core::time::Duration;

use crate::detector::DetectorConfig;
use crate::ids::ProxyId;
use crate::lb::{SlotTable, SLOTS};
use crate::Instant;

/// TCP flag bits this module reads.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// How long a slot must keep its owner before its orphans are reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrphanConfig {
    pub grace: Duration,
}

impl OrphanConfig {
    /// Four detection periods (`4 · missed · interval`: 120 ms at 10 ms
    /// beats, 2.4 s at the paper's 200 ms): a peer declared dead by a
    /// flap (lost or late beats) is back long before.
    pub fn for_detector(d: DetectorConfig) -> OrphanConfig {
        OrphanConfig {
            grace: d.dead_after() * 4,
        }
    }
}

/// The fields of the orphaned segment the decision needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrphanSegment {
    /// Client address and port.
    pub src: SocketAddrV4,
    /// The VIP and service port.
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    /// The TCP flags byte ([`flags`]).
    pub flags: u8,
    pub payload_len: u32,
}

/// A reset to send from the orphan's `dst` to its `src`: flags RST only,
/// sequence number `seq`, no ACK (rule 2 answers only ACK-bearing
/// segments), window 0, no options, no payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reset {
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub seq: u32,
}

impl Reset {
    /// The reset's TCP header (20 bytes: no options, no payload), its
    /// checksum computed over the IPv4 pseudo-header, ready for a raw
    /// socket.
    pub fn tcp_header(&self) -> [u8; 20] {
        let mut t = [0u8; 20];
        t[0..2].copy_from_slice(&self.from.port().to_be_bytes());
        t[2..4].copy_from_slice(&self.to.port().to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags::RST;
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
            }
        };
        add(&self.from.ip().octets());
        add(&self.to.ip().octets());
        add(&[0, 6, 0, 20]);
        add(&t);
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        t[16..18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        t
    }
}

/// Why an orphan gets no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrphanDrop {
    /// It is a reset itself.
    IsReset,
    /// Neither SYN nor ACK: a listener discards it.
    NoAck,
    /// The slot's owner changed (or this proxy started) less than `grace`
    /// ago: the connection may still live on a proxy this one disagrees
    /// with; a retransmission after the grace gets the reset.
    Unsettled,
    /// This proxy does not own the slot (the caller should have
    /// redirected it).
    NotOwner,
}

impl OrphanDrop {
    /// A short reason for drop counters.
    pub fn reason(self) -> &'static str {
        match self {
            OrphanDrop::IsReset => "orphan: reset not answered",
            OrphanDrop::NoAck => "orphan: neither syn nor ack",
            OrphanDrop::Unsettled => "orphan: slot owner changed within the grace",
            OrphanDrop::NotOwner => "orphan: slot owned by another proxy",
        }
    }
}

/// What to do with an orphaned segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrphanVerdict {
    /// A SYN: a new connection for the pre-splice path.
    Accept,
    Reset(Reset),
    Drop(OrphanDrop),
}

/// Counters of the guard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrphanStats {
    pub accepted: u64,
    pub resets: u64,
    /// Orphans held back by the grace.
    pub unsettled: u64,
    pub dropped: u64,
}

/// Per-slot owner history of one proxy and the orphan decision.
#[derive(Clone, Debug)]
pub struct OrphanGuard {
    me: ProxyId,
    cfg: OrphanConfig,
    /// The owner of each slot in the last table seen (`None`: empty table).
    owners: Vec<Option<ProxyId>>,
    /// When each slot last changed owner (or the guard started).
    changed: Vec<Instant>,
    stats: OrphanStats,
}

impl OrphanGuard {
    /// A guard for proxy `me` started at `now`: no slot is settled before
    /// `now + grace` (a fresh proxy knows nothing of the connections its
    /// peers hold).
    pub fn new(now: Instant, me: ProxyId, cfg: OrphanConfig) -> OrphanGuard {
        OrphanGuard {
            me,
            cfg,
            owners: vec![None; SLOTS],
            changed: vec![now; SLOTS],
            stats: OrphanStats::default(),
        }
    }

    pub fn config(&self) -> OrphanConfig {
        self.cfg
    }

    pub fn stats(&self) -> OrphanStats {
        self.stats
    }

    /// This proxy's client-owner table is now `table`: stamps every slot
    /// whose owner differs from the last table's.
    pub fn handle_table(&mut self, now: Instant, table: &SlotTable) {
        for k in 0..SLOTS {
            let owner = table.get(k);
            if self.owners[k] != owner {
                self.owners[k] = owner;
                self.changed[k] = now;
            }
        }
    }

    /// The owner of slot `k` in the last table seen.
    pub fn owner(&self, k: usize) -> Option<ProxyId> {
        self.owners[k % SLOTS]
    }

    /// From when orphans of slot `k` are reset.
    pub fn settled_at(&self, k: usize) -> Instant {
        self.changed[k % SLOTS] + self.cfg.grace
    }

    /// Decides for a segment to the VIP that matched no splice and no
    /// local socket.
    pub fn decide(&mut self, now: Instant, seg: &OrphanSegment) -> OrphanVerdict {
        let v = self.verdict(now, seg);
        match v {
            OrphanVerdict::Accept => self.stats.accepted += 1,
            OrphanVerdict::Reset(_) => self.stats.resets += 1,
            OrphanVerdict::Drop(OrphanDrop::Unsettled) => self.stats.unsettled += 1,
            OrphanVerdict::Drop(_) => self.stats.dropped += 1,
        }
        v
    }

    fn verdict(&self, now: Instant, seg: &OrphanSegment) -> OrphanVerdict {
        let f = seg.flags;
        if f & flags::RST != 0 {
            return OrphanVerdict::Drop(OrphanDrop::IsReset);
        }
        let k = SlotTable::slot_of(seg.src, seg.dst);
        if f & flags::ACK != 0 {
            if self.owners[k] != Some(self.me) {
                return OrphanVerdict::Drop(OrphanDrop::NotOwner);
            }
            if now < self.settled_at(k) {
                return OrphanVerdict::Drop(OrphanDrop::Unsettled);
            }
            return OrphanVerdict::Reset(Reset {
                from: seg.dst,
                to: seg.src,
                seq: seg.ack,
            });
        }
        if f & flags::SYN != 0 {
            return OrphanVerdict::Accept;
        }
        OrphanVerdict::Drop(OrphanDrop::NoAck)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::ProxySet;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    const VIP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 80);
    const GRACE: Duration = Duration::from_millis(120);

    fn p(n: u16) -> ProxyId {
        ProxyId(n)
    }

    fn client(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), port)
    }

    fn seg(port: u16, flags: u8) -> OrphanSegment {
        OrphanSegment {
            src: client(port),
            dst: VIP,
            seq: 1000,
            ack: 0xdead_beef,
            flags,
            payload_len: 100,
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn guard(me: u16) -> OrphanGuard {
        OrphanGuard::new(ms(0), p(me), OrphanConfig { grace: GRACE })
    }

    /// A client port whose slot `table` gives to `owner`.
    fn port_owned_by(table: &SlotTable, owner: ProxyId) -> u16 {
        (1000..u16::MAX)
            .find(|&port| table.choose(client(port), VIP) == Some(owner))
            .unwrap()
    }

    #[test]
    fn reset_header_is_a_valid_rst() {
        let r = Reset {
            from: VIP,
            to: client(40_001),
            seq: 0xfedc_ba98,
        };
        let t = r.tcp_header();
        assert_eq!(u16::from_be_bytes([t[0], t[1]]), 80);
        assert_eq!(u16::from_be_bytes([t[2], t[3]]), 40_001);
        assert_eq!(u32::from_be_bytes([t[4], t[5], t[6], t[7]]), 0xfedc_ba98);
        assert_eq!(&t[8..12], &[0; 4], "no ack number");
        assert_eq!((t[12], t[13]), (0x50, flags::RST));
        assert_eq!(&t[14..16], &[0, 0], "window 0");
        // The one's-complement sum over pseudo-header and segment is 0xffff.
        let mut sum: u32 = 0;
        let mut words = Vec::new();
        words.extend_from_slice(&VIP.ip().octets());
        words.extend_from_slice(&client(40_001).ip().octets());
        words.extend_from_slice(&[0, 6, 0, 20]);
        words.extend_from_slice(&t);
        for c in words.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn grace_derives_from_the_detector() {
        let d = DetectorConfig {
            interval: Duration::from_millis(10),
            missed: 3,
            hold: 0,
        };
        assert_eq!(OrphanConfig::for_detector(d).grace, GRACE);
    }

    #[test]
    fn ack_bearing_orphan_is_reset_from_its_ack_once_settled() {
        let mut g = guard(2);
        let both = SlotTable::equal([p(1), p(2)]);
        g.handle_table(ms(0), &both);
        let port = port_owned_by(&both, p(1));
        // proxy 1 dies at 50 ms: its slots move to proxy 2.
        let alone = SlotTable::equal([p(2)]);
        g.handle_table(ms(50), &alone);
        let s = seg(port, flags::ACK | 0x08);
        assert_eq!(
            g.decide(ms(100), &s),
            OrphanVerdict::Drop(OrphanDrop::Unsettled)
        );
        assert_eq!(g.settled_at(SlotTable::slot_of(s.src, s.dst)), ms(170));
        assert_eq!(
            g.decide(ms(170), &s),
            OrphanVerdict::Reset(Reset {
                from: VIP,
                to: client(port),
                seq: 0xdead_beef
            })
        );
        // A slot proxy 2 always owned was settled since the start + grace.
        let own = port_owned_by(&both, p(2));
        assert!(matches!(
            g.decide(ms(121), &seg(own, flags::ACK)),
            OrphanVerdict::Reset(_)
        ));
        assert_eq!(
            g.stats(),
            OrphanStats {
                accepted: 0,
                resets: 2,
                unsettled: 1,
                dropped: 0
            }
        );
    }

    #[test]
    fn listen_rules_for_rst_syn_and_bare_segments() {
        let mut g = guard(1);
        g.handle_table(ms(0), &SlotTable::equal([p(1)]));
        let t = ms(1000);
        for f in [flags::RST, flags::RST | flags::ACK, flags::RST | flags::SYN] {
            assert_eq!(
                g.decide(t, &seg(5, f)),
                OrphanVerdict::Drop(OrphanDrop::IsReset)
            );
        }
        assert_eq!(g.decide(t, &seg(5, flags::SYN)), OrphanVerdict::Accept);
        // A SYN is accepted even while the slot is unsettled.
        assert_eq!(g.decide(ms(1), &seg(5, flags::SYN)), OrphanVerdict::Accept);
        assert_eq!(
            g.decide(t, &seg(5, flags::FIN)),
            OrphanVerdict::Drop(OrphanDrop::NoAck)
        );
        assert!(matches!(
            g.decide(t, &seg(5, flags::SYN | flags::ACK)),
            OrphanVerdict::Reset(Reset {
                seq: 0xdead_beef,
                ..
            })
        ));
    }

    #[test]
    fn a_flap_restarts_the_grace_and_a_slot_of_another_proxy_is_never_reset() {
        let mut g = guard(2);
        let both = SlotTable::equal([p(1), p(2)]);
        let alone = SlotTable::equal([p(2)]);
        g.handle_table(ms(0), &both);
        let port = port_owned_by(&both, p(1));
        // Proxy 1 is declared dead at 500 ms by a flap and back at 560 ms.
        g.handle_table(ms(500), &alone);
        g.handle_table(ms(560), &both);
        assert_eq!(
            g.decide(ms(600), &seg(port, flags::ACK)),
            OrphanVerdict::Drop(OrphanDrop::NotOwner)
        );
        // Down again at 700 ms: the grace counts from then.
        g.handle_table(ms(700), &alone);
        assert_eq!(
            g.decide(ms(819), &seg(port, flags::ACK)),
            OrphanVerdict::Drop(OrphanDrop::Unsettled)
        );
        assert!(matches!(
            g.decide(ms(820), &seg(port, flags::ACK)),
            OrphanVerdict::Reset(_)
        ));
    }

    #[test]
    fn a_weight_change_moving_slots_is_a_change() {
        let mut g = guard(1);
        let mut set = ProxySet::new();
        set.upsert(p(1), 100);
        set.upsert(p(2), 0);
        g.handle_table(ms(0), &SlotTable::build(&set));
        set.upsert(p(2), 100);
        let later = SlotTable::build(&set);
        g.handle_table(ms(1000), &later);
        let kept = port_owned_by(&later, p(1));
        assert!(matches!(
            g.decide(ms(1000), &seg(kept, flags::ACK)),
            OrphanVerdict::Reset(_)
        ));
        // Slots taken by proxy 2 are not proxy 1's any more.
        let moved = port_owned_by(&later, p(2));
        assert_eq!(
            g.decide(ms(1000), &seg(moved, flags::ACK)),
            OrphanVerdict::Drop(OrphanDrop::NotOwner)
        );
    }

    #[test]
    fn an_empty_table_owns_nothing() {
        let mut g = guard(1);
        assert_eq!(
            g.decide(ms(1000), &seg(7, flags::ACK)),
            OrphanVerdict::Drop(OrphanDrop::NotOwner)
        );
    }

    /// One membership step of the property test.
    #[derive(Clone, Debug)]
    enum Step {
        Up(u16, u32),
        Down(u16),
    }

    fn step() -> impl Strategy<Value = (u64, Step)> {
        (
            0u64..400,
            prop_oneof![
                (1u16..=4, 0u32..3).prop_map(|(id, w)| Step::Up(id, w * 50)),
                (1u16..=4).prop_map(Step::Down),
            ],
        )
    }

    proptest! {
        /// Over any history of joins, leaves and weight changes, an orphan
        /// is reset only when the slot has been this proxy's for the whole
        /// grace, only when it carries ACK and no RST, and always from
        /// its acknowledgment number.
        #[test]
        fn resets_only_settled_own_slots(
            steps in proptest::collection::vec(step(), 0..12),
            port: u16,
            flags_byte: u8,
            ack: u32,
            probe_gap in 0u64..300,
        ) {
            let me = p(1);
            let mut g = guard(1);
            let mut set = ProxySet::new();
            set.upsert(me, 100);
            let s = OrphanSegment { src: client(port), dst: VIP, seq: 1, ack, flags: flags_byte, payload_len: 0 };
            // The owner of the probed slot at each change, to check against.
            let mut history: Vec<(Instant, Option<ProxyId>)> = Vec::new();
            let mut now = ms(0);
            let t0 = SlotTable::build(&set);
            g.handle_table(now, &t0);
            history.push((now, t0.choose(s.src, s.dst)));
            for (gap, st) in steps {
                now += Duration::from_millis(gap);
                match st {
                    Step::Up(id, w) => { set.upsert(p(id), if id == 1 { 100 } else { w }); }
                    Step::Down(id) => if id != 1 { set.remove(p(id)); },
                }
                let t = SlotTable::build(&set);
                g.handle_table(now, &t);
                history.push((now, t.choose(s.src, s.dst)));
            }
            let probe = now + Duration::from_millis(probe_gap);
            let v = g.decide(probe, &s);
            if let OrphanVerdict::Reset(r) = v {
                prop_assert_eq!(r.seq, ack);
                prop_assert_eq!((r.from, r.to), (VIP, s.src));
                prop_assert!(flags_byte & flags::ACK != 0 && flags_byte & flags::RST == 0);
                // Mine at every change within the grace, and since start.
                prop_assert!(probe >= ms(0) + GRACE);
                for &(at, owner) in &history {
                    if at + GRACE > probe {
                        prop_assert_eq!(owner, Some(me));
                    }
                }
                // And the last change before the window made it mine.
                let before = history.iter().rev().find(|h| h.0 + GRACE <= probe);
                prop_assert_eq!(before.map(|h| h.1), Some(Some(me)));
                let changes_in_window = history
                    .windows(2)
                    .filter(|w| w[1].0 + GRACE > probe && w[0].1 != w[1].1)
                    .count();
                prop_assert_eq!(changes_in_window, 0);
            }
            if flags_byte & flags::RST != 0 {
                prop_assert_eq!(v, OrphanVerdict::Drop(OrphanDrop::IsReset));
            }
        }
    }
}

//! The fuzz entry point of the lb's two datagram handlers
//! ([`fuzz_datagrams`], run by `fuzz/fuzz_targets/lb_datagrams.rs` and by
//! the property tests below): arbitrary datagrams and reachability changes
//! at arbitrary gaps, fed to an [`LbControl`] and to a primary and a backup
//! [`LbPair`], which must never panic and keep their contracts: the table
//! holds only configured proxies that are up and reachable, every refused
//! datagram is counted, activations and deactivations alternate and match
//! `is_active`, and a standby never announces the address.

use core::net::Ipv4Addr;
use core::time::Duration;

use crate::detector::DetectorConfig;
use crate::heartbeat::Heartbeat;
use crate::ids::ProxyId;
use crate::lb_control::LbControl;
use crate::lb_pair::{LbPair, PairEvent, PairRole, LB_PAIR_ID};
use crate::Instant;

/// Ids the built heartbeats come from: two configured proxies, one that is
/// not, and the peer lb.
const IDS: [ProxyId; 4] = [ProxyId(1), ProxyId(2), ProxyId(9), LB_PAIR_ID];

/// What a run saw, for tests to check that it went somewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Heartbeats the control state accepted.
    pub accepted: u64,
    /// The most proxies the table held at once.
    pub table_peak: usize,
    /// Activations of the primary and the backup.
    pub activations: [u32; 2],
}

/// Runs `data` as steps of `[tag, gap_ms, ...]`: after `gap_ms`, a tag
/// with the top bit set changes a proxy's reachability (bit 6 says which
/// way) and, with bit 5, reports the receivers' watermark; any other tag
/// delivers one datagram to all three: raw bytes (tag bit 0: `(tag >> 1) %
/// 32` bytes follow) or a heartbeat built from the next 4 bytes (id, epoch,
/// sequence and workload from few values, so beats repeat, go stale and
/// change epoch). The two lbs hear each other's beats at once.
pub fn fuzz_datagrams(data: &[u8]) -> Seen {
    let cfg = DetectorConfig {
        interval: Duration::from_millis(10),
        missed: 3,
        hold: 0,
    };
    let mut now = Instant::ZERO;
    let mut ctl = LbControl::new(
        cfg,
        [
            (ProxyId(1), Ipv4Addr::new(198, 18, 0, 11)),
            (ProxyId(2), Ipv4Addr::new(198, 18, 0, 12)),
        ],
    );
    let mut pairs = [
        Pair::new(LbPair::new(now, PairRole::Primary, cfg, 1)),
        Pair::new(LbPair::new(now, PairRole::Backup, cfg, 2)),
    ];
    let mut refused = 0;
    let mut table_peak = 0;
    let mut rest = data;
    while let [tag, gap, tail @ ..] = rest {
        rest = tail;
        now += Duration::from_millis(u64::from(*gap));
        if ctl.poll_timeout().is_some_and(|t| t <= now) {
            ctl.handle_timeout(now);
        }
        step(&mut pairs, now);
        if tag & 0x80 != 0 {
            ctl.set_reachable(IDS[usize::from(tag & 1)], tag & 0x40 != 0);
            if tag & 0x20 != 0 {
                for p in &mut pairs {
                    p.lb.handle_listened(now);
                }
                step(&mut pairs, now);
            }
            continue;
        }
        let datagram = if tag & 1 != 0 {
            let n = usize::from(tag >> 1) % 32;
            let (d, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            d.to_vec()
        } else {
            let [a, b, c, d, tail @ ..] = rest else { break };
            rest = tail;
            Heartbeat {
                id: IDS[usize::from(a & 3)],
                epoch: u32::from(a >> 2 & 3),
                seq: u64::from(*b),
                workload: u32::from(c & 7) | u32::from(*d) << 3,
            }
            .encode()
            .to_vec()
        };
        if ctl.handle_datagram(now, &datagram).is_err() {
            refused += 1;
        }
        for p in &mut pairs {
            let _ = p.lb.handle_datagram(now, &datagram);
        }
        step(&mut pairs, now);
        while ctl.poll_event().is_some() {}
        assert_eq!(
            ctl.stats().dropped,
            refused,
            "every refused datagram counted"
        );
        for (id, _) in ctl.table_members().iter() {
            assert!(
                ctl.configured().any(|(c, _)| c == id) && ctl.is_up(id) && ctl.is_reachable(id),
                "{id:?} in the table"
            );
        }
        table_peak = table_peak.max(ctl.table_members().iter().count());
    }
    Seen {
        accepted: ctl.stats().accepted,
        table_peak,
        activations: pairs.map(|p| p.activations),
    }
}

/// Steps both lbs, delivering each one's beats to the other.
fn step(pairs: &mut [Pair; 2], now: Instant) {
    for i in 0..2 {
        for hb in pairs[i].step(now) {
            let _ = pairs[1 - i].lb.handle_heartbeat(now, &hb);
        }
    }
    for p in pairs {
        p.step(now);
    }
}

/// One lb of the pair and what its events said about it.
struct Pair {
    lb: LbPair,
    active: bool,
    activations: u32,
}

impl Pair {
    fn new(lb: LbPair) -> Pair {
        Pair {
            lb,
            active: false,
            activations: 0,
        }
    }

    /// Runs a due timeout, drains events and announcements, checks them
    /// against the state, and returns the beats to send.
    fn step(&mut self, now: Instant) -> Vec<Heartbeat> {
        if self.lb.poll_timeout() <= now {
            self.lb.handle_timeout(now);
        }
        let beats = std::iter::from_fn(|| self.lb.poll_transmit()).collect();
        while let Some(ev) = self.lb.poll_event() {
            match ev {
                PairEvent::Activate(_) => {
                    assert!(!self.active, "activated twice");
                    self.activations += 1;
                }
                PairEvent::Deactivate(_) => assert!(self.active, "deactivated while standby"),
                PairEvent::Reannounce => {}
            }
            if !matches!(ev, PairEvent::Reannounce) {
                self.active = !self.active;
            }
        }
        assert_eq!(self.active, self.lb.is_active());
        if self.lb.poll_announce() {
            assert!(self.active, "a standby announced the address");
        }
        beats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_quiet_run_tables_the_beating_proxy_and_activates_the_primary_only() {
        // Proxy 1 reachable, then 20 beats from it 10 ms apart (epoch 0,
        // seq i, weight 8).
        let mut data = vec![0xc0, 0];
        data.extend((0..20u8).flat_map(|i| [0, 10, 0, i, 0, 1]));
        let seen = fuzz_datagrams(&data);
        assert_eq!(
            seen,
            Seen {
                accepted: 20,
                table_peak: 1,
                activations: [1, 0],
            }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_datagrams(&data);
        }

        #[test]
        fn random_beat_sequences_keep_the_contracts(
            steps in proptest::collection::vec((any::<u8>(), 0u8..40, any::<[u8; 4]>()), 0..120),
        ) {
            // Reachability steps as they come, every other step a built
            // heartbeat (never raw bytes).
            let mut data = Vec::new();
            for (tag, gap, beat) in steps {
                if tag & 0x80 != 0 {
                    data.extend([tag, gap]);
                } else {
                    data.extend([tag & !1, gap]);
                    data.extend(beat);
                }
            }
            fuzz_datagrams(&data);
        }
    }
}

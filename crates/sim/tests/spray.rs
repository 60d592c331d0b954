//! Per-packet spraying (the papers' lb: round robin, SRDS'06 §7 in bursts
//! of 40 packets) through the real roles: every packet of a connection,
//! pre-splice ones included, may reach any proxy, before or after the
//! splice is replicated to it, and packets redirected to the pre-splice
//! owner arrive late, overtaken by ones the lb sent there directly.

use core::time::Duration;
use ftsplice_proto::lb::LbMode;
use ftsplice_sim::roles::http::Method;
use ftsplice_sim::scenario::topology::{spliced, Params};
use ftsplice_sim::stats::Outcome;

/// (completed, broken, corrupted) of `conns` transfers of `size` bytes
/// through `proxies` proxies behind an lb spraying bursts of `burst`.
fn sprayed(
    seed: u64,
    proxies: usize,
    conns: usize,
    size: u64,
    burst: u32,
    m: Method,
) -> [usize; 3] {
    let mut p = Params::new(seed, conns, m, size);
    p.proxies = proxies;
    p.proxies_up = proxies;
    p.lb_mode = LbMode::BurstSpray { burst };
    let mut t = spliced(&p);
    t.run(p.start + Duration::from_secs(30));
    let c = t.sim.stats().conns();
    let n = |o: Outcome| c.iter().filter(|r| r.outcome == o).count();
    [
        n(Outcome::Completed),
        n(Outcome::Broken),
        n(Outcome::Corrupted),
    ]
}

/// The smallest case that hung: with 4 proxies one of 5 PUTs had its
/// handshake ACK (redirected by a non-owner) overtaken by a later data
/// segment sent to the owner directly. The owner's socket, still in
/// SYN-RECEIVED, took that segment as the handshake's end and queued its
/// data out of order, SACKing bytes that never reached the backend; the
/// client never resent them.
#[test]
fn handshake_ack_overtaken_by_data_loses_nothing() {
    assert_eq!(sprayed(1, 4, 5, 20_000, 1, Method::Put), [5, 0, 0]);
}

#[test]
fn round_robin_per_packet_puts_complete_byte_exact() {
    for proxies in 2..=4 {
        let got = sprayed(11, proxies, 100, 100_000, 1, Method::Put);
        assert_eq!(got, [100, 0, 0], "{proxies} proxies");
    }
}

#[test]
fn srds06_bursts_of_40_complete_puts_and_gets() {
    for (proxies, m) in [(2, Method::Put), (4, Method::Get)] {
        let got = sprayed(12, proxies, 100, 100_000, 40, m);
        assert_eq!(got, [100, 0, 0], "{proxies} proxies, {m:?}");
    }
}

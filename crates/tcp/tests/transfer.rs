//! Bulk transfers both ways between two of our endpoints over a simulated
//! link with loss, reordering and blackouts: every byte must arrive intact,
//! and recovery timing must follow Linux's 200 ms RTO floor.

mod harness;

use core::time::Duration;

use ftsplice_proto::Instant;
use harness::{run, BenchCfg, LinkCfg};

const MB: u64 = 1 << 20;

fn bench(seed: u64, up: u64, down: u64, link: LinkCfg) -> BenchCfg {
    BenchCfg {
        seed,
        up,
        down,
        link,
        ..BenchCfg::default()
    }
}

#[test]
fn clean_link_transfers_both_ways() {
    let cfg = bench(1, 4 * MB, 4 * MB, LinkCfg::default());
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
    let st = out.client_conn.stats();
    assert_eq!(st.retransmits, 0);
    assert_eq!(st.rto_count, 0);
    assert!(out.end < Instant::from_secs(5), "took {:?}", out.end);
}

#[test]
fn one_percent_loss() {
    let link = LinkCfg {
        loss: 0.01,
        ..LinkCfg::default()
    };
    let cfg = bench(2, 4 * MB, 4 * MB, link);
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
    let st = out.client_conn.stats();
    assert!(st.fast_retransmits > 0);
    assert!(st.retransmits > 0);
}

#[test]
fn five_percent_loss_ten_megabytes() {
    let link = LinkCfg {
        loss: 0.05,
        ..LinkCfg::default()
    };
    let cfg = bench(3, 10 * MB, MB, link);
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
}

#[test]
fn reordering_over_two_paths() {
    let link = LinkCfg {
        reorder: 0.3,
        reorder_extra: Duration::from_millis(2),
        ..LinkCfg::default()
    };
    let cfg = bench(4, 4 * MB, 4 * MB, link);
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
    // RACK's reordering window (widened by DSACKs) keeps spurious
    // retransmissions rare, and DSACK/timestamp undo restores the window.
    for conn in [&out.client_conn, out.server_conn.as_ref().expect("server")] {
        let st = conn.stats();
        assert!(st.reordering_seen);
        assert!(st.retransmits < 40, "{st:?}");
    }
    assert!(out.end < Instant::from_secs(2), "took {:?}", out.end);
}

#[test]
fn reordering_and_loss_together() {
    let link = LinkCfg {
        loss: 0.02,
        reorder: 0.2,
        reorder_extra: Duration::from_millis(4),
        ..LinkCfg::default()
    };
    let cfg = bench(5, 4 * MB, 2 * MB, link);
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
}

#[test]
fn blackout_recovers_after_backed_off_rto_with_200ms_floor() {
    // RTT 10 ms: RTO = srtt + 200 ms ~ 210 ms. The first timeout fires
    // ~210 ms into a 500 ms blackout, the backed-off one ~420 ms later, i.e.
    // ~630 ms after the blackout started; with a 1 s floor it would be 3 s.
    let start = Instant::from_millis(200);
    let end = Instant::from_millis(700);
    let link = LinkCfg {
        blackouts: vec![(start, end)],
        rate: 0,
        ..LinkCfg::default()
    };
    let cfg = bench(6, 10 * MB, MB, link);
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
    assert!(
        out.end > end,
        "finished before the blackout ended: {:?}",
        out.end
    );
    let resumed = out
        .server
        .progress
        .iter()
        .find(|p| p.0 > end)
        .map(|p| p.0)
        .expect("progress after the blackout");
    let stall = resumed - start;
    assert!(
        stall > Duration::from_millis(600) && stall < Duration::from_millis(700),
        "stall {stall:?}"
    );
    let st = out.client_conn.stats();
    assert_eq!(st.rto_count, 2, "{st:?}");
    let srtt = st.srtt.expect("srtt");
    assert!(srtt >= Duration::from_millis(10) && srtt < Duration::from_millis(15));
}

#[test]
fn repeated_long_outages_with_loss_and_reordering() {
    // Outages of 300 ms, 2 s and 800 ms (the 2 s one needs four backed-off
    // timeouts) on a lossy, reordering link: everything still arrives.
    let link = LinkCfg {
        loss: 0.01,
        reorder: 0.1,
        reorder_extra: Duration::from_millis(3),
        blackouts: vec![
            (Instant::from_millis(150), Instant::from_millis(450)),
            (Instant::from_millis(1000), Instant::from_millis(3000)),
            (Instant::from_millis(4000), Instant::from_millis(4800)),
        ],
        ..LinkCfg::default()
    };
    let cfg = bench(7, 10 * MB, 2 * MB, link);
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
    assert!(out.end > Instant::from_millis(4800), "ended {:?}", out.end);
    let st = out.client_conn.stats();
    assert!(st.rto_count >= 4, "{st:?}");
    // After the last outage the RTO backoff was reset by new ACKs.
    assert!(out.client_conn.rto() < Duration::from_millis(300));
}

#[test]
fn bottleneck_with_tail_drops() {
    // 10 MB/s with a 64 kB queue: slow start overshoots and loses bursts of
    // segments; SACK recovery must repair them without timeouts piling up,
    // and CUBIC must keep the link busy.
    let link = LinkCfg {
        rate: 10_000_000,
        queue_bytes: 64 * 1024,
        ..LinkCfg::default()
    };
    let cfg = bench(8, 10 * MB, MB, link);
    let out = run(&cfg);
    out.assert_complete(cfg.up, cfg.down);
    assert!(out.dropped > 0);
    let st = out.client_conn.stats();
    assert!(st.rto_count <= 2, "{st:?}");
    // 10 MB at 10 MB/s (minus header overhead) is ~1.1 s at best.
    assert!(out.end < Instant::from_millis(1600), "took {:?}", out.end);
}

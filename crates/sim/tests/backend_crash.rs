//! The `backend-crash` scenarios: every crash point survives with nothing
//! broken or corrupted, a lagging alternate gets update transactions
//! replayed (read-only ones skipped), the unforeseen non-determinism resets
//! the client, the client-retry baseline is slower at WAN RTTs, and a seed
//! replays byte for byte.

use ftsplice_sim::report::Report;
use ftsplice_sim::roles::webmail::app::Action;
use ftsplice_sim::roles::webmail::backend::CrashPoint;
use ftsplice_sim::scenario::backend_crash::{grid, render_grid, run, BackendCrash};

fn cfg(action: Action, point: CrashPoint, rtt_ms: f64) -> BackendCrash {
    BackendCrash {
        action,
        point,
        rtt_ms,
        ..BackendCrash::new(7)
    }
}

fn d(r: &Report, k: &str) -> f64 {
    match r.details.get(k) {
        Some(v) => *v,
        None => panic!("{}: no detail {k}\n{}", r.scenario, r.to_json()),
    }
}

/// The crash happened, was detected by the logger and recovered without
/// losing or altering a byte.
fn assert_survived(r: &Report) {
    let c = &r.connections;
    let at = &r.scenario;
    assert_eq!(
        (c.total, c.completed, c.broken, c.corrupted),
        (1, 1, 0, 0),
        "{at}\n{}",
        r.to_json()
    );
    assert_eq!(d(r, "crashed"), 1.0, "{at}");
    assert_eq!(d(r, "logger_recovered"), 1.0, "{at}");
    assert_eq!(d(r, "client_resets"), 0.0, "{at}");
    let f = &r.faults[0];
    let (det, rec) = (f.detected_ms.unwrap_or(0.0), f.recovered_ms.unwrap_or(0.0));
    assert!(f.at_ms < det && det < rec, "{at}: {f:?}");
}

#[test]
fn every_crash_point_survives_on_lan_and_wan() {
    for (action, rtt) in [(Action::Action1, 0.25), (Action::Action2, 79.0)] {
        for point in CrashPoint::ALL {
            let r = run(&cfg(action, point, rtt));
            assert_survived(&r);
            let mails = if action == Action::Action2 { 3.0 } else { 0.0 };
            assert_eq!(d(&r, "aux_mails"), mails, "{}", r.scenario);
            // Where the crash hit shows in the planner's inputs.
            let (t_l, p, tx) = (d(&r, "t_l"), d(&r, "p"), d(&r, "crash_tx"));
            match point {
                CrashPoint::Between => assert_eq!((t_l, p), (tx, 0.0), "{}", r.scenario),
                CrashPoint::MidRequest | CrashPoint::BeforeResponse => {
                    assert_eq!((t_l, p), (tx - 1.0, 0.0), "{}", r.scenario)
                }
                CrashPoint::MidResponse => {
                    assert_eq!(t_l, tx - 1.0, "{}", r.scenario);
                    assert!(p > 0.0, "{}", r.scenario);
                }
            }
            // The paper's LAN case: T_L = T_S = T_A, nothing replayed.
            assert_eq!(d(&r, "replayed"), 0.0, "{}", r.scenario);
        }
    }
}

#[test]
fn a_lagging_alternate_gets_updates_replayed_and_reads_skipped() {
    let o = BackendCrash {
        state_lag_ms: 300,
        ..cfg(Action::Action2, CrashPoint::Between, 79.0)
    };
    let r = run(&o);
    assert_survived(&r);
    // Crash after tx 18 (POST send); pushes of 16 (compose, update),
    // 17 (editor.js, read-only) and 18 were still queued on the primary.
    assert_eq!(d(&r, "t_l"), 18.0);
    assert_eq!(
        (d(&r, "t_a"), d(&r, "t_r")),
        (15.0, 16.0),
        "{}",
        r.to_json()
    );
    assert_eq!(
        (d(&r, "replayed"), d(&r, "skipped")),
        (2.0, 1.0),
        "{}",
        r.to_json()
    );
    // The replayed send's aux request was answered by the aux logger: the
    // mail store holds each of the 3 mails once.
    assert_eq!(d(&r, "aux_answered_from_log"), 1.0, "{}", r.to_json());
    let mails = (d(&r, "aux_mails"), d(&r, "aux_duplicate_mails"));
    assert_eq!(mails, (3.0, 0.0), "{}", r.to_json());
}

#[test]
fn unforeseen_nondeterminism_resets_the_client() {
    for rtt in [0.25, 79.0] {
        let o = BackendCrash {
            nondeterministic: true,
            ..cfg(Action::Action2, CrashPoint::MidResponse, rtt)
        };
        let r = run(&o);
        let c = &r.connections;
        assert_eq!(
            (c.total, c.broken, c.corrupted),
            (1, 1, 0),
            "{}",
            r.to_json()
        );
        assert_eq!(d(&r, "mismatch_reset"), 1.0);
        assert_eq!(d(&r, "client_resets"), 1.0);
        assert_eq!(d(&r, "logger_resets"), 1.0);
    }
}

#[test]
fn client_retry_baseline_is_much_slower_at_wan_rtt() {
    for action in [Action::Action1, Action::Action2] {
        let o = cfg(action, CrashPoint::BeforeResponse, 260.0);
        let ours = run(&o);
        let base = run(&BackendCrash {
            baseline: true,
            ..o
        });
        assert_survived(&ours);
        assert_eq!(base.connections.broken, 0, "{}", base.to_json());
        assert_eq!(d(&base, "client_reconnects"), 1.0);
        let (f, fb) = (d(&ours, "failover_s"), d(&base, "failover_s"));
        // Three missed 10 s heartbeats vs the logger's local detection.
        assert!(
            fb > 20.0 && f < 3.0 && fb > 10.0 * f,
            "ours {f} s, baseline {fb} s"
        );
    }
}

#[test]
fn client_retry_sends_a_mail_twice_the_logger_does_not() {
    // The primary crashes mid-response after storing the mail and pushing
    // the session: the retrying client re-issues the POST and the
    // alternate stores the mail again (its response then differs).
    let o = cfg(Action::Action2, CrashPoint::MidResponse, 79.0);
    let base = run(&BackendCrash {
        baseline: true,
        ..o
    });
    assert_eq!(d(&base, "aux_duplicate_mails"), 1.0, "{}", base.to_json());
    assert_eq!(base.connections.corrupted, 1);
    let ours = run(&o);
    assert_survived(&ours);
    let mails = (d(&ours, "aux_mails"), d(&ours, "aux_duplicate_mails"));
    assert_eq!(mails, (3.0, 0.0));
    assert_eq!(d(&ours, "aux_answered_from_log"), 1.0);
}

#[test]
fn same_seed_same_report() {
    let o = BackendCrash {
        state_lag_ms: 100,
        ..cfg(Action::Action1, CrashPoint::MidResponse, 79.0)
    };
    assert_eq!(run(&o).to_json(), run(&o).to_json());
    let other = run(&BackendCrash { seed: 8, ..o });
    assert_survived(&other);
}

/// The full grid (`ftsplice sim backend-grid`); run with `--ignored`.
#[test]
#[ignore]
fn print_grid() {
    println!("{}", render_grid(&grid(1)));
}

//! Tests of the adaptive failure detector, on a simulated clock.

use super::*;

const MS: u64 = 1_000;

fn at(ms: u64) -> Instant {
    Instant::from_micros(ms * MS)
}

fn cfg() -> DetectorConfig {
    DetectorConfig {
        floor: Duration::from_millis(20),
        ..DetectorConfig::default()
    }
}

/// Runs timers up to `until`; returns the events with the times they fired.
fn run_until(d: &mut Detector, until: Instant) -> Vec<(Instant, DetectorEvent)> {
    let mut out = Vec::new();
    while let Some(t) = d.poll_timeout() {
        if t > until {
            break;
        }
        d.handle_timeout(t);
        while let Some(e) = d.poll_event() {
            out.push((t, e));
        }
    }
    out
}

/// `n` exchanges on conn 1: request end, first byte after `fb` ms, `segs`
/// further segments `gap` ms apart; returns the time after the last.
fn train(
    d: &mut Detector,
    mut t: u64,
    n: usize,
    kind: Kind,
    fb: u64,
    segs: usize,
    gap: u64,
) -> u64 {
    for _ in 0..n {
        d.on_request_end(at(t), 1, kind);
        t += fb;
        d.on_response_start(at(t), 1);
        for _ in 0..segs {
            t += gap;
            d.on_response_bytes(at(t), 1);
        }
        d.on_response_end(at(t), 1);
        t += 1;
    }
    t
}

#[test]
fn timeouts_adapt_to_observed_latency() {
    let mut d = Detector::new(cfg(), at(0));
    let k = Kind::Rule(0);
    assert_eq!(
        d.timeouts(k),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    train(&mut d, 0, 30, k, 40, 3, 5);
    let (fb, gap) = d.timeouts(k);
    // avg converges to 40 ms with a shrinking deviation: 2 * (40 + 4*dev).
    assert!(
        fb >= Duration::from_millis(80) && fb < Duration::from_millis(100),
        "{fb:?}"
    );
    // Gaps of 5 ms: below the 20 ms floor.
    assert_eq!(gap, Duration::from_millis(20));
    let s = d.stats(k);
    assert_eq!(
        (s.first_byte.samples, s.gap.samples, s.duration.samples),
        (30, 90, 30)
    );
    assert!((s.duration.avg - 15_000.0).abs() < 1.0);
    // Other kinds are unaffected.
    assert_eq!(d.timeouts(Kind::Default).0, Duration::from_secs(1));
}

#[test]
fn crash_between_request_and_response_fails_after_first_byte_timeout() {
    let mut d = Detector::new(cfg(), at(0));
    let k = Kind::Rule(1);
    let t = train(&mut d, 0, 30, k, 40, 1, 5);
    let (fb, _) = d.timeouts(k);
    d.on_request_end(at(t), 1, k);
    let ev = run_until(&mut d, at(t + 10_000));
    let reason = FailReason::Timeout {
        conn: 1,
        kind: k,
        phase: Phase::FirstByte,
    };
    assert_eq!(ev, [(at(t) + fb, DetectorEvent::Failed(reason))]);
    assert!(d.is_failed());
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn crash_mid_response_fails_after_gap_timeout() {
    let mut d = Detector::new(cfg(), at(0));
    let k = Kind::Rule(0);
    let mut t = train(&mut d, 0, 20, k, 10, 5, 30);
    let (_, gap) = d.timeouts(k);
    d.on_request_end(at(t), 7, k);
    t += 10;
    d.on_response_start(at(t), 7);
    t += 30;
    d.on_response_bytes(at(t), 7);
    let ev = run_until(&mut d, at(t + 10_000));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, at(t) + gap);
    assert!(matches!(
        ev[0].1,
        DetectorEvent::Failed(FailReason::Timeout {
            conn: 7,
            phase: Phase::Response,
            ..
        })
    ));
}

#[test]
fn pipelined_request_waits_for_the_previous_response() {
    let mut d = Detector::new(cfg(), at(0));
    let k = Kind::Default;
    d.on_request_end(at(0), 1, k);
    d.on_request_end(at(1), 1, k);
    d.on_response_start(at(900), 1);
    d.on_response_end(at(950), 1);
    // Second request's first-byte timer runs from 950 ms, not 1 ms; one
    // 900 ms sample gives 2 * (900 + 4 * 450) ms.
    assert_eq!(d.poll_timeout(), Some(at(950 + 5400)));
    d.on_response_start(at(1000), 1);
    assert_eq!(d.stats(k).first_byte.samples, 2);
    assert!((d.stats(k).first_byte.avg - 900_000.0 * 0.875 - 50_000.0 * 0.125).abs() < 1.0);
}

#[test]
fn confirm_mode_suspects_then_clears_on_probe_reply_then_fails() {
    let mut d = Detector::new(
        DetectorConfig {
            confirm: true,
            ..cfg()
        },
        at(0),
    );
    let k = Kind::Default;
    d.on_request_end(at(0), 3, k);
    let ev = run_until(&mut d, at(1000));
    let suspect = DetectorEvent::Suspect {
        conn: 3,
        kind: k,
        phase: Phase::FirstByte,
    };
    assert_eq!(ev, [(at(1000), suspect)]);
    let p = d.poll_transmit().unwrap();
    // Alive but slow: the reply clears the suspicion and doubles the wait.
    d.on_probe_reply(at(1100), p.id);
    assert_eq!(d.poll_event(), Some(DetectorEvent::Cleared));
    assert_eq!(d.poll_timeout(), Some(at(3100)));
    let ev = run_until(&mut d, at(3100));
    assert_eq!(ev, [(at(3100), suspect)]);
    let p2 = d.poll_transmit().unwrap();
    assert_ne!(p2.id, p.id);
    // No reply: failed after probe_timeout.
    let ev = run_until(&mut d, at(10_000));
    let reason = FailReason::Timeout {
        conn: 3,
        kind: k,
        phase: Phase::FirstByte,
    };
    assert_eq!(ev, [(at(3600), DetectorEvent::Failed(reason))]);
}

#[test]
fn confirm_mode_response_bytes_clear_a_suspicion() {
    let mut d = Detector::new(
        DetectorConfig {
            confirm: true,
            ..cfg()
        },
        at(0),
    );
    d.on_request_end(at(0), 3, Kind::Default);
    run_until(&mut d, at(1000));
    d.on_response_start(at(1200), 3);
    assert_eq!(d.poll_event(), Some(DetectorEvent::Cleared));
    assert!(run_until(&mut d, at(2000)).is_empty());
    assert!(!d.is_failed());
}

#[test]
fn idle_backend_is_probed_at_low_rate() {
    let mut d = Detector::new(cfg(), at(0));
    // Answered probes: every 3 s after the last reply, never failing.
    for round in 0..3u64 {
        let t = d.poll_timeout().unwrap();
        assert_eq!(t, at(3000 + round * 3010));
        d.handle_timeout(t);
        let p = d.poll_transmit().unwrap();
        d.on_probe_reply(t + Duration::from_millis(10), p.id);
    }
    assert!(d.poll_event().is_none());
    // Unanswered: one retry, then failure.
    let ev = run_until(&mut d, at(20_000));
    assert_eq!(
        ev,
        [(
            at(12_030) + Duration::from_millis(1000),
            DetectorEvent::Failed(FailReason::IdleProbes)
        )]
    );
    assert_eq!(d.poll_transmit().map(|p| p.id), Some(4));
    assert_eq!(d.poll_transmit().map(|p| p.id), Some(5));
    // A reset after repair starts over, keeping the learned statistics.
    d.reset(at(30_000));
    assert!(!d.is_failed());
    assert_eq!(d.poll_timeout(), Some(at(33_000)));
}

#[test]
fn no_idle_probes_while_requests_are_outstanding() {
    let mut d = Detector::new(cfg(), at(0));
    d.on_request_end(at(2900), 1, Kind::Default);
    d.on_response_start(at(3500), 1);
    d.on_response_bytes(at(3800), 1);
    // Gap timeout after one 300 ms sample: 2 * (300 + 4 * 150) ms.
    assert_eq!(d.poll_timeout(), Some(at(3800 + 1800)));
    d.on_response_end(at(3900), 1);
    assert_eq!(d.poll_timeout(), Some(at(6900)));
    assert!(d.poll_transmit().is_none());
}

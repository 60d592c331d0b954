//! What clients saw around a fault, from the transfers' payload timelines
//! (milliseconds since the run start, like the fault times):
//!
//! - the client-visible stall: the longest gap between two payload moves of
//!   one transfer that spans the fault instant;
//! - recovery: when the last transfer that was in flight at the fault moved
//!   payload again;
//! - the normal gap: the longest such gap in the same transfers before the
//!   fault, the jitter a stall must be read against.

use crate::load::Transfer;

/// Transfers in flight at `at`: started before it, with payload moved after.
fn in_flight(ts: &[Transfer], at: f64) -> impl Iterator<Item = &Transfer> {
    ts.iter()
        .filter(move |t| t.start_ms <= at && t.moves.last().is_some_and(|&m| m > at))
}

/// The gap around `at` in one timeline: (last move at or before `at`, or
/// the start; first move after it).
fn gap_at(t: &Transfer, at: f64) -> Option<(f64, f64)> {
    let i = t.moves.partition_point(|&m| m <= at);
    let after = *t.moves.get(i)?;
    let before = if i == 0 { t.start_ms } else { t.moves[i - 1] };
    Some((before, after))
}

/// The longest gap spanning `at` over every transfer in flight (ms).
pub fn stall_ms(ts: &[Transfer], at: f64) -> f64 {
    in_flight(ts, at)
        .filter_map(|t| gap_at(t, at))
        .map(|(a, b)| b - a)
        .fold(0.0, f64::max)
}

/// When the last transfer in flight at `at` moved again (`None` if none
/// was in flight).
pub fn recovered_ms(ts: &[Transfer], at: f64) -> Option<f64> {
    in_flight(ts, at)
        .filter_map(|t| gap_at(t, at))
        .map(|(_, b)| b)
        .reduce(f64::max)
}

/// The longest gap between consecutive moves that ended before `at` (ms).
pub fn normal_gap_ms(ts: &[Transfer], at: f64) -> f64 {
    ts.iter()
        .flat_map(|t| t.moves.windows(2))
        .filter(|w| w[1] <= at)
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: f64, moves: &[f64]) -> Transfer {
        Transfer {
            conn: 0,
            status: Ok(201),
            start_ms: start,
            end_ms: moves.last().copied().unwrap_or(start),
            bytes: 0,
            digest: [0; 32],
            moves: moves.to_vec(),
        }
    }

    #[test]
    fn stall_is_the_gap_spanning_the_fault() {
        let ts = [
            t(0.0, &[1.0, 2.0, 3.0, 50.0, 51.0]),
            t(0.0, &[1.0, 9.0, 11.0, 30.0]),
            // Finished before the fault: ignored.
            t(0.0, &[1.0, 2.0]),
            // Started after the fault: ignored.
            t(20.0, &[21.0, 200.0]),
        ];
        assert_eq!(stall_ms(&ts, 10.0), 47.0);
        assert_eq!(recovered_ms(&ts, 10.0), Some(50.0));
        assert_eq!(normal_gap_ms(&ts, 10.0), 8.0);
    }

    #[test]
    fn a_transfer_silent_since_its_start_counts_from_the_start() {
        let ts = [t(5.0, &[40.0])];
        assert_eq!(stall_ms(&ts, 10.0), 35.0);
        assert_eq!(recovered_ms(&ts, 10.0), Some(40.0));
        assert_eq!(recovered_ms(&[], 10.0), None);
        assert_eq!(stall_ms(&[], 10.0), 0.0);
    }
}

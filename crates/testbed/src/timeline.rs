//! What clients saw around a fault, from the transfers' payload timelines
//! (milliseconds since the run start, like the fault times):
//!
//! - the client-visible stall: the longest gap between two payload moves of
//!   one transfer that overlaps the fault's window (from the fault until
//!   shortly after its detection: a sender's socket buffer hides the first
//!   milliseconds of an outage, so its gap starts after the fault);
//! - recovery: the end of that gap, taking for each transfer its longest
//!   gap in the window, the latest of them;
//! - the normal gap: the longest such gap in the same transfers before the
//!   fault, the jitter a stall must be read against.

use crate::load::Transfer;

/// Every gap of one transfer: (start, end) of each silence between its
/// start and first move, and between consecutive moves.
fn gaps(t: &Transfer) -> impl Iterator<Item = (f64, f64)> + '_ {
    let first = t.moves.first().map(|&m| (t.start_ms, m));
    first
        .into_iter()
        .chain(t.moves.windows(2).map(|w| (w[0], w[1])))
}

/// The longest gap of `t` overlapping `(from, until)`.
fn longest_in(t: &Transfer, from: f64, until: f64) -> Option<(f64, f64)> {
    gaps(t)
        .filter(|&(a, b)| a < until && b > from)
        .max_by(|x, y| (x.1 - x.0).total_cmp(&(y.1 - y.0)))
}

/// The longest gap overlapping the window `(from, until)` over every
/// transfer (ms).
pub fn stall_ms(ts: &[Transfer], from: f64, until: f64) -> f64 {
    ts.iter()
        .filter_map(|t| longest_in(t, from, until))
        .map(|(a, b)| b - a)
        .fold(0.0, f64::max)
}

/// When the last transfer moved again after its longest gap in the window
/// (`None` if no transfer had a gap there).
pub fn recovered_ms(ts: &[Transfer], from: f64, until: f64) -> Option<f64> {
    ts.iter()
        .filter_map(|t| longest_in(t, from, until))
        .map(|(_, b)| b)
        .reduce(f64::max)
}

/// One transfer's longest gap between consecutive moves that ended before
/// `at`: (conn, client port, moves before the gap, gap start, gap end).
pub type Gap = (u64, u16, usize, f64, f64);

/// The `n` transfers with the longest gaps ending before `at`, longest
/// first (for the scenario's notes on stderr: where bytes stopped).
pub fn longest_gaps(ts: &[Transfer], at: f64, n: usize) -> Vec<Gap> {
    let mut gaps: Vec<Gap> = ts
        .iter()
        .filter_map(|t| {
            t.moves
                .windows(2)
                .enumerate()
                .filter(|(_, w)| w[1] <= at)
                .max_by(|a, b| (a.1[1] - a.1[0]).total_cmp(&(b.1[1] - b.1[0])))
                .map(|(i, w)| (t.conn, t.local_port, i + 1, w[0], w[1]))
        })
        .collect();
    gaps.sort_by(|a, b| (b.4 - b.3).total_cmp(&(a.4 - a.3)));
    gaps.truncate(n);
    gaps
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
            local_port: 0,
            status: Ok(201),
            start_ms: start,
            end_ms: moves.last().copied().unwrap_or(start),
            bytes: 0,
            digest: [0; 32],
            moves: moves.to_vec(),
        }
    }

    #[test]
    fn stall_is_the_longest_gap_in_the_fault_window() {
        let ts = [
            // Buffered: moves on for a while after the fault at 10, then
            // stalls 12 -> 50.
            t(0.0, &[1.0, 2.0, 3.0, 11.0, 12.0, 50.0, 51.0]),
            t(0.0, &[1.0, 9.0, 11.0, 30.0]),
            // Finished before the fault: ignored.
            t(0.0, &[1.0, 2.0]),
            // A gap long after the window: ignored.
            t(0.0, &[1.0, 200.0, 900.0]),
        ];
        assert_eq!(stall_ms(&ts, 10.0, 100.0), 199.0);
        assert_eq!(stall_ms(&ts[..2], 10.0, 100.0), 38.0);
        assert_eq!(recovered_ms(&ts[..2], 10.0, 100.0), Some(50.0));
        assert_eq!(normal_gap_ms(&ts, 10.0), 8.0);
        // Transfer 1 (moves 1 -> 9), then transfer 0 (3 -> 11 ends after 10).
        let g = longest_gaps(&ts, 10.0, 2);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].2, g[0].3, g[0].4), (1, 1.0, 9.0));
        assert_eq!(
            longest_gaps(&ts, 1000.0, 1)[0].4 - longest_gaps(&ts, 1000.0, 1)[0].3,
            700.0
        );
    }

    #[test]
    fn a_transfer_silent_since_its_start_counts_from_the_start() {
        let ts = [t(5.0, &[40.0])];
        assert_eq!(stall_ms(&ts, 10.0, 20.0), 35.0);
        assert_eq!(recovered_ms(&ts, 10.0, 20.0), Some(40.0));
        assert_eq!(recovered_ms(&[], 10.0, 20.0), None);
        assert_eq!(stall_ms(&[], 10.0, 20.0), 0.0);
    }
}

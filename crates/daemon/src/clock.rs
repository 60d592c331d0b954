//! The daemons' one clock: `proto::Instant`s measured from process start.

use ftsplice_proto::Instant;
use std::sync::OnceLock;

fn origin() -> std::time::Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// Now, as the sans-IO state machines count it.
pub fn now() -> Instant {
    Instant::from_micros(u64::try_from(origin().elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// How long from now until `at` (zero if past), for tokio sleeps.
pub fn until(at: Instant) -> std::time::Duration {
    at.saturating_since(now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic() {
        let a = now();
        let b = now();
        assert!(b >= a);
        assert_eq!(until(a), std::time::Duration::ZERO);
    }
}

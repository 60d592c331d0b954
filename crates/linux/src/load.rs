//! The machine's 1-minute load average (`/proc/loadavg`): how much other
//! work shared the CPUs while something was measured. Benchmarks report it
//! next to their figures.

/// The 1-minute load average, if readable.
pub fn load_average() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    parse_loadavg(&s)
}

/// The first field of a `/proc/loadavg` line.
pub fn parse_loadavg(s: &str) -> Option<f64> {
    s.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_one_minute_figure() {
        assert_eq!(parse_loadavg("0.37 1.36 1.58 2/345 6789\n"), Some(0.37));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("x 1 2"), None);
        assert!(load_average().is_some_and(|l| l >= 0.0));
    }
}

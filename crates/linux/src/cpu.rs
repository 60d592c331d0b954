//! CPU time used so far by this process or this thread, from
//! `/proc/self/stat` and `/proc/thread-self/stat`: what benchmarks on a
//! shared machine report next to wall time, which there mostly measures the
//! neighbours.

/// The kernel's fixed clock-tick rate in `/proc/*/stat` (`USER_HZ`), which
/// is 100 on every Linux architecture whatever `CONFIG_HZ` is.
const TICKS_PER_S: f64 = 100.0;

/// User + system CPU seconds of this process so far, threads that have
/// ended included; `None` if `/proc` cannot be read or parsed.
pub fn process_cpu_s() -> Option<f64> {
    stat_cpu_s("/proc/self/stat")
}

/// User + system CPU seconds of the calling thread so far; `None` if
/// `/proc` cannot be read or parsed.
pub fn thread_cpu_s() -> Option<f64> {
    stat_cpu_s("/proc/thread-self/stat")
}

fn stat_cpu_s(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    Some(parse_stat_ticks(&s)? as f64 / TICKS_PER_S)
}

/// utime + stime, in clock ticks, of a `/proc/<pid>/stat` line. The command
/// name (2nd field) is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted after its last `)`: utime and stime
/// are the 14th and 15th fields of the line, the 12th and 13th after it.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/<pid>/stat` line with the given command name, utime 1234
    /// and stime 56.
    fn line(comm: &str) -> String {
        format!(
            "4242 ({comm}) R 1 4242 4242 0 -1 4194304 900 0 3 0 1234 56 0 0 20 0 2 0 777 1 2 3\n"
        )
    }

    #[test]
    fn sums_utime_and_stime() {
        assert_eq!(parse_stat_ticks(&line("ftsplice")), Some(1290));
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_fields() {
        assert_eq!(parse_stat_ticks(&line("a b) (c d")), Some(1290));
        assert_eq!(parse_stat_ticks(&line(") 7 8 9 (")), Some(1290));
        assert_eq!(parse_stat_ticks(&line("")), Some(1290));
    }

    #[test]
    fn malformed_lines_are_none() {
        assert_eq!(parse_stat_ticks(""), None);
        assert_eq!(parse_stat_ticks("4242 ftsplice R 1 2 3"), None);
        // Cut before stime.
        assert_eq!(parse_stat_ticks("1 (x) R 1 1 1 0 -1 0 0 0 0 0 1234"), None);
        assert_eq!(
            parse_stat_ticks("1 (x) R 1 1 1 0 -1 0 0 0 0 0 12a4 56"),
            None
        );
        assert_eq!(
            parse_stat_ticks(&format!("1 (x) R 1 1 1 0 -1 0 0 0 0 0 {} 1", u64::MAX)),
            None
        );
    }

    #[test]
    fn this_process_and_thread_have_used_some_cpu() {
        // Spin until both tick counters move: the figures come from the
        // real files, and the loop ends only if they count this work.
        let t0 = thread_cpu_s().expect("thread stat");
        let p0 = process_cpu_s().expect("process stat");
        let mut x = 0u64;
        while thread_cpu_s().expect("thread stat") <= t0
            || process_cpu_s().expect("process stat") <= p0
        {
            for i in 0..10_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
    }
}

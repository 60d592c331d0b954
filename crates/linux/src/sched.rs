//! Scheduling priority for latency-critical threads (the heartbeat sender
//! and receiver threads of the daemons): a loaded machine must not turn a
//! descheduled beat thread into a "dead" proxy.
//!
//! [`raise_current_thread`] asks for `SCHED_FIFO` first (a real-time class:
//! the thread runs as soon as it is runnable, ahead of every normal task;
//! safe for threads that sleep between short bursts of work), and falls
//! back to the best nice value the process may set when the real-time class
//! is refused (no `CAP_SYS_NICE`, or a cgroup without real-time budget).

#![allow(unsafe_code)] // FFI: every block below has a `// SAFETY:` line.

/// What [`raise_current_thread`] obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// `SCHED_FIFO` at this real-time priority.
    Fifo(i32),
    /// Normal scheduling at this nice value.
    Nice(i32),
    /// Nothing could be raised; the thread keeps its normal priority.
    Unchanged,
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Priority::Fifo(p) => write!(f, "SCHED_FIFO {p}"),
            Priority::Nice(n) => write!(f, "nice {n}"),
            Priority::Unchanged => write!(f, "unchanged"),
        }
    }
}

/// Real-time priority asked for: low within the FIFO range (1..=99), so
/// kernel threads and anything configured deliberately stay above it.
pub const FIFO_PRIORITY: i32 = 10;
/// Nice values tried, best first, when `SCHED_FIFO` is refused.
const NICE_STEPS: [i32; 3] = [-15, -10, -5];

/// Raises the calling thread's scheduling priority (only this thread: Linux
/// applies both calls per thread), as far as it is allowed.
pub fn raise_current_thread() -> Priority {
    let param = libc::sched_param {
        sched_priority: FIFO_PRIORITY,
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call;
    // pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        return Priority::Fifo(FIFO_PRIORITY);
    }
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    for nice in NICE_STEPS {
        // SAFETY: plain integer arguments; PRIO_PROCESS with a thread id
        // sets that one thread's nice value.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
        if rc == 0 {
            return Priority::Nice(nice);
        }
    }
    Priority::Unchanged
}

/// The calling thread's scheduling policy (`libc::SCHED_*`).
pub fn current_policy() -> i32 {
    // SAFETY: sched_getscheduler has no memory arguments; pid 0 is the
    // calling thread.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_changes_only_the_calling_thread() {
        let before = current_policy();
        let (got, policy) = std::thread::spawn(|| (raise_current_thread(), current_policy()))
            .join()
            .unwrap();
        match got {
            Priority::Fifo(p) => {
                assert_eq!(p, FIFO_PRIORITY);
                assert_eq!(policy, libc::SCHED_FIFO);
            }
            Priority::Nice(n) => {
                assert!(n < 0);
                assert_ne!(policy, libc::SCHED_FIFO);
            }
            Priority::Unchanged => assert_ne!(policy, libc::SCHED_FIFO),
        }
        // This thread was not touched.
        assert_eq!(current_policy(), before);
        if crate::is_root() {
            assert_ne!(got, Priority::Unchanged, "root may raise priority");
        }
        assert_eq!(Priority::Fifo(10).to_string(), "SCHED_FIFO 10");
        assert_eq!(Priority::Nice(-5).to_string(), "nice -5");
    }
}

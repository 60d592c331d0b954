//! Whether this process may create namespaces, load BPF and use TCP_REPAIR,
//! and the skip helper for tests that need it.

#![allow(unsafe_code)] // FFI: every block below has a `// SAFETY:` line.

/// True when running with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// For tests that need root (namespaces, BPF, TCP_REPAIR): returns true if
/// the test should be skipped, after printing why. CI runs as root, where
/// this always returns false, so such tests run and must pass there.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("SKIPPED {test}: needs root (network namespaces, BPF, TCP_REPAIR); CI runs as root");
    true
}

/// Pins the calling thread to one CPU (per-CPU BPF state, e.g. the lb's
/// spray counter, is then deterministic under BPF_PROG_TEST_RUN).
pub fn pin_current_thread(cpu: usize) -> crate::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; `cpu` is bounds-checked
    // by the macro against the set's size.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(crate::Error::last_os("sched_setaffinity"));
    }
    Ok(())
}

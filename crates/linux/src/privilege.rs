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

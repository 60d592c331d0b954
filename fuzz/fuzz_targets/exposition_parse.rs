//! Fuzzes the Prometheus text-exposition parser the tests and the testbed
//! read metrics with; the body is `ftsplice_daemon::exposition::fuzz_parse`,
//! which the crate's property tests also run over random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_daemon::exposition::fuzz_parse(data);
});

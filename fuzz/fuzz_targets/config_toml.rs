//! Fuzzes the daemons' TOML config parsers (proxy, lb, agent); the body is
//! `ftsplice_daemon::config::fuzz_parse` (no panic, every error names a
//! line of the text), which the crate's property tests also run over
//! random and mutated configs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_daemon::config::fuzz_parse(data);
});

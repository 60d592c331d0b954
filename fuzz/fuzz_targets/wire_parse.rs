//! Fuzzes every wire parser (datagram, segment, options) and the
//! emit/parse round trip; the body is `ftsplice_wire::fuzz::parse_any`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_wire::fuzz::parse_any(data);
});

//! Fuzzes splice translation: splice parameters from the first bytes, the
//! rest as a packet; the body is `ftsplice_proto::splice::fuzz::translate_any`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_proto::splice::fuzz::translate_any(data);
});

//! Fuzzes heartbeat datagram decoding; the body is
//! `ftsplice_proto::heartbeat::fuzz_decode`, which the crate's
//! property tests also run over random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_proto::heartbeat::fuzz_decode(data);
});

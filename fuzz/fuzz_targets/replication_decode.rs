//! Fuzzes decoding of replication messages (with and without a key); the body
//! is `ftsplice_proto::replication::codec::fuzz_decode`, which the crate's
//! property tests also run over random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_proto::replication::codec::fuzz_decode(data);
});

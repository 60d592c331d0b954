//! Fuzzes the bounded HTTP/1.1 request-head parser used for L7 routing; the
//! body is `ftsplice_proto::route::head::fuzz_parse`, which the crate's
//! property tests also run over random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_proto::route::head::fuzz_parse(data);
});

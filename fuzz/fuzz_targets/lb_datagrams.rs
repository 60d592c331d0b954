//! Fuzzes the lb's datagram handlers (membership control and the lb pair)
//! with arbitrary datagrams at arbitrary gaps; the body is
//! `ftsplice_proto::lb_fuzz::fuzz_datagrams`, which the crate's property
//! tests also run over random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_proto::lb_fuzz::fuzz_datagrams(data);
});

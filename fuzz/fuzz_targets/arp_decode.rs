//! Fuzzes the ARP codec the lb reads its packet socket with; the body is
//! `ftsplice_linux::arp::fuzz_decode` (no panic, whatever decodes encodes
//! back), which the crate's property tests also run over random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_linux::arp::fuzz_decode(data);
});

//! Fuzzes the simulator's IPv4/UDP parser (heartbeats, replication and
//! webmail control cross the simulated network through it): no panic on
//! any bytes, as `net::udp::tests::parse_never_panics` checks over random
//! input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ftsplice_sim::net::udp::parse(data);
});

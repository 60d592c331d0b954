//! Fuzzes the simulated webmail's control-message codec: no panic, and
//! whatever decodes survives encode + decode, as
//! `roles::webmail::control::tests::decode_never_panics` checks over
//! random input.
#![no_main]

use ftsplice_sim::roles::webmail::control::Ctl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(m) = Ctl::decode(data) {
        assert_eq!(Ctl::decode(&m.encode()), Some(m));
    }
});

//! Fuzzes the HTTP/1.1 transactionalizer: the body is
//! `ftsplice_recovery::fuzz::fuzz_transactionalize` (request and response
//! streams fed whole and in chunks must give the same transactions, with
//! ordered ranges within the input, and never panic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ftsplice_recovery::fuzz::fuzz_transactionalize(data);
});

//! Fuzz target `dtmf_info`: The DTMF INFO body parser (application/dtmf-relay, application/dtmf).
//! Asserts: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::dtmf_info(data));

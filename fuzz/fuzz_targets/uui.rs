//! Fuzz target `uui`: The User-to-User header decoder. Asserts: no panic, and the length limit holds.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::uui(data));

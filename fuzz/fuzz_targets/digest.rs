//! Fuzz target `digest`: The digest challenge parser (one challenge and a header's list) and the Authorization
//! built from each accepted challenge. Asserts: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::digest(data));

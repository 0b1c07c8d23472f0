//! Fuzz target `srtp`: SRTP/SRTCP unprotect with fixed SDES keys, protect/unprotect round trips, and the
//! a=crypto parser. Asserts: no panic, round trips give the packet back, a=crypto
//! prints back to the same value.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::srtp(data));

//! Fuzz target `config`: The configuration loader on TOML text (syntax, types, validation). Asserts: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::config(data));

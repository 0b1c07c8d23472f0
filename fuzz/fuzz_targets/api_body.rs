//! Fuzz target `api_body`: The API's JSON bodies: the object reader and the field readers of the callback
//! handlers. Asserts: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::api_body(data));

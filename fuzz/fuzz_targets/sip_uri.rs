//! Fuzz target `sip_uri`: The URI, name-addr (tag handling) and Via parsers on arbitrary text.
//! Asserts: no panic, and removing a tag leaves none.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::sip_uri(data));

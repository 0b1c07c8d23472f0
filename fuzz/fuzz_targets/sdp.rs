//! Fuzz target `sdp`: The SDP parser, the audio stream readers and offer/answer (the bytes as offer, as
//! answer, and as an offer holdless answers itself). Asserts: no panic, and every SDP
//! holdless writes parses again.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::sdp(data));

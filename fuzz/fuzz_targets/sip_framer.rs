//! Fuzz target `sip_framer`: The TCP stream framer (Content-Length framing, CRLF keep-alives), fed in pieces.
//! Asserts: no panic, frames within the 64 KiB limit, bounded buffering, and the same
//! frames however the stream is cut.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::sip_framer(data));

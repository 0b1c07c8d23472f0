//! Fuzz target `sip_parse`: The SIP message parser (UDP datagram and TCP frame) and the typed views the endpoint
//! takes of a message (Via, CSeq, Max-Forwards, URIs, name-addrs, UUI, challenges).
//! Asserts: no panic, and a well-formed message holdless prints reads back the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::sip_parse(data));

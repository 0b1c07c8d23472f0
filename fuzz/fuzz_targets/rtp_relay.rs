//! Fuzz target `rtp_relay`: The RTP/RTCP parsers and the relay's packet path after a real offer/answer, with
//! several sources, both latching modes and clock steps. Asserts: no panic, forwarding only
//! to the negotiated, egress-allowed addresses, packet length kept.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::rtp_relay(data));

//! Fuzz target `endpoint`: The state machine: a sequence of SIP inputs (templated INVITEs, in-dialog requests
//! and responses with fuzzed fields, raw and mangled datagrams from several peers) and clock
//! steps driven into the endpoint with the real media controller. Asserts: no panic,
//! bounded transactions and calls, and no call, transaction, dialog or media left once the
//! clock has run ten minutes past the last input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| holdless::fuzzing::endpoint(data));

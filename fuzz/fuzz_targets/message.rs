//! libFuzzer's entry for the `message` target: the harness is `rebound_fuzz::message`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rebound_fuzz::message::run(data));

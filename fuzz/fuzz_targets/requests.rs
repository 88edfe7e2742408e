//! libFuzzer's entry for the `requests` target: the harness is `rebound_fuzz::requests`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rebound_fuzz::requests::run(data));

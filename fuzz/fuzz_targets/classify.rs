//! libFuzzer's entry for the `classify` target: the harness is `rebound_fuzz::classify`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rebound_fuzz::classify::run(data));

//! libFuzzer's entry for the `rules` target: the harness is `rebound_fuzz::rules`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rebound_fuzz::rules::run(data));

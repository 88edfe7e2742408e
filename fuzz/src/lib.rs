//! The harnesses behind rebound's fuzz targets, one module per target: `fuzz_targets/*.rs` only
//! hand libFuzzer's input to them. Each asserts what a user relies on, so a wrong answer is a
//! crash too, not only a panic inside rebound.
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use rebound_engine::RuleSet;

pub mod classify;
pub mod message;
pub mod requests;
pub mod rules;

/// The shipped rule set (the one embedded in the binary), loaded once per process.
pub fn shipped_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::load(&rebound::rules::embedded()).unwrap_or_else(|e| panic!("the embedded rules do not load:\n{e}"))
    })
}

/// Longest error message a hostile field may produce: errors quote a short prefix of a bad value,
/// never all of it (32 characters, each escaped in at most 10 bytes, and the words around them).
pub const MAX_ERROR_BYTES: usize = 512;

/// At most the first `max` bytes of `s`, cut at a character boundary: for messages about
/// oversized values.
pub fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

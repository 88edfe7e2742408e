//! The real replies the benchmarks classify (`tests/data/*.jsonl`), and the shipped rules.

use std::path::PathBuf;

use rebound_engine::{ReplyInput, RuleSource};
use serde::Deserialize;

/// One line of a reply set: only what a request carries.
#[derive(Deserialize)]
pub struct Sample {
    code: Option<u32>,
    enhanced: Option<String>,
    text: String,
}

impl Sample {
    /// The reply as a request gives it to the engine.
    pub fn input(&self) -> ReplyInput<'_> {
        ReplyInput {
            code: self.code.unwrap_or(0),
            enhanced: self.enhanced.as_deref().unwrap_or(""),
            text: &self.text,
            ..ReplyInput::default()
        }
    }

    /// The reply's text.
    #[allow(dead_code)] // Used by the engine benchmarks only.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The length of the text in bytes.
    #[allow(dead_code)] // Used by per_reply, not by every benchmark that includes this module.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The replies of `tests/data/<file>`.
pub fn load(file: &str) -> Vec<Sample> {
    let text = std::fs::read_to_string(root().join("tests/data").join(file)).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The shipped rule directory.
pub fn shipped_source() -> RuleSource {
    RuleSource::from_dir(&root().join("rules")).unwrap_or_else(|e| panic!("{e}"))
}

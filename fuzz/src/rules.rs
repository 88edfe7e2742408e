//! Target `rules`: rule files and rhai scripts through `RuleSource::from_files` and
//! `RuleSet::load`, as `rebound check` and every reload read a directory.
//!
//! Input: files separated by NUL, each `path LF contents` (`seed/a.yaml`, `hooks.rhai`, ...); at
//! most [`MAX_FILES`]. The shipped `categories.yaml` is added unless the input has its own, so
//! that fuzzed rules can name real categories and reach the compiler and the examples' checks.
//! A load must end in a rule set or in errors, never in a panic; libFuzzer's `-timeout` and
//! `-rss_limit_mb` catch a load that runs away.

use std::path::PathBuf;

use rebound_engine::{RuleSet, RuleSource};

/// Files read from one input; the rest of it is ignored.
pub const MAX_FILES: usize = 8;

/// The rule files of one input, the shipped categories last (a file of the same path wins).
pub fn files(data: &[u8]) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = data
        .split(|&b| b == 0)
        .take(MAX_FILES)
        .map(|file| {
            let text = String::from_utf8_lossy(file);
            let (path, contents) = text.split_once('\n').unwrap_or((&text, ""));
            (PathBuf::from(path), contents.to_string())
        })
        .collect();
    files.extend(
        rebound::rules::embedded()
            .files()
            .iter()
            .filter(|(path, _)| path.as_os_str() == "categories.yaml")
            .cloned(),
    );
    files
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let source = RuleSource::from_files(files(data));
    match RuleSet::load(&source) {
        Ok(rules) => {
            // A set that loads answers every reply with some category.
            let outcome = rules.classify(&rebound_engine::Reply::from_text("550 5.1.1 User unknown"));
            assert!(!outcome.category.id.is_empty());
        }
        Err(errors) => assert!(!errors.0.is_empty(), "a load failed with no error to show"),
    }
}

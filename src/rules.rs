//! Where the CLI's rules come from: a directory on disk, or the set embedded at build time.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rebound_engine::{RuleSet, RuleSource};

include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

/// The default rules compiled into the binary.
pub fn embedded() -> RuleSource {
    RuleSource::from_files(
        EMBEDDED_RULES
            .iter()
            .map(|(path, text)| (PathBuf::from(path), (*text).to_string())),
    )
}

/// The files of `dir`, or the embedded rules when `dir` is `None`.
pub fn source(dir: Option<&Path>) -> anyhow::Result<RuleSource> {
    match dir {
        None => Ok(embedded()),
        // Files named as the operator knows them, as `check` names rule errors.
        Some(dir) => RuleSource::from_dir(dir).map_err(|mut errors| {
            for e in &mut errors.0 {
                if !e.file.as_os_str().is_empty() {
                    e.file = dir.join(&e.file);
                }
            }
            anyhow::anyhow!("{errors}")
        }),
    }
}

/// Loads and verifies a rule set, naming the directory in the error.
pub fn load(dir: Option<&Path>) -> anyhow::Result<RuleSet> {
    let what = dir.map_or_else(|| "the embedded rules".to_string(), |d| d.display().to_string());
    let source = source(dir).with_context(|| format!("cannot read {what}"))?;
    RuleSet::load(&source)
        .map_err(|errors| anyhow::anyhow!("{errors}"))
        .with_context(|| format!("{what} are invalid"))
}

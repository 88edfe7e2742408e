//! The one place that reads YAML: rule files through `serde-saphyr`.
//!
//! serde-saphyr is pure safe Rust, does not panic on malformed input, rejects duplicate keys
//! (the libyaml forks keep the last one silently) and enforces parse budgets that stop alias
//! bombs. Nothing else in the workspace names the YAML crate, so swapping it touches one file.

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::{Budget, Options, Spanned};

use crate::error::{RuleError, RuleErrorKind};
use crate::model::{CategoryDef, Located, ProviderDef, RuleDef, RuleFile, TestDef};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    categories: Vec<Spanned<CategoryDef>>,
    #[serde(default)]
    providers: Vec<Spanned<ProviderDef>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleDef>>,
    #[serde(default)]
    tests: Vec<Spanned<TestDef>>,
}

/// Budgets sized for hand-written rule files: a few thousand rules fit easily, an alias bomb does not.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 32;
    budget.max_documents = 1;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

/// Parses one rule file. `path` is only used to name the file in errors.
pub(crate) fn parse_rule_file(text: &str, path: &Path) -> Result<RuleFile, Box<RuleError>> {
    if is_blank(text) {
        return Ok(RuleFile::default());
    }
    let raw: RawFile = serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let line = err.location().map(|l| l.line());
        let message = err.to_string();
        Box::new(RuleError::new(
            path,
            line,
            line.and_then(|l| enclosing_id(text, l)),
            RuleErrorKind::Yaml(strip_location(&message)),
        ))
    })?;
    Ok(RuleFile {
        categories: raw.categories.into_iter().map(located).collect(),
        providers: raw.providers.into_iter().map(located).collect(),
        rules: raw.rules.into_iter().map(located).collect(),
        tests: raw.tests.into_iter().map(located).collect(),
    })
}

fn located<T>(s: Spanned<T>) -> Located<T> {
    Located {
        line: s.referenced.line(),
        value: s.value,
    }
}

/// A file of only comments and white space holds nothing.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

/// The parser appends " at line L, column C" (or starts with "line L column C:"); the caller
/// prints the line in front, so drop the parser's copy.
fn strip_location(message: &str) -> String {
    let mut m = message.trim();
    if let Some(rest) = m.strip_prefix("line ")
        && let Some((head, msg)) = rest.split_once(": ")
        && head.split_whitespace().nth(1) == Some("column")
    {
        m = msg;
    }
    if let Some(at) = m.find(" at line ")
        && m[at..].contains("column")
    {
        m = &m[..at];
    }
    m.to_string()
}

/// The id of the entry enclosing `line`: the nearest `id:` at or above it. A parse error stops
/// deserialisation before the entry exists, so this is how the message can still name the rule.
fn enclosing_id(text: &str, line: u64) -> Option<String> {
    let upto = usize::try_from(line).ok()?;
    text.lines()
        .take(upto)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find_map(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            let value = t.strip_prefix("id:")?.trim();
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            (!value.is_empty()).then(|| format!("entry `{value}`"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuleFile, Box<RuleError>> {
        parse_rule_file(text, Path::new("t.yaml"))
    }

    #[test]
    fn rules_keep_their_lines() {
        let f = parse("rules:\n  - id: a\n    category: x\n  - id: b\n    category: y\n").unwrap_or_default();
        let lines: Vec<_> = f.rules.iter().map(|r| (r.value.id.as_str(), r.line)).collect();
        assert_eq!(lines, [("a", 2), ("b", 4)]);
    }

    #[test]
    fn unknown_key_names_line_and_rule() {
        let Err(err) = parse("rules:\n  - id: a/b\n    category: x\n    priorty: 3\n") else {
            panic!("accepted an unknown key");
        };
        assert_eq!(err.line, Some(4));
        assert_eq!(err.item.as_deref(), Some("entry `a/b`"));
        assert!(!err.to_string().contains("column"), "{err}");
        assert!(err.to_string().contains("priorty"), "{err}");
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let Err(err) = parse("rules:\n  - id: a\n    category: x\n    when: {code: 550, code: 551}\n") else {
            panic!("accepted a duplicate key");
        };
        assert_eq!(err.line, Some(4));
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn blank_files_are_empty() {
        assert!(parse("# nothing yet\n\n").is_ok_and(|f| f.rules.is_empty()));
    }
}

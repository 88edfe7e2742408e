//! `rebound rule new REPLY`: scaffolds a rule for a reply that the rules decide weakly: its codes
//! and a regex of the stable words of its template, so that the operator only chooses the category.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use rebound_engine::{Reply, template};

/// The category a scaffold carries until the operator sets one; `check` refuses it as an
/// unknown category, naming it.
pub const PLACEHOLDER_CATEGORY: &str = "SET-A-CATEGORY-HERE";

/// Most words in the generated `text` regex: enough to be distinctive, short enough to survive
/// small changes of wording around it.
const MAX_WORDS: usize = 8;

#[derive(Debug, Clone, clap::Args)]
pub struct RuleNewArgs {
    /// The category of the new rule (an id from categories.yaml); left as a placeholder when omitted.
    #[arg(long)]
    pub category: Option<String>,
    /// Append the rule to this rules file (created with a `rules:` list if absent), then validate
    /// the rule directory as `check` does; the file is left as it was when that fails.
    #[arg(long, value_name = "FILE")]
    pub into: Option<PathBuf>,
    /// The rule directory to validate with --into. Default: the directory of FILE.
    #[arg(long, env = "REBOUND_RULES")]
    pub rules: Option<PathBuf>,
    /// The reply, e.g. "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown".
    pub reply: String,
}

pub fn run(args: &RuleNewArgs) -> anyhow::Result<ExitCode> {
    let Some(yaml) = scaffold(&args.reply, args.category.as_deref()) else {
        anyhow::bail!(
            "the reply has no stable words (its template is masks, numbers and punctuation): \
             a rule on its codes alone is what decided it already"
        );
    };
    let Some(file) = &args.into else {
        print!("rules:\n{yaml}");
        return Ok(ExitCode::SUCCESS);
    };
    let dir = match (&args.rules, file.parent()) {
        (Some(dir), _) => dir.clone(),
        (None, Some(parent)) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        (None, _) => PathBuf::from("."),
    };
    let before = match std::fs::read(file) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let mut text = match &before {
        Some(bytes) => String::from_utf8(bytes.clone()).with_context(|| format!("{} is not UTF-8", file.display()))?,
        None => "rules:\n".to_string(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&yaml);
    std::fs::write(file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    let checked = crate::check::run(Some(&dir));
    if !matches!(&checked, Ok(code) if *code == ExitCode::SUCCESS) {
        restore(file, before.as_deref())?;
        eprintln!("{}: left as it was; the rule was:\n{yaml}", file.display());
        return checked.map(|_| ExitCode::FAILURE);
    }
    eprintln!("appended to {}:\n{yaml}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// Puts `file` back: its old bytes, or no file.
fn restore(file: &Path, before: Option<&[u8]>) -> anyhow::Result<()> {
    match before {
        Some(bytes) => std::fs::write(file, bytes),
        None => std::fs::remove_file(file),
    }
    .with_context(|| format!("cannot restore {}", file.display()))
}

/// The rule for `reply` as one item of a `rules:` list; `None` when its template has no literal
/// word to match (a text condition is the point: codes alone already decided it).
pub fn scaffold(reply: &str, category: Option<&str>) -> Option<String> {
    let parsed = Reply::from_text(reply);
    let enhanced = parsed.enhanced.map(|e| e.to_string());
    let words = stable_run(&template(reply));
    if words.is_empty() {
        return None;
    }
    let mut id = format!("local/{}/", slug(category.unwrap_or("uncategorised")));
    let mut parts: Vec<String> = Vec::new();
    if parsed.code != 0 {
        parts.push(parsed.code.to_string());
    }
    if let Some(e) = &enhanced {
        parts.push(e.clone());
    }
    parts.extend(words.iter().take(4).map(|w| slug(w)));
    id.push_str(&parts.join("-"));
    let mut out = String::new();
    out.push_str(&format!("  - id: {}\n", quoted(&id)));
    match category {
        Some(c) => out.push_str(&format!("    category: {}\n", quoted(c))),
        None => out.push_str(&format!(
            "    # Set the category: an id from categories.yaml. `rebound check` refuses this placeholder.\n    category: {PLACEHOLDER_CATEGORY}\n"
        )),
    }
    out.push_str("    when:\n");
    if parsed.code != 0 {
        out.push_str(&format!("      code: {}\n", parsed.code));
    }
    if let Some(e) = &enhanced {
        out.push_str(&format!("      enhanced: {}\n", quoted(e)));
    }
    out.push_str(&format!("      text: {}\n", quoted(&text_regex(&words))));
    out.push_str("    examples:\n");
    out.push_str(&format!("      - {}\n", quoted(reply)));
    Some(out)
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// `\bw1\s+w2 ... \b`, lower-case, escaped.
fn text_regex(words: &[String]) -> String {
    let escaped: Vec<String> = words.iter().map(|w| escape(&w.to_lowercase())).collect();
    format!(r"\b{}\b", escaped.join(r"\s+"))
}

fn escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lower-case ASCII letters and digits joined by `-`, for an id.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The template's runs of literal words that follow one another with only spaces between them
/// (masks, numbers and words glued to punctuation break a run), so the regex matches the reply's
/// own wording and nothing that varies between recipients. The last substantial run is taken:
/// replies put an MTA's fixed preamble ("Recipient address rejected:") first and the reason
/// last, and a preamble would also match other rules' replies.
fn stable_run(template: &str) -> Vec<String> {
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for chunk in template.split_whitespace() {
        // Only punctuation is trimmed: a digit glued to a word (`user1`) makes it vary.
        let lead = chunk.starts_with(|c: char| !c.is_alphanumeric());
        let core = chunk.trim_matches(|c: char| !c.is_alphanumeric());
        let trail = chunk.ends_with(|c: char| !c.is_alphanumeric());
        if core.is_empty() || !is_word(core) {
            runs.push(std::mem::take(&mut run));
            continue;
        }
        if lead {
            runs.push(std::mem::take(&mut run));
        }
        run.push(core.to_string());
        if trail {
            runs.push(std::mem::take(&mut run));
        }
    }
    runs.push(run);
    let letters = |r: &Vec<String>| r.iter().map(|w| w.chars().count()).sum::<usize>();
    let chosen = runs
        .iter()
        .rev()
        .filter(|r| !is_relay_note(r))
        .find(|r| letters(r) >= SUBSTANTIAL_LETTERS)
        .or_else(|| runs.iter().max_by_key(|r| letters(r)));
    chosen
        .map(|r| r.iter().take(MAX_WORDS).cloned().collect())
        .unwrap_or_default()
}

/// Whether `run` is Postfix's note of which command the remote server answered (`in reply to RCPT
/// TO command`), which follows every relayed reply whatever its cause: never the words to key on.
fn is_relay_note(run: &[String]) -> bool {
    let mut words = run.iter().map(|w| w.to_lowercase());
    words.next().as_deref() == Some("in")
        && words.next().as_deref() == Some("reply")
        && words.next().as_deref() == Some("to")
}

/// Letters a run needs to stand for the reply on its own.
const SUBSTANTIAL_LETTERS: usize = 8;

/// Letters, with single inner `-` or `'` (`don't`, `e-mail`); no digits, no mask, no address.
fn is_word(core: &str) -> bool {
    let mut previous_joiner = true;
    for c in core.chars() {
        if c.is_alphabetic() {
            previous_joiner = false;
        } else if (c == '-' || c == '\'') && !previous_joiner {
            previous_joiner = true;
        } else {
            return false;
        }
    }
    !previous_joiner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_skips_masks_numbers_and_punctuation() {
        let words = stable_run("550 5.1.1 <*>: Recipient address rejected: User unknown in virtual mailbox table");
        assert_eq!(words, ["User", "unknown", "in", "virtual", "mailbox", "table"]);
        assert_eq!(stable_run("550 <*> 12345"), Vec::<String>::new());
        assert_eq!(stable_run("user1 x.y@z.com"), Vec::<String>::new());
    }

    #[test]
    fn postfix_relay_note_is_not_the_run() {
        // Postfix's own report of a relayed reply ends with which command was answered.
        let words = stable_run(
            "host <*> said: 550 5.1.1 <*>: Recipient address rejected: User unknown (in reply to RCPT TO command)",
        );
        assert_eq!(words, ["User", "unknown"]);
    }

    #[test]
    fn the_regex_is_lower_case_escaped_and_bounded() {
        let words = vec!["Don't".to_string(), "e-mail".to_string()];
        assert_eq!(text_regex(&words), r"\bdon't\s+e\-mail\b");
    }
}

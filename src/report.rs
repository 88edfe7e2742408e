//! `rebound classify --report`: counts of the answers by category, evidence, rule and provider,
//! and the top templates of the weakly decided replies (what to write rules for), in memory
//! bounded by the tally's capacity.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rebound_engine::{Evidence, Outcome, Sighting, Unmatched, UnmatchedEntry, reply_template};
use serde_json::{Value, json};

/// The report's flags, shared by replies and `--messages`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// After the answers, write a summary to standard error: counts by category, evidence, rule
    /// and provider, and the top templates of replies decided on weak evidence.
    #[arg(long)]
    pub report: bool,
    /// Write only the summary, to standard output; no answers.
    #[arg(long)]
    pub report_only: bool,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// How many unmatched templates the summary lists.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub report_top: usize,
    /// Most templates the unmatched tally holds (its memory bound; counts past it carry an error bound).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub unmatched_capacity: u32,
}

impl ReportArgs {
    /// Whether any summary was asked for.
    pub fn wanted(&self) -> bool {
        self.report || self.report_only || self.report_json.is_some()
    }

    /// An empty summary when one was asked for.
    pub fn summary(&self) -> Option<Summary> {
        self.wanted()
            .then(|| Summary::new(usize::try_from(self.unmatched_capacity).unwrap_or(10_000)))
    }

    /// Writes `summary` where the flags say.
    pub fn finish(&self, summary: &Summary) -> anyhow::Result<()> {
        if let Some(path) = &self.report_json {
            write_json(path, &summary.to_json(self.report_top))?;
        }
        if self.report_only {
            let mut out = std::io::stdout().lock();
            summary.write_text(&mut out, self.report_top)?;
            out.flush()?;
        } else if self.report {
            summary.write_text(&mut std::io::stderr().lock(), self.report_top)?;
        }
        Ok(())
    }
}

fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write the report to {}", path.display()))
}

/// What one answer contributes to the summary, computed where the answer is (a worker thread).
#[derive(Debug, Clone)]
pub struct Seen {
    category: String,
    evidence: Evidence,
    rule_id: String,
    provider: String,
    /// The reply's template, only for a weakly decided reply.
    template: Option<String>,
}

impl Seen {
    /// The summary's view of `outcome`, the answer to a reply whose text is `text`.
    pub fn of(outcome: &Outcome<'_>, text: &str) -> Seen {
        let evidence = outcome.evidence;
        Seen {
            category: outcome.category.id.clone(),
            evidence,
            rule_id: outcome.rule.map(|r| r.id.clone()).unwrap_or_default(),
            provider: outcome.provider.map(|p| p.id.clone()).unwrap_or_default(),
            template: evidence.is_weak().then(|| reply_template(text)),
        }
    }
}

/// The counts and the unmatched tally.
#[derive(Debug)]
pub struct Summary {
    answers: u64,
    errors: u64,
    by_category: BTreeMap<String, u64>,
    by_evidence: BTreeMap<&'static str, u64>,
    by_rule: BTreeMap<String, u64>,
    by_provider: BTreeMap<String, u64>,
    weak: u64,
    unmatched: Unmatched,
}

/// Shown for an empty rule or provider.
const NONE: &str = "(none)";

impl Summary {
    /// An empty summary whose tally holds at most `capacity` templates.
    pub fn new(capacity: usize) -> Summary {
        Summary {
            answers: 0,
            errors: 0,
            by_category: BTreeMap::new(),
            by_evidence: BTreeMap::new(),
            by_rule: BTreeMap::new(),
            by_provider: BTreeMap::new(),
            weak: 0,
            unmatched: Unmatched::new(capacity),
        }
    }

    /// Counts one answer.
    pub fn add(&mut self, seen: &Seen) {
        self.answers += 1;
        bump(&mut self.by_category, &seen.category);
        *self.by_evidence.entry(seen.evidence.as_str()).or_default() += 1;
        bump(&mut self.by_rule, or_none(&seen.rule_id));
        bump(&mut self.by_provider, or_none(&seen.provider));
        if let Some(template) = &seen.template {
            self.weak += 1;
            let sighting = Sighting {
                provider: &seen.provider,
                evidence: seen.evidence,
                category: &seen.category,
                rule_id: &seen.rule_id,
                unix_ms: now_ms(),
                example: None,
            };
            self.unmatched.record(template, &sighting);
        }
    }

    /// Counts one input that got an error instead of an answer.
    pub fn add_error(&mut self) {
        self.errors += 1;
    }

    fn top(&self, n: usize) -> Vec<UnmatchedEntry> {
        self.unmatched.top(n, |_| true)
    }

    /// The summary as JSON: the same figures as the text.
    pub fn to_json(&self, top: usize) -> Value {
        let unmatched: Vec<Value> = self
            .top(top)
            .iter()
            .map(|e| {
                json!({
                    "template": e.template,
                    "count": e.count,
                    "error_bound": e.error_bound,
                    "first_seen_unix_ms": e.first_seen_unix_ms,
                    "last_seen_unix_ms": e.last_seen_unix_ms,
                    "provider": e.provider,
                    "evidence": e.evidence.as_str(),
                    "category": e.category,
                    "rule_id": e.rule_id,
                })
            })
            .collect();
        json!({
            "answers": self.answers,
            "errors": self.errors,
            "weak": self.weak,
            "by_category": self.by_category,
            "by_evidence": self.by_evidence,
            "by_rule": self.by_rule,
            "by_provider": self.by_provider,
            "unmatched_templates": self.unmatched.len(),
            "unmatched_capacity": self.unmatched.capacity(),
            "unmatched": unmatched,
        })
    }

    /// The summary for a terminal: one aligned table per count, most first.
    pub fn write_text(&self, out: &mut impl Write, top: usize) -> std::io::Result<()> {
        writeln!(
            out,
            "report: {} answer(s), {} error(s); {} decided on weak evidence (reply_code, enhanced_code, none)",
            self.answers, self.errors, self.weak
        )?;
        table(out, "category", &self.by_category)?;
        let evidence: BTreeMap<String, u64> = self.by_evidence.iter().map(|(k, v)| ((*k).to_string(), *v)).collect();
        table(out, "evidence", &evidence)?;
        table(out, "rule", &self.by_rule)?;
        table(out, "provider", &self.by_provider)?;
        let entries = self.top(top);
        writeln!(
            out,
            "\nunmatched templates: top {} of {} (tally capacity {})",
            entries.len(),
            self.unmatched.len(),
            self.unmatched.capacity()
        )?;
        let width = entries
            .iter()
            .map(|e| count_cell(e).len())
            .max()
            .unwrap_or(0)
            .max("count".len());
        let evidence_width = "enhanced_code".len();
        writeln!(out, "  {:>width$}  {:<evidence_width$}  template", "count", "evidence")?;
        for e in &entries {
            writeln!(
                out,
                "  {:>width$}  {:<evidence_width$}  {}",
                count_cell(e),
                e.evidence.as_str(),
                template_cell(&e.template)
            )?;
        }
        Ok(())
    }
}

/// A template as listed: a reply without text (decided on its codes alone) says so rather than
/// leaving the column blank.
fn template_cell(template: &str) -> String {
    if template.is_empty() {
        "(no text)".to_string()
    } else {
        printable(template)
    }
}

/// `12` or `12±3` when the count may hold displaced templates' sightings.
fn count_cell(e: &UnmatchedEntry) -> String {
    if e.error_bound == 0 {
        e.count.to_string()
    } else {
        format!("{}±{}", e.count, e.error_bound)
    }
}

/// One line on a terminal: control characters (a stranger's) shown escaped.
fn printable(text: &str) -> String {
    text.chars().flat_map(char::escape_default_if_control).collect()
}

/// Escaping only the characters that would move a terminal's cursor.
trait EscapeControl {
    fn escape_default_if_control(self) -> EscapedChar;
}

/// A char, or its escape.
enum EscapedChar {
    Plain(Option<char>),
    Escaped(std::char::EscapeDefault),
}

impl Iterator for EscapedChar {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        match self {
            EscapedChar::Plain(c) => c.take(),
            EscapedChar::Escaped(e) => e.next(),
        }
    }
}

impl EscapeControl for char {
    fn escape_default_if_control(self) -> EscapedChar {
        if self.is_control() {
            EscapedChar::Escaped(self.escape_default())
        } else {
            EscapedChar::Plain(Some(self))
        }
    }
}

/// A count table: `name` then value and count, most first, aligned.
fn table(out: &mut impl Write, name: &str, counts: &BTreeMap<String, u64>) -> std::io::Result<()> {
    let mut rows: Vec<(&String, &u64)> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let key_width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(name.len());
    let count_width = rows.iter().map(|(_, v)| v.to_string().len()).max().unwrap_or(0).max(5);
    writeln!(out, "\n  {name:<key_width$}  {:>count_width$}", "count")?;
    for (key, count) in rows {
        writeln!(out, "  {:<key_width$}  {count:>count_width$}", printable(key))?;
    }
    Ok(())
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { NONE } else { s }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

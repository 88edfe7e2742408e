//! All text patterns of a rule set, matched in one pass over the reply.
//!
//! Each regex contributes the literals every match must contain (from `regex-syntax`'s literal
//! extractor); one Aho-Corasick automaton finds all of them at once. Only patterns whose literal
//! occurs are confirmed with their regex, and a pattern that is exactly a set of literals needs no
//! confirmation. So the cost follows the text and the few patterns it mentions, not the rule count.
//! Provider markers ride in the same automaton.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex_automata::meta::Regex;
use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
use regex_syntax::hir::{Hir, HirKind};

/// Compiled regexes are bounded so a pathological pattern fails the load instead of eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a literal in the automaton stands for.
#[derive(Debug, Clone, Copy)]
enum LiteralUse {
    /// Some pattern needs this literal; `exact` when finding it is the whole match.
    Pattern { id: u32, exact: bool },
    /// A provider's text marker.
    Marker(u16),
}

/// Patterns and markers as registered; `build` turns them into a [`TextMatcher`].
#[derive(Default)]
pub(crate) struct TextMatcherBuilder {
    patterns: Vec<Option<Regex>>,
    sources: Vec<String>,
    by_source: HashMap<String, u32>,
    literals: Vec<String>,
    literal_ids: HashMap<String, usize>,
    uses: Vec<Vec<LiteralUse>>,
    unfiltered: Vec<u32>,
}

impl TextMatcherBuilder {
    /// Registers a pattern (the same source twice gets the same id).
    pub(crate) fn add_pattern(&mut self, source: &str) -> Result<u32, String> {
        if let Some(&id) = self.by_source.get(source) {
            return Ok(id);
        }
        // The parser's message repeats the pattern with a caret; its last line says what is wrong.
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(true)
            .build()
            .parse(source)
            .map_err(|e| e.to_string().lines().last().unwrap_or_default().trim().to_string())?;
        let id = u32::try_from(self.patterns.len()).map_err(|_| "too many patterns".to_string())?;
        let literals = required_literals(source);
        // A pattern that is exactly a set of literals is decided by the automaton alone.
        let regex = if literals.as_ref().is_some_and(|(_, exact)| *exact) {
            None
        } else {
            // Lazy DFA only, and no prefilter of its own (ours ran first): a full DFA per pattern
            // made reloading thousands of rules slow and buys little on texts this short.
            let config = Regex::config()
                .dfa(false)
                .auto_prefilter(false)
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT));
            Some(
                Regex::builder()
                    .configure(config)
                    .build_from_hir(&hir)
                    .map_err(|e| e.to_string())?,
            )
        };
        match literals {
            Some((literals, exact)) => {
                for lit in literals {
                    self.add_literal(lit, LiteralUse::Pattern { id, exact });
                }
            }
            None => self.unfiltered.push(id),
        }
        self.patterns.push(regex);
        self.sources.push(source.to_string());
        self.by_source.insert(source.to_string(), id);
        Ok(id)
    }

    /// Registers a provider marker, matched as a literal anywhere in the lower-cased text.
    pub(crate) fn add_marker(&mut self, marker: &str, provider: u16) {
        self.add_literal(crate::reply::lower_for_matching(marker), LiteralUse::Marker(provider));
    }

    fn add_literal(&mut self, literal: String, use_: LiteralUse) {
        let next = self.literals.len();
        let idx = *self.literal_ids.entry(literal.clone()).or_insert(next);
        if idx == next {
            self.literals.push(literal);
            self.uses.push(Vec::new());
        }
        self.uses[idx].push(use_);
    }

    pub(crate) fn build(self) -> Result<TextMatcher, String> {
        let automaton = if self.literals.is_empty() {
            None
        } else {
            Some(build_automaton(&self.literals)?)
        };
        Ok(TextMatcher {
            automaton,
            uses: self.uses,
            patterns: self.patterns,
            sources: self.sources,
            unfiltered: self.unfiltered,
        })
    }
}

/// A full DFA scans fastest but grows with the literal count; past a memory budget the
/// builder's own choice (a contiguous NFA) keeps large rule sets small.
fn build_automaton(literals: &[String]) -> Result<AhoCorasick, String> {
    const DFA_MEMORY_BUDGET: usize = 16 << 20;
    let builder = |kind| {
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(kind)
            .build(literals)
            .map_err(|e| e.to_string())
    };
    match builder(Some(AhoCorasickKind::DFA)) {
        Ok(dfa) if dfa.memory_usage() <= DFA_MEMORY_BUDGET => Ok(dfa),
        _ => builder(None),
    }
}

/// The literals one of which every match of `source` contains, lower-cased, and whether the
/// pattern matches exactly those strings. `None` when no useful set exists (then the regex runs
/// on every reply) or when a literal is not ASCII: ASCII literals are safe against the
/// lower-cased text, other scripts have case rules the prefilter does not model.
fn required_literals(source: &str) -> Option<(Vec<String>, bool)> {
    let hir = regex_syntax::ParserBuilder::new().build().parse(source).ok()?;
    // The extractor treats look-arounds (`\b`, `^`) as empty: with any, a literal hit is only a hint.
    let no_lookaround = hir.properties().look_set().is_empty();
    let usable = |seq: &Seq| -> Option<(Vec<String>, bool)> {
        let lits = seq.literals()?;
        if lits.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(lits.len());
        for lit in lits {
            let s = std::str::from_utf8(lit.as_bytes()).ok()?;
            if s.is_empty() || !s.is_ascii() {
                return None;
            }
            out.push(s.to_ascii_lowercase());
        }
        Some((out, no_lookaround && seq.is_exact()))
    };
    let prefix = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    // Exact, or long enough to be rare: no need to look inside (which costs time at load).
    if let Some(found) = usable(&prefix).filter(|(lits, exact)| *exact || shortest(lits) >= GOOD_LITERAL) {
        return Some(found);
    }
    // Every part of a top-level concatenation must match, so any part's literals filter the
    // pattern too: take the part with the longest shortest literal (`\bquota\s+exceeded` is
    // better found by "exceeded" than by its prefix "quota").
    let parts: Vec<&Hir> = match hir.kind() {
        HirKind::Concat(parts) => parts.iter().collect(),
        _ => vec![&hir],
    };
    let mut best: Option<Vec<String>> = usable(&prefix).map(|(lits, _)| lits);
    let suffix = Extractor::new().kind(ExtractKind::Suffix).extract(&hir);
    let candidates = parts
        .into_iter()
        .map(|part| Extractor::new().kind(ExtractKind::Prefix).extract(part))
        .chain(std::iter::once(suffix));
    for seq in candidates {
        if let Some((lits, _)) = usable(&seq)
            && best.as_ref().is_none_or(|b| shortest(&lits) > shortest(b))
        {
            best = Some(lits);
        }
    }
    // A filter literal is only a hint: the regex still decides.
    best.map(|lits| (lits, false))
}

/// A prefix literal this long is selective enough to filter on.
const GOOD_LITERAL: usize = 8;

fn shortest(lits: &[String]) -> usize {
    lits.iter().map(String::len).min().unwrap_or(0)
}

/// The compiled matcher shared by every classification of a rule set.
pub(crate) struct TextMatcher {
    automaton: Option<AhoCorasick>,
    uses: Vec<Vec<LiteralUse>>,
    patterns: Vec<Option<Regex>>,
    sources: Vec<String>,
    unfiltered: Vec<u32>,
}

/// What one scan of a reply found.
#[derive(Debug, Default)]
pub(crate) struct TextHits {
    /// Ids of the patterns that match, sorted.
    pub matched: Vec<u32>,
    /// The provider whose marker occurs first in the text.
    pub marker: Option<u16>,
}

impl TextHits {
    pub(crate) fn is_match(&self, pattern: u32) -> bool {
        self.matched.binary_search(&pattern).is_ok()
    }
}

impl TextMatcher {
    /// Number of distinct patterns.
    pub(crate) fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Scans `lower` (the reply's lower-cased text) once and confirms the patterns it may contain.
    pub(crate) fn scan(&self, lower: &str) -> TextHits {
        let mut hits = TextHits::default();
        let mut to_confirm: Vec<u32> = Vec::new();
        if let Some(ac) = &self.automaton {
            let mut marker_at = usize::MAX;
            for m in ac.find_overlapping_iter(lower) {
                for use_ in &self.uses[m.pattern().as_usize()] {
                    match *use_ {
                        LiteralUse::Pattern { id, exact: true } => hits.matched.push(id),
                        LiteralUse::Pattern { id, exact: false } => to_confirm.push(id),
                        LiteralUse::Marker(p) if m.start() < marker_at => {
                            marker_at = m.start();
                            hits.marker = Some(p);
                        }
                        LiteralUse::Marker(_) => {}
                    }
                }
            }
        }
        to_confirm.extend_from_slice(&self.unfiltered);
        to_confirm.sort_unstable();
        to_confirm.dedup();
        for id in to_confirm {
            if self.patterns[id as usize].as_ref().is_some_and(|r| r.is_match(lower)) {
                hits.matched.push(id);
            }
        }
        hits.matched.sort_unstable();
        hits.matched.dedup();
        hits
    }

    /// The pattern's source.
    pub(crate) fn source(&self, pattern: u32) -> &str {
        self.sources.get(pattern as usize).map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literal_sets_are_extracted() {
        assert_eq!(
            required_literals("user unknown|unknown user"),
            Some((vec!["user unknown".into(), "unknown user".into()], true))
        );
        let (lits, exact) = required_literals(r"\bover quota\b").unwrap_or_default();
        assert_eq!((lits, exact), (vec!["over quota".to_string()], false));
        // The longest required part, not the prefix.
        let (lits, exact) = required_literals(r"\bquota\s+exceeded\b").unwrap_or_default();
        assert_eq!((lits, exact), (vec!["exceeded".to_string()], false));
        // Nothing to anchor on: the regex runs for every reply.
        assert_eq!(required_literals(r"\d+"), None);
    }

    fn matcher(sources: &[&str]) -> TextMatcher {
        let mut b = TextMatcherBuilder::default();
        for s in sources {
            b.add_pattern(s).unwrap_or_default();
        }
        b.build().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn scan_finds_exact_filtered_and_unfiltered_patterns() {
        let m = matcher(&["mailbox (is )?full", r"\bquota\b", r"\d{3} rejected", "user unknown"]);
        let hits = m.scan("mailbox is full: quota exceeded, 550 rejected");
        assert_eq!(hits.matched, vec![0, 1, 2]);
        assert!(m.scan("quotas apply").matched.is_empty());
    }

    proptest! {
        // The prefilter (and the exact-literal shortcut) must agree with the regex alone.
        #[test]
        fn scan_agrees_with_plain_regexes(text in "(?:[a-zA-Z ſK0-9.:]|quota|exceeded|kelvin|denied| ){0,30}") {
            let sources = ["user unknown|unknown user", r"\bover quota\b", r"mail ?box (is )?full", r"\d{3} denied", "s", "k", r"\bquota\s+exceeded", r"(?:a|b)\s*[0-9]+ kelvin"];
            let m = matcher(&sources);
            let lower = crate::reply::lower_for_matching(&text);
            let hits = m.scan(&lower);
            for (id, source) in sources.iter().enumerate() {
                let reference = regex_automata::meta::Regex::builder()
                    .syntax(regex_automata::util::syntax::Config::new().case_insensitive(true))
                    .build(source)
                    .unwrap_or_else(|e| panic!("{e}"));
                prop_assert_eq!(hits.is_match(id as u32), reference.is_match(&lower), "pattern {}", source);
            }
        }
    }
}

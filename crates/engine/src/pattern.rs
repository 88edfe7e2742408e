//! All text patterns of a rule set, matched in one pass over the reply.
//!
//! Each regex contributes the literals every match must contain (from `regex-syntax`'s literal
//! extractor); one Aho-Corasick automaton finds all of them at once. A top-level alternation is
//! split into branches, each with its own literals. A branch whose literal occurs is confirmed by
//! its regex only when a rule that can still win asks, and only in the part of the text its
//! literal and its longest match allow; a branch that is exactly a set of literals, or one between
//! word boundaries, needs no regex. So the cost follows the text and the few patterns it mentions,
//! not the rule count. Provider markers ride in the same automaton.
//!
//! Every step is linear in the text, whatever it repeats: one automaton pass, a constant amount
//! of work per literal occurrence, and at most one regex search per branch, over one window that
//! covers all of the branch's occurrences (never one search per occurrence).

use std::cell::Cell;
use std::collections::HashMap;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::{Anchored, MatchKind};
use regex_automata::Input;
use regex_automata::meta::Regex;
use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
use regex_syntax::hir::{Hir, HirKind};
use smallvec::SmallVec;

use crate::compile::{Rule, RuleSet};
use crate::provider::Provider;
use crate::reply::Reply;

/// What classifying one reply cost, counted in units that grow with its input, for
/// [`Explanation`](crate::Explanation): a reply's work should stay a small multiple of its length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Work {
    /// The lower-cased text's length in bytes, which the literal automaton passes over once.
    pub text_bytes: usize,
    /// Regex searches run to confirm patterns whose literals occur (at most one per branch).
    pub regex_searches: u32,
    /// Bytes of text those searches were given, in all.
    pub regex_bytes: usize,
    /// Bytes of the recipient's domain and parents looked up to detect the provider.
    pub domain_bytes: usize,
}

/// One literal the text prefilter looks for, and what a reply that mentions it sets off.
#[derive(Debug, Clone)]
pub struct PrefilterLiteral<'r> {
    /// Lower-cased, as looked for in the lower-cased text.
    pub literal: String,
    /// The providers the rules are scoped to whose `text` or `not_text` patterns it filters
    /// (a reply attributed to one of them asks those rules too).
    pub providers: Vec<&'r Provider>,
    /// The examples of those rules: replies whose codes get the rules asked.
    pub examples: Vec<&'r Reply>,
    /// Whether it is a provider's text marker.
    pub marker: bool,
}

impl RuleSet {
    /// Every literal the text prefilter looks for, derived again from the patterns and markers
    /// (the matcher keeps only its automaton): a reply that repeats one makes the regexes of the
    /// patterns it filters run, which is what benchmarks and tests of hostile input build.
    pub fn prefilter_literals(&self) -> Vec<PrefilterLiteral<'_>> {
        let mut rules_of_pattern: Vec<Vec<&Rule>> = std::iter::repeat_with(Vec::new).take(self.text.len()).collect();
        for rule in &self.rules {
            for &p in rule.text.iter().chain(&rule.not_text) {
                if let Some(rules) = rules_of_pattern.get_mut(p as usize) {
                    rules.push(rule);
                }
            }
        }
        let mut out: Vec<PrefilterLiteral<'_>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut entry = |literal: String| {
            let at = *index.entry(literal.clone()).or_insert(out.len());
            if at == out.len() {
                out.push(PrefilterLiteral {
                    literal,
                    providers: Vec::new(),
                    examples: Vec::new(),
                    marker: false,
                });
            }
            at
        };
        let mut found = Vec::new();
        for (source, rules) in self.text.sources.iter().zip(&rules_of_pattern) {
            let Ok(hir) = regex_syntax::ParserBuilder::new().build().parse(source) else {
                continue;
            };
            for branch in top_level_branches(hir) {
                for literal in branch_filter(&branch).1.map(|f| f.literals).unwrap_or_default() {
                    found.push((entry(literal), rules));
                }
            }
        }
        let mut markers = Vec::new();
        for provider in self.providers.all() {
            for marker in &provider.markers {
                markers.push(entry(crate::reply::lower_for_matching(marker)));
            }
        }
        for (at, rules) in found {
            let literal = &mut out[at];
            for rule in rules {
                for &p in &rule.providers {
                    let provider = self.providers.get(p);
                    if !literal.providers.iter().any(|known| known.id == provider.id) {
                        literal.providers.push(provider);
                    }
                }
                literal.examples.extend(rule.examples.iter());
            }
        }
        for at in markers {
            out[at].marker = true;
        }
        out
    }
}

/// Compiled regexes are bounded so a pathological pattern fails the load instead of eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a literal in the automaton stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LiteralUse {
    /// Some branch needs this literal (and, without a regex, is exactly its literals).
    Branch(u32),
    /// A provider's text marker.
    Marker(u16),
}

/// One top-level alternative of a pattern, filtered and confirmed on its own.
struct Branch {
    /// The pattern it belongs to.
    pattern: u32,
    /// `None` when the branch is exactly its literals: finding one is the match.
    regex: Option<Regex>,
    /// For a branch with a regex, its longest match in bytes when bounded: a match lies within
    /// this distance of the literal it contains, so only that window of the text is searched.
    max_len: Option<usize>,
    /// For a branch that is a literal set between word boundaries (`\bover quota\b`): which
    /// ends need one. Such a branch is decided where its literal is found, without a regex.
    bounded: Option<WordBounds>,
    /// Every match starts where one of its literals does: its regex is searched from the first
    /// such occurrence to the last one's start plus the longest match, anchored when there is
    /// only one start.
    anchored: bool,
}

/// Word-boundary assertions around a literal set.
#[derive(Debug, Clone, Copy)]
struct WordBounds {
    start: bool,
    end: bool,
}

impl WordBounds {
    /// A literal set between optional `\b`s, as `(bounds, the literal set's HIR)`.
    fn split(hir: &Hir) -> Option<(WordBounds, Hir)> {
        use regex_syntax::hir::Look;
        let HirKind::Concat(parts) = hir.kind() else {
            return None;
        };
        let is_bound = |h: &Hir| matches!(h.kind(), HirKind::Look(Look::WordUnicode));
        let start = parts.first().is_some_and(is_bound);
        let end = parts.len() > 1 && parts.last().is_some_and(is_bound);
        let middle = &parts[usize::from(start)..parts.len() - usize::from(end)];
        if !(start || end) || middle.is_empty() {
            return None;
        }
        let core = Hir::concat(middle.to_vec());
        core.properties()
            .look_set()
            .is_empty()
            .then_some((WordBounds { start, end }, core))
    }

    /// Whether the boundaries hold around `text[from..to]`.
    fn hold(self, text: &str, from: usize, to: usize) -> bool {
        (!self.start || word_before(text, from) != word_after(text, from))
            && (!self.end || word_before(text, to) != word_after(text, to))
    }
}

/// Whether `c` is a `\w` character.
fn is_word(c: char) -> bool {
    // regex-syntax's own `\w` table, as the regexes use; never missing with default features.
    regex_syntax::try_is_word_character(c).unwrap_or(c.is_alphanumeric() || c == '_')
}

/// Whether the ASCII byte `b` is a `\w` character.
fn is_ascii_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether a word character ends right before byte `at` of `text` (a char boundary). An ASCII
/// byte there (nearly always) answers without decoding a char or searching a table.
#[inline]
fn word_before(text: &str, at: usize) -> bool {
    match at.checked_sub(1).and_then(|i| text.as_bytes().get(i)) {
        None => false,
        Some(&b) if b.is_ascii() => is_ascii_word(b),
        Some(_) => text.get(..at).and_then(|t| t.chars().next_back()).is_some_and(is_word),
    }
}

/// Whether a word character starts at byte `at` of `text` (a char boundary).
#[inline]
fn word_after(text: &str, at: usize) -> bool {
    match text.as_bytes().get(at) {
        None => false,
        Some(&b) if b.is_ascii() => is_ascii_word(b),
        Some(_) => text.get(at..).and_then(|t| t.chars().next()).is_some_and(is_word),
    }
}

/// `hir` made case-insensitive, as parsing its source with `(?i)` makes it: a negated class
/// excludes every case variant of what it names (`[^e]` is neither `e` nor `E`).
///
/// Printing the HIR and parsing that with `(?i)` is simpler, but a printed negated class
/// (`[^.;]`, `.`, `\S`) is a list of ranges over almost all of Unicode, which the parser folds
/// codepoint by codepoint: three quarters of compiling the shipped rules (callgrind). Here such a
/// class is folded from the few codepoints outside it.
fn fold_case(hir: &Hir) -> Result<Hir, String> {
    use regex_syntax::hir::{Capture, Class, Literal, Repetition};
    Ok(match hir.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Look(look) => Hir::look(*look),
        // Literals are short: the parser folds them as it folds any source. Patterns are parsed
        // in UTF-8 mode, so a literal is always UTF-8.
        HirKind::Literal(Literal(bytes)) => {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            parse_folded(&regex_syntax::escape(text))?
        }
        HirKind::Class(Class::Unicode(class)) => Hir::class(Class::Unicode(fold_class(class)?)),
        HirKind::Class(Class::Bytes(class)) => {
            let mut class = class.clone();
            class.case_fold_simple();
            Hir::class(Class::Bytes(class))
        }
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            sub: Box::new(fold_case(&rep.sub)?),
            ..rep.clone()
        }),
        HirKind::Capture(cap) => Hir::capture(Capture {
            sub: Box::new(fold_case(&cap.sub)?),
            ..cap.clone()
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(fold_case).collect::<Result<_, _>>()?),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(fold_case).collect::<Result<_, _>>()?),
    })
}

/// `source` parsed case-insensitively.
fn parse_folded(source: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(source)
        .map_err(|e| e.to_string())
}

/// A class with every case variant of its codepoints added, or for a negated class (`[^e]`,
/// much larger than its complement), the complement's case variants removed: `(?i)[^e]` is
/// neither `e` nor `E`, as the regex crate reads it. Adding variants to the negated class instead
/// would let `[^e]` match `e` (through `E`), so `address(?: [^e])` would match `address error`.
fn fold_class(class: &regex_syntax::hir::ClassUnicode) -> Result<regex_syntax::hir::ClassUnicode, String> {
    use regex_syntax::hir::ClassUnicode;
    let size = |c: &ClassUnicode| -> u32 {
        c.ranges()
            .iter()
            .map(|r| u32::from(r.end()) - u32::from(r.start()) + 1)
            .sum()
    };
    let mut outside = class.clone();
    outside.negate();
    if size(&outside).saturating_mul(16) >= size(class) {
        let mut folded = class.clone();
        folded.try_case_fold_simple().map_err(|e| e.to_string())?;
        return Ok(folded);
    }
    outside.try_case_fold_simple().map_err(|e| e.to_string())?;
    outside.negate();
    Ok(outside)
}

/// The top-level alternatives of a pattern, each to be filtered and confirmed on its own; the
/// whole pattern when it has one (or more than `MAX_BRANCHES`).
///
/// The parser lifts what every alternative starts with out of the alternation: `\bspam\b|\bube\b`
/// parses as `\b(?:spam\b|ube\b)`, which has no top-level alternation at all. So an alternation
/// with only a prefix before it and only look-arounds after it is split too, each alternative
/// getting the prefix and the look-arounds back: `(?:p)(?:a|b)\b` matches where `pa\b|pb\b` does.
fn top_level_branches(hir: Hir) -> Vec<Hir> {
    let split = match hir.kind() {
        HirKind::Alternation(branches) if branches.len() <= MAX_BRANCHES => Some(branches.clone()),
        HirKind::Concat(parts) => {
            let is_look = |h: &Hir| matches!(h.kind(), HirKind::Look(_));
            let after = parts.iter().rev().take_while(|h| is_look(h)).count();
            let (before, rest) = parts.split_at(parts.len() - after);
            match before.split_last() {
                Some((last, prefix)) => match last.kind() {
                    HirKind::Alternation(branches) if branches.len() <= MAX_BRANCHES => Some(
                        branches
                            .iter()
                            .map(|branch| {
                                let mut whole = prefix.to_vec();
                                whole.push(branch.clone());
                                whole.extend_from_slice(rest);
                                Hir::concat(whole)
                            })
                            .collect(),
                    ),
                    _ => None,
                },
                None => None,
            }
        }
        _ => None,
    };
    split.unwrap_or_else(|| vec![hir])
}

/// The literals that filter a branch, and its word boundaries when it is a literal set between
/// them (`\bword\b`: the literals of the core, exact, with the boundaries checked where found).
fn branch_filter(hir: &Hir) -> (Option<WordBounds>, Option<Filter>) {
    let bounded_core = WordBounds::split(hir)
        .and_then(|(bounds, core)| required_literals(&core).filter(|f| f.exact).map(|f| (bounds, f)));
    match bounded_core {
        Some((bounds, f)) => (Some(bounds), Some(f)),
        None => (None, required_literals(hir)),
    }
}

/// Patterns and markers as registered; `build` turns them into a [`TextMatcher`].
#[derive(Default)]
pub(crate) struct TextMatcherBuilder {
    branches: Vec<Branch>,
    sources: Vec<String>,
    by_source: HashMap<String, u32>,
    literals: Vec<String>,
    literal_ids: HashMap<String, usize>,
    uses: Vec<Vec<LiteralUse>>,
    unfiltered: Vec<u32>,
    unfiltered_non_ascii: Vec<u32>,
}

/// A pattern with more top-level alternatives than this is kept whole.
const MAX_BRANCHES: usize = 64;

impl TextMatcherBuilder {
    /// Registers a pattern (the same source twice gets the same id).
    ///
    /// A top-level alternation (`spamhaus|blocked using|\brbl\b`) is split into branches: each
    /// is found by its own literals and confirmed by its own small regex, so a reply that mentions
    /// one alternative never runs the others.
    pub(crate) fn add_pattern(&mut self, source: &str) -> Result<u32, String> {
        if let Some(&id) = self.by_source.get(source) {
            return Ok(id);
        }
        // Literals come from the pattern as written (lower-cased later), not from its case-folded
        // form, whose classes (`[sS][pP]...`) would multiply them; each branch is folded below.
        // The parser's message repeats the pattern with a caret; its last line says what is wrong.
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(source)
            .map_err(|e| e.to_string().lines().last().unwrap_or_default().trim().to_string())?;
        let id = u32::try_from(self.sources.len()).map_err(|_| "too many patterns".to_string())?;
        for part in top_level_branches(hir) {
            self.add_branch(id, &part)?;
        }
        self.sources.push(source.to_string());
        self.by_source.insert(source.to_string(), id);
        Ok(id)
    }

    fn add_branch(&mut self, pattern: u32, hir: &Hir) -> Result<(), String> {
        let bid = u32::try_from(self.branches.len()).map_err(|_| "too many patterns".to_string())?;
        let (bounded, filter) = branch_filter(hir);
        // A branch that is exactly a set of literals is decided by the automaton alone; any other
        // gets a regex of its own, case-insensitive like the whole pattern.
        let (regex, max_len, non_ascii) = if filter.as_ref().is_some_and(|f| f.exact) {
            (None, None, false)
        } else {
            let folded = fold_case(hir)?;
            // Lazy DFA only, and no prefilter of its own (ours ran first): a full DFA per pattern
            // made reloading thousands of rules slow and buys little on texts this short.
            let config = Regex::config()
                .dfa(false)
                .auto_prefilter(false)
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT));
            let regex = Regex::builder()
                .configure(config)
                .build_from_hir(&folded)
                .map_err(|e| e.to_string())?;
            (Some(regex), folded.properties().maximum_len(), needs_non_ascii(&folded))
        };
        let anchored = filter.as_ref().is_some_and(|f| f.prefix);
        match filter {
            Some(f) => {
                for lit in f.literals {
                    self.add_literal(lit, LiteralUse::Branch(bid));
                }
            }
            // The prefilter holds ASCII literals only (a non-ASCII one could miss a case variant
            // of the text); a branch every match of which holds a non-ASCII character still
            // cannot match an ASCII reply, so such replies skip it.
            None if non_ascii => self.unfiltered_non_ascii.push(bid),
            None => self.unfiltered.push(bid),
        }
        self.branches.push(Branch {
            pattern,
            regex,
            max_len,
            bounded,
            anchored,
        });
        Ok(())
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
        if self.uses[idx].last() != Some(&use_) {
            self.uses[idx].push(use_);
        }
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
            branches: self.branches,
            sources: self.sources,
            unfiltered: self.unfiltered,
            unfiltered_non_ascii: self.unfiltered_non_ascii,
        })
    }
}

/// A full DFA scans fastest but grows with the literal count (it is kept in a compact form when
/// its states fit one); past a memory budget a contiguous NFA keeps large rule sets small, and
/// should that fail too (it has a size limit of its own), the sparse NFA every other kind is
/// built from. The DFA is not even built when an upper bound on its size (a state per literal
/// byte, a row per byte class) is far over the budget: with 100,000 rules that build was a third
/// of the load's time and its peak memory.
fn build_automaton(literals: &[String]) -> Result<LiteralAutomaton, String> {
    use aho_corasick::{dfa, nfa};
    const DFA_MEMORY_BUDGET: usize = 16 << 20;
    let sparse = nfa::noncontiguous::NFA::builder()
        .match_kind(MatchKind::Standard)
        .prefilter(false)
        .build(literals)
        .map_err(|e| e.to_string())?;
    let used = bytes_used(literals.iter().map(String::as_str));
    // One more class for the bytes no literal has; rows are padded to a power of two.
    let row = (used.iter().filter(|&&u| u).count() + 1).next_power_of_two() * 4;
    let states = 1 + literals.iter().map(String::len).sum::<usize>();
    // Shared prefixes make the bound loose (about 2x for the shipped rules): allow for that.
    if states.saturating_mul(row) <= 4 * DFA_MEMORY_BUDGET {
        let dfa = dfa::DFA::builder()
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build_from_noncontiguous(&sparse);
        if let Some(dfa) = dfa.ok().filter(|d| d.memory_usage() <= DFA_MEMORY_BUDGET) {
            let start = dfa.start_state(Anchored::No).map_err(|e| e.to_string())?;
            if let Some(compact) = CompactDfa::from_dfa(&dfa, start, &used) {
                return Ok(LiteralAutomaton::Compact(compact));
            }
            return LiteralAutomaton::new(dfa, LiteralAutomaton::Dfa);
        }
    }
    let contiguous = nfa::contiguous::NFA::builder()
        .match_kind(MatchKind::Standard)
        .prefilter(false)
        .build_from_noncontiguous(&sparse);
    match contiguous {
        Ok(nfa) => LiteralAutomaton::new(nfa, LiteralAutomaton::Nfa),
        Err(_) => LiteralAutomaton::new(sparse, LiteralAutomaton::SparseNfa),
    }
}

/// Which byte values occur in the literals.
fn bytes_used<'a>(literals: impl Iterator<Item = &'a str>) -> [bool; 256] {
    let mut used = [false; 256];
    for byte in literals.flat_map(str::bytes) {
        used[usize::from(byte)] = true;
    }
    used
}

/// The automaton of every filter literal and marker.
enum LiteralAutomaton {
    Compact(CompactDfa),
    Dfa(Ac<aho_corasick::dfa::DFA>),
    Nfa(Ac<aho_corasick::nfa::contiguous::NFA>),
    SparseNfa(Ac<aho_corasick::nfa::noncontiguous::NFA>),
}

/// What a scan needs of an automaton: where it starts, where a byte takes it, and which literals
/// end in a state.
trait Transitions {
    type State: Copy + PartialEq;
    fn start(&self) -> Self::State;
    fn next(&self, state: Self::State, byte: u8) -> Self::State;
    /// Adds the literals that end in `state`, at `end`, to `out`.
    fn report(&self, state: Self::State, end: usize, out: &mut Occurrences);
}

/// One of the aho-corasick crate's automata, with its unanchored start state.
struct Ac<A> {
    automaton: A,
    start: StateID,
}

impl<A: Automaton> Transitions for Ac<A> {
    type State = StateID;

    fn start(&self) -> StateID {
        self.start
    }

    #[inline(always)]
    fn next(&self, state: StateID, byte: u8) -> StateID {
        self.automaton.next_state(Anchored::No, state, byte)
    }

    // Inlined: a call per byte would cost as much as the step.
    #[inline(always)]
    fn report(&self, state: StateID, end: usize, out: &mut Occurrences) {
        let aut = &self.automaton;
        if aut.is_match(state) {
            for i in 0..aut.match_len(state) {
                let literal = aut.match_pattern(state, i);
                out.push((literal.as_u32(), end - aut.pattern_len(literal), end));
            }
        }
    }
}

/// The literal automaton as a dense DFA of 16-bit transitions, for rule sets whose automaton has
/// at most 32,768 states (the shipped rules' has about 20,000).
///
/// A scan waits on its transition loads, and most of them miss the L1 cache: the crate's DFA
/// gives each state a row of 32-bit entries, one per byte class, at places unrelated to how
/// often a text reaches it. Here entries are half as wide, byte classes are numbered by how
/// common the byte is in English (a state's steps on the 32 commonest bytes share one cache
/// line), and states are numbered breadth-first (the shallow states every text passes through
/// lie together). The top bit of an entry says whether literals end in the state it names, so
/// a step needs no second load to know.
struct CompactDfa {
    /// Each byte's class.
    classes: [u8; 256],
    /// A state's row starts at `state << shift`.
    shift: u32,
    transitions: Vec<u16>,
    /// For each state, its range in `matches` (empty for most).
    match_ranges: Vec<(u32, u32)>,
    /// `(literal, its length)` for every literal ending in a state, grouped by state.
    matches: Vec<(u32, u32)>,
    /// State 0, flagged like any entry.
    start: u16,
}

/// The entry's flag for "literals end in this state".
const MATCHES: u16 = 0x8000;

/// Bytes roughly from commonest to rarest in lower-cased English and SMTP replies (letters by
/// their English frequency, then digits and punctuation as replies use them): classes are
/// numbered in this order, so the commonest share a cache line in every state's row.
const BY_FREQUENCY: &[u8] = b" etaoinsrhldcumfpgwybv.kx0-12:5j34q9z678/@_[]()<>,;='#\"!?%&*+$|~^`{}\\";

impl CompactDfa {
    /// The crate's DFA renumbered; `None` when its states do not fit in 15 bits. `used` says
    /// which bytes its literals have.
    fn from_dfa(dfa: &aho_corasick::dfa::DFA, start: StateID, used: &[bool; 256]) -> Option<CompactDfa> {
        // One class per byte some literal has, commonest first; one last class for the others.
        let mut representatives: Vec<u8> = BY_FREQUENCY.iter().copied().filter(|&b| used[usize::from(b)]).collect();
        representatives.extend((0..=255u8).filter(|&b| used[usize::from(b)] && !BY_FREQUENCY.contains(&b)));
        let others = representatives.len();
        representatives.extend((0..=255u8).find(|&b| !used[usize::from(b)]));
        let mut classes = [u8::try_from(others).ok()?; 256];
        for (class, &byte) in representatives.iter().enumerate().take(others) {
            classes[usize::from(byte)] = u8::try_from(class).ok()?;
        }
        let shift = representatives.len().next_power_of_two().trailing_zeros();

        // Numbers by the crate's state id (an index into its table, so below its memory use):
        // a hash map here was a third of the build.
        const UNNUMBERED: u16 = u16::MAX;
        let mut ids = vec![UNNUMBERED; dfa.memory_usage() / 4 + 1];
        let mut order = vec![start];
        *ids.get_mut(start.as_usize())? = 0;
        let mut transitions = Vec::new();
        let mut next_unnumbered = 0;
        while let Some(&state) = order.get(next_unnumbered) {
            next_unnumbered += 1;
            let row = transitions.len();
            for &byte in &representatives {
                let to = dfa.next_state(Anchored::No, state, byte);
                let slot = ids.get_mut(to.as_usize())?;
                if *slot == UNNUMBERED {
                    *slot = u16::try_from(order.len()).ok().filter(|&id| id < MATCHES)?;
                    order.push(to);
                }
                let id = *slot;
                transitions.push(if dfa.is_match(to) { id | MATCHES } else { id });
            }
            transitions.resize(row + (1 << shift), 0);
        }

        let mut matches = Vec::new();
        let mut match_ranges = Vec::with_capacity(order.len());
        for &state in &order {
            let first = u32::try_from(matches.len()).ok()?;
            if dfa.is_match(state) {
                for i in 0..dfa.match_len(state) {
                    let literal = dfa.match_pattern(state, i);
                    matches.push((literal.as_u32(), u32::try_from(dfa.pattern_len(literal)).ok()?));
                }
            }
            match_ranges.push((first, u32::try_from(matches.len()).ok()?));
        }
        Some(CompactDfa {
            classes,
            shift,
            transitions,
            match_ranges,
            matches,
            start: if dfa.is_match(start) { MATCHES } else { 0 },
        })
    }

    // Out of line: inlined into every pass of the scan loop, it took the registers that the
    // passes' states need, and they went through the stack at every step.
    #[inline(never)]
    fn add_matches(&self, state: u16, end: usize, out: &mut Occurrences) {
        let (first, last) = self
            .match_ranges
            .get(usize::from(state & !MATCHES))
            .copied()
            .unwrap_or_default();
        for &(literal, len) in self.matches.get(first as usize..last as usize).unwrap_or_default() {
            out.push((literal, end - len as usize, end));
        }
    }
}

impl Transitions for CompactDfa {
    type State = u16;

    fn start(&self) -> u16 {
        self.start
    }

    #[inline(always)]
    fn next(&self, state: u16, byte: u8) -> u16 {
        let row = usize::from(state & !MATCHES) << self.shift;
        self.transitions
            .get(row | usize::from(self.classes[usize::from(byte)]))
            .copied()
            .unwrap_or(0)
    }

    #[inline(always)]
    fn report(&self, state: u16, end: usize, out: &mut Occurrences) {
        if state & MATCHES != 0 {
            self.add_matches(state, end, out);
        }
    }
}

/// Texts shorter than this are scanned in one pass: splitting them saves less than it costs.
const SPLIT_AT: usize = 48;

impl LiteralAutomaton {
    fn new<A: Automaton>(automaton: A, make: fn(Ac<A>) -> Self) -> Result<Self, String> {
        let start = automaton.start_state(Anchored::No).map_err(|e| e.to_string())?;
        Ok(make(Ac { automaton, start }))
    }

    /// Every occurrence of every literal in `text`, added to `out`.
    fn find(&self, text: &[u8], out: &mut Occurrences) {
        match self {
            LiteralAutomaton::Compact(dfa) => find_literals(dfa, text, out),
            LiteralAutomaton::Dfa(dfa) => find_literals(dfa, text, out),
            LiteralAutomaton::Nfa(nfa) => find_literals(nfa, text, out),
            LiteralAutomaton::SparseNfa(nfa) => find_literals(nfa, text, out),
        }
    }
}

/// Where a literal (or, once resolved, a branch) occurs: `(id, start, end)`.
type Occurrence = (u32, usize, usize);

/// The occurrences in one reply: a few dozen at most, kept on the stack (a heap allocation
/// and its release cost about as much as scanning a short reply).
type Occurrences = SmallVec<[Occurrence; 32]>;

/// Every literal occurrence in `text`, the same as an overlapping search.
///
/// Each step of an automaton waits for the table load of the step before, so one pass over a
/// reply is bound by memory latency, not bandwidth. `STREAMS` passes over as many slices of the
/// text, in lockstep, keep that many loads in flight. A pass starts knowing nothing of the text
/// before its slice, so it misses literals that straddle its start; the pass before goes on past
/// that point until its state is the one a fresh start reaches there (from then on both see the
/// same), and only the later pass's matches after the point where they agree are kept.
fn find_literals<T: Transitions>(aut: &T, text: &[u8], out: &mut Occurrences) {
    if text.len() < SPLIT_AT {
        one_pass(aut, aut.start(), text, 0, out);
    } else if text.len() < SPLIT_IN_FOUR_AT {
        passes_in_lockstep::<T, 2>(aut, text, out);
    } else {
        passes_in_lockstep::<T, 4>(aut, text, out);
    }
}

/// Texts this long are scanned in four slices rather than two.
const SPLIT_IN_FOUR_AT: usize = 96;

/// One pass over `text`, which starts at `offset` in the whole; returns the final state.
fn one_pass<T: Transitions>(aut: &T, start: T::State, text: &[u8], offset: usize, out: &mut Occurrences) -> T::State {
    let mut sid = start;
    for (i, &byte) in text.iter().enumerate() {
        sid = aut.next(sid, byte);
        aut.report(sid, offset + i + 1, out);
    }
    sid
}

#[inline(always)]
fn passes_in_lockstep<T: Transitions, const STREAMS: usize>(aut: &T, text: &[u8], out: &mut Occurrences) {
    let start = aut.start();
    let slice = text.len() / STREAMS;
    let mut states = [start; STREAMS];
    // Written out per stream count: kept in registers, the passes' loads overlap.
    match &mut states[..] {
        [a, b] => {
            let (x, y) = (&text[..slice], &text[slice..2 * slice]);
            for i in 0..slice {
                *a = aut.next(*a, x[i]);
                aut.report(*a, i + 1, out);
                *b = aut.next(*b, y[i]);
                aut.report(*b, slice + i + 1, out);
            }
        }
        [a, b, c, d] => {
            let (w, x) = (&text[..slice], &text[slice..2 * slice]);
            let (y, z) = (&text[2 * slice..3 * slice], &text[3 * slice..4 * slice]);
            for i in 0..slice {
                *a = aut.next(*a, w[i]);
                aut.report(*a, i + 1, out);
                *b = aut.next(*b, x[i]);
                aut.report(*b, slice + i + 1, out);
                *c = aut.next(*c, y[i]);
                aut.report(*c, 2 * slice + i + 1, out);
                *d = aut.next(*d, z[i]);
                aut.report(*d, 3 * slice + i + 1, out);
            }
        }
        _ => {
            for (k, sid) in states.iter_mut().enumerate() {
                let at = k * slice;
                *sid = one_pass(aut, start, &text[at..at + slice], at, out);
            }
        }
    }
    // The last slice also takes the remainder of the division.
    let tail = STREAMS * slice;
    states[STREAMS - 1] = one_pass(aut, states[STREAMS - 1], &text[tail..], tail, out);

    // Where each later pass starts to agree with the one before it.
    let mut agreed = [0usize; STREAMS];
    let mut straddling = Occurrences::new();
    for k in 1..STREAMS {
        let (mut sid, mut fresh, mut at) = (states[k - 1], start, k * slice);
        let next_slice = if k + 1 < STREAMS { (k + 1) * slice } else { text.len() };
        while sid != fresh && at < next_slice {
            sid = aut.next(sid, text[at]);
            fresh = aut.next(fresh, text[at]);
            at += 1;
            aut.report(sid, at, &mut straddling);
        }
        if sid != fresh && at < text.len() {
            // Still apart at the next slice (a literal longer than a slice): one plain pass.
            out.clear();
            one_pass(aut, start, text, 0, out);
            return;
        }
        agreed[k] = at;
    }
    // A match ending in slice k (after k * slice, up to the next) came from pass k.
    out.retain(|&mut (_, _, end)| {
        let k = ((end - 1) / slice).min(STREAMS - 1);
        end > agreed[k]
    });
    out.extend_from_slice(&straddling);
}

/// The longest start of `text` of at most `max_bytes` bytes that does not split a character.
pub fn prefix_within(text: &str, max_bytes: usize) -> &str {
    text.get(..floor_char_boundary(text, max_bytes)).unwrap_or("")
}

/// The last char boundary at or before `at` (at most the text's length).
fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The first char boundary at or after `at` (at most the text's length).
fn ceil_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The literals that filter a branch.
#[derive(Debug, PartialEq)]
struct Filter {
    /// Lower-cased; every match contains one of them.
    literals: Vec<String>,
    /// The branch matches exactly these strings.
    exact: bool,
    /// Every match starts with one of them.
    prefix: bool,
}

/// The literals one of which every match of `hir` contains. `None` when no useful set exists
/// (then the regex runs on every reply) or when a literal is not ASCII: ASCII literals are safe
/// against the lower-cased text, other scripts have case rules the prefilter does not model.
fn required_literals(hir: &Hir) -> Option<Filter> {
    // The extractor treats look-arounds (`\b`, `^`) as empty: with any, a literal hit is only a hint.
    let no_lookaround = hir.properties().look_set().is_empty();
    let prefix = extractor(ExtractKind::Prefix).extract(hir);
    let prefixes = ascii_literals(&prefix);
    // Exact, or long enough to be rare: no need to look inside (which costs time at load).
    if let Some(literals) = &prefixes {
        let exact = no_lookaround && prefix.is_exact();
        if exact || (shortest(literals) >= GOOD_LITERAL && literals.len() <= 8) {
            return Some(Filter {
                literals: literals.clone(),
                exact,
                prefix: true,
            });
        }
    }
    let suffix = extractor(ExtractKind::Suffix).extract(hir);
    let best = [
        prefixes.map(|lits| (lits, true)),
        filter_literals(hir).map(|lits| (lits, false)),
        ascii_literals(&suffix).map(|lits| (lits, false)),
    ]
    .into_iter()
    .flatten()
    .reduce(|a, b| if selectivity(&b.0) > selectivity(&a.0) { b } else { a });
    // A filter literal is only a hint: the regex still decides.
    best.map(|(literals, prefix)| Filter {
        literals,
        exact: false,
        prefix,
    })
}

/// Whether every match of `hir` holds a non-ASCII character, so that no ASCII text matches it.
/// `hir` is case-folded already: `ſ` and the Kelvin sign fold to ASCII letters, and then do not
/// count as non-ASCII.
fn needs_non_ascii(hir: &Hir) -> bool {
    use regex_syntax::hir::Class;
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(literal) => !literal.0.is_ascii(),
        HirKind::Class(Class::Unicode(class)) => class.ranges().iter().all(|r| !r.start().is_ascii()),
        HirKind::Class(Class::Bytes(class)) => class.ranges().iter().all(|r| !r.start().is_ascii()),
        HirKind::Repetition(rep) => rep.min > 0 && needs_non_ascii(&rep.sub),
        HirKind::Capture(cap) => needs_non_ascii(&cap.sub),
        HirKind::Concat(parts) => parts.iter().any(needs_non_ascii),
        HirKind::Alternation(branches) => branches.iter().all(needs_non_ascii),
    }
}

/// At most this many literals come out of one extraction. The extractor's own limit (250) lets
/// a pattern written as a product of alternations (`(sending|your) (mail )?account (is|was)
/// (suspended|disabled)`) spell out every combination: a few such rules put 100,000 bytes of
/// literals into the shared automaton, which then outgrew its fast form and slowed every reply.
/// Past the limit the extractor trims the literals to shared prefixes, and the regex confirms;
/// `the_shipped_rules_literals_fit_the_compact_automaton` keeps the shipped rules in the fast form.
const LITERAL_SET_LIMIT: usize = 64;

/// Literals are cut to this many bytes (the regex confirms the rest): the combinations of such
/// a product share their first words, so cut they collapse into a few.
const LITERAL_LEN_LIMIT: usize = 24;

/// A literal extractor of `kind` within [`LITERAL_SET_LIMIT`].
fn extractor(kind: ExtractKind) -> Extractor {
    let mut extractor = Extractor::new();
    extractor
        .kind(kind)
        .limit_total(LITERAL_SET_LIMIT)
        .limit_literal_len(LITERAL_LEN_LIMIT);
    extractor
}

/// A finite, non-empty sequence of non-empty ASCII literals, lower-cased; `None` otherwise.
fn ascii_literals(seq: &Seq) -> Option<Vec<String>> {
    let lits = seq.literals()?;
    let mut out = Vec::with_capacity(lits.len());
    for lit in lits {
        let s = std::str::from_utf8(lit.as_bytes()).ok()?;
        if s.is_empty() || !s.is_ascii() {
            return None;
        }
        out.push(s.to_ascii_lowercase());
    }
    (!out.is_empty()).then_some(out)
}

/// At most this many literals filter one pattern; a wider alternation runs its regex instead.
const MAX_FILTER_LITERALS: usize = 128;

/// Literals one of which every match of `hir` contains, as selective as the structure allows:
/// an alternation needs one set per branch (`(?:ip|host) .* blocked|spamhaus` is filtered by
/// "blocked" and "spamhaus", not by "ip"), a concatenation takes its most selective part. `None`
/// when some branch offers nothing usable (a class, a look-around, a non-ASCII literal).
fn filter_literals(hir: &Hir) -> Option<Vec<String>> {
    let prefix_of = |h: &Hir| ascii_literals(&extractor(ExtractKind::Prefix).extract(h));
    match hir.kind() {
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for branch in branches {
                all.extend(filter_literals(branch)?);
                if all.len() > MAX_FILTER_LITERALS {
                    return None;
                }
            }
            all.sort_unstable();
            all.dedup();
            Some(all)
        }
        HirKind::Concat(parts) => {
            // The whole concatenation's prefix joins adjacent literals ("user unknown"); a
            // single part may still be more selective ("exceeded" in `quota\s+exceeded`).
            std::iter::once(prefix_of(hir))
                .chain(parts.iter().map(filter_literals))
                .flatten()
                .reduce(|a, b| if selectivity(&b) > selectivity(&a) { b } else { a })
        }
        HirKind::Capture(capture) => filter_literals(&capture.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => filter_literals(&rep.sub),
        HirKind::Literal(_) | HirKind::Class(_) => prefix_of(hir),
        _ => None,
    }
}

/// Literals this long are rare enough in replies; beyond it, fewer literals beat longer ones.
const RARE_ENOUGH: usize = 10;

/// How good a literal set is as a filter: up to `RARE_ENOUGH` bytes the shortest literal counts,
/// then fewer literals. Every literal is a path in the shared automaton, and a few thousand of
/// them (cross products like "rate limit has been exceeded") make every scan slower.
fn selectivity(lits: &[String]) -> (usize, std::cmp::Reverse<usize>) {
    (shortest(lits).min(RARE_ENOUGH), std::cmp::Reverse(lits.len()))
}

/// A prefix literal this long is selective enough to filter on.
const GOOD_LITERAL: usize = 8;

fn shortest(lits: &[String]) -> usize {
    lits.iter().map(String::len).min().unwrap_or(0)
}

/// The compiled matcher shared by every classification of a rule set.
pub(crate) struct TextMatcher {
    automaton: Option<LiteralAutomaton>,
    uses: Vec<Vec<LiteralUse>>,
    branches: Vec<Branch>,
    sources: Vec<String>,
    unfiltered: Vec<u32>,
    /// Unfiltered branches that only match a text with a non-ASCII character.
    unfiltered_non_ascii: Vec<u32>,
}

/// What one scan of a reply found: the patterns that may match, confirmed only when asked.
///
/// Most patterns whose literal occurs belong to rules that lose before anyone asks (a more
/// specific rule wins first, or the rule's code does not fit), so their regexes never run.
pub(crate) struct TextHits<'m> {
    matcher: &'m TextMatcher,
    lower: &'m str,
    /// The branches that may match, sorted by id, with where their literals occur.
    branches: SmallVec<[Candidate; 8]>,
    /// The provider whose marker occurs first in the text.
    pub marker: Option<u16>,
    /// Regex searches run so far, and the bytes of text they were given.
    searches: Cell<(u32, usize)>,
}

/// A branch whose literal occurs, and what is known of it.
struct Candidate {
    branch: u32,
    /// Where its first literal occurrence starts.
    first: usize,
    /// Where its last literal occurrence starts.
    last: usize,
    /// Where its last-ending literal occurrence ends.
    to: usize,
    /// 0 not yet known, 1 matches, 2 does not.
    known: Cell<u8>,
}

impl Candidate {
    fn new(branch: u32, start: usize, end: usize) -> Candidate {
        Candidate {
            branch,
            first: start,
            last: start,
            to: end,
            known: Cell::new(0),
        }
    }
}

/// One candidate per branch, sorted by branch, from its occurrences `(branch, start, end)`.
///
/// A few are sorted; more than there are branches (a text that repeats literals) are folded
/// into a slot per branch instead, so that each costs one step and the sort never grows with
/// the text: the slots are fewer than the occurrences, and walking them yields branch order.
fn candidates(found: &mut Occurrences, branch_count: usize) -> SmallVec<[Candidate; 8]> {
    let mut out = SmallVec::<[Candidate; 8]>::new();
    if found.len() <= branch_count {
        found.sort_unstable();
        for &(branch, start, end) in found.iter() {
            match out.last_mut() {
                // Sorted by start within a branch: this one starts last so far.
                Some(last) if last.branch == branch => {
                    last.last = start;
                    last.to = last.to.max(end);
                }
                _ => out.push(Candidate::new(branch, start, end)),
            }
        }
        return out;
    }
    let mut slots: Vec<Option<Candidate>> = std::iter::repeat_with(|| None).take(branch_count).collect();
    for &(branch, start, end) in found.iter() {
        let Some(slot) = slots.get_mut(branch as usize) else {
            continue;
        };
        match slot {
            Some(c) => {
                c.first = c.first.min(start);
                c.last = c.last.max(start);
                c.to = c.to.max(end);
            }
            None => *slot = Some(Candidate::new(branch, start, end)),
        }
    }
    out.extend(slots.into_iter().flatten());
    out
}

impl TextHits<'_> {
    /// Ids of the patterns that may match, ascending: a literal of theirs occurs, or they have none.
    pub(crate) fn possible(&self) -> impl Iterator<Item = u32> + '_ {
        let mut last = None;
        self.branches.iter().filter_map(move |c| {
            let pattern = self.matcher.branches[c.branch as usize].pattern;
            (last != Some(pattern)).then(|| {
                last = Some(pattern);
                pattern
            })
        })
    }

    /// Whether `pattern` matches the text; each branch's regex runs at most once per scan.
    pub(crate) fn is_match(&self, pattern: u32) -> bool {
        let Some(range) = self.branch_range(pattern) else {
            return false;
        };
        self.branches[range].iter().any(|c| self.confirm(c))
    }

    /// The work done so far, with the provider detection's `domain_bytes`.
    pub(crate) fn work(&self, domain_bytes: usize) -> Work {
        let (regex_searches, regex_bytes) = self.searches.get();
        Work {
            text_bytes: self.lower.len(),
            regex_searches,
            regex_bytes,
            domain_bytes,
        }
    }

    /// The candidates that belong to `pattern` (its branches are numbered consecutively).
    fn branch_range(&self, pattern: u32) -> Option<std::ops::Range<usize>> {
        let branches = &self.matcher.branches;
        let start = self
            .branches
            .partition_point(|c| branches[c.branch as usize].pattern < pattern);
        let end = start + self.branches[start..].partition_point(|c| branches[c.branch as usize].pattern == pattern);
        (start < end).then_some(start..end)
    }

    fn confirm(&self, c: &Candidate) -> bool {
        match c.known.get() {
            1 => return true,
            2 => return false,
            _ => {}
        }
        let branch = &self.matcher.branches[c.branch as usize];
        let held = match &branch.regex {
            // No regex: the branch is exactly its literals, and one of them occurred.
            None => true,
            Some(regex) => {
                let text = self.lower;
                // One search per branch, over a window that holds every match any occurrence
                // could start or end: searching once per occurrence, each to the end of a match
                // or of the text, made a text that repeats a literal cost its square.
                let (from, to) = match (branch.anchored, branch.max_len) {
                    // A match starts at an occurrence and spans at most `len`.
                    (true, Some(len)) => (c.first, c.last.saturating_add(len)),
                    (true, None) => (c.first, text.len()),
                    // A match contains an occurrence and spans at most `len`.
                    (false, Some(len)) => (c.first.saturating_sub(len), c.to.saturating_add(len)),
                    (false, None) => (0, text.len()),
                };
                let to = ceil_char_boundary(text, to);
                let from = floor_char_boundary(text, from.min(to));
                let (runs, bytes) = self.searches.get();
                self.searches
                    .set((runs.saturating_add(1), bytes.saturating_add(to - from)));
                // With one start, the search stops where the match can no longer go on.
                let anchored = if branch.anchored && c.first == c.last {
                    regex_automata::Anchored::Yes
                } else {
                    regex_automata::Anchored::No
                };
                // Look-arounds (`\b`) still see the text outside the window.
                regex.is_match(Input::new(text).range(from..to).anchored(anchored))
            }
        };
        c.known.set(if held { 1 } else { 2 });
        held
    }
}

impl TextMatcher {
    /// Number of distinct patterns.
    pub(crate) fn len(&self) -> usize {
        self.sources.len()
    }

    /// Scans `lower` (the reply's lower-cased text) once for every literal and marker.
    // Inlined into its one caller: the hits it returns are a few hundred bytes of inline
    // vectors, which would otherwise be copied out of it.
    #[inline(always)]
    pub(crate) fn scan<'m>(&'m self, lower: &'m str) -> TextHits<'m> {
        let mut literals = Occurrences::new();
        if let Some(automaton) = &self.automaton {
            automaton.find(lower.as_bytes(), &mut literals);
        }
        // Each literal occurrence as an occurrence of the branches that use it.
        let mut found = Occurrences::new();
        let mut marker = None;
        let mut marker_at = usize::MAX;
        for &(literal, start, end) in &literals {
            for use_ in &self.uses[literal as usize] {
                match *use_ {
                    LiteralUse::Branch(b) => {
                        let bounded = self.branches[b as usize].bounded;
                        if bounded.is_none_or(|w| w.hold(lower, start, end)) {
                            found.push((b, start, end));
                        }
                    }
                    LiteralUse::Marker(p) if start < marker_at => {
                        marker_at = start;
                        marker = Some(p);
                    }
                    LiteralUse::Marker(_) => {}
                }
            }
        }
        found.extend(self.unfiltered.iter().map(|&b| (b, 0, lower.len())));
        if !lower.is_ascii() {
            found.extend(self.unfiltered_non_ascii.iter().map(|&b| (b, 0, lower.len())));
        }
        TextHits {
            matcher: self,
            lower,
            branches: candidates(&mut found, self.branches.len()),
            marker,
            searches: Cell::new((0, 0)),
        }
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
    fn a_prefix_never_splits_a_character() {
        assert_eq!(prefix_within("abc", 5), "abc");
        assert_eq!(prefix_within("abc", 2), "ab");
        // "é" is two bytes: a cut inside it falls back to before it.
        assert_eq!(prefix_within("aé", 2), "a");
        assert_eq!(prefix_within("aé", 3), "aé");
        assert_eq!(prefix_within("é", 0), "");
    }

    fn filter(source: &str) -> Option<Filter> {
        required_literals(
            &regex_syntax::ParserBuilder::new()
                .build()
                .parse(source)
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn lits(source: &str) -> Option<(Vec<String>, bool)> {
        filter(source).map(|f| (f.literals, f.exact))
    }

    #[test]
    fn literal_sets_are_extracted() {
        assert_eq!(
            lits("user unknown|unknown user"),
            Some((vec!["user unknown".into(), "unknown user".into()], true))
        );
        let (found, exact) = lits(r"\bover quota\b").unwrap_or_default();
        assert_eq!((found, exact), (vec!["over quota".to_string()], false));
        // The longest required part, not the prefix.
        let (found, exact) = lits(r"\bquota\s+exceeded\b").unwrap_or_default();
        assert_eq!((found, exact), (vec!["exceeded".to_string()], false));
        // Each branch of an alternation by its own most selective part, not by its prefix "ip".
        let (found, _) = lits(r"\b(?:ip|host)\b.{0,40}\b(?:blocked|banned)\b|spamhaus").unwrap_or_default();
        assert_eq!(found, vec!["banned".to_string(), "blocked".into(), "spamhaus".into()]);
        // Nothing to anchor on: the regex runs for every reply.
        assert_eq!(lits(r"\d+"), None);
        assert_eq!(lits(r"spam|\d+ blocked|[a-z]+"), None);
        // Matches start where a prefix literal does, not where an inner one does.
        assert!(filter(r"\bover quota\b").is_some_and(|f| f.prefix));
        assert!(filter(r"\bquota\s+exceeded\b").is_some_and(|f| !f.prefix));
    }

    #[test]
    fn a_branch_only_non_ascii_text_can_match_skips_ascii_replies() {
        // No ASCII literal to filter on: the first two run only for a text with a non-ASCII
        // character; the Kelvin sign folds to an ASCII `k`, so the third runs for every text.
        let m = matcher(&["(спам|迷惑メール)", "спам[а-яё]{0,3} отклон", "\u{212A}elvin [a-z]+"]);
        let hits = m.scan("message rejected as spam; kelvin scale");
        assert!(!hits.is_match(0) && !hits.is_match(1));
        assert_eq!(hits.work(0).regex_searches, 0);
        assert!(hits.is_match(2));
        let hits = m.scan("письмо похоже на спам: kelvin scale");
        assert!(hits.is_match(0) && !hits.is_match(1) && hits.is_match(2));
        assert!(m.scan("迷惑メールと判定").is_match(0));
        assert!(m.scan("спаму отклонено").is_match(1));
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
        let matched = |text: &str| {
            let hits = m.scan(text);
            (0..4).filter(|&p| hits.is_match(p)).collect::<Vec<u32>>()
        };
        assert_eq!(matched("mailbox is full: quota exceeded, 550 rejected"), vec![0, 1, 2]);
        assert!(matched("quotas apply").is_empty());
    }

    #[test]
    fn alternatives_behind_a_lifted_prefix_are_branches_of_their_own() {
        // Parsed as `\b(?:spam\b|junk mail\b)`: both alternatives are words, found without a regex.
        let m = matcher(&[r"\bspam\b|\bjunk mail\b", r"mail from (?:host|ip) denied|mail from \d+"]);
        assert_eq!(m.sources.len(), 2);
        assert_eq!(m.branches.len(), 4);
        assert!(m.branches[..2].iter().all(|b| b.regex.is_none() && b.bounded.is_some()));
        assert!(m.branches[2].regex.is_none() && m.branches[3].regex.is_some());
        let matched = |text: &str| {
            let hits = m.scan(text);
            (0..2).filter(|&p| hits.is_match(p)).collect::<Vec<u32>>()
        };
        assert_eq!(matched("junk mail from 192"), vec![0, 1]);
        assert_eq!(matched("spammer mail from ip denied"), vec![1]);
        assert!(matched("antispam mail from host").is_empty());
    }

    #[test]
    fn anchored_confirmation_tries_every_occurrence_and_sees_the_byte_before() {
        let source = r"\bquota exceeded by \d+";
        assert!(filter(source).is_some_and(|f| f.prefix && !f.exact));
        let m = matcher(&[source]);
        let matched = |text: &str| m.scan(text).is_match(0);
        assert!(matched("quota exceeded by many; quota exceeded by 5 messages"));
        assert!(!matched("quota exceeded by many"));
        assert!(!matched("overquota exceeded by 5"));
    }

    #[test]
    fn a_repeated_literal_is_confirmed_by_one_search_over_the_text() {
        let m = matcher(&[r"\bquota exceeded\b.*\bby \d+", r"\bover quota\b.{0,20}\bmailbox"]);
        for unit in ["quota exceeded over quota ", "quota exceeded é over quota é "] {
            let text = unit.repeat(1000);
            let hits = m.scan(&text);
            assert!(!hits.is_match(0) && !hits.is_match(1));
            let work = hits.work(0);
            assert_eq!(work.regex_searches, 2, "{unit:?}");
            assert!(work.regex_bytes <= 2 * text.len(), "{unit:?}: {work:?}");
        }
    }

    const SOURCES: [&str; 14] = [
        "user unknown|unknown user",
        r"\bover quota\b",
        r"mail ?box (is )?full",
        r"\d{3} denied",
        "s",
        "k",
        r"\bquota\s+exceeded",
        r"(?:a|b)\s*[0-9]+ kelvin",
        // Split into branches, each found by its own literal and searched in a window.
        r"\bdenied\b|\b(?:quota|kelvin).{0,6}\bexceeded\b|^quota",
        r"(?:ip|host)\b.{0,8}\bdenied|\d+|exceeded\s*$",
        // Literal sets between word boundaries are decided where the literal is found.
        r"\bkelvin|quota\b|\b(?:ip|host) denied\b",
        // The parser lifts a common prefix out of the alternatives; they are split back apart.
        r"\bquota\b|\bdenied\b|\bover quota",
        r"host (?:denied|is kelvin)\b",
        r"(?:\bip|host)(?:\s+denied|exceeded)$",
    ];

    #[test]
    fn branches_fold_as_printing_and_parsing_them_with_case_insensitivity_does() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"));
        let shipped = crate::RuleSet::load(&crate::RuleSource::from_dir(dir).unwrap()).unwrap();
        let tricky = [
            r"[^.;]{0,30}",
            r"a.b",
            r"\S+@\W\D",
            r"Kelvin K|ǅ|ß",
            r"(?i)MiXeD|(?-i)CaSe",
            r"\w+ \d{3}",
        ];
        let sources: Vec<&str> = shipped
            .text
            .sources
            .iter()
            .map(String::as_str)
            .chain(SOURCES)
            .chain(tricky)
            .collect();
        let mut branches = 0;
        for source in sources {
            let hir = regex_syntax::ParserBuilder::new().build().parse(source).unwrap();
            for branch in top_level_branches(hir) {
                // Printed, a negated class loses its negation: see the test below for those.
                if negates_a_cased_letter(&branch) {
                    continue;
                }
                let reparsed = parse_folded(&branch.to_string()).unwrap();
                assert_eq!(fold_case(&branch).unwrap(), reparsed, "{source}: {branch}");
                branches += 1;
            }
        }
        assert!(branches > 300, "{branches} branches");
    }

    /// Whether `hir` holds a negated class (`[^e]`) whose complement has a letter with case variants.
    fn negates_a_cased_letter(hir: &Hir) -> bool {
        use regex_syntax::hir::Class;
        match hir.kind() {
            HirKind::Class(Class::Unicode(class)) => {
                let mut outside = class.clone();
                outside.negate();
                let mut folded = outside.clone();
                folded.try_case_fold_simple().unwrap();
                outside.ranges().len() < class.ranges().len() && folded != outside
            }
            HirKind::Repetition(rep) => negates_a_cased_letter(&rep.sub),
            HirKind::Capture(cap) => negates_a_cased_letter(&cap.sub),
            HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(negates_a_cased_letter),
            _ => false,
        }
    }

    #[test]
    fn the_shipped_rules_literals_fit_the_compact_automaton() {
        // Every reply is scanned by this automaton: past 32,768 states it falls back to the
        // crate's larger forms, and the shipped rules' classification got twice as slow when
        // rules written as products of alternations spelled out every combination.
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"));
        let shipped = crate::RuleSet::load(&crate::RuleSource::from_dir(dir).unwrap()).unwrap();
        assert!(
            matches!(shipped.text.automaton, Some(LiteralAutomaton::Compact(_))),
            "the shipped rules' {} literal uses do not fit the compact automaton",
            shipped.text.uses.len()
        );
    }

    #[test]
    fn a_negated_class_excludes_every_case_variant_as_the_regex_crate_reads_it() {
        // Printed, `[^e]` is a list of ranges holding `E`, and folding that list adds `e` back:
        // `address(?: [^e])` then matched "address error".
        for (source, text, expected) in [
            (r"[^e]", "e", false),
            (r"[^e]", "E", false),
            (r"[^e]", "x", true),
            (r"[^k]", "\u{212A}", false),
            (r"[^ſ]x", "sx", false),
            (r"address(?: [^e]| e[^r])", "address error", false),
            (r"address(?: [^e]| e[^r])", "address else", true),
        ] {
            let hir = regex_syntax::ParserBuilder::new().build().parse(source).unwrap();
            let folded = fold_case(&hir).unwrap();
            let reference = Regex::new(&format!("(?i){source}")).unwrap();
            let ours = Regex::builder().build_from_hir(&folded).unwrap();
            assert_eq!(
                reference.is_match(text),
                expected,
                "{source} on {text:?} (the regex crate)"
            );
            assert_eq!(ours.is_match(text), expected, "{source} on {text:?}");
        }
    }

    /// The matcher and the plain regexes it must agree with, built once for every case.
    fn under_test() -> &'static (TextMatcher, Vec<Regex>) {
        static BUILT: std::sync::OnceLock<(TextMatcher, Vec<Regex>)> = std::sync::OnceLock::new();
        BUILT.get_or_init(|| {
            let reference = SOURCES
                .iter()
                .map(|source| {
                    Regex::builder()
                        .syntax(regex_automata::util::syntax::Config::new().case_insensitive(true))
                        .build(source)
                        .unwrap_or_else(|e| panic!("{e}"))
                })
                .collect();
            (matcher(&SOURCES), reference)
        })
    }

    const LITERALS: [&str; 9] = [
        "user unknown",
        "unknown",
        "mailbox is full",
        "is full",
        "s",
        "over quota",
        "quota",
        "user",
        "a user unknown mailbox is full over quota",
    ];

    /// Every kind of automaton over `literals`.
    fn automata(literals: &[&str]) -> [LiteralAutomaton; 4] {
        let dfa = aho_corasick::dfa::DFA::builder()
            .match_kind(MatchKind::Standard)
            .build(literals)
            .map_err(|e| e.to_string())
            .and_then(|a| LiteralAutomaton::new(a, LiteralAutomaton::Dfa));
        let compact = aho_corasick::dfa::DFA::builder()
            .match_kind(MatchKind::Standard)
            .build(literals)
            .ok()
            .and_then(|a| {
                let start = a.start_state(Anchored::No).ok()?;
                CompactDfa::from_dfa(&a, start, &bytes_used(literals.iter().copied())).map(LiteralAutomaton::Compact)
            })
            .ok_or_else(|| "no compact DFA".to_string());
        let nfa = aho_corasick::nfa::contiguous::NFA::builder()
            .match_kind(MatchKind::Standard)
            .build(literals)
            .map_err(|e| e.to_string())
            .and_then(|a| LiteralAutomaton::new(a, LiteralAutomaton::Nfa));
        let sparse = aho_corasick::nfa::noncontiguous::NFA::builder()
            .match_kind(MatchKind::Standard)
            .build(literals)
            .map_err(|e| e.to_string())
            .and_then(|a| LiteralAutomaton::new(a, LiteralAutomaton::SparseNfa));
        [compact, dfa, nfa, sparse].map(|a| a.unwrap_or_else(|e| panic!("{e}")))
    }

    /// `(literal, end)` of every occurrence, sorted: by one overlapping pass of the crate's own
    /// search, and by ours.
    fn overlapping(literals: &[&str], text: &str) -> Vec<(u32, usize)> {
        let reference = aho_corasick::AhoCorasick::new(literals).unwrap_or_else(|e| panic!("{e}"));
        let mut found: Vec<_> = reference
            .find_overlapping_iter(text)
            .map(|m| (m.pattern().as_u32(), m.end()))
            .collect();
        found.sort_unstable();
        found
    }

    fn found(automaton: &LiteralAutomaton, text: &str) -> Vec<(u32, usize)> {
        let mut occurrences = Occurrences::new();
        automaton.find(text.as_bytes(), &mut occurrences);
        let mut found: Vec<_> = occurrences
            .into_iter()
            .map(|(literal, _, end)| (literal, end))
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn a_literal_longer_than_a_slice_is_found_once() {
        // 100 bytes, from 30 to 130 of a 200-byte text scanned in four slices of 50.
        let long = "mailbox is full ".repeat(7)[..100].to_string();
        let text = format!("{}{long}{}", "x".repeat(30), "y".repeat(70));
        let literals = [long.as_str(), "full", "x"];
        let expected = overlapping(&literals, &text);
        assert!(expected.contains(&(0, 130)));
        for automaton in automata(&literals) {
            assert_eq!(found(&automaton, &text), expected);
        }
    }

    proptest! {
        // The prefilter, the exact-literal shortcut, branch splitting and windowed confirmation
        // must agree with each regex alone.
        #[test]
        fn scan_agrees_with_plain_regexes(text in "(?:[a-zA-Z ſK0-9.:_é]|quota|exceeded|kelvin|denied|host|ip| ){0,30}") {
            let (m, reference) = under_test();
            let lower = crate::reply::lower_for_matching(&text);
            let hits = m.scan(&lower);
            for (id, regex) in reference.iter().enumerate() {
                prop_assert_eq!(hits.is_match(id as u32), regex.is_match(&lower), "pattern {}", SOURCES[id]);
            }
        }

        // Texts that repeat literals: branches found many times, and more occurrences than
        // branches (folded by slot rather than sorted), still agree with each regex alone.
        #[test]
        fn scan_agrees_with_plain_regexes_on_repetitive_texts(text in "(?:quota|exceeded|kelvin|denied|host|ip|over| |é|5|K){20,160}") {
            let (m, reference) = under_test();
            let lower = crate::reply::lower_for_matching(&text);
            let hits = m.scan(&lower);
            for (id, regex) in reference.iter().enumerate() {
                prop_assert_eq!(hits.is_match(id as u32), regex.is_match(&lower), "pattern {}", SOURCES[id]);
            }
        }

        // Scanning the halves of a long text in lockstep finds each occurrence once, as one
        // overlapping pass does, including those that straddle the split.
        #[test]
        fn split_scan_finds_every_occurrence_once(text in "(?:a|user|unknown|mailbox|is|full|over|quota|s|x| ){0,90}") {
            let expected = overlapping(&LITERALS, &text);
            for automaton in automata(&LITERALS) {
                prop_assert_eq!(found(&automaton, &text), expected.clone());
            }
        }
    }
}

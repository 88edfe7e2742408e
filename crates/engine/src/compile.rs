//! Compiles a rule directory into an immutable [`RuleSet`]: checks every reference, compiles
//! patterns and scripts once, ranks rules by specificity and indexes them by code.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use rhai::Engine;

use crate::classify::Evidence;
use crate::error::{RuleError, RuleErrorKind, RuleErrors};
use crate::model::{
    BounceType, CategoryDef, Located, OneOrMany, OutcomeDef, ReplyDef, ReplyFields, Responsible, RuleDef, Scalar,
    TestDef,
};
use crate::pattern::{TextMatcher, TextMatcherBuilder};
use crate::provider::{Provider, ProviderIndex};
use crate::reply::{Enhanced, Reply, ReplyInput};
use crate::script::{Hook, ScriptLoader, sandboxed_engine};
use crate::source::RuleSource;
use crate::yaml::parse_rule_file;

/// The category every rule set must define: the answer when no rule matches.
pub const UNCLASSIFIED: &str = "unclassified";

/// The category of a positive reply (1xx, 2xx, 3xx): not a failure. The engine answers it
/// before any rule; a rule set may define it to word its summary and advice, and has it
/// built in otherwise.
pub const NOT_BOUNCE: &str = "not_bounce";

/// The outcome of `not_bounce`, fixed by the engine: nothing failed, so nothing to suppress,
/// retry or blame.
pub(crate) const NOT_BOUNCE_OUTCOME: OutcomeDef = OutcomeDef {
    bounce_type: BounceType::Undetermined,
    suppress_recipient: false,
    retryable: false,
    responsible: Responsible::Unknown,
};

/// `not_bounce` as the engine defines it when the rule files do not (shipped: `categories.yaml`).
fn built_in_not_bounce() -> Category {
    Category {
        id: NOT_BOUNCE.to_string(),
        name: "Not a Bounce".to_string(),
        summary: "The reply is positive (RFC 5321 1yz, 2yz or 3yz, or an RFC 3463 2.X.X success status): the \
                  receiving server did not refuse anything. It is not a failure, whatever its text says, and \
                  never suppresses the recipient."
            .to_string(),
        remediation: vec![
            "Nothing to do: this reply reports no failure. If it was handed over as a bounce, the failure, if any, \
             is in another reply."
                .to_string(),
        ],
        outcome: NOT_BOUNCE_OUTCOME,
    }
}

/// The category of a complaint (an ARF feedback report, a feedback loop's notice): the
/// recipient asked not to be mailed. It is no reply, so no rule reaches it; the message reader
/// answers it through [`RuleSet::complaint`]. A rule set may define it to word its summary and
/// advice (it is then listed among the categories); otherwise it is built in and not listed.
pub const COMPLAINT: &str = "complaint";

/// The outcome of `complaint`, fixed by the engine: stop mailing the person, though the
/// address is not known to be bad (so no hard bounce), and the sender has to act.
pub(crate) const COMPLAINT_OUTCOME: OutcomeDef = OutcomeDef {
    bounce_type: BounceType::Undetermined,
    suppress_recipient: true,
    retryable: false,
    responsible: Responsible::Sender,
};

/// `complaint` as the engine defines it when the rule files do not.
fn built_in_complaint() -> Category {
    Category {
        id: COMPLAINT.to_string(),
        name: "Complaint".to_string(),
        summary: "The recipient reported the message as unwanted (a feedback-loop complaint, RFC 5965) or asked to \
                  be unsubscribed. The address works, but its owner does not want this mail."
            .to_string(),
        remediation: vec![
            "Stop mailing this recipient, and check how they were subscribed.".to_string(),
            "Watch the complaint rate of the campaign or list the message came from.".to_string(),
        ],
        outcome: COMPLAINT_OUTCOME,
    }
}

/// A category with its advice and default outcome.
#[derive(Debug, Clone)]
pub struct Category {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it means.
    pub summary: String,
    /// What to do.
    pub remediation: Vec<String>,
    /// The outcome its rules give by default.
    pub outcome: OutcomeDef,
}

/// One accepted reply code: exact, or a class (`5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CodeMatch {
    Exact(u16),
    Class(u8),
}

/// One accepted enhanced code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EnhancedMatch {
    Exact(Enhanced),
    Subject(u8, u16),
    Class(u8),
    /// The reply has no enhanced code.
    Absent,
}

impl CodeMatch {
    /// As written (`221`, `2xx`) when it accepts a positive reply code (1xx, 2xx, 3xx).
    pub(crate) fn positive_name(self) -> Option<String> {
        match self {
            CodeMatch::Exact(c) if c < 400 => Some(c.to_string()),
            CodeMatch::Class(k) if k < 4 => Some(format!("{k}xx")),
            _ => None,
        }
    }

    fn matches(self, code: u16) -> bool {
        match self {
            CodeMatch::Exact(c) => c == code,
            CodeMatch::Class(k) => code != 0 && (code / 100) as u8 == k,
        }
    }
    fn overlaps(self, other: CodeMatch) -> bool {
        match (self, other) {
            (CodeMatch::Exact(a), CodeMatch::Exact(b)) => a == b,
            (CodeMatch::Exact(a), CodeMatch::Class(k)) | (CodeMatch::Class(k), CodeMatch::Exact(a)) => {
                (a / 100) as u8 == k
            }
            (CodeMatch::Class(a), CodeMatch::Class(b)) => a == b,
        }
    }
    fn specificity(self) -> u8 {
        match self {
            CodeMatch::Exact(_) => 2,
            CodeMatch::Class(_) => 1,
        }
    }
    fn key(self) -> IndexKey {
        match self {
            CodeMatch::Exact(c) => IndexKey::Code(c),
            CodeMatch::Class(k) => IndexKey::CodeClass(k),
        }
    }
}

impl EnhancedMatch {
    fn matches(self, enhanced: Option<Enhanced>) -> bool {
        match (self, enhanced) {
            (EnhancedMatch::Absent, e) => e.is_none(),
            (_, None) => false,
            (EnhancedMatch::Exact(x), Some(e)) => x == e,
            (EnhancedMatch::Subject(c, s), Some(e)) => e.class == c && e.subject == s,
            (EnhancedMatch::Class(c), Some(e)) => e.class == c,
        }
    }
    fn overlaps(self, other: EnhancedMatch) -> bool {
        use EnhancedMatch::*;
        match (self, other) {
            (Absent, Absent) => true,
            (Absent, _) | (_, Absent) => false,
            (Exact(a), Exact(b)) => a == b,
            (Exact(e), Subject(c, s)) | (Subject(c, s), Exact(e)) => e.class == c && e.subject == s,
            (Exact(e), Class(c)) | (Class(c), Exact(e)) => e.class == c,
            (Subject(c1, s1), Subject(c2, s2)) => c1 == c2 && s1 == s2,
            (Subject(c1, _), Class(c2)) | (Class(c2), Subject(c1, _)) => c1 == c2,
            (Class(a), Class(b)) => a == b,
        }
    }
    fn specificity(self) -> u8 {
        match self {
            EnhancedMatch::Exact(_) | EnhancedMatch::Absent => 3,
            EnhancedMatch::Subject(..) => 2,
            EnhancedMatch::Class(_) => 1,
        }
    }
    fn key(self) -> IndexKey {
        match self {
            EnhancedMatch::Exact(e) => IndexKey::Exact(e),
            EnhancedMatch::Subject(c, s) => IndexKey::Subject(c, s),
            EnhancedMatch::Class(c) => IndexKey::Class(c),
            EnhancedMatch::Absent => IndexKey::Absent,
        }
    }
}

/// Where a rule is filed in the index, and what a reply looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IndexKey {
    Exact(Enhanced),
    Subject(u8, u16),
    Class(u8),
    Absent,
    Code(u16),
    CodeClass(u8),
    Any,
}

impl IndexKey {
    /// Packs the key into one sortable integer.
    fn packed(self) -> u32 {
        let tag = |t: u32| t << 28;
        match self {
            IndexKey::Exact(e) => tag(1) | u32::from(e.class) << 20 | u32::from(e.subject) << 10 | u32::from(e.detail),
            IndexKey::Subject(c, s) => tag(2) | u32::from(c) << 10 | u32::from(s),
            IndexKey::Class(c) => tag(3) | u32::from(c),
            IndexKey::Absent => tag(4),
            IndexKey::Code(c) => tag(5) | u32::from(c),
            IndexKey::CodeClass(c) => tag(6) | u32::from(c),
            IndexKey::Any => tag(7),
        }
    }

    /// This key and every broader key whose rules can match the same replies.
    fn covering(self) -> Vec<IndexKey> {
        match self {
            IndexKey::Exact(e) => vec![self, IndexKey::Subject(e.class, e.subject), IndexKey::Class(e.class)],
            IndexKey::Subject(c, _) => vec![self, IndexKey::Class(c)],
            IndexKey::Code(c) => vec![self, IndexKey::CodeClass((c / 100) as u8), IndexKey::Any],
            IndexKey::CodeClass(_) => vec![self, IndexKey::Any],
            IndexKey::Class(_) | IndexKey::Absent | IndexKey::Any => vec![self],
        }
    }

    /// The keys a reply looks up.
    pub(crate) fn for_reply(reply: &Reply) -> ([u32; 6], usize) {
        let mut keys = [0u32; 6];
        let mut n = 0;
        let mut push = |k: IndexKey| {
            keys[n] = k.packed();
            n += 1;
        };
        match reply.enhanced {
            Some(e) => {
                push(IndexKey::Exact(e));
                push(IndexKey::Subject(e.class, e.subject));
                push(IndexKey::Class(e.class));
            }
            None => push(IndexKey::Absent),
        }
        if reply.code != 0 {
            push(IndexKey::Code(reply.code));
            push(IndexKey::CodeClass((reply.code / 100) as u8));
        }
        push(IndexKey::Any);
        (keys, n)
    }
}

/// Rules filed under packed keys: sorted keys with ranges into one flat list.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    keys: Vec<(u32, u32, u32)>,
    rules: Vec<u32>,
}

impl KeyIndex {
    fn build(mut entries: Vec<(u32, u32)>) -> KeyIndex {
        entries.sort_unstable();
        entries.dedup();
        let mut index = KeyIndex::default();
        for (key, rule) in entries {
            let at = index.rules.len() as u32;
            match index.keys.last_mut() {
                Some(last) if last.0 == key => last.2 = at + 1,
                _ => index.keys.push((key, at, at + 1)),
            }
            index.rules.push(rule);
        }
        index
    }

    pub(crate) fn get(&self, key: u32) -> &[u32] {
        match self.keys.binary_search_by_key(&key, |k| k.0) {
            Ok(i) => {
                let (_, start, end) = self.keys[i];
                &self.rules[start as usize..end as usize]
            }
            Err(_) => &[],
        }
    }
}

/// How specific a rule is; the most specific matching rule wins.
/// Text says more than codes, a provider more than none, an exact enhanced code more than a
/// wildcard, a code more than none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Specificity {
    /// Has a `text` condition.
    pub text: bool,
    /// Has a `provider` condition.
    pub provider: bool,
    /// 3 exact (or `none`), 2 `x.y.*`, 1 `x.*.*`, 0 no condition.
    pub enhanced: u8,
    /// 2 exact, 1 class, 0 no condition.
    pub code: u8,
}

impl std::fmt::Display for Specificity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let enhanced = [
            "any enhanced code",
            "enhanced class",
            "enhanced subject",
            "exact enhanced code",
        ];
        let code = ["any code", "code class", "exact code"];
        write!(
            f,
            "{}{}{}, {}",
            if self.text { "text, " } else { "" },
            if self.provider { "provider, " } else { "" },
            enhanced[usize::from(self.enhanced.min(3))],
            code[usize::from(self.code.min(2))]
        )
    }
}

/// A compiled rule.
pub struct Rule {
    /// Stable id.
    pub id: String,
    /// Index into the rule set's categories.
    pub(crate) category: usize,
    /// What the reply means.
    pub definition: Option<String>,
    /// File (relative to the rule directory) and line it was written at.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// Tie-breaker among equally specific rules; higher wins.
    pub priority: i32,
    /// How specific the rule is.
    pub specificity: Specificity,
    /// The category's outcome with the rule's overrides applied.
    pub outcome: OutcomeDef,
    /// What kind of condition decides when this rule wins, from its strongest condition.
    pub evidence: Evidence,
    /// The rule's own `outcome:` sets `suppress_recipient: true`: the operator's word, which
    /// suppresses even where the evidence alone would not.
    pub suppress_override: bool,
    pub(crate) codes: Vec<CodeMatch>,
    pub(crate) enhanced: Vec<EnhancedMatch>,
    pub(crate) text: Vec<u32>,
    pub(crate) not_text: Vec<u32>,
    pub(crate) providers: Vec<u16>,
    pub(crate) hook: Option<Hook>,
    pub(crate) examples: Vec<Reply>,
    /// Position in load order (file, then place in file).
    pub(crate) order: u32,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("specificity", &self.specificity)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// `file:line`, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    pub(crate) fn index_keys(&self) -> Vec<IndexKey> {
        if !self.enhanced.is_empty() {
            self.enhanced.iter().map(|e| e.key()).collect()
        } else if !self.codes.is_empty() {
            self.codes.iter().map(|c| c.key()).collect()
        } else {
            vec![IndexKey::Any]
        }
    }

    pub(crate) fn code_holds(&self, code: u16) -> bool {
        self.codes.is_empty() || self.codes.iter().any(|c| c.matches(code))
    }

    pub(crate) fn enhanced_holds(&self, enhanced: Option<Enhanced>) -> bool {
        self.enhanced.is_empty() || self.enhanced.iter().any(|e| e.matches(enhanced))
    }

    fn overlaps(&self, other: &Rule) -> bool {
        let codes = self.codes.is_empty()
            || other.codes.is_empty()
            || self.codes.iter().any(|a| other.codes.iter().any(|b| a.overlaps(*b)));
        let enhanced = self.enhanced.is_empty()
            || other.enhanced.is_empty()
            || self
                .enhanced
                .iter()
                .any(|a| other.enhanced.iter().any(|b| a.overlaps(*b)));
        codes && enhanced
    }
}

/// A test case from `tests:`, ready to run.
pub(crate) struct TestCase {
    pub(crate) file: PathBuf,
    pub(crate) line: u64,
    pub(crate) number: usize,
    pub(crate) reply: Reply,
    pub(crate) category: String,
    pub(crate) rule: Option<String>,
    pub(crate) suppress_recipient: Option<bool>,
}

/// An immutable, fully compiled rule set: what every classification reads.
pub struct RuleSet {
    pub(crate) categories: Vec<Category>,
    pub(crate) unclassified: usize,
    pub(crate) not_bounce: usize,
    /// The rule files' `complaint` category, or the engine's (which `categories()` does not list).
    pub(crate) complaint: Category,
    /// Sorted best-first: a lower index always wins over a higher one.
    pub(crate) rules: Vec<Rule>,
    pub(crate) index: KeyIndex,
    pub(crate) text: TextMatcher,
    /// For each pattern id, the rules that name it under `text`.
    pub(crate) text_rules: Vec<Vec<u32>>,
    pub(crate) providers: ProviderIndex,
    pub(crate) engine: Engine,
    pub(crate) tests: Vec<TestCase>,
    pub(crate) digest: String,
    pub(crate) generation: u64,
    pub(crate) script_errors: AtomicU64,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("digest", &self.digest)
            .field("generation", &self.generation)
            .field("rules", &self.rules.len())
            .field("categories", &self.categories.len())
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// Compiles and verifies: what `rebound check` and every reload run. Fails with every problem found.
    pub fn load(source: &RuleSource) -> Result<RuleSet, RuleErrors> {
        let rules = RuleSet::compile(source)?;
        rules.verify()?;
        Ok(rules)
    }

    /// Reads and loads a rule directory.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
        RuleSet::load(&RuleSource::from_dir(dir)?)
    }

    /// Compiles without running examples and tests (benchmarks and tooling).
    pub fn compile(source: &RuleSource) -> Result<RuleSet, RuleErrors> {
        Compiler::default().compile(source)
    }

    /// The content digest of the source this set was built from.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The version counter a server assigns on each successful reload (1 for the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Sets the generation (the reload loop numbers rule sets as it swaps them in).
    pub fn with_generation(mut self, generation: u64) -> RuleSet {
        self.generation = generation;
        self
    }

    /// Rules, best-first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Categories as defined.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// Providers as defined.
    pub fn providers(&self) -> &[Provider] {
        self.providers.all()
    }

    /// A rule's category.
    pub fn category_of(&self, rule: &Rule) -> &Category {
        &self.categories[rule.category]
    }

    /// Script calls that failed at run time since this set was built (each counted as no match).
    pub fn script_errors(&self) -> u64 {
        self.script_errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Number of distinct text patterns.
    pub fn pattern_count(&self) -> usize {
        self.text.len()
    }
}

#[derive(Default)]
struct Compiler {
    errors: Vec<RuleError>,
}

/// What besides codes a rule's match depends on: text, not_text, script, providers. Rules that
/// differ here can both be right about different replies; rules that agree cannot.
type Signature = (Vec<u32>, Vec<u32>, Option<String>, Vec<u16>);

/// A rule before it is ranked and indexed.
struct Pending {
    rule: Rule,
    signature: Signature,
}

impl Compiler {
    fn error(&mut self, file: &Path, line: u64, item: Option<String>, kind: RuleErrorKind) {
        self.errors.push(RuleError::new(file, Some(line), item, kind));
    }

    fn compile(mut self, source: &RuleSource) -> Result<RuleSet, RuleErrors> {
        let mut parsed = Vec::new();
        let mut scripts = HashMap::new();
        for (path, text) in source.files() {
            if path.extension().is_some_and(|e| e == "rhai") {
                scripts.insert(path.clone(), text.clone());
                continue;
            }
            match parse_rule_file(text, path) {
                Ok(file) => parsed.push((path.clone(), file)),
                Err(e) => self.errors.push(*e),
            }
        }

        let (mut categories, mut category_ids) = self.categories(&parsed);
        let unclassified = category_ids.get(UNCLASSIFIED).copied();
        let not_bounce = *category_ids.entry(NOT_BOUNCE.to_string()).or_insert_with(|| {
            categories.push(built_in_not_bounce());
            categories.len() - 1
        });
        let complaint = match category_ids.get(COMPLAINT) {
            Some(&i) => Category {
                outcome: COMPLAINT_OUTCOME,
                ..categories[i].clone()
            },
            None => built_in_complaint(),
        };
        if unclassified.is_none() && self.errors.is_empty() {
            let file = PathBuf::from("categories.yaml");
            let what = format!("no category `{UNCLASSIFIED}`: it answers replies no rule matches");
            self.error(&file, 0, None, RuleErrorKind::Missing(what));
        }

        let mut text = TextMatcherBuilder::default();
        let providers = ProviderIndex::build(&parsed, &mut text, &mut self.errors);

        let engine = sandboxed_engine();
        let mut loader = ScriptLoader::new(&engine, &scripts);
        let mut pending = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut order = 0u32;
        for (path, file) in &mut parsed {
            // Each file's definitions are let go as soon as they are compiled: with 100,000 rules,
            // every file's parsed definitions alive next to the compiled rules were the peak.
            for located in std::mem::take(&mut file.rules) {
                let def = &located.value;
                let item = Some(format!("rule `{}`", def.id));
                if let Some(first) = seen.get(&def.id) {
                    let kind = RuleErrorKind::DuplicateId {
                        what: "rule",
                        first: first.clone(),
                    };
                    self.error(path, located.line, item, kind);
                    continue;
                }
                seen.insert(def.id.clone(), format!("{}:{}", path.display(), located.line));
                let ctx = RuleContext {
                    path,
                    line: located.line,
                    item: &item,
                    category_ids: &category_ids,
                    providers: &providers,
                    categories: &categories,
                };
                if let Some(p) = self.rule(&ctx, def, order, &mut text, &mut loader) {
                    pending.push(p);
                }
                order += 1;
            }
        }

        let tests = self.tests(&parsed, &category_ids);
        let text = match text.build() {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(
                    Path::new("."),
                    0,
                    None,
                    RuleErrorKind::Missing(format!("cannot build the text matcher: {e}")),
                );
                None
            }
        };
        self.check_ambiguity(&pending);
        let (Some(unclassified), Some(text), true) = (unclassified, text, self.errors.is_empty()) else {
            return Err(RuleErrors(self.errors));
        };

        let mut rules: Vec<Rule> = pending.into_iter().map(|p| p.rule).collect();
        rules.sort_by(|a, b| {
            b.specificity
                .cmp(&a.specificity)
                .then(b.priority.cmp(&a.priority))
                .then(a.order.cmp(&b.order))
        });
        let mut entries = Vec::new();
        let mut text_rules = vec![Vec::new(); text.len()];
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            if rule.text.is_empty() {
                entries.extend(rule.index_keys().into_iter().map(|k| (k.packed(), i)));
            } else {
                for &p in &rule.text {
                    text_rules[p as usize].push(i);
                }
            }
        }
        Ok(RuleSet {
            categories,
            unclassified,
            not_bounce,
            complaint,
            rules,
            index: KeyIndex::build(entries),
            text,
            text_rules,
            providers,
            engine,
            tests,
            digest: source.digest(),
            generation: 1,
            script_errors: AtomicU64::new(0),
        })
    }

    fn categories(&mut self, parsed: &[(PathBuf, crate::model::RuleFile)]) -> (Vec<Category>, HashMap<String, usize>) {
        let mut categories = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut first_at: Vec<String> = Vec::new();
        for (path, file) in parsed {
            for Located { value: c, line } in &file.categories {
                let c: &CategoryDef = c;
                if let Some(&i) = ids.get(&c.id) {
                    let kind = RuleErrorKind::DuplicateId {
                        what: "category",
                        first: first_at[i].clone(),
                    };
                    self.error(path, *line, Some(format!("category `{}`", c.id)), kind);
                    continue;
                }
                if c.id == NOT_BOUNCE && c.outcome != NOT_BOUNCE_OUTCOME {
                    let what = "the engine answers positive replies (1xx-3xx) with this category and fixes its \
                                outcome: { bounce_type: undetermined, suppress_recipient: false, retryable: false, \
                                responsible: unknown }"
                        .to_string();
                    self.error(
                        path,
                        *line,
                        Some(format!("category `{}`", c.id)),
                        RuleErrorKind::Outcome(what),
                    );
                }
                ids.insert(c.id.clone(), categories.len());
                first_at.push(format!("{}:{line}", path.display()));
                categories.push(Category {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    summary: c.summary.clone(),
                    remediation: c.remediation.clone(),
                    outcome: c.outcome,
                });
            }
        }
        (categories, ids)
    }

    fn rule(
        &mut self,
        ctx: &RuleContext<'_>,
        def: &RuleDef,
        order: u32,
        text: &mut TextMatcherBuilder,
        loader: &mut ScriptLoader<'_>,
    ) -> Option<Pending> {
        let errors_before = self.errors.len();
        let fail = |this: &mut Compiler, kind| this.error(ctx.path, ctx.line, ctx.item.clone(), kind);

        let category = match ctx.category_ids.get(&def.category) {
            Some(&c) => Some(c),
            None => {
                fail(self, RuleErrorKind::UnknownCategory(def.category.clone()));
                None
            }
        };
        let when = &def.when;
        let codes = values(&when.code)
            .iter()
            .filter_map(|c| parse_code_match(c).map_err(|m| fail(self, bad("code", m))).ok())
            .collect::<Vec<_>>();
        let enhanced = values(&when.enhanced)
            .iter()
            .filter_map(|e| parse_enhanced_match(e).map_err(|m| fail(self, bad("enhanced", m))).ok())
            .collect::<Vec<_>>();
        let mut patterns = |field: &'static str, list: &Option<OneOrMany<String>>, this: &mut Compiler| {
            let mut ids = Vec::new();
            for source in values(list) {
                match text.add_pattern(source) {
                    Ok(id) => ids.push(id),
                    Err(message) => fail(
                        this,
                        RuleErrorKind::BadRegex {
                            field,
                            pattern: source.clone(),
                            message,
                        },
                    ),
                }
            }
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let text_ids = patterns("text", &when.text, self);
        let not_text_ids = patterns("not_text", &when.not_text, self);
        let mut providers = Vec::new();
        for p in values(&when.provider) {
            match ctx.providers.id_of(p) {
                Some(id) => providers.push(id),
                None => fail(self, RuleErrorKind::UnknownProvider(p.clone())),
            }
        }
        providers.sort_unstable();
        providers.dedup();
        let hook = when.script.as_ref().and_then(|s| {
            loader
                .hook(ctx.path, s)
                .map_err(|m| fail(self, RuleErrorKind::Script(m)))
                .ok()
        });
        if hook.is_some() && def.examples.is_empty() {
            let what = "a rule with a script needs at least one example, so that `check` runs the script".to_string();
            fail(self, RuleErrorKind::Script(what));
        }
        let examples = def
            .examples
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                reply_from_def(e)
                    .map_err(|m| fail(self, RuleErrorKind::Expectation(format!("example {}: {m}", i + 1))))
                    .ok()
            })
            .collect();

        let category = category?;
        if self.errors.len() > errors_before {
            return None;
        }
        let mut outcome = ctx.categories[category].outcome;
        if let Some(o) = def.outcome {
            outcome.bounce_type = o.bounce_type.unwrap_or(outcome.bounce_type);
            outcome.suppress_recipient = o.suppress_recipient.unwrap_or(outcome.suppress_recipient);
            outcome.retryable = o.retryable.unwrap_or(outcome.retryable);
            outcome.responsible = o.responsible.unwrap_or(outcome.responsible);
        }
        // Naming a positive code lets a rule decide such replies (the guide's `221`), but the
        // engine never lets one suppress: a rule that says it would is wrong about its own answer.
        let positive: Vec<String> = codes.iter().filter_map(|c| c.positive_name()).collect();
        if def.category == NOT_BOUNCE && outcome != NOT_BOUNCE_OUTCOME {
            let what = format!("a rule of `{NOT_BOUNCE}` cannot override its outcome: the engine fixes it");
            fail(self, RuleErrorKind::Outcome(what));
            return None;
        }
        if outcome.suppress_recipient && !positive.is_empty() {
            let what = format!(
                "suppresses the recipient, but `code` {} is a positive reply (1xx-3xx), which never suppresses: \
                 move the code to a rule that does not suppress, or set `outcome: {{ suppress_recipient: false }}`",
                positive.join(", ")
            );
            fail(self, RuleErrorKind::Outcome(what));
            return None;
        }
        // A script that reads the wording counts as text; one over codes (a numeric range of
        // enhanced codes) adds nothing to the rule's other conditions. `enhanced: none` (no
        // enhanced code) says nothing about the reply: the code decides.
        let evidence = if !text_ids.is_empty() || hook.as_ref().is_some_and(|h| h.reads_wording) {
            Evidence::Text
        } else if !providers.is_empty() {
            Evidence::Provider
        } else if enhanced.iter().any(|e| !matches!(e, EnhancedMatch::Absent)) {
            Evidence::EnhancedCode
        } else if !codes.is_empty() {
            Evidence::ReplyCode
        } else {
            Evidence::None
        };
        let suppress_override = def.outcome.and_then(|o| o.suppress_recipient) == Some(true);
        let specificity = Specificity {
            text: !text_ids.is_empty(),
            provider: !providers.is_empty(),
            enhanced: enhanced.iter().map(|e| e.specificity()).min().unwrap_or(0),
            code: codes.iter().map(|c| c.specificity()).min().unwrap_or(0),
        };
        let signature = (
            text_ids.clone(),
            not_text_ids.clone(),
            hook.as_ref().map(|h| h.name.clone()),
            providers.clone(),
        );
        Some(Pending {
            rule: Rule {
                id: def.id.clone(),
                category,
                definition: def.definition.clone(),
                file: ctx.path.to_path_buf(),
                line: ctx.line,
                priority: def.priority,
                specificity,
                outcome,
                evidence,
                suppress_override,
                codes,
                enhanced,
                text: text_ids,
                not_text: not_text_ids,
                providers,
                hook,
                examples,
                order,
            },
            signature,
        })
    }

    /// Two rules with the same rank, the same text, provider and script conditions and
    /// overlapping codes would leave the winner to file order: refuse them.
    fn check_ambiguity(&mut self, pending: &[Pending]) {
        let mut groups: HashMap<(Specificity, i32, &Signature), u32> = HashMap::new();
        let mut group_of = Vec::with_capacity(pending.len());
        for p in pending {
            let next = groups.len() as u32;
            group_of.push(
                *groups
                    .entry((p.rule.specificity, p.rule.priority, &p.signature))
                    .or_insert(next),
            );
        }
        let mut buckets: HashMap<(u32, IndexKey), Vec<usize>> = HashMap::new();
        let keys: Vec<Vec<IndexKey>> = pending.iter().map(|p| p.rule.index_keys()).collect();
        for (i, ks) in keys.iter().enumerate() {
            for &k in ks {
                buckets.entry((group_of[i], k)).or_default().push(i);
            }
        }
        let mut reported: HashSet<(usize, usize)> = HashSet::new();
        for (i, ks) in keys.iter().enumerate() {
            for k in ks.iter().flat_map(|k| k.covering()) {
                for &j in buckets.get(&(group_of[i], k)).map_or(&[][..], Vec::as_slice) {
                    let pair = (i.min(j), i.max(j));
                    if i == j || reported.contains(&pair) || !pending[i].rule.overlaps(&pending[j].rule) {
                        continue;
                    }
                    reported.insert(pair);
                    let (first, second) = (&pending[pair.0].rule, &pending[pair.1].rule);
                    let kind = RuleErrorKind::Ambiguous {
                        other: first.id.clone(),
                        other_at: first.location(),
                    };
                    self.error(&second.file, second.line, Some(format!("rule `{}`", second.id)), kind);
                }
            }
        }
    }

    fn tests(
        &mut self,
        parsed: &[(PathBuf, crate::model::RuleFile)],
        category_ids: &HashMap<String, usize>,
    ) -> Vec<TestCase> {
        let mut tests = Vec::new();
        for (path, file) in parsed {
            for (n, Located { value, line }) in file.tests.iter().enumerate() {
                let value: &TestDef = value;
                let item = Some(format!("test {}", n + 1));
                if !category_ids.contains_key(&value.category) {
                    self.error(
                        path,
                        *line,
                        item,
                        RuleErrorKind::UnknownCategory(value.category.clone()),
                    );
                    continue;
                }
                match reply_from_def(&value.reply) {
                    Ok(reply) => tests.push(TestCase {
                        file: path.clone(),
                        line: *line,
                        number: n + 1,
                        reply,
                        category: value.category.clone(),
                        rule: value.rule.clone(),
                        suppress_recipient: value.suppress_recipient,
                    }),
                    Err(m) => self.error(path, *line, item, RuleErrorKind::Expectation(m)),
                }
            }
        }
        tests
    }
}

struct RuleContext<'a> {
    path: &'a Path,
    line: u64,
    item: &'a Option<String>,
    category_ids: &'a HashMap<String, usize>,
    providers: &'a ProviderIndex,
    categories: &'a [Category],
}

fn bad(field: &'static str, message: String) -> RuleErrorKind {
    RuleErrorKind::BadCondition { field, message }
}

fn values<T>(v: &Option<OneOrMany<T>>) -> &[T] {
    v.as_ref().map_or(&[], OneOrMany::as_slice)
}

/// `550`, `"550"`, `5xx`.
fn parse_code_match(value: &Scalar) -> Result<CodeMatch, String> {
    let text = value.to_string();
    let t = text.trim().to_ascii_lowercase();
    if let Some(class) = t.strip_suffix("xx") {
        if let Ok(k @ 1..=5) = class.parse::<u8>() {
            return Ok(CodeMatch::Class(k));
        }
    } else if let Ok(c @ 100..=599) = t.parse::<u16>() {
        return Ok(CodeMatch::Exact(c));
    }
    Err(format!("{text:?} is not a reply code (100-599) or a class (4xx, 5xx)"))
}

/// `5.1.1`, `5.7.*`, `5.*.*`, `none`.
fn parse_enhanced_match(value: &str) -> Result<EnhancedMatch, String> {
    let t = value.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(EnhancedMatch::Absent);
    }
    if let Some(e) = Enhanced::parse(t) {
        return Ok(EnhancedMatch::Exact(e));
    }
    let parts: Vec<&str> = t.split('.').collect();
    let class = match parts.first() {
        Some(&"2") => Some(2),
        Some(&"4") => Some(4),
        Some(&"5") => Some(5),
        _ => None,
    };
    match (class, parts.as_slice()) {
        (Some(c), [_, "*", "*"]) => Ok(EnhancedMatch::Class(c)),
        (Some(c), [_, s, "*"]) if s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map(|s| EnhancedMatch::Subject(c, s))
            .map_err(|e| e.to_string()),
        _ => Err(format!("{value:?} is not x.y.z, x.y.*, x.*.* (x in 2, 4, 5) or none")),
    }
}

/// Turns a reply written in a rule file into a normalised [`Reply`].
fn reply_from_def(def: &ReplyDef) -> Result<Reply, String> {
    match def {
        ReplyDef::Text(text) => Ok(Reply::from_text(text)),
        ReplyDef::Fields(ReplyFields {
            code,
            enhanced,
            text,
            recipient,
            remote_host,
        }) => {
            let code = match code {
                None => 0,
                Some(Scalar::Number(n)) => u32::try_from(*n).map_err(|_| format!("code {n} is out of range"))?,
                Some(Scalar::Text(s)) => s.trim().parse().map_err(|_| format!("code {s:?} is not a number"))?,
            };
            Reply::parse(&ReplyInput {
                code,
                enhanced,
                text,
                recipient,
                remote_host,
            })
            .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_enhanced_conditions_parse() {
        assert_eq!(parse_code_match(&Scalar::Number(550)), Ok(CodeMatch::Exact(550)));
        assert_eq!(parse_code_match(&Scalar::Text("4xx".into())), Ok(CodeMatch::Class(4)));
        assert!(parse_code_match(&Scalar::Number(650)).is_err());
        assert!(parse_code_match(&Scalar::Text("5x".into())).is_err());
        assert_eq!(parse_enhanced_match("5.7.*"), Ok(EnhancedMatch::Subject(5, 7)));
        assert_eq!(parse_enhanced_match("4.*.*"), Ok(EnhancedMatch::Class(4)));
        assert_eq!(parse_enhanced_match("None"), Ok(EnhancedMatch::Absent));
        assert!(parse_enhanced_match("5.*.1").is_err());
        assert!(parse_enhanced_match("*.1.1").is_err());
    }

    #[test]
    fn index_returns_rules_filed_under_a_key() {
        let idx = KeyIndex::build(vec![(7, 1), (3, 2), (7, 0), (3, 2)]);
        assert_eq!(idx.get(7), &[0, 1]);
        assert_eq!(idx.get(3), &[2]);
        assert!(idx.get(5).is_empty());
    }

    #[test]
    fn specificity_orders_text_above_codes() {
        let text_only = Specificity {
            text: true,
            provider: false,
            enhanced: 0,
            code: 0,
        };
        let exact = Specificity {
            text: false,
            provider: true,
            enhanced: 3,
            code: 2,
        };
        assert!(text_only > exact);
        assert!(
            Specificity {
                enhanced: 2,
                code: 0,
                ..exact
            } > Specificity {
                enhanced: 1,
                code: 2,
                ..exact
            }
        );
    }
}

//! Runs what a rule set says about itself: every rule's examples, every test case, and every
//! script against every known reply and against long ones, so a broken edit is refused before
//! it serves.

use std::collections::HashSet;
use std::time::Instant;

use rhai::Map;

use crate::classify::{Outcome, is_positive};
use crate::compile::{NOT_BOUNCE, Rule, RuleSet};
use crate::error::{RuleError, RuleErrorKind, RuleErrors};
use crate::reply::Reply;
use crate::script::{Hook, HookError, SCRIPT_TEXT_LIMIT, SCRIPT_TIME_LIMIT, facts};

/// What a successful verification ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Rules in the set.
    pub rules: usize,
    /// Categories in the set.
    pub categories: usize,
    /// Examples checked.
    pub examples: usize,
    /// Test cases checked.
    pub tests: usize,
    /// What an operator should know though nothing is wrong: each rule that decides positive
    /// replies (its `code` names a 1xx-3xx code), which the engine otherwise answers `not_bounce`.
    pub notes: Vec<String>,
}

/// How often a script that ran out of time is tried before verification calls it slow. Wall
/// time is what a server enforces, so it is what verification measures; five misses in a row
/// are a slow script, not a busy host.
const TIME_ATTEMPTS: usize = 5;

impl RuleSet {
    /// Checks every example and test; fails with all that do not hold.
    pub fn verify(&self) -> Result<Verified, RuleErrors> {
        let mut errors = Vec::new();
        let mut ties = Ties::default();
        let mut examples = 0;
        for rule in &self.rules {
            for (i, example) in rule.examples.iter().enumerate() {
                examples += 1;
                let (outcome, tie) = self.classify_confirmed(example);
                ties.note(example, outcome.rule, tie);
                if outcome.rule.is_some_and(|w| std::ptr::eq(w, rule)) {
                    continue;
                }
                let (_, explanation) = self.explain(example);
                let not_a_candidate = if is_positive(example) {
                    "it is not a candidate: the reply is positive (1xx-3xx), and only rules whose `code` names its \
                     code are tried for such replies"
                } else {
                    "it is not a candidate for this reply (check `code`/`enhanced`/`text`)"
                };
                let why = explanation.candidates.iter().find(|c| c.rule == rule.id).map_or(
                    not_a_candidate.to_string(),
                    |c| {
                        let failed: Vec<String> = c
                            .conditions
                            .iter()
                            .filter(|r| !r.held)
                            .map(|r| format!("{} ({})", r.condition, r.detail))
                            .collect();
                        if failed.is_empty() {
                            "it matched but ranks lower".to_string()
                        } else {
                            format!("failed: {}", failed.join(", "))
                        }
                    },
                );
                let decided_by = outcome.rule.map_or(format!("no rule ({})", outcome.category.id), |r| {
                    format!("rule `{}` ({})", r.id, r.location())
                });
                let message = format!(
                    "example {} {:?} was decided by {decided_by}, not by this rule: {why}",
                    i + 1,
                    abbreviate(&example.text),
                );
                errors.push(RuleError::new(
                    &rule.file,
                    Some(rule.line),
                    Some(format!("rule `{}`", rule.id)),
                    RuleErrorKind::Expectation(message),
                ));
            }
        }
        for test in &self.tests {
            let (outcome, tie) = self.classify_confirmed(&test.reply);
            ties.note(&test.reply, outcome.rule, tie);
            let mut wrong = Vec::new();
            if outcome.category.id != test.category {
                wrong.push(format!(
                    "category `{}` (expected `{}`)",
                    outcome.category.id, test.category
                ));
            }
            if let Some(rule) = &test.rule
                && outcome.rule_id() != rule
            {
                wrong.push(format!("rule `{}` (expected `{rule}`)", outcome.rule_id()));
            }
            if let Some(s) = test.suppress_recipient
                && outcome.suppress_recipient != s
            {
                wrong.push(format!(
                    "suppress_recipient {} (expected {s})",
                    outcome.suppress_recipient
                ));
            }
            if !wrong.is_empty() {
                let message = format!("{:?} got {}", abbreviate(&test.reply.text), wrong.join(", "));
                errors.push(RuleError::new(
                    &test.file,
                    Some(test.line),
                    Some(format!("test {}", test.number)),
                    RuleErrorKind::Expectation(message),
                ));
            }
        }
        errors.extend(ties.errors);
        errors.extend(self.run_scripts_on_every_reply());
        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        Ok(Verified {
            rules: self.rules.len(),
            categories: self.categories.len(),
            examples,
            tests: self.tests.len(),
            notes: self.positive_code_notes(),
        })
    }

    /// Rules that answer a positive reply with something other than `not_bounce`: allowed, as
    /// the guide's `221` row shows, but worth saying.
    fn positive_code_notes(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.category != self.not_bounce)
            .filter_map(|rule| {
                let codes: Vec<String> = rule.codes.iter().filter_map(|c| c.positive_name()).collect();
                (!codes.is_empty()).then(|| {
                    format!(
                        "{}: rule `{}` answers `{}` for code {}, a positive reply (1xx-3xx) the engine would \
                         otherwise answer `{NOT_BOUNCE}`; it never suppresses",
                        rule.location(),
                        rule.id,
                        self.category_of(rule).id,
                        codes.join(", ")
                    )
                })
            })
            .collect()
    }

    /// Every reply the rule set knows the answer to: its rules' examples and its tests.
    fn known_replies(&self) -> impl Iterator<Item = &Reply> {
        self.rules
            .iter()
            .flat_map(|r| r.examples.iter())
            .chain(self.tests.iter().map(|t| &t.reply))
    }

    /// Classifies as a reload must, except that a script that ran out of time gets more
    /// chances: a thread kept off a busy CPU (a loaded CI host, tests in parallel) can miss a
    /// deadline a few times in a row, a slow script misses it every time.
    fn classify_confirmed(&self, reply: &Reply) -> (Outcome<'_>, Option<&Rule>) {
        let mut answer = self.classify_with_tie(reply);
        for _ in 1..TIME_ATTEMPTS {
            if answer.0.script_errors == 0 {
                break;
            }
            answer = self.classify_with_tie(reply);
        }
        answer
    }

    /// A script that errors (loops, overflows, returns a non-bool) on any known reply is a
    /// broken script even where its rule's other conditions would not have let it run. So is
    /// one that runs out of time on a long reply: its rule's examples, repeated up to the most
    /// of a reply's text a script sees, stand for the longest replies a server is sent.
    fn run_scripts_on_every_reply(&self) -> Vec<RuleError> {
        let replies: Vec<_> = self.known_replies().collect();
        let mut errors = Vec::new();
        let mut broken = HashSet::new();
        for rule in &self.rules {
            let Some(hook) = &rule.hook else { continue };
            if broken.contains(&hook.name) {
                continue;
            }
            let known = replies
                .iter()
                .map(|reply| (facts(reply, None), format!("on reply {:?}", abbreviate(&reply.text))));
            let long = rule.examples.iter().enumerate().map(|(i, example)| {
                let reply = lengthened(example);
                let what = format!(
                    "on example {} repeated to {} bytes (the most of a reply's text a script sees)",
                    i + 1,
                    SCRIPT_TEXT_LIMIT
                );
                (facts(&reply, None), what)
            });
            for (facts, on) in known.chain(long) {
                if let Err(e) = self.call_confirmed(hook, &facts) {
                    errors.push(RuleError::new(
                        &rule.file,
                        Some(rule.line),
                        Some(format!("rule `{}`", rule.id)),
                        RuleErrorKind::Script(format!("{e} {on}")),
                    ));
                    broken.insert(hook.name.clone());
                    break;
                }
            }
        }
        errors
    }

    /// One hook call with its own time budget, tried again while it runs out of time, up to
    /// [`TIME_ATTEMPTS`] in all (see [`RuleSet::classify_confirmed`]).
    fn call_confirmed(&self, hook: &Hook, facts: &Map) -> Result<bool, HookError> {
        let call = || hook.call(&self.engine, facts, Instant::now() + SCRIPT_TIME_LIMIT);
        let mut result = call();
        for _ in 1..TIME_ATTEMPTS {
            match &result {
                Err(e) if e.out_of_time => result = call(),
                _ => break,
            }
        }
        result
    }
}

/// `reply` with its text repeated up to [`SCRIPT_TEXT_LIMIT`] bytes, codes and hosts kept.
fn lengthened(reply: &Reply) -> Reply {
    let repeat = |s: &str| {
        let unit = if s.is_empty() { "x " } else { s };
        let mut long = String::with_capacity(SCRIPT_TEXT_LIMIT + unit.len() + 1);
        while long.len() < SCRIPT_TEXT_LIMIT {
            long.push_str(unit);
            long.push(' ');
        }
        long
    };
    Reply {
        text: repeat(&reply.text),
        lower: repeat(&reply.lower),
        ..reply.clone()
    }
}

/// Two rules that both match a known reply with the same specificity and priority leave the
/// answer to file order: the static check cannot see overlapping text patterns, the examples can.
#[derive(Default)]
struct Ties {
    reported: HashSet<(String, String)>,
    errors: Vec<RuleError>,
}

impl Ties {
    fn note(&mut self, reply: &Reply, winner: Option<&Rule>, tie: Option<&Rule>) {
        let (Some(winner), Some(other)) = (winner, tie) else {
            return;
        };
        if !self.reported.insert((winner.id.clone(), other.id.clone())) {
            return;
        }
        let message = format!(
            "as specific as rule `{}` ({}) and both match {:?}; give one a `priority` or narrow its `when`",
            winner.id,
            winner.location(),
            abbreviate(&reply.text)
        );
        let item = Some(format!("rule `{}`", other.id));
        self.errors.push(RuleError::new(
            &other.file,
            Some(other.line),
            item,
            RuleErrorKind::Expectation(message),
        ));
    }
}

fn abbreviate(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

//! The evaluator: from a [`Reply`] to an [`Outcome`], and on request an [`Explanation`].

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use smallvec::SmallVec;

use crate::compile::{Category, IndexKey, NOT_BOUNCE, NOT_BOUNCE_OUTCOME, Rule, RuleSet};
use crate::model::{BounceType, Responsible};
use crate::provider::Provider;
use crate::reply::{Command, Enhanced, Reply};
use crate::script::{HookError, SCRIPT_TIME_LIMIT, facts};

/// What decided an answer: the strongest kind of condition of the deciding rule. It says how
/// far the answer can be trusted, and whether it may suppress the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Evidence {
    /// The wording: a `text` condition, or a script (which reads the reply's text).
    Text,
    /// A provider-scoped rule on codes: that receiver's documented meaning of them.
    Provider,
    /// The enhanced status code (RFC 3463), with or without the reply code.
    EnhancedCode,
    /// The reply code alone. Also a positive reply that the engine answers `not_bounce` itself.
    ReplyCode,
    /// Nothing: no rule matched (unclassified), or a rule without conditions (a last resort).
    None,
}

impl Evidence {
    /// Every value, in the order of strength.
    pub const ALL: [Evidence; 5] = [
        Evidence::Text,
        Evidence::Provider,
        Evidence::EnhancedCode,
        Evidence::ReplyCode,
        Evidence::None,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Text => "text",
            Evidence::Provider => "provider",
            Evidence::EnhancedCode => "enhanced_code",
            Evidence::ReplyCode => "reply_code",
            Evidence::None => "none",
        }
    }

    /// Whether the answer was decided weakly: on codes alone or on nothing, not on the reply's
    /// wording or its provider. A weak answer is a rule that is missing (the unmatched tally).
    pub fn is_weak(self) -> bool {
        matches!(self, Evidence::ReplyCode | Evidence::EnhancedCode | Evidence::None)
    }
}

/// Why an answer suppresses the recipient, or why it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// The answer's outcome does not call for suppression (its category or its rule).
    NotCalledFor,
    /// A positive reply (1xx-3xx) is no failure.
    Positive,
    /// A 4xx reply is temporary.
    Temporary,
    /// Suppressed: the deciding rule read the wording, or is a provider's rule.
    Given,
    /// Suppressed: the reply's enhanced code is about the recipient's address or mailbox.
    RecipientCode,
    /// Suppressed: the deciding rule's own `outcome` sets `suppress_recipient: true`.
    Override,
    /// The outcome would suppress, but nothing about the recipient says so: withheld.
    Withheld,
    /// Suppressed: the recipient complained (a feedback report); the address is not known to
    /// be bad, but its owner does not want the mail. Set by [`RuleSet::complaint`].
    Complaint,
    /// Not suppressed: the report says delivery is only delayed (the sending MTA keeps
    /// trying), whatever the reply would say. Set by the message reader.
    Delayed,
}

/// What rebound answers for one reply.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'r> {
    /// The category (its id, name, summary and remediation).
    pub category: &'r Category,
    /// The rule that decided; `None` only when no rule, not even a fallback, matched.
    pub rule: Option<&'r Rule>,
    /// The provider the reply was attributed to.
    pub provider: Option<&'r Provider>,
    /// hard, soft, block or undetermined.
    pub bounce_type: BounceType,
    /// Stop mailing this address.
    pub suppress_recipient: bool,
    /// The same message can succeed later.
    pub retryable: bool,
    /// Whose side has to act.
    pub responsible: Responsible,
    /// The normalised reply code (0 when absent).
    pub code: u16,
    /// The normalised enhanced code.
    pub enhanced: Option<Enhanced>,
    /// Content digest of the rule set that answered.
    pub digest: &'r str,
    /// Generation of the rule set that answered.
    pub generation: u64,
    /// Script calls that failed while deciding this reply (each counted as no match).
    pub script_errors: u32,
    /// The reply is positive (1xx, 2xx, 3xx, or with no code an enhanced 2.X.X): not a failure.
    /// It never suppresses; without a rule naming its code the engine answers `not_bounce`.
    pub positive: bool,
    /// What decided: the deciding rule's strongest kind of condition.
    pub evidence: Evidence,
    /// Why `suppress_recipient` is what it is.
    pub suppression: Suppression,
}

impl Outcome<'_> {
    /// The rule's definition of this reply, or for a positive reply no rule decided, the
    /// engine's.
    pub fn definition(&self) -> Option<&str> {
        match self.rule {
            Some(r) => r.definition.as_deref(),
            None if self.positive => Some(positive_definition(self.code)),
            None => None,
        }
    }

    /// The deciding rule's id, or empty.
    pub fn rule_id(&self) -> &str {
        self.rule.map_or("", |r| r.id.as_str())
    }

    /// Why suppression was given or withheld, for people (`explain`).
    pub fn suppression_reason(&self) -> String {
        let rule = self.rule_id();
        let codes = match self.enhanced {
            Some(e) if self.code != 0 => format!("{} {e}", self.code),
            Some(e) => e.to_string(),
            None => self.code.to_string(),
        };
        match self.suppression {
            Suppression::NotCalledFor => match self.rule {
                Some(r) if r.outcome.suppress_recipient != self.category.outcome.suppress_recipient => {
                    format!("not suppressed: rule `{rule}` sets `suppress_recipient: false` in its outcome")
                }
                _ => format!(
                    "not suppressed: category `{}` does not suppress the recipient",
                    self.category.id
                ),
            },
            Suppression::Positive => "not suppressed: a positive reply is not a failure".to_string(),
            Suppression::Complaint => "suppressed: the recipient complained (a feedback report); stop mailing them, \
                                       though the address itself is not known to be bad"
                .to_string(),
            Suppression::Delayed => {
                "not suppressed: delivery is only delayed and the sending server keeps trying".to_string()
            }
            Suppression::Temporary => "not suppressed: a 4xx reply is temporary".to_string(),
            Suppression::Given if self.evidence == Evidence::Provider => {
                format!("suppressed: provider rule `{rule}` says the recipient is gone (evidence provider)")
            }
            Suppression::Given => format!("suppressed: rule `{rule}` read it in the wording (evidence text)"),
            Suppression::RecipientCode => format!(
                "suppressed: enhanced code {} is about the recipient's address or mailbox (RFC 3463)",
                self.enhanced.map_or_else(String::new, |e| e.to_string())
            ),
            Suppression::Override => format!(
                "suppressed: rule `{rule}` sets `suppress_recipient: true` in its outcome (the operator's override; \
                 evidence {} alone would not)",
                self.evidence.as_str()
            ),
            Suppression::Withheld => {
                let about = match self.enhanced {
                    Some(e) => format!(
                        "enhanced code {e} is about {}, not the recipient's address or mailbox",
                        enhanced_subject(e)
                    ),
                    None => "which says nothing about the recipient".to_string(),
                };
                match self.evidence {
                    Evidence::None => format!(
                        "suppression withheld: decided by rule `{rule}`, which has no conditions; the category \
                         `{}` would suppress, but nothing in the reply says the recipient is gone",
                        self.category.id
                    ),
                    Evidence::ReplyCode if self.enhanced.is_none() => format!(
                        "suppression withheld: decided by reply code {codes} alone, which says nothing about the \
                         recipient"
                    ),
                    _ => format!(
                        "suppression withheld: decided by codes alone ({codes}), and {about}; the category `{}` \
                         stays, a rule over the wording or `outcome: {{ suppress_recipient: true }}` would suppress",
                        self.category.id
                    ),
                }
            }
        }
    }
}

/// RFC 3463 enhanced codes about the recipient's own address or mailbox: bad destination
/// mailbox address (X.1.1), bad destination system address (X.1.2), bad destination mailbox
/// address syntax (X.1.3), destination mailbox has moved (X.1.6), recipient address has a null
/// MX (X.1.10), mailbox disabled (X.2.1). Every other subject is about policy, security,
/// protocol, the network, the system or the message, which says nothing about the address.
fn is_about_recipient(e: Enhanced) -> bool {
    matches!((e.subject, e.detail), (1, 1 | 2 | 3 | 6 | 10) | (2, 1))
}

/// What an enhanced code's subject is about (RFC 3463), for messages.
fn enhanced_subject(e: Enhanced) -> &'static str {
    match e.subject {
        1 => "addressing other than a missing or moved recipient",
        2 => "the mailbox's state other than disabled",
        3 => "the receiving mail system",
        4 => "the network or routing",
        5 => "the mail protocol",
        6 => "the message's content",
        7 => "security or policy",
        _ => "nothing in particular (other or undefined status)",
    }
}

/// The wire shape of DESIGN.md's outcome fields, shared by the CLI's JSON output.
impl Serialize for Outcome<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Version<'a> {
            generation: u64,
            digest: &'a str,
        }
        let mut s = serializer.serialize_struct("Outcome", 16)?;
        s.serialize_field("category", &self.category.id)?;
        s.serialize_field("category_name", &self.category.name)?;
        s.serialize_field("bounce_type", self.bounce_type.as_str())?;
        s.serialize_field("suppress_recipient", &self.suppress_recipient)?;
        s.serialize_field("retryable", &self.retryable)?;
        s.serialize_field("responsible", self.responsible.as_str())?;
        s.serialize_field("definition", &self.definition())?;
        s.serialize_field("summary", &self.category.summary)?;
        s.serialize_field("remediation", &self.category.remediation)?;
        s.serialize_field("rule", &self.rule.map(|r| r.id.as_str()))?;
        s.serialize_field("evidence", self.evidence.as_str())?;
        s.serialize_field("provider", &self.provider.map(|p| p.id.as_str()))?;
        s.serialize_field("code", &(self.code != 0).then_some(self.code))?;
        s.serialize_field("enhanced", &self.enhanced.map(|e| e.to_string()))?;
        s.serialize_field(
            "ruleset",
            &Version {
                generation: self.generation,
                digest: self.digest,
            },
        )?;
        s.end()
    }
}

/// Why a reply got its answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Explanation {
    /// The reply as normalised.
    pub normalised: NormalisedReply,
    /// The detected provider and what gave it away.
    pub provider: Option<DetectedProvider>,
    /// Every rule the index proposed, best-first.
    pub candidates: Vec<Candidate>,
    /// The winning rule.
    pub winner: Option<String>,
    /// Why it won.
    pub reason: String,
    /// Why suppression was given or withheld.
    pub suppression: String,
    /// What deciding it cost.
    pub work: crate::pattern::Work,
}

/// A provider and the evidence for it.
#[derive(Debug, Clone, Serialize)]
pub struct DetectedProvider {
    /// Provider id.
    pub id: String,
    /// `remote_host`, `recipient_domain` or `text marker`.
    pub from: &'static str,
}

/// The normalised reply, for the explanation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NormalisedReply {
    /// Reply code, 0 when absent.
    pub code: u16,
    /// Enhanced code.
    pub enhanced: Option<String>,
    /// Text on one line.
    pub text: String,
    /// When the text was a transcript holding several replies: each of them, in order. Empty
    /// for a single reply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<TranscriptReply>,
    /// Index in `replies` of the reply the answer was decided on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<usize>,
    /// Why that reply was chosen.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub chosen_because: &'static str,
}

/// One reply of a transcript, for the explanation.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptReply {
    /// Its reply code.
    pub code: u16,
    /// Its enhanced code.
    pub enhanced: Option<String>,
    /// The SMTP command it answered, when the wrapper named it (`RCPT TO`, `end of DATA`).
    pub command: Option<&'static str>,
    /// Its text, wrappers removed.
    pub text: String,
}

/// One candidate rule and how its conditions fared.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Position in the rule set's best-first order.
    #[serde(skip)]
    pub(crate) index: u32,
    /// Rule id.
    pub rule: String,
    /// `file:line`.
    pub location: String,
    /// Its category.
    pub category: String,
    /// How specific it is.
    pub specificity: String,
    /// Its priority.
    pub priority: i32,
    /// Each condition it has, and whether it held.
    pub conditions: Vec<ConditionResult>,
    /// All conditions held.
    pub matched: bool,
}

/// One condition of a candidate.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionResult {
    /// `code`, `enhanced`, `provider`, `text`, `not_text`, `script`.
    pub condition: &'static str,
    /// Whether it held.
    pub held: bool,
    /// Details: the patterns that matched, a script's error.
    pub detail: String,
}

impl RuleSet {
    /// The answer for a complaint (an ARF feedback report): the `complaint` category with its
    /// fixed outcome (suppress, not retryable, undetermined bounce type, the sender acts). No
    /// rule decides it, so its evidence is `none`.
    pub fn complaint(&self) -> Outcome<'_> {
        self.fixed(&self.complaint, Suppression::Complaint)
    }

    /// The answer for a recipient that did not fail (an auto-reply's sender, a delivered
    /// recipient of a report): `not_bounce`, which never suppresses. No rule decides it.
    pub fn not_bounce(&self) -> Outcome<'_> {
        self.fixed(&self.categories[self.not_bounce], Suppression::NotCalledFor)
    }

    fn fixed<'s>(&'s self, category: &'s Category, suppression: Suppression) -> Outcome<'s> {
        let o = category.outcome;
        Outcome {
            category,
            rule: None,
            provider: None,
            bounce_type: o.bounce_type,
            suppress_recipient: o.suppress_recipient,
            retryable: o.retryable,
            responsible: o.responsible,
            code: 0,
            enhanced: None,
            digest: &self.digest,
            generation: self.generation,
            script_errors: 0,
            positive: false,
            evidence: Evidence::None,
            suppression,
        }
    }

    /// Classifies one reply.
    pub fn classify(&self, reply: &Reply) -> Outcome<'_> {
        self.evaluate(reply, None, None)
    }

    /// Classifies, and names an equally ranked rule that matches too, if any (the answer would
    /// then depend on file order). Used by `verify` on every known reply.
    pub(crate) fn classify_with_tie(&self, reply: &Reply) -> (Outcome<'_>, Option<&Rule>) {
        let mut tie = None;
        let outcome = self.evaluate(reply, None, Some(&mut tie));
        (outcome, tie.map(|i: u32| &self.rules[i as usize]))
    }

    /// Classifies one reply and says why.
    pub fn explain(&self, reply: &Reply) -> (Outcome<'_>, Explanation) {
        let mut explanation = Explanation {
            normalised: NormalisedReply {
                code: reply.code,
                enhanced: reply.enhanced.map(|e| e.to_string()),
                text: reply.text.clone(),
                replies: reply.transcript.as_ref().map_or_else(Vec::new, |t| {
                    t.replies
                        .iter()
                        .map(|r| TranscriptReply {
                            code: r.code,
                            enhanced: r.enhanced.map(|e| e.to_string()),
                            command: r.command.map(Command::as_str),
                            text: r.text.clone(),
                        })
                        .collect()
                }),
                chosen: reply.transcript.as_ref().map(|t| t.chosen),
                chosen_because: reply.transcript.as_ref().map_or("", |t| t.why),
            },
            ..Explanation::default()
        };
        let outcome = self.evaluate(reply, Some(&mut explanation), None);
        (outcome, explanation)
    }

    fn evaluate(
        &self,
        reply: &Reply,
        mut trace: Option<&mut Explanation>,
        mut tie: Option<&mut Option<u32>>,
    ) -> Outcome<'_> {
        let hits = self.text.scan(&reply.lower);
        let mut domain_bytes = 0;
        let provider = self.providers.detect(reply, hits.marker, &mut domain_bytes);
        if let Some(t) = trace.as_deref_mut() {
            t.provider = provider.map(|(p, from)| DetectedProvider {
                id: self.providers.get(p).id.clone(),
                from,
            });
        }
        let provider = provider.map(|(p, _)| p);

        // Each list is sorted ascending, and rules are stored best-first, so merging the lists
        // visits candidates from the most specific down; the first that holds wins and the rest
        // are never looked at. The cost follows the candidates tried, not the rule count.
        let mut lists = RuleLists::new();
        let (keys, n) = IndexKey::for_reply(reply);
        for &key in &keys[..n] {
            let list = self.index.get(key);
            if !list.is_empty() {
                lists.push(list);
            }
        }
        for p in hits.possible() {
            if let Some(list) = self.text_rules.get(p as usize) {
                lists.push(list);
            }
        }
        let candidates = MergedCandidates {
            lists: &mut lists,
            last: None,
        };

        let positive = is_positive(reply);
        let mut facts_map = None;
        // Set at the first script call: the scripts deciding one reply share one budget.
        let mut script_deadline = None;
        let mut winner: Option<&Rule> = None;
        let mut script_errors = 0;
        for c in candidates {
            let rule = &self.rules[c as usize];
            // A positive reply is no failure: only a rule that names its code (the guide's `221`)
            // may say otherwise. Wording, enhanced codes and fallbacks never turn it into one.
            if positive && rule.codes.is_empty() {
                continue;
            }
            // Looking for a tie: only rules ranked like the winner can be one.
            if let (Some(w), Some(_), None) = (winner, tie.as_deref(), trace.as_deref())
                && (rule.specificity != w.specificity || rule.priority != w.priority)
            {
                break;
            }
            let statics = rule.code_holds(reply.code)
                && rule.enhanced_holds(reply.enhanced)
                && (rule.providers.is_empty() || provider.is_some_and(|p| rule.providers.contains(&p)))
                && (rule.text.is_empty() || rule.text.iter().any(|&p| hits.is_match(p)))
                && !rule.not_text.iter().any(|&p| hits.is_match(p));
            let mut script_result = None;
            let matched = statics
                && match &rule.hook {
                    None => true,
                    Some(hook) => {
                        let map = facts_map
                            .get_or_insert_with(|| facts(reply, provider.map(|p| self.providers.get(p).id.as_str())));
                        let deadline = *script_deadline.get_or_insert_with(|| Instant::now() + SCRIPT_TIME_LIMIT);
                        let result = hook.call(&self.engine, map, deadline);
                        if result.is_err() {
                            script_errors += 1;
                            self.script_errors.fetch_add(1, Ordering::Relaxed);
                        }
                        let held = *result.as_ref().unwrap_or(&false);
                        script_result = Some(result);
                        held
                    }
                };
            if let Some(t) = trace.as_deref_mut() {
                t.candidates
                    .push(self.report(c, reply, provider, &hits, script_result, matched));
            }
            if !matched {
                continue;
            }
            match winner {
                None => winner = Some(rule),
                Some(w) => {
                    if let Some(t) = tie.as_deref_mut()
                        && t.is_none()
                        && rule.specificity == w.specificity
                        && rule.priority == w.priority
                    {
                        *t = Some(c);
                    }
                }
            }
            if trace.is_none() && (tie.is_none() || tie.as_deref().is_some_and(Option::is_some)) {
                break;
            }
        }
        let outcome = Outcome {
            script_errors,
            ..self.outcome(reply, winner, provider)
        };
        if let Some(t) = trace {
            t.winner = winner.map(|w| w.id.clone());
            t.reason = self.reason(reply, winner, &t.candidates);
            t.suppression = outcome.suppression_reason();
            t.work = hits.work(domain_bytes);
        }
        outcome
    }

    fn outcome<'s>(&'s self, reply: &Reply, rule: Option<&'s Rule>, provider: Option<u16>) -> Outcome<'s> {
        let positive = is_positive(reply);
        let category = match rule {
            Some(r) => self.category_of(r),
            None if positive => &self.categories[self.not_bounce],
            None => &self.categories[self.unclassified],
        };
        let mut o = match rule {
            Some(r) => r.outcome,
            None if positive => NOT_BOUNCE_OUTCOME,
            None => category.outcome,
        };
        let evidence = match rule {
            Some(r) => r.evidence,
            // The engine's own `not_bounce`: the reply code (or a 2.X.X status) said so.
            None if positive => Evidence::ReplyCode,
            None => Evidence::None,
        };
        let suppression = match reply.class() {
            // Not a failure, whatever a rule that names the code says: it never suppresses, and
            // nothing about the address is permanent.
            _ if positive => {
                o.suppress_recipient = false;
                if o.bounce_type == BounceType::Hard {
                    o.bounce_type = BounceType::Soft;
                }
                Suppression::Positive
            }
            // A 4xx reply is temporary by definition: it never suppresses and it can be retried.
            4 => {
                o.suppress_recipient = false;
                o.retryable = true;
                if o.bounce_type == BounceType::Hard {
                    o.bounce_type = BounceType::Soft;
                }
                Suppression::Temporary
            }
            _ if !o.suppress_recipient => Suppression::NotCalledFor,
            _ => suppression_basis(reply, rule, evidence),
        };
        // Withheld: the category stays the guide's, but nothing says the address is bad, so the
        // answer must not read as a hard bounce of the recipient's either (senders suppress on
        // `hard`): the kind of bounce and whose fault it is are not known.
        if suppression == Suppression::Withheld {
            o.suppress_recipient = false;
            if o.bounce_type == BounceType::Hard {
                o.bounce_type = BounceType::Undetermined;
            }
            if o.responsible == Responsible::Recipient {
                o.responsible = Responsible::Unknown;
            }
        }
        Outcome {
            category,
            rule,
            provider: provider.map(|p| self.providers.get(p)),
            bounce_type: o.bounce_type,
            suppress_recipient: o.suppress_recipient,
            retryable: o.retryable,
            responsible: o.responsible,
            code: reply.code,
            enhanced: reply.enhanced,
            digest: &self.digest,
            generation: self.generation,
            script_errors: 0,
            positive,
            evidence,
            suppression,
        }
    }

    fn report(
        &self,
        index: u32,
        reply: &Reply,
        provider: Option<u16>,
        hits: &crate::pattern::TextHits,
        script: Option<Result<bool, HookError>>,
        matched: bool,
    ) -> Candidate {
        let rule = &self.rules[index as usize];
        let mut conditions = Vec::new();
        let mut add = |condition, held, detail: String| {
            conditions.push(ConditionResult {
                condition,
                held,
                detail,
            })
        };
        if !rule.codes.is_empty() {
            add(
                "code",
                rule.code_holds(reply.code),
                format!("reply code {}", reply.code),
            );
        }
        if !rule.enhanced.is_empty() {
            let e = reply.enhanced.map_or("none".to_string(), |e| e.to_string());
            add(
                "enhanced",
                rule.enhanced_holds(reply.enhanced),
                format!("reply enhanced {e}"),
            );
        }
        if !rule.providers.is_empty() {
            let held = provider.is_some_and(|p| rule.providers.contains(&p));
            let detected = provider.map_or("none", |p| self.providers.get(p).id.as_str());
            add("provider", held, format!("detected {detected}"));
        }
        let matched_sources = |ids: &[u32]| -> Vec<&str> {
            ids.iter()
                .filter(|&&p| hits.is_match(p))
                .map(|&p| self.text.source(p))
                .collect()
        };
        if !rule.text.is_empty() {
            let m = matched_sources(&rule.text);
            add("text", !m.is_empty(), format!("matched {m:?}"));
        }
        if !rule.not_text.is_empty() {
            let m = matched_sources(&rule.not_text);
            add("not_text", m.is_empty(), format!("matched {m:?}"));
        }
        if let (Some(hook), Some(result)) = (&rule.hook, script) {
            let detail = match &result {
                Ok(b) => format!("{} returned {b}", hook.name),
                Err(e) => format!("{e} (counted as no match)"),
            };
            add("script", result.unwrap_or(false), detail);
        }
        Candidate {
            index,
            rule: rule.id.clone(),
            location: rule.location(),
            category: self.category_of(rule).id.clone(),
            specificity: rule.specificity.to_string(),
            priority: rule.priority,
            conditions,
            matched,
        }
    }

    fn reason(&self, reply: &Reply, winner: Option<&Rule>, candidates: &[Candidate]) -> String {
        let positive = is_positive(reply);
        let Some(w) = winner else {
            if positive {
                let what = match reply.enhanced {
                    Some(e) if reply.code == 0 => format!("enhanced code {e} is a success status (RFC 3463)"),
                    _ => format!("reply code {} is a positive reply (RFC 5321)", reply.code),
                };
                return format!(
                    "{what}, not a failure: the engine answers `{NOT_BOUNCE}` before any rule and it never \
                     suppresses; only a rule whose `code` names the code could say otherwise, and none matched"
                );
            }
            return "no rule matched: the reply is unclassified".to_string();
        };
        let why = self.why_winner(w, candidates);
        if positive {
            return format!(
                "{why}; code {} is a positive reply, which `{}` names in its `code`: it never suppresses",
                reply.code, w.id
            );
        }
        why
    }

    fn why_winner(&self, w: &Rule, candidates: &[Candidate]) -> String {
        let others: Vec<&Candidate> = candidates.iter().filter(|c| c.matched && c.rule != w.id).collect();
        let Some(runner_up) = others.first() else {
            return format!("`{}` is the only rule whose conditions all held", w.id);
        };
        let r = &self.rules[runner_up.index as usize];
        if w.specificity != r.specificity {
            format!(
                "`{}` is more specific ({}) than `{}` ({})",
                w.id, w.specificity, r.id, r.specificity
            )
        } else if w.priority != r.priority {
            format!(
                "`{}` has priority {} over `{}` with {}",
                w.id, w.priority, r.id, r.priority
            )
        } else {
            format!(
                "`{}` and `{}` are equally specific; `{}` comes first in load order",
                w.id, r.id, w.id
            )
        }
    }
}

/// The rule lists one reply draws candidates from: its index keys' and its text hits'. A few
/// of them, kept on the stack: a heap allocation would cost more than the merge.
type RuleLists<'a> = SmallVec<[&'a [u32]; 16]>;

/// Ascending, de-duplicated merge of a few sorted rule lists.
struct MergedCandidates<'l, 'a> {
    /// Borrowed, not moved in: moving would copy the inline lists.
    lists: &'l mut [&'a [u32]],
    last: Option<u32>,
}

impl Iterator for MergedCandidates<'_, '_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        loop {
            let (at, &head) = self
                .lists
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.first().map(|h| (i, h)))
                .min_by_key(|&(_, h)| *h)?;
            self.lists[at] = &self.lists[at][1..];
            if self.last != Some(head) {
                self.last = Some(head);
                return Some(head);
            }
        }
    }
}

/// Whether an outcome that would suppress may: only on evidence about the recipient.
fn suppression_basis(reply: &Reply, rule: Option<&Rule>, evidence: Evidence) -> Suppression {
    match evidence {
        Evidence::Text | Evidence::Provider => return Suppression::Given,
        Evidence::EnhancedCode | Evidence::ReplyCode if reply.enhanced.is_some_and(is_about_recipient) => {
            return Suppression::RecipientCode;
        }
        _ => {}
    }
    if rule.is_some_and(|r| r.suppress_override) {
        Suppression::Override
    } else {
        Suppression::Withheld
    }
}

/// A positive reply: 1xx, 2xx or 3xx (RFC 5321), or, without a reply code, an enhanced 2.X.X
/// (RFC 3463 success). Not a failure, whatever its text says.
pub(crate) fn is_positive(reply: &Reply) -> bool {
    matches!(reply.class(), 1..=3)
}

/// What the engine answers a positive reply that no rule names, by class.
fn positive_definition(code: u16) -> &'static str {
    match code / 100 {
        1 => {
            "A positive preliminary reply (RFC 5321 1yz): the server took the command and waits for more. Not a failure."
        }
        3 => {
            "A positive intermediate reply (RFC 5321 3yz): the server took the command and waits for the rest. Not a failure."
        }
        2 => "A positive completion reply (RFC 5321 2yz): the server accepted the command. Not a failure.",
        _ => "A success status (RFC 3463 2.X.X): the server accepted the command. Not a failure.",
    }
}

//! Target `classify`: one reply's fields through `Reply::parse`, `RuleSet::classify` and
//! `RuleSet::explain` on the shipped rules.
//!
//! Input: `code NUL enhanced NUL recipient NUL remote_host NUL text`, each field UTF-8 (invalid
//! bytes replaced, as the API only carries UTF-8). The text comes last so that it may hold NULs.
//! A code that is not a decimal `u32` stands for one out of range (`u32::MAX`); an empty one is 0.

use rebound_engine::{BounceType, Evidence, InputError, Outcome, Reply, ReplyInput, Suppression};

use crate::{MAX_ERROR_BYTES, prefix, shipped_rules};

/// One reply's raw fields, as a request carries them.
#[derive(Debug, Default)]
pub struct Fields {
    pub code: u32,
    pub enhanced: String,
    pub recipient: String,
    pub remote_host: String,
    pub text: String,
}

impl Fields {
    /// Reads the fields from a fuzz input (see the module's documentation).
    pub fn split(data: &[u8]) -> Fields {
        let mut parts = data.splitn(5, |&b| b == 0);
        let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let code = next();
        let code = if code.is_empty() {
            0
        } else {
            code.parse().unwrap_or(u32::MAX)
        };
        Fields {
            code,
            enhanced: next(),
            recipient: next(),
            remote_host: next(),
            text: next(),
        }
    }

    pub fn input(&self) -> ReplyInput<'_> {
        ReplyInput {
            code: self.code,
            enhanced: &self.enhanced,
            text: &self.text,
            recipient: &self.recipient,
            remote_host: &self.remote_host,
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let fields = Fields::split(data);
    let reply = match Reply::parse(&fields.input()) {
        Ok(reply) => reply,
        Err(error) => return check_refusal(&fields, &error),
    };
    check_normalised(&fields, &reply);
    let rules = shipped_rules();
    let outcome = rules.classify(&reply);
    check_outcome(&reply, &outcome);
    let (explained, explanation) = rules.explain(&reply);
    // A script that ran out of its wall-time budget (a slow instrumented build on a busy host)
    // counts as no match, so the two runs may differ; where no script failed they must agree.
    if outcome.script_errors > 0 || explained.script_errors > 0 {
        return;
    }
    assert_same_answer(&outcome, &explained);
    assert_eq!(
        explanation.winner.as_deref(),
        outcome.rule.map(|rule| rule.id.as_str()),
        "the explanation names another winner than the answer"
    );
}

/// A reply is refused only for a code outside 100-599 or an enhanced code present but not `x.y.z`,
/// and the error names the field with at most a short prefix of its value.
fn check_refusal(fields: &Fields, error: &InputError) {
    match error {
        InputError::Code(code) => assert!(
            *code == fields.code && *code != 0 && !(100..=599).contains(code),
            "refused a valid code: {error}"
        ),
        InputError::Enhanced(_) => assert!(!fields.enhanced.trim().is_empty(), "refused an absent enhanced code"),
    }
    let message = error.to_string();
    assert!(
        message.len() <= MAX_ERROR_BYTES,
        "an error of {} bytes quotes too much of the value: {:?}...",
        message.len(),
        prefix(&message, 80)
    );
}

/// The normalised reply is one line and keeps the fields' codes.
fn check_normalised(fields: &Fields, reply: &Reply) {
    assert!(
        !reply.text.contains(['\n', '\r']),
        "normalised text spans lines: {:?}",
        reply.text
    );
    if (100..=599).contains(&fields.code) {
        assert_eq!(u32::from(reply.code), fields.code, "the code field was not kept");
    }
}

/// A suppression has a basis about the recipient (issue 18): the wording, a provider's rule, an
/// enhanced code about the address or mailbox, or the rule's own explicit override. `answered` is
/// what was classified, for the failure message. The message target checks its recipients with it.
pub fn check_suppression_basis(outcome: &Outcome<'_>, answered: &dyn std::fmt::Debug) {
    if !outcome.suppress_recipient {
        return;
    }
    let recipient_code = outcome
        .enhanced
        .is_some_and(|e| matches!((e.subject, e.detail), (1, 1 | 2 | 3 | 6 | 10) | (2, 1)));
    let basis = match outcome.suppression {
        Suppression::Given => matches!(outcome.evidence, Evidence::Text | Evidence::Provider),
        Suppression::RecipientCode => recipient_code,
        Suppression::Override => outcome.rule.is_some_and(|r| r.suppress_override),
        _ => false,
    };
    assert!(
        basis,
        "suppressed without a basis ({:?}, evidence {}) by {}: {answered:?}",
        outcome.suppression,
        outcome.evidence.as_str(),
        outcome.rule_id()
    );
}

/// What every answer must honour, whatever the rules say.
fn check_outcome(reply: &Reply, outcome: &Outcome<'_>) {
    // The shipped rules end with a rule that matches anything: every answer names its rule, but
    // for a positive reply, which the engine answers `not_bounce` before any rule.
    assert!(
        outcome.rule.is_some() || outcome.positive && outcome.category.id == "not_bounce",
        "no rule decided {reply:?}"
    );
    assert_eq!(outcome.code, reply.code);
    assert_eq!(outcome.enhanced, reply.enhanced);
    let class = reply.class();
    if class == 4 {
        // A temporary failure: never a suppression, always retryable, never hard.
        assert!(
            !outcome.suppress_recipient && outcome.retryable && outcome.bounce_type != BounceType::Hard,
            "a 4xx reply answered {} (suppress {}, retryable {}, {:?}) by {}: {reply:?}",
            outcome.category.id,
            outcome.suppress_recipient,
            outcome.retryable,
            outcome.bounce_type,
            outcome.rule_id()
        );
    }
    check_suppression_basis(outcome, reply);
    // A positive reply is not a failure (issue 17, defect 12).
    if (1..=3).contains(&class) {
        assert!(
            !outcome.suppress_recipient && outcome.bounce_type != BounceType::Hard,
            "a {class}xx reply suppresses or is hard ({:?}) by {}: {reply:?}",
            outcome.bounce_type,
            outcome.rule_id()
        );
    }
}

/// `explain` answers what `classify` answers.
fn assert_same_answer(a: &Outcome<'_>, b: &Outcome<'_>) {
    let fields = |o: &Outcome<'_>| {
        (
            o.category.id.clone(),
            o.rule_id().to_string(),
            o.provider.map(|p| p.id.clone()),
            o.bounce_type,
            o.suppress_recipient,
            o.retryable,
            o.responsible,
        )
    };
    assert_eq!(fields(a), fields(b), "classify and explain disagree");
}

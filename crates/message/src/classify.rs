//! Classifying a report's recipients with the rule engine.

use rebound_engine::{Outcome, Reply, ReplyInput, RuleSet, Suppression};

use crate::report::{Action, RecipientReport, Report};

/// One recipient's answer.
pub type RecipientOutcome<'r> = Outcome<'r>;

/// Classifies every recipient of `report`, in order.
pub fn classify<'r>(rules: &'r RuleSet, report: &Report) -> Vec<RecipientOutcome<'r>> {
    report
        .recipients
        .iter()
        .map(|r| delay_never_suppresses(r, rules.classify(&reply(r))))
        .collect()
}

/// A delayed recipient is still being tried: it is not suppressed, whatever its status and text
/// say (a DSN may well write `Action: delayed` with `Status: 5.1.1`).
fn delay_never_suppresses<'r>(r: &RecipientReport, mut outcome: Outcome<'r>) -> Outcome<'r> {
    if r.action == Some(Action::Delayed) && outcome.suppress_recipient {
        outcome.suppress_recipient = false;
        outcome.suppression = Suppression::Temporary;
    }
    outcome
}

fn reply(r: &RecipientReport) -> Reply {
    let input = ReplyInput {
        code: u32::from(r.reply_code),
        enhanced: &r.status,
        text: &r.diagnostic,
        recipient: &r.recipient,
        remote_host: &r.remote_mta,
    };
    Reply::parse(&input).unwrap_or_else(|_| Reply::from_text(&r.diagnostic))
}

/// Classifies every recipient of `report` and says why each answer was given.
pub fn explain<'r>(rules: &'r RuleSet, report: &Report) -> Vec<(RecipientOutcome<'r>, rebound_engine::Explanation)> {
    report
        .recipients
        .iter()
        .map(|r| {
            let (outcome, explanation) = rules.explain(&reply(r));
            (delay_never_suppresses(r, outcome), explanation)
        })
        .collect()
}

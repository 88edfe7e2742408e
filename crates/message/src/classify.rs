//! Classifying a report's recipients with the rule engine.

use rebound_engine::{Outcome, Reply, ReplyInput, RuleSet};

use crate::report::{RecipientReport, Report};

/// One recipient's answer.
pub type RecipientOutcome<'r> = Outcome<'r>;

/// Classifies every recipient of `report`, in order.
pub fn classify<'r>(rules: &'r RuleSet, report: &Report) -> Vec<RecipientOutcome<'r>> {
    report.recipients.iter().map(|r| rules.classify(&reply(r))).collect()
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
    report.recipients.iter().map(|r| rules.explain(&reply(r))).collect()
}

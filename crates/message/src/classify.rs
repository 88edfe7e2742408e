//! Classifying a report's recipients with the rule engine. A failed recipient's reply decides
//! its answer; a delayed one is answered the same way but never suppressed; a complaint is its
//! own answer (`complaint`); an auto-reply's or challenge's sender and a delivered recipient
//! are `not_bounce`.

use rebound_engine::{Explanation, Outcome, Reply, ReplyInput, RuleSet, Suppression};

use crate::report::{Action, Kind, RecipientReport, Report};

/// One recipient's answer.
pub type RecipientOutcome<'r> = Outcome<'r>;

/// Classifies every recipient of `report`, in order: the result is aligned with
/// `report.recipients`.
pub fn classify<'r>(rules: &'r RuleSet, report: &Report) -> Vec<RecipientOutcome<'r>> {
    report
        .recipients
        .iter()
        .map(|r| match how(report.kind, r) {
            How::Complaint => rules.complaint(),
            How::NotBounce => rules.not_bounce(),
            How::Reply { delayed } => delay(rules.classify(&reply(r)), delayed),
        })
        .collect()
}

/// Classifies every recipient of `report` and says why each answer was given.
pub fn explain<'r>(rules: &'r RuleSet, report: &Report) -> Vec<(RecipientOutcome<'r>, Explanation)> {
    report
        .recipients
        .iter()
        .map(|r| match how(report.kind, r) {
            How::Complaint => fixed(rules.complaint(), "the message is a complaint (a feedback report)"),
            How::NotBounce => {
                let why = match report.kind {
                    Kind::AutoReply => "the message is an auto-reply: its sender's mailbox works",
                    Kind::Challenge => "the message is a challenge-response request, not a failure",
                    _ => "the report says this recipient was delivered, relayed or expanded",
                };
                fixed(rules.not_bounce(), why)
            }
            How::Reply { delayed } => {
                let (outcome, mut explanation) = rules.explain(&reply(r));
                let outcome = delay(outcome, delayed);
                if delayed {
                    explanation.suppression = outcome.suppression_reason();
                }
                (outcome, explanation)
            }
        })
        .collect()
}

/// How a recipient is answered.
enum How {
    /// The `complaint` category.
    Complaint,
    /// `not_bounce`, fixed.
    NotBounce,
    /// By its reply; `delayed` when the report says delivery is only delayed.
    Reply { delayed: bool },
}

fn how(kind: Kind, r: &RecipientReport) -> How {
    match (kind, r.action) {
        (Kind::Feedback, _) => How::Complaint,
        (Kind::AutoReply | Kind::Challenge, _) => How::NotBounce,
        (_, Some(Action::Delivered | Action::Relayed | Action::Expanded)) => How::NotBounce,
        (_, Some(Action::Delayed)) => How::Reply { delayed: true },
        _ => How::Reply { delayed: false },
    }
}

/// A delay never suppresses and is retried, whatever the reply says: the sending MTA has not
/// given up. A positive reply keeps its own reason.
fn delay(mut o: Outcome<'_>, delayed: bool) -> Outcome<'_> {
    if !delayed || o.suppression == Suppression::Positive {
        return o;
    }
    o.suppress_recipient = false;
    o.retryable = true;
    if o.bounce_type == rebound_engine::BounceType::Hard {
        o.bounce_type = rebound_engine::BounceType::Soft;
    }
    o.suppression = Suppression::Delayed;
    o
}

fn fixed<'r>(outcome: Outcome<'r>, reason: &str) -> (Outcome<'r>, Explanation) {
    let explanation = Explanation {
        reason: reason.to_string(),
        suppression: outcome.suppression_reason(),
        ..Explanation::default()
    };
    (outcome, explanation)
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

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use rebound_engine::{BounceType, Evidence, Responsible, RuleSet, Suppression};

    use crate::report::{Action, Kind, RecipientReport, Report};

    pub(crate) fn rules() -> RuleSet {
        RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")).unwrap()
    }

    pub(crate) fn report(kind: Kind, recipients: Vec<RecipientReport>) -> Report {
        Report {
            kind,
            format: "test",
            reporting_mta: String::new(),
            arrival_date: String::new(),
            original: None,
            feedback: None,
            recipients,
            trace: Vec::new(),
        }
    }

    fn recipient(action: Action, status: &str, code: u16, diagnostic: &str) -> RecipientReport {
        RecipientReport {
            recipient: "bob@example.com".to_string(),
            action: Some(action),
            status: status.to_string(),
            reply_code: code,
            diagnostic: diagnostic.to_string(),
            ..RecipientReport::default()
        }
    }

    #[test]
    fn a_failed_recipient_is_classified_by_its_reply() {
        let rules = rules();
        let r = report(
            Kind::Bounce,
            vec![recipient(Action::Failed, "5.1.1", 550, "550 5.1.1 User unknown")],
        );
        let o = &super::classify(&rules, &r)[0];
        assert!(o.suppress_recipient, "{o:?}");
        assert_eq!(o.bounce_type, BounceType::Hard);
    }

    #[test]
    fn a_delay_never_suppresses_whatever_its_reply() {
        let rules = rules();
        // A permanent-looking reply in a recipient the report calls delayed.
        let r = report(
            Kind::Bounce,
            vec![recipient(Action::Delayed, "5.1.1", 550, "550 5.1.1 User unknown")],
        );
        let (o, explanation) = &super::explain(&rules, &r)[0];
        assert!(!o.suppress_recipient);
        assert!(o.retryable);
        assert_eq!(o.suppression, Suppression::Delayed);
        assert_ne!(o.bounce_type, BounceType::Hard);
        assert!(
            explanation.suppression.contains("delayed"),
            "{}",
            explanation.suppression
        );
    }

    #[test]
    fn a_complaint_suppresses_but_is_not_an_invalid_address() {
        let rules = rules();
        let r = report(
            Kind::Feedback,
            vec![RecipientReport {
                recipient: "bob@example.com".to_string(),
                ..RecipientReport::default()
            }],
        );
        let o = &super::classify(&rules, &r)[0];
        assert_eq!(o.category.id, rebound_engine::COMPLAINT);
        assert!(o.suppress_recipient);
        assert!(!o.retryable);
        assert_eq!(o.bounce_type, BounceType::Undetermined);
        assert_eq!(o.responsible, Responsible::Sender);
        assert_eq!((o.suppression, o.evidence), (Suppression::Complaint, Evidence::None));
        assert!(o.rule.is_none());
    }

    #[test]
    fn an_auto_reply_and_a_delivery_are_not_bounces() {
        let rules = rules();
        let auto = report(
            Kind::AutoReply,
            vec![RecipientReport {
                recipient: "bob@example.com".to_string(),
                ..RecipientReport::default()
            }],
        );
        let delivered = report(
            Kind::NotBounce,
            vec![recipient(Action::Delivered, "2.0.0", 250, "250 ok")],
        );
        for r in [auto, delivered] {
            let o = &super::classify(&rules, &r)[0];
            assert_eq!(o.category.id, rebound_engine::NOT_BOUNCE, "{:?}", r.kind);
            assert!(!o.suppress_recipient);
        }
    }
}

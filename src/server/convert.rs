//! Between the engine's types and the wire: requests to replies, outcomes to responses.

use rebound_engine::{BounceType, Evidence, Explanation, InputError, Outcome, Reply, ReplyInput, Responsible, RuleSet};
use tonic::Status;

use crate::pb;

/// Why one request item cannot be classified.
#[derive(Debug, Clone)]
pub struct ItemFault {
    pub field: &'static str,
    pub message: String,
}

impl ItemFault {
    /// As the status a unary call fails with.
    pub fn status(&self) -> Status {
        Status::invalid_argument(self.message.clone())
    }

    /// As the `error` of a batch or stream item: with the item's `id`, unless the id is what is
    /// over its limit (the answer must stay small).
    pub fn response(&self, id: String) -> pb::ClassifyResponse {
        pb::ClassifyResponse {
            id: if self.field == "id" { String::new() } else { id },
            error: Some(Box::new(pb::ItemError {
                code: "INVALID_ARGUMENT".to_string(),
                field: self.field.to_string(),
                message: self.message.clone(),
            })),
            ..Default::default()
        }
    }
}

/// One request's fields, borrowed: from a decoded `pb::ClassifyRequest`, or read in place from
/// a batch's bytes (`wire::BatchRequest`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemFields<'a> {
    pub id: &'a str,
    pub code: u32,
    pub enhanced: &'a str,
    pub text: &'a str,
    pub recipient: &'a str,
    pub remote_host: &'a str,
    pub explain: bool,
    pub omit_advice: bool,
}

impl<'a> From<&'a pb::ClassifyRequest> for ItemFields<'a> {
    fn from(req: &'a pb::ClassifyRequest) -> Self {
        ItemFields {
            id: &req.id,
            code: req.code,
            enhanced: &req.enhanced,
            text: &req.text,
            recipient: &req.recipient,
            remote_host: &req.remote_host,
            explain: req.explain,
            omit_advice: req.omit_advice,
        }
    }
}

/// The longest value each field of a request may have, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    pub id: usize,
    pub text: usize,
    pub recipient: usize,
    pub remote_host: usize,
}

impl FieldLimits {
    /// No limit on any field: for tests and tools that classify trusted input.
    pub const UNBOUNDED: FieldLimits = FieldLimits {
        id: usize::MAX,
        text: usize::MAX,
        recipient: usize::MAX,
        remote_host: usize::MAX,
    };

    /// The first field of `req` over its limit, as its fault.
    fn check(&self, req: &ItemFields<'_>) -> Result<(), ItemFault> {
        let fields = [
            ("id", req.id, self.id),
            ("text", req.text, self.text),
            ("recipient", req.recipient, self.recipient),
            ("remote_host", req.remote_host, self.remote_host),
        ];
        match fields.into_iter().find(|&(_, value, limit)| value.len() > limit) {
            None => Ok(()),
            Some((field, value, limit)) => Err(ItemFault {
                field,
                message: format!("{field}: {} bytes is over the limit of {limit}", value.len()),
            }),
        }
    }
}

/// A longer enhanced value cannot be one (`(255.999.999)` is 13 bytes), so it is refused
/// without being read.
const MAX_ENHANCED_BYTES: usize = 64;

/// How much of a bad value an error message quotes: the message travels as a header
/// (grpc-message), and a long one is refused there as metadata too large.
const QUOTED_BYTES: usize = 32;

/// `value` for an error message: at most [`QUOTED_BYTES`] of it (never splitting a character),
/// escaped, and its length when it was cut.
fn quote(value: &str) -> String {
    if value.len() <= QUOTED_BYTES {
        return format!("{value:?}");
    }
    let cut = (0..=QUOTED_BYTES)
        .rev()
        .find(|&at| value.is_char_boundary(at))
        .unwrap_or(0);
    format!("{:?}... ({} bytes)", &value[..cut], value.len())
}

/// The fault of an enhanced value that is not an enhanced status code.
fn bad_enhanced(value: &str) -> ItemFault {
    ItemFault {
        field: "enhanced",
        message: format!(
            "enhanced: {} is not an enhanced status code (x.y.z with x in 2, 4, 5)",
            quote(value)
        ),
    }
}

/// Normalises a request, enforcing the field limits.
pub fn reply_from(req: ItemFields<'_>, limits: &FieldLimits) -> Result<Reply, ItemFault> {
    limits.check(&req)?;
    if req.enhanced.len() > MAX_ENHANCED_BYTES {
        return Err(bad_enhanced(req.enhanced));
    }
    let input = ReplyInput {
        code: req.code,
        enhanced: req.enhanced,
        text: req.text,
        recipient: req.recipient,
        remote_host: req.remote_host,
    };
    Reply::parse(&input).map_err(|e| match e {
        InputError::Code(_) => ItemFault {
            field: "code",
            message: e.to_string(),
        },
        InputError::Enhanced(_) => bad_enhanced(req.enhanced),
    })
}

/// What the engine decided for one request, and why when it was asked.
pub struct Decision<'r> {
    pub outcome: Outcome<'r>,
    /// Boxed: a batch holds a decision per item until it writes the answers, and most have none.
    pub explanation: Option<Box<pb::Explanation>>,
}

/// Classifies one request against a snapshot.
pub fn decide<'r>(rules: &'r RuleSet, req: ItemFields<'_>, limits: &FieldLimits) -> Result<Decision<'r>, ItemFault> {
    let reply = reply_from(req, limits)?;
    Ok(if req.explain {
        let (outcome, explanation) = rules.explain(&reply);
        Decision {
            outcome,
            explanation: Some(Box::new(explanation_to_pb(explanation))),
        }
    } else {
        Decision {
            outcome: rules.classify(&reply),
            explanation: None,
        }
    })
}

/// The answer to `req` from its decision.
pub fn respond(req: pb::ClassifyRequest, decision: Decision<'_>) -> pb::ClassifyResponse {
    let mut response = outcome_to_pb(&decision.outcome, req.omit_advice);
    response.id = req.id;
    response.explanation = decision.explanation;
    response
}

pub fn bounce_type(b: BounceType) -> pb::BounceType {
    match b {
        BounceType::Hard => pb::BounceType::Hard,
        BounceType::Soft => pb::BounceType::Soft,
        BounceType::Block => pb::BounceType::Block,
        BounceType::Undetermined => pb::BounceType::Undetermined,
    }
}

pub fn responsible(r: Responsible) -> pb::Responsible {
    match r {
        Responsible::Recipient => pb::Responsible::Recipient,
        Responsible::Sender => pb::Responsible::Sender,
        Responsible::RecipientServer => pb::Responsible::RecipientServer,
        Responsible::Unknown => pb::Responsible::Unknown,
    }
}

pub fn evidence(e: Evidence) -> pb::Evidence {
    match e {
        Evidence::Text => pb::Evidence::Text,
        Evidence::Provider => pb::Evidence::Provider,
        Evidence::EnhancedCode => pb::Evidence::EnhancedCode,
        Evidence::ReplyCode => pb::Evidence::ReplyCode,
        Evidence::None => pb::Evidence::None,
    }
}

pub fn version(rules: &RuleSet) -> pb::RuleSetVersion {
    pb::RuleSetVersion {
        generation: rules.generation(),
        digest: rules.digest().to_string(),
    }
}

/// The answer's fields; without the category's advice when the caller has it already.
pub fn outcome_to_pb(o: &Outcome<'_>, omit_advice: bool) -> pb::ClassifyResponse {
    let (summary, remediation) = if omit_advice {
        (String::new(), Vec::new())
    } else {
        (o.category.summary.clone(), o.category.remediation.clone())
    };
    pb::ClassifyResponse {
        id: String::new(),
        category: o.category.id.clone(),
        category_name: o.category.name.clone(),
        bounce_type: bounce_type(o.bounce_type).into(),
        suppress_recipient: o.suppress_recipient,
        retryable: o.retryable,
        responsible: responsible(o.responsible).into(),
        definition: o.definition().unwrap_or_default().to_string(),
        summary,
        remediation,
        rule_id: o.rule_id().to_string(),
        provider: o.provider.map(|p| p.id.clone()).unwrap_or_default(),
        code: u32::from(o.code),
        enhanced: o.enhanced.map(|e| e.to_string()).unwrap_or_default(),
        ruleset: Some(pb::RuleSetVersion {
            generation: o.generation,
            digest: o.digest.to_string(),
        }),
        explanation: None,
        error: None,
        evidence: evidence(o.evidence).into(),
    }
}

pub fn explanation_to_pb(e: Explanation) -> pb::Explanation {
    let (provider, provider_from) = e
        .provider
        .map_or((String::new(), String::new()), |p| (p.id, p.from.to_string()));
    pb::Explanation {
        code: u32::from(e.normalised.code),
        enhanced: e.normalised.enhanced.unwrap_or_default(),
        text: e.normalised.text,
        provider,
        provider_from,
        candidates: e
            .candidates
            .into_iter()
            .map(|c| pb::Candidate {
                rule_id: c.rule,
                location: c.location,
                category: c.category,
                specificity: c.specificity,
                priority: c.priority,
                conditions: c
                    .conditions
                    .into_iter()
                    .map(|k| pb::Condition {
                        name: k.condition.to_string(),
                        held: k.held,
                        detail: k.detail,
                    })
                    .collect(),
                matched: c.matched,
            })
            .collect(),
        winner: e.winner.unwrap_or_default(),
        reason: e.reason,
        suppression: e.suppression,
        chosen: e.normalised.chosen.map_or(0, |i| u32::try_from(i).unwrap_or(u32::MAX)),
        chosen_because: e.normalised.chosen_because.to_string(),
        replies: e
            .normalised
            .replies
            .into_iter()
            .map(|r| pb::TranscriptReply {
                code: u32::from(r.code),
                enhanced: r.enhanced.unwrap_or_default(),
                command: r.command.unwrap_or_default().to_string(),
                text: r.text,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_quoted_short_and_never_split_inside_a_character() {
        assert_eq!(quote("5.x.1"), "\"5.x.1\"");
        // 31 ASCII bytes, then two-byte characters: the cut falls inside the first of them.
        let value = format!("{}{}", "a".repeat(31), "é".repeat(3000));
        let quoted = quote(&value);
        assert_eq!(quoted, format!("{:?}... (6031 bytes)", "a".repeat(31)));
        for value in ["5".repeat(6 * 1024), "日本".repeat(2000), "\u{0}".repeat(100)] {
            let fault = reply_from(
                ItemFields {
                    enhanced: &value,
                    ..ItemFields::default()
                },
                &FieldLimits::UNBOUNDED,
            )
            .unwrap_err();
            assert_eq!(fault.field, "enhanced");
            assert!(fault.message.len() < 200, "{}", fault.message);
        }
    }
}

//! Between the engine's types and the wire: requests to replies, outcomes to responses.

use rebound_engine::{BounceType, Explanation, InputError, Outcome, Reply, ReplyInput, Responsible, RuleSet};
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

    /// As the `error` of a batch or stream item.
    pub fn response(&self, id: String) -> pb::ClassifyResponse {
        pb::ClassifyResponse {
            id,
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

/// Normalises a request, enforcing the text limit.
pub fn reply_from(req: ItemFields<'_>, max_text_bytes: usize) -> Result<Reply, ItemFault> {
    if req.text.len() > max_text_bytes {
        return Err(ItemFault {
            field: "text",
            message: format!("text: {} bytes is over the limit of {max_text_bytes}", req.text.len()),
        });
    }
    let input = ReplyInput {
        code: req.code,
        enhanced: req.enhanced,
        text: req.text,
        recipient: req.recipient,
        remote_host: req.remote_host,
    };
    Reply::parse(&input).map_err(|e| ItemFault {
        field: match e {
            InputError::Code(_) => "code",
            InputError::Enhanced(_) => "enhanced",
        },
        message: e.to_string(),
    })
}

/// What the engine decided for one request, and why when it was asked.
pub struct Decision<'r> {
    pub outcome: Outcome<'r>,
    /// Boxed: a batch holds a decision per item until it writes the answers, and most have none.
    pub explanation: Option<Box<pb::Explanation>>,
}

/// Classifies one request against a snapshot.
pub fn decide<'r>(rules: &'r RuleSet, req: ItemFields<'_>, max_text_bytes: usize) -> Result<Decision<'r>, ItemFault> {
    let reply = reply_from(req, max_text_bytes)?;
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

pub fn version(rules: &RuleSet) -> pb::RuleSetVersion {
    pb::RuleSetVersion {
        generation: rules.generation(),
        digest: rules.digest().to_string(),
    }
}

/// The answer's fields; without the category's advice when the caller has it already.
fn outcome_to_pb(o: &Outcome<'_>, omit_advice: bool) -> pb::ClassifyResponse {
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
    }
}

fn explanation_to_pb(e: Explanation) -> pb::Explanation {
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
    }
}

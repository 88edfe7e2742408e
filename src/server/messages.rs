//! `ClassifyMessage` and `ClassifyMessageStream`: a raw bounce email read by `rebound_message`,
//! then each recipient it reports classified on one snapshot of the rules. The calls' machinery
//! (admission, deadlines, the blocking pool, the stream's loop) is the Classifier's own.

use prost::Message as _;
use prost::bytes::Bytes;
use prost::encoding::{self, DecodeContext, WireType};
use rebound_engine::RuleSet;
use rebound_message::{Action, Kind, MessageError, ReadOptions, Report, VerpPattern};
use tonic::{Code, Status};

use super::convert;
use super::metrics;
use super::state::RuleState;
use crate::codec::{MalformedRequest, ServerRequest};
use crate::pb;

/// A `ClassifyMessageRequest` as the server reads it: the request, or what is wrong with its
/// bytes (a stream answers that in place and reads on, as `ClassifyStream` does).
#[derive(Debug, Clone, PartialEq)]
pub enum MessageItem {
    Request(pb::ClassifyMessageRequest),
    Malformed(MalformedRequest),
}

impl ServerRequest for MessageItem {
    fn read(bytes: Bytes) -> Result<Self, Status> {
        // From `Bytes`, the email (a `Bytes` field) is a slice of the request, not a copy.
        Ok(match pb::ClassifyMessageRequest::decode(bytes.clone()) {
            Ok(request) => MessageItem::Request(request),
            Err(error) => MessageItem::Malformed(MalformedRequest {
                id: readable_id(&bytes),
                field: "request",
                message: format!("request: not a ClassifyMessageRequest: {error}"),
            }),
        })
    }
}

/// `ClassifyMessageRequest.id`.
const ID_TAG: u32 = 1;

/// The `id` of a request whose bytes are bad elsewhere, when it can be read: for its answer.
fn readable_id(bytes: &[u8]) -> String {
    let mut buf = bytes;
    let mut id = String::new();
    while let Ok((tag, wire_type)) = encoding::decode_key(&mut buf) {
        if tag == ID_TAG && wire_type == WireType::LengthDelimited {
            let value = encoding::decode_varint(&mut buf)
                .ok()
                .and_then(|len| usize::try_from(len).ok())
                .and_then(|len| buf.split_at_checked(len));
            let Some((value, rest)) = value else { break };
            if let Ok(value) = std::str::from_utf8(value) {
                value.clone_into(&mut id);
            }
            buf = rest;
        } else if encoding::skip_field(wire_type, tag, &mut buf, DecodeContext::default()).is_err() {
            break;
        }
    }
    id
}

/// What one email request may hold, and how large its answer may be. From `rebound serve`'s
/// flags, each named in the error of a request over it.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    /// Longest `id` (`--max-id-bytes`).
    pub id_bytes: usize,
    /// The email's own limits (`--max-email-bytes`, `--max-mime-depth`, `--max-mime-parts`).
    pub email: rebound_message::Limits,
    /// Most names in `headers` (`--max-returned-headers`).
    pub returned_headers: usize,
    /// Longest name in `headers` (`--max-header-name-bytes`).
    pub header_name_bytes: usize,
    /// Longest `verp` (`--max-verp-bytes`).
    pub verp_bytes: usize,
    /// Largest answer, uncompressed: the gRPC message limit (`--max-message-bytes`).
    pub answer_bytes: usize,
}

/// Why one email was not answered: the status a unary call fails with, and for a stream item
/// its `error`.
#[derive(Debug, Clone)]
pub struct MessageFault {
    code: Code,
    /// The request field at fault.
    field: &'static str,
    message: String,
    /// The metrics' label (`rebound_message_errors_total{reason}`).
    reason: &'static str,
}

impl MessageFault {
    fn new(code: Code, field: &'static str, reason: &'static str, message: String) -> Self {
        MessageFault {
            code,
            field,
            message,
            reason,
        }
    }

    /// A request whose bytes are not a `ClassifyMessageRequest`.
    pub fn malformed(bad: MalformedRequest) -> (String, Self) {
        let fault = MessageFault::new(Code::InvalidArgument, bad.field, "malformed_request", bad.message);
        (bad.id, fault)
    }

    /// Work that ended with `status` before it had an answer (past its deadline, the server
    /// shutting down).
    pub fn from_status(status: &Status) -> Self {
        let reason = match status.code() {
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::Cancelled => "cancelled",
            Code::Unavailable => "unavailable",
            _ => "internal",
        };
        MessageFault::new(status.code(), "message", reason, status.message().to_string())
    }

    /// As the status a unary call fails with. Each fault is answered once, as a status or as a
    /// stream item's `error`: counted here.
    pub fn status(&self) -> Status {
        metrics::message_error(self.reason);
        Status::new(self.code, self.message.clone())
    }

    /// As a stream item's answer: the `error` and the item's `id`, unless the id is what is over
    /// its limit (the answer must stay small).
    pub fn response(&self, id: String) -> pb::ClassifyMessageResponse {
        metrics::message_error(self.reason);
        pb::ClassifyMessageResponse {
            id: if self.field == "id" { String::new() } else { id },
            error: Some(pb::ItemError {
                code: code_name(self.code),
                field: self.field.to_string(),
                message: self.message.clone(),
            }),
            ..Default::default()
        }
    }
}

/// The gRPC name of `code` ("INVALID_ARGUMENT"), as `ItemError.code` gives it.
fn code_name(code: Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 4);
    for (at, c) in camel.char_indices() {
        if at > 0 && c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The first thing wrong with the request's own fields (not its email), each named with the
/// flag that sets its limit.
fn check_request(request: &pb::ClassifyMessageRequest, limits: &MessageLimits) -> Result<(), MessageFault> {
    let invalid = |field, message| MessageFault::new(Code::InvalidArgument, field, "invalid_request", message);
    if request.id.len() > limits.id_bytes {
        return Err(invalid(
            "id",
            over_limit("id", request.id.len(), "bytes", limits.id_bytes, "--max-id-bytes"),
        ));
    }
    if request.headers.len() > limits.returned_headers {
        return Err(invalid(
            "headers",
            over_limit(
                "headers",
                request.headers.len(),
                "names",
                limits.returned_headers,
                "--max-returned-headers",
            ),
        ));
    }
    for (at, name) in request.headers.iter().enumerate() {
        if name.len() > limits.header_name_bytes {
            return Err(invalid(
                "headers",
                format!(
                    "headers: name {} is {} bytes, over the limit of {} (--max-header-name-bytes)",
                    at + 1,
                    name.len(),
                    limits.header_name_bytes
                ),
            ));
        }
        // RFC 5322 field names: printable US-ASCII but the colon.
        if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            return Err(invalid(
                "headers",
                format!("headers: name {} ({name:?}) is not a header field name", at + 1),
            ));
        }
    }
    if request.verp.len() > limits.verp_bytes {
        return Err(invalid(
            "verp",
            over_limit(
                "verp",
                request.verp.len(),
                "bytes",
                limits.verp_bytes,
                "--max-verp-bytes",
            ),
        ));
    }
    Ok(())
}

/// `field: N unit is over the limit of M (--flag)`: what a request over one of the limits is told.
fn over_limit(field: &str, count: usize, unit: &str, limit: usize, flag: &str) -> String {
    format!("{field}: {count} {unit} is over the limit of {limit} ({flag})")
}

/// An email that could not be read: over one of the email limits (OUT_OF_RANGE, naming the
/// flag), or not an email at all (INVALID_ARGUMENT).
fn read_fault(error: &MessageError) -> MessageFault {
    let limit = error.field();
    if limit.starts_with("max_") {
        let flag = limit.replace('_', "-");
        MessageFault::new(
            Code::OutOfRange,
            "message",
            error.code(),
            format!("message: {error}; the server's limit is --{flag}"),
        )
    } else {
        MessageFault::new(
            Code::InvalidArgument,
            "message",
            error.code(),
            format!("message: {error}"),
        )
    }
}

/// Reads `request`'s email and classifies each recipient it reports on `rules`: the answer, or
/// why there is none. Counts the email and each classification in the metrics (a fault is
/// counted when it is answered).
pub fn answer(
    state: &RuleState,
    request: &pb::ClassifyMessageRequest,
    limits: &MessageLimits,
) -> Result<pb::ClassifyMessageResponse, MessageFault> {
    let rules = state.current();
    let rules = rules.as_ref();
    check_request(request, limits)?;
    // Checked here as well as by the reader, so that the message names the flag at once.
    if request.message.len() > limits.email.max_email_bytes {
        return Err(MessageFault::new(
            Code::OutOfRange,
            "message",
            "too_large",
            over_limit(
                "message",
                request.message.len(),
                "bytes",
                limits.email.max_email_bytes,
                "--max-email-bytes",
            ),
        ));
    }
    let verp = match request.verp.as_str() {
        "" => None,
        pattern => Some(VerpPattern::new(pattern).map_err(|error| {
            MessageFault::new(
                Code::InvalidArgument,
                "verp",
                "invalid_request",
                format!("verp: {error}"),
            )
        })?),
    };
    let options = ReadOptions {
        limits: limits.email,
        headers: &request.headers,
        verp: verp.as_ref(),
    };
    let report = rebound_message::read(&request.message, &options).map_err(|error| read_fault(&error))?;
    let (response, outcomes) = respond(rules, request, &report);
    let len = response.encoded_len();
    if len > limits.answer_bytes {
        return Err(MessageFault::new(
            Code::OutOfRange,
            "message",
            "answer_too_large",
            format!(
                "the answer is {len} bytes, over the message limit of {}; ask without explain or with omit_advice",
                limits.answer_bytes
            ),
        ));
    }
    metrics::message(report.kind.as_str());
    // Each recipient's reply is its diagnostic (what the engine classified).
    for (recipient, outcome) in report.recipients.iter().zip(&outcomes) {
        metrics::classification(outcome);
        state.unmatched().record(&recipient.diagnostic, outcome);
    }
    Ok(response)
}

/// The answer to `report`, read from `request`'s email, and each recipient's outcome (aligned
/// with the answer's recipients).
fn respond<'r>(
    rules: &'r RuleSet,
    request: &pb::ClassifyMessageRequest,
    report: &Report,
) -> (pb::ClassifyMessageResponse, Vec<rebound_engine::Outcome<'r>>) {
    let decided: Vec<_> = if request.explain {
        rebound_message::explain(rules, report)
            .into_iter()
            .map(|(outcome, explanation)| (outcome, Some(convert::explanation_to_pb(explanation))))
            .collect()
    } else {
        rebound_message::classify(rules, report)
            .into_iter()
            .map(|outcome| (outcome, None))
            .collect()
    };
    let recipients = report
        .recipients
        .iter()
        .zip(&decided)
        .map(|(recipient, (outcome, explanation))| {
            let o = convert::outcome_to_pb(outcome, request.omit_advice);
            pb::RecipientAnswer {
                recipient: recipient.recipient.clone(),
                original_recipient: recipient.original_recipient.clone(),
                action: action(recipient.action).into(),
                status: recipient.status.clone(),
                remote_mta: recipient.remote_mta.clone(),
                diagnostic_type: recipient.diagnostic_type.clone(),
                diagnostic: recipient.diagnostic.clone(),
                last_attempt: recipient.last_attempt.clone(),
                will_retry_until: recipient.will_retry_until.clone(),
                reply_code: u32::from(recipient.reply_code),
                command: recipient.command.clone(),
                category: o.category,
                category_name: o.category_name,
                bounce_type: o.bounce_type,
                suppress_recipient: o.suppress_recipient,
                retryable: o.retryable,
                responsible: o.responsible,
                definition: o.definition,
                summary: o.summary,
                remediation: o.remediation,
                rule_id: o.rule_id,
                provider: o.provider,
                code: o.code,
                enhanced: o.enhanced,
                explanation: explanation.clone(),
                evidence: o.evidence,
            }
        })
        .collect();
    let original = report.original.as_ref().map(|original| pb::OriginalMessage {
        message_id: original.message_id.clone(),
        from: original.from.clone(),
        to: original.to.clone(),
        subject: original.subject.clone(),
        date: original.date.clone(),
        headers: original
            .headers
            .iter()
            .map(|(name, value)| pb::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    });
    let feedback = report.feedback.as_ref().map(|feedback| pb::Feedback {
        r#type: feedback.feedback_type.clone(),
        user_agent: feedback.user_agent.clone(),
        source_ip: feedback.source_ip.clone(),
    });
    let response = pb::ClassifyMessageResponse {
        id: request.id.clone(),
        kind: kind(report.kind).into(),
        reporting_mta: report.reporting_mta.clone(),
        arrival_date: report.arrival_date.clone(),
        original,
        feedback,
        recipients,
        ruleset: Some(convert::version(rules)),
        error: None,
        format: report.format.to_string(),
    };
    (response, decided.into_iter().map(|(outcome, _)| outcome).collect())
}

fn kind(kind: Kind) -> pb::MessageKind {
    match kind {
        Kind::Bounce => pb::MessageKind::Bounce,
        Kind::AutoReply => pb::MessageKind::AutoReply,
        Kind::Feedback => pb::MessageKind::Feedback,
        Kind::Challenge => pb::MessageKind::Challenge,
        Kind::NotBounce => pb::MessageKind::NotBounce,
    }
}

fn action(action: Option<Action>) -> pb::RecipientAction {
    match action {
        None => pb::RecipientAction::Unspecified,
        Some(Action::Failed) => pb::RecipientAction::Failed,
        Some(Action::Delayed) => pb::RecipientAction::Delayed,
        Some(Action::Delivered) => pb::RecipientAction::Delivered,
        Some(Action::Relayed) => pb::RecipientAction::Relayed,
        Some(Action::Expanded) => pb::RecipientAction::Expanded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_grpc_names() {
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::OutOfRange), "OUT_OF_RANGE");
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(code_name(Code::Internal), "INTERNAL");
    }

    #[test]
    fn the_id_of_a_malformed_request_is_found_after_a_bad_field() {
        // Field 3 (a header name) that is not UTF-8, then the id.
        let mut bytes = vec![0x1a, 0x02, 0xc3, 0x28];
        bytes.extend(
            pb::ClassifyMessageRequest {
                id: "m-7".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        match MessageItem::read(Bytes::from(bytes)).unwrap() {
            MessageItem::Malformed(bad) => {
                assert_eq!(bad.id, "m-7");
                assert!(bad.message.starts_with("request: "), "{}", bad.message);
            }
            other => panic!("read as {other:?}"),
        }
        // Cut short inside a length: no id, no panic.
        assert_eq!(readable_id(&[0x0a, 0x05, b'a']), "");
    }

    /// The answer's fields from a report, independent of what the reader recognises.
    #[test]
    fn a_report_is_answered_field_by_field_with_each_recipient_classified() {
        use rebound_message::{Feedback, Original, RecipientReport};
        let state = super::super::state::RuleState::load(super::super::state::RuleOrigin::Embedded).unwrap();
        let rules = state.current();
        let report = Report {
            kind: Kind::Bounce,
            format: "rfc3464",
            reporting_mta: "dns; mx.example.net".into(),
            arrival_date: "Sun, 6 Dec 2026 09:59:58 +0000".into(),
            original: Some(Original {
                message_id: "orig-1@example.org".into(),
                subject: "News".into(),
                headers: vec![("X-Campaign-Id".into(), "w26".into())],
                ..Original::default()
            }),
            feedback: Some(Feedback {
                feedback_type: "abuse".into(),
                ..Feedback::default()
            }),
            recipients: vec![
                RecipientReport {
                    recipient: "bob@example.com".into(),
                    action: Some(Action::Failed),
                    status: "5.1.1".into(),
                    reply_code: 550,
                    diagnostic: "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown".into(),
                    remote_mta: "mx.example.com".into(),
                    ..RecipientReport::default()
                },
                RecipientReport {
                    recipient: "carol@example.com".into(),
                    action: Some(Action::Delayed),
                    status: "4.2.2".into(),
                    reply_code: 452,
                    diagnostic: "452 4.2.2 Mailbox full".into(),
                    ..RecipientReport::default()
                },
            ],
            trace: Vec::new(),
        };
        let request = pb::ClassifyMessageRequest {
            id: "m-1".into(),
            explain: true,
            omit_advice: true,
            ..Default::default()
        };
        let (answer, outcomes) = respond(&rules, &request, &report);
        assert_eq!(outcomes.len(), 2);
        assert_eq!((answer.id.as_str(), answer.kind()), ("m-1", pb::MessageKind::Bounce));
        assert_eq!(answer.format, "rfc3464");
        assert_eq!(answer.reporting_mta, "dns; mx.example.net");
        let original = answer.original.as_ref().unwrap();
        assert_eq!(original.message_id, "orig-1@example.org");
        assert_eq!(
            (original.headers[0].name.as_str(), original.headers[0].value.as_str()),
            ("X-Campaign-Id", "w26")
        );
        assert_eq!(answer.feedback.as_ref().unwrap().r#type, "abuse");
        assert_eq!(answer.ruleset, Some(convert::version(&rules)));
        let [bob, carol] = &answer.recipients[..] else {
            panic!("{:?}", answer.recipients)
        };
        assert_eq!(
            (bob.action(), bob.category.as_str()),
            (pb::RecipientAction::Failed, "invalid_address")
        );
        assert!(bob.suppress_recipient && bob.summary.is_empty());
        assert_eq!((bob.reply_code, bob.code, bob.enhanced.as_str()), (550, 550, "5.1.1"));
        assert_eq!(bob.explanation.as_ref().unwrap().winner, bob.rule_id);
        assert_eq!(
            (carol.action(), carol.category.as_str()),
            (pb::RecipientAction::Delayed, "mailbox_full")
        );
        assert!(carol.retryable && !carol.suppress_recipient);
    }

    /// The embedded rules, loaded once for every case (a load takes a while in a debug build).
    static EMBEDDED: std::sync::LazyLock<super::super::state::RuleState> = std::sync::LazyLock::new(|| {
        super::super::state::RuleState::load(super::super::state::RuleOrigin::Embedded).unwrap()
    });

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whatever the bytes of a request or of its email, the answer is an answer or a fault,
        /// within the limits: never a panic.
        #[test]
        fn any_bytes_are_answered_or_refused(
            request in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            email in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        ) {
            let limits = MessageLimits {
                id_bytes: 64,
                email: rebound_message::Limits { max_email_bytes: 1024, max_mime_depth: 2, max_mime_parts: 8 },
                returned_headers: 4,
                header_name_bytes: 32,
                verp_bytes: 64,
                answer_bytes: 64 * 1024,
            };
            let _ = MessageItem::read(Bytes::from(request));
            let request = pb::ClassifyMessageRequest {
                message: email.clone().into(),
                headers: vec!["X-Campaign-Id".into()],
                ..Default::default()
            };
            match answer(&EMBEDDED, &request, &limits) {
                Ok(answer) => proptest::prop_assert!(answer.encoded_len() <= limits.answer_bytes),
                Err(fault) => {
                    proptest::prop_assert!(matches!(fault.code, Code::InvalidArgument | Code::OutOfRange));
                    if email.len() > 1024 {
                        proptest::prop_assert!(fault.message.contains("--max-email-bytes"));
                    }
                }
            }
        }
    }

    #[test]
    fn header_names_are_checked_for_count_length_and_form() {
        let limits = MessageLimits {
            id_bytes: 8,
            email: rebound_message::Limits::default(),
            returned_headers: 2,
            header_name_bytes: 12,
            verp_bytes: 16,
            answer_bytes: 1 << 20,
        };
        let request = |headers: &[&str], verp: &str| pb::ClassifyMessageRequest {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            verp: verp.into(),
            ..Default::default()
        };
        assert!(check_request(&request(&["X-Campaign-Id"][..0], ""), &limits).is_ok());
        assert!(check_request(&request(&["X-Tag", "List-Id"], ""), &limits).is_ok());
        let fault = check_request(&request(&["a", "b", "c"], ""), &limits).unwrap_err();
        assert!(fault.message.contains("--max-returned-headers"), "{}", fault.message);
        let fault = check_request(&request(&["X-Campaign-Id-Long"], ""), &limits).unwrap_err();
        assert!(fault.message.contains("--max-header-name-bytes"), "{}", fault.message);
        for bad in ["", "X Tag", "X:Tag", "Été"] {
            let fault = check_request(&request(&[bad], ""), &limits).unwrap_err();
            assert_eq!((fault.code, fault.field), (Code::InvalidArgument, "headers"), "{bad:?}");
        }
        let fault = check_request(&request(&[], &"v".repeat(17)), &limits).unwrap_err();
        assert!(fault.message.contains("--max-verp-bytes"), "{}", fault.message);
    }
}

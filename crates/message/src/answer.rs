//! The message answer's wire shape (DESIGN.md, "Bounce messages"), shared by the CLI's JSON
//! lines and the tests: the report's fields in DESIGN's order, each recipient followed by its
//! outcome's fields exactly as `rebound_engine::Outcome` writes them.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

use crate::report::{Action, Feedback, Original, RecipientReport, Report};
use crate::{MessageError, RecipientOutcome};

/// One message's answer: `id`, `kind`, `format`, `reporting_mta`, `arrival_date`, `original`,
/// `feedback`, `recipients`. `outcomes` must be aligned with `report.recipients` (what
/// [`crate::classify`] returns); a recipient without an outcome is written without outcome fields.
#[derive(Debug, Clone, Copy)]
pub struct MessageAnswer<'a> {
    /// The caller's id, or the file path (and message number in an mbox) in the CLI.
    pub id: &'a str,
    /// What the reader made of the message.
    pub report: &'a Report,
    /// One outcome per recipient, in the report's order.
    pub outcomes: &'a [RecipientOutcome<'a>],
}

impl Serialize for MessageAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.report;
        let recipients: Vec<RecipientAnswer<'_>> = r
            .recipients
            .iter()
            .enumerate()
            .map(|(i, recipient)| RecipientAnswer {
                recipient,
                outcome: self.outcomes.get(i),
            })
            .collect();
        let mut s = serializer.serialize_struct("MessageAnswer", 8)?;
        s.serialize_field("id", self.id)?;
        s.serialize_field("kind", r.kind.as_str())?;
        s.serialize_field("format", r.format)?;
        s.serialize_field("reporting_mta", &r.reporting_mta)?;
        s.serialize_field("arrival_date", &r.arrival_date)?;
        s.serialize_field("original", &r.original.as_ref().map(OriginalAnswer))?;
        s.serialize_field("feedback", &r.feedback.as_ref().map(FeedbackAnswer))?;
        s.serialize_field("recipients", &recipients)?;
        s.end()
    }
}

/// The original's fields, with the asked-for headers as an object in the order asked.
struct OriginalAnswer<'a>(&'a Original);

impl Serialize for OriginalAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        let mut s = serializer.serialize_struct("Original", 6)?;
        s.serialize_field("message_id", &o.message_id)?;
        s.serialize_field("from", &o.from)?;
        s.serialize_field("to", &o.to)?;
        s.serialize_field("subject", &o.subject)?;
        s.serialize_field("date", &o.date)?;
        s.serialize_field("headers", &HeadersAnswer(&o.headers))?;
        s.end()
    }
}

struct HeadersAnswer<'a>(&'a [(String, String)]);

impl Serialize for HeadersAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            m.serialize_entry(name, value)?;
        }
        m.end()
    }
}

struct FeedbackAnswer<'a>(&'a Feedback);

impl Serialize for FeedbackAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut s = serializer.serialize_struct("Feedback", 3)?;
        s.serialize_field("type", &f.feedback_type)?;
        s.serialize_field("user_agent", &f.user_agent)?;
        s.serialize_field("source_ip", &f.source_ip)?;
        s.end()
    }
}

/// One recipient: its report fields, then its outcome's.
struct RecipientAnswer<'a> {
    recipient: &'a RecipientReport,
    outcome: Option<&'a RecipientOutcome<'a>>,
}

impl Serialize for RecipientAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Fields<'a> {
            recipient: &'a str,
            original_recipient: &'a str,
            action: Option<&'static str>,
            status: &'a str,
            remote_mta: &'a str,
            diagnostic_type: &'a str,
            diagnostic: &'a str,
            last_attempt: &'a str,
            will_retry_until: &'a str,
            #[serde(flatten, skip_serializing_if = "Option::is_none")]
            outcome: Option<&'a RecipientOutcome<'a>>,
        }
        let r = self.recipient;
        Fields {
            recipient: &r.recipient,
            original_recipient: &r.original_recipient,
            action: r.action.map(Action::as_str),
            status: &r.status,
            remote_mta: &r.remote_mta,
            diagnostic_type: &r.diagnostic_type,
            diagnostic: &r.diagnostic,
            last_attempt: &r.last_attempt,
            will_retry_until: &r.will_retry_until,
            outcome: self.outcome,
        }
        .serialize(serializer)
    }
}

/// A message that could not be read: `id` and `error: {code, field, message}`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorAnswer<'a> {
    /// The caller's id, or the file path in the CLI.
    pub id: &'a str,
    /// Why it could not be read.
    pub error: &'a MessageError,
}

impl Serialize for ErrorAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Error<'a> {
            code: &'a str,
            field: &'a str,
            message: String,
        }
        let mut s = serializer.serialize_struct("ErrorAnswer", 2)?;
        s.serialize_field("id", self.id)?;
        s.serialize_field(
            "error",
            &Error {
                code: self.error.code(),
                field: self.error.field(),
                message: self.error.to_string(),
            },
        )?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::{report, rules};
    use crate::report::Kind;

    #[test]
    fn a_message_answer_writes_designs_fields_in_order() {
        let rules = rules();
        let mut r = report(
            Kind::Bounce,
            vec![RecipientReport {
                recipient: "bob@example.com".to_string(),
                action: Some(Action::Failed),
                status: "5.1.1".to_string(),
                reply_code: 550,
                diagnostic_type: "smtp".to_string(),
                diagnostic: "550 5.1.1 User unknown".to_string(),
                ..RecipientReport::default()
            }],
        );
        r.original = Some(Original {
            message_id: "m1@example.org".to_string(),
            headers: vec![("X-Campaign-Id".to_string(), "c-42".to_string())],
            ..Original::default()
        });
        let outcomes = crate::classify(&rules, &r);
        let answer = MessageAnswer {
            id: "one",
            report: &r,
            outcomes: &outcomes,
        };
        let json = serde_json::to_string(&answer).unwrap();
        let order = [
            "\"id\":\"one\"",
            "\"kind\":\"bounce\"",
            "\"reporting_mta\"",
            "\"arrival_date\"",
            "\"original\":{\"message_id\":\"m1@example.org\"",
            "\"headers\":{\"X-Campaign-Id\":\"c-42\"}",
            "\"feedback\":null",
            "\"recipients\":[{\"recipient\":\"bob@example.com\"",
            "\"action\":\"failed\"",
            "\"status\":\"5.1.1\"",
            "\"will_retry_until\"",
            "\"category\":",
            "\"evidence\":",
            "\"ruleset\":",
        ];
        let mut at = 0;
        for field in order {
            let found = json.get(at..).and_then(|rest| rest.find(field));
            assert!(found.is_some(), "{field} missing or out of order in {json}");
            at += found.unwrap_or(0);
        }
    }

    #[test]
    fn an_error_answer_names_code_field_and_message() {
        let e = MessageError::TooManyParts { limit: 5 };
        let json = serde_json::to_value(ErrorAnswer { id: "x", error: &e }).unwrap();
        assert_eq!(json["id"], "x");
        assert_eq!(json["error"]["code"], "too_many_parts");
        assert_eq!(json["error"]["field"], "max_mime_parts");
        assert!(json["error"]["message"].as_str().unwrap().contains("5"));
    }
}

//! Complaints: ARF feedback reports (RFC 5965, `message/feedback-report`) and the layouts of
//! feedback loops that do not follow it (Hotmail's forwarded message marked with
//! `X-HmXmrOriginalRecipient`, Amazon SES's JSON complaint notification, Apple Mail's
//! unsubscribe request).

use crate::dsn::{fields, typed};
use crate::mime::{Mail, content_type_header, header_text};
use crate::mta::text::address_in;
use crate::report::{Feedback, Original};

/// A complaint as read.
#[derive(Debug, Default)]
pub(crate) struct Complaint {
    /// Its fields.
    pub feedback: Feedback,
    /// The complaining recipients, in the order given.
    pub recipients: Vec<String>,
    /// `Arrival-Date`, when given.
    pub arrival_date: String,
    /// Where it was read (for the trace).
    pub from: &'static str,
}

/// Reads a complaint from `mail`, if it is one; `original` gives the recipients when the
/// report names none (the complained-of message's `To`).
pub(crate) fn read(mail: &Mail<'_>, original: Option<&Original>) -> Option<Complaint> {
    let mut complaint = standard(mail)
        .or_else(|| hotmail(mail))
        .or_else(|| ses_json(mail))
        .or_else(|| apple_unsubscribe(mail))?;
    if complaint.recipients.is_empty()
        && let Some(o) = original
    {
        complaint.recipients = o.to.split(',').filter_map(address_in).collect();
    }
    Some(complaint)
}

/// RFC 5965: a `message/feedback-report` part, or a `multipart/report;
/// report-type=feedback-report` whose report part is mislabelled.
fn standard(mail: &Mail<'_>) -> Option<Complaint> {
    let report_type = report_type_is(mail, "feedback-report");
    let part = mail.parts_of("message/feedback-report").find(|p| p.depth == 0);
    let (text, from) = match part {
        Some(p) => (p.text.as_ref(), "message/feedback-report part"),
        None if report_type => {
            // The report part under another type: the first top-level part with `Feedback-Type`.
            let p = mail
                .parts
                .iter()
                .filter(|p| p.depth == 0 && p.message.is_none())
                .find(|p| p.text.to_ascii_lowercase().contains("feedback-type:"))?;
            (p.text.as_ref(), "multipart/report; report-type=feedback-report")
        }
        None => return None,
    };
    let mut c = Complaint {
        from,
        ..Complaint::default()
    };
    for line in fields(text).flatten() {
        let value = line.value.trim();
        match line.name.to_ascii_lowercase().as_str() {
            "feedback-type" if c.feedback.feedback_type.is_empty() => {
                c.feedback.feedback_type = value.to_ascii_lowercase();
            }
            "user-agent" if c.feedback.user_agent.is_empty() => c.feedback.user_agent = value.to_string(),
            "source-ip" if c.feedback.source_ip.is_empty() => c.feedback.source_ip = value.to_string(),
            "arrival-date" | "received-date" if c.arrival_date.is_empty() => c.arrival_date = value.to_string(),
            "original-rcpt-to" | "removal-recipient" => {
                if let Some(a) = address_in(typed(value).1)
                    && !c.recipients.iter().any(|r| r.eq_ignore_ascii_case(&a))
                {
                    c.recipients.push(a);
                }
            }
            _ => {}
        }
    }
    if c.feedback.feedback_type.is_empty() {
        c.feedback.feedback_type = "other".to_string();
    }
    Some(c)
}

/// Hotmail's complaint: the complained-of message forwarded as an attachment, its headers
/// carrying `X-HmXmrOriginalRecipient` (the complaining user).
fn hotmail(mail: &Mail<'_>) -> Option<Complaint> {
    let recipient = mail
        .parts
        .iter()
        .filter(|p| p.depth == 0)
        .filter_map(|p| p.message)
        .find_map(|m| header_text(m.root_part().headers.as_slice(), "X-HmXmrOriginalRecipient"))
        .and_then(address_in)?;
    Some(Complaint {
        feedback: Feedback {
            feedback_type: "abuse".to_string(),
            ..Feedback::default()
        },
        recipients: vec![recipient],
        arrival_date: String::new(),
        from: "message/rfc822 part with X-HmXmrOriginalRecipient (Hotmail complaint)",
    })
}

/// Amazon SES's complaint notification: JSON in the body, `"notificationType":"Complaint"`,
/// wrapped at a fixed width by the mailer (a line break and one space inserted).
fn ses_json(mail: &Mail<'_>) -> Option<Complaint> {
    if !mail.body.contains("\"notificationType\"") {
        return None;
    }
    let json = mail.body.replace("\n ", "").replace('\n', "");
    let complaint_at = json.find("\"notificationType\":\"Complaint\"")?;
    let json = json.get(complaint_at..)?;
    let mut c = Complaint {
        from: "Amazon SES complaint notification (JSON)",
        ..Complaint::default()
    };
    c.feedback.feedback_type = json_string(json, "complaintFeedbackType").unwrap_or_else(|| "other".to_string());
    c.feedback.user_agent = json_string(json, "userAgent").unwrap_or_default();
    c.arrival_date = json_string(json, "arrivalDate").unwrap_or_default();
    let list = json.split_once("\"complainedRecipients\"")?.1;
    let list = list.split_once(']').map_or(list, |(l, _)| l);
    let mut rest = list;
    while let Some((_, after)) = rest.split_once("\"emailAddress\"") {
        if let Some(a) = json_string_value(after) {
            c.recipients.push(a);
        }
        rest = after;
    }
    Some(c)
}

/// The string value of the first `"key": "value"` in `json`.
fn json_string(json: &str, key: &str) -> Option<String> {
    let (_, after) = json.split_once(&format!("\"{key}\""))?;
    json_string_value(after)
}

/// `: "value"` at the start of `after` (escapes other than `\"` are kept as written).
fn json_string_value(after: &str) -> Option<String> {
    let after = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut escaped = false;
    for c in after.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(out),
            _ => {
                out.push(c);
                escaped = false;
            }
        }
    }
    None
}

/// Apple Mail's unsubscribe request (`X-Apple-Unsubscribe: true`): the recipient asks to be
/// mailed no more, which is an opt-out complaint from its sender.
fn apple_unsubscribe(mail: &Mail<'_>) -> Option<Complaint> {
    let flag = mail.header("X-Apple-Unsubscribe")?;
    if !flag.trim().eq_ignore_ascii_case("true") {
        return None;
    }
    let from = mail.from_address();
    Some(Complaint {
        feedback: Feedback {
            feedback_type: "opt-out".to_string(),
            user_agent: String::new(),
            source_ip: String::new(),
        },
        recipients: if from.is_empty() {
            Vec::new()
        } else {
            vec![from.to_string()]
        },
        arrival_date: String::new(),
        from: "header X-Apple-Unsubscribe (Apple Mail unsubscribe)",
    })
}

/// Whether the top-level content type is `multipart/report` with `report-type` `kind`.
pub(crate) fn report_type_is(mail: &Mail<'_>, kind: &str) -> bool {
    let headers = mail.message.root_part().headers.as_slice();
    content_type_header(headers, "Content-Type")
        .is_some_and(|(t, s)| t == "multipart" && s.as_deref() == Some("report"))
        && headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case("Content-Type"))
            .and_then(|h| h.value.as_content_type())
            .and_then(|ct| ct.attribute("report-type"))
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

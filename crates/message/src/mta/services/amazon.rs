//! Amazon's reports: Amazon SES's bounce notifications delivered by mail (the SNS JSON
//! document, `notificationType` or `eventType` `Bounce`); Amazon SES's older DSNs, whose
//! `Diagnostic-Code` wraps the remote reply as `5.1.0 - Unknown address error 550-'5.7.1 ...'`;
//! and Amazon WorkMail's report, which copies the DSN fields into its text after
//! `Technical report:`.

use serde_json::Value;

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, failed_loose, fold, is_address};
use crate::mta::{Cues, Reader};
use crate::report::{Action, RecipientReport};

/// An Amazon SES notification (through SNS to a mailbox).
pub(in crate::mta) const SES_NOTIFICATION: Reader = Reader {
    name: "amazonses",
    cues: Cues {
        from: &["@sns.amazonaws.com"],
        subject: &[],
        headers: &[],
        body: &[
            "\"notificationtype\":\"bounce\"",
            "\"eventtype\":\"bounce\"",
            "\"eventtype\":\"deliverydelay\"",
        ],
    },
    read: read_notification,
};

/// Amazon SES's older DSNs (sent from `email-bounces.amazonses.com`).
pub(in crate::mta) const SES_DSN: Reader = Reader {
    name: "amazonses",
    cues: Cues {
        from: &["@email-bounces.amazonses.com"],
        subject: &[],
        headers: &[],
        body: &[],
    },
    read: read_ses_dsn,
};

/// Amazon WorkMail.
pub(in crate::mta) const WORKMAIL: Reader = Reader {
    name: "amazonworkmail",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &["an error occurred while trying to deliver the mail to the following recipients:"],
    },
    read: read_workmail,
};

fn read_notification(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(document) = notification(&mail.body) else {
        return Vec::new();
    };
    let kind = document
        .get("notificationType")
        .or_else(|| document.get("eventType"))
        .and_then(Value::as_str)
        .unwrap_or("");
    // Complaints and deliveries carry no failed recipient; a delay (event publishing's
    // `DeliveryDelay`) carries delayed ones.
    let (event, list, action) = match kind.to_ascii_lowercase().as_str() {
        "bounce" => ("bounce", "bouncedRecipients", Action::Failed),
        "deliverydelay" => ("deliveryDelay", "delayedRecipients", Action::Delayed),
        _ => return Vec::new(),
    };
    let Some(event) = document.get(event) else {
        return Vec::new();
    };
    let remote = event.get("remoteMtaIp").and_then(Value::as_str).unwrap_or("");
    let Some(recipients) = event.get(list).and_then(Value::as_array) else {
        return Vec::new();
    };
    recipients
        .iter()
        .filter_map(|r| {
            let address = r.get("emailAddress").and_then(Value::as_str)?;
            let field = |name: &str| r.get(name).and_then(Value::as_str).unwrap_or("");
            let (kind, reply) = typed(field("diagnosticCode"));
            let mut report = failed_loose(address, reply);
            report.action = Some(action);
            if !kind.is_empty() && !reply.is_empty() {
                report.diagnostic_type = kind.to_ascii_lowercase();
            }
            apply_fields(&mut report, field("action"), field("status"));
            if report.remote_mta.is_empty() {
                report.remote_mta = remote.to_string();
            }
            Some(report)
        })
        .collect()
}

/// A DSN-style value `type; value` (`smtp; 550 ...`, `rfc822; bob@example.com`) as its type and
/// value; a value without a one-word type before its first `;` is all value.
fn typed(value: &str) -> (&str, &str) {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.trim().is_empty() && !kind.trim().contains(char::is_whitespace) => {
            (kind.trim(), rest.trim())
        }
        _ => ("", value.trim()),
    }
}

/// The notification's JSON document: SNS breaks lines longer than the mail limit with `!`, a
/// line end and a space, which are taken out again. An SNS envelope (`"Message": "{...}"`) is
/// opened.
fn notification(body: &str) -> Option<Value> {
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    let json = body.get(start..=end)?;
    let json = json.replace("!\n ", "");
    let value: Value = serde_json::from_str(&json).ok()?;
    match value.get("Message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).ok(),
        None => Some(value),
    }
}

/// The report's own `Action` and `Status`, which take precedence over what the diagnostic says.
fn apply_fields(report: &mut RecipientReport, action: &str, status: &str) {
    match action.trim().to_ascii_lowercase().as_str() {
        "failed" => report.action = Some(Action::Failed),
        "delayed" => report.action = Some(Action::Delayed),
        _ => {}
    }
    let status = status.trim();
    if rebound_engine::Enhanced::parse(status).is_some() {
        report.status = status.to_string();
    }
}

/// Each recipient of the delivery-status part with the remote reply its `Diagnostic-Code`
/// quotes; recipients whose diagnostic is not in SES's wrapper are left to the DSN reader.
fn read_ses_dsn(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let mut out = Vec::new();
    for part in mail
        .parts
        .iter()
        .filter(|p| p.content_type == "message/delivery-status")
    {
        let mut recipient = String::new();
        let mut diagnostic = String::new();
        let mut in_diagnostic = false;
        for line in part.text.lines() {
            if in_diagnostic && line.starts_with([' ', '\t']) {
                diagnostic.push(' ');
                diagnostic.push_str(line.trim());
                continue;
            }
            in_diagnostic = false;
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (_, bare) = typed(value);
            match name.trim().to_ascii_lowercase().as_str() {
                "final-recipient" => {
                    finish_ses(&mut recipient, &mut diagnostic, &mut out);
                    recipient = bare.to_string();
                }
                "diagnostic-code" => {
                    diagnostic = bare.to_string();
                    in_diagnostic = true;
                }
                _ => {}
            }
        }
        finish_ses(&mut recipient, &mut diagnostic, &mut out);
    }
    out
}

/// Ends one recipient's group: kept when its diagnostic is in SES's wrapper.
fn finish_ses(recipient: &mut String, diagnostic: &mut String, out: &mut Vec<RecipientReport>) {
    if let Some(reply) = ses_quoted_reply(diagnostic)
        && is_address(recipient)
    {
        out.push(failed_loose(recipient, &reply));
    }
    recipient.clear();
    diagnostic.clear();
}

/// `5.1.0 - Unknown address error 550-'5.7.1 <bob@example.org>... Access denied' (delivery
/// attempts: 0)` gives `550 5.7.1 <bob@example.org>... Access denied`: the remote code before
/// `-'` and the reply up to the last quote.
fn ses_quoted_reply(diagnostic: &str) -> Option<String> {
    let open = diagnostic.find("-'")?;
    let code = diagnostic.get(open.checked_sub(3)?..open)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let quoted = diagnostic.get(open + 2..)?;
    let text = quoted.get(..quoted.rfind('\'')?)?;
    Some(format!("{code} {}", text.trim()))
}

fn read_workmail(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let fields = after_line_with(&mail.body, "technical report:").unwrap_or("");
    let mut out = Vec::new();
    // One group of fields per recipient, groups separated by blank lines.
    for group in fields.split("\n\n") {
        let mut recipient = "";
        let (mut action, mut status, mut diagnostic, mut remote) = ("", "", String::new(), "");
        let mut last = "";
        for line in group.lines() {
            if line.starts_with([' ', '\t']) && last == "diagnostic-code" {
                diagnostic.push(' ');
                diagnostic.push_str(line.trim());
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            // `rfc822; bob@example.com`, `smtp; 550 ...`, `dns; mx.example.com`: the value after the type.
            let (_, bare) = typed(value);
            last = "";
            match name.trim().to_ascii_lowercase().as_str() {
                "final-recipient" => recipient = bare,
                "action" => action = value,
                "status" => status = value,
                "remote-mta" => remote = bare,
                "diagnostic-code" => {
                    diagnostic = bare.to_string();
                    last = "diagnostic-code";
                }
                _ => {}
            }
        }
        if is_address(recipient) {
            let mut report = failed_loose(recipient, &fold(&diagnostic));
            apply_fields(&mut report, action, status);
            if !remote.is_empty() {
                report.remote_mta = remote.to_ascii_lowercase();
            }
            out.push(report);
        }
    }
    if out.is_empty() {
        // No fields (Amazon SES puts them in a DSN part instead): the addresses listed, with no reply.
        let list = after_line_with(&mail.body, "to the following recipients:").unwrap_or("");
        out = before_line_starting(list, &["technical report:"])
            .lines()
            .filter_map(crate::mta::text::lone_address)
            .map(|a| failed_loose(&a, ""))
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn ses_notifications_give_their_bounced_recipients_only() {
        let bounce = "From: SES <no-reply@sns.amazonaws.com>\nSubject: AWS Notification Message\n\n\
            {\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bouncedRecipients\":\
            [{\"emailAddress\":\"ann@example.org\",\"action\":\"failed\",\"status\":\"5.1.1\",\
            \"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"}],\"reportingMTA\":\"dsn; a1.example.com\"},\
            \"mail\":{\"destination\":[\"ann@example.org\"],\"headers\":[{\"name\":\"!\n Subject\"}]}}\n\n--\n\
            If you wish to stop receiving notifications from this topic, click below.\n";
        let got = read(bounce, &SES_NOTIFICATION);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.1.1"));
        assert_eq!(got[0].diagnostic, "550 5.1.1 user unknown");

        let delay = "From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n\
            {\"eventType\":\"DeliveryDelay\",\"deliveryDelay\":{\"delayType\":\"TransientCommunicationFailure\",\
            \"delayedRecipients\":[{\"emailAddress\":\"bob@example.org\",\"status\":\"4.4.1\",\
            \"diagnosticCode\":\"smtp; 421 4.4.1 Unable to connect; try later\"}]}}\n";
        let got = read(delay, &SES_NOTIFICATION);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].action, got[0].reply_code, got[0].status.as_str()),
            (Some(Action::Delayed), 421, "4.4.1")
        );
        assert_eq!(got[0].diagnostic, "421 4.4.1 Unable to connect; try later");
        assert_eq!(typed("550 5.1.1 RESOLVER.ADR.RecipNotFound; not found").0, "");

        let complaint = bounce.replace("\"notificationType\":\"Bounce\"", "\"notificationType\":\"Complaint\"");
        assert!(read(&complaint, &SES_NOTIFICATION).is_empty());
        let broken = "From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n{\"notificationType\":\n";
        assert!(read(broken, &SES_NOTIFICATION).is_empty());
    }

    #[test]
    fn ses_dsns_give_the_remote_reply_they_quote() {
        let raw = "From: MAILER-DAEMON@email-bounces.amazonses.com\nSubject: Delivery Status Notification (Failure)\n\
            MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n\
            --b\nContent-Type: text/plain\n\n5.1.0 - Unknown address error 550-'5.7.1 Access denied'\n\
            --b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; a1.example.com\n\n\
            Final-Recipient: rfc822;ann@example.org\nAction: failed\nStatus: 5.0.0 (permanent failure)\n\
            Diagnostic-Code: smtp; 5.1.0 - Unknown address error 550-'5.7.1 <ann@example.org>... it\'s\n\
            \x20denied' (delivery attempts: 0)\n\n\
            Final-Recipient: rfc822;bob@example.org\nAction: failed\nDiagnostic-Code: smtp; 550 5.1.1 unknown\n--b--\n";
        let got = read(raw, &SES_DSN);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.7.1"));
        assert_eq!(got[0].diagnostic, "550 5.7.1 <ann@example.org>... it's denied");
        let plain = "From: MAILER-DAEMON@email-bounces.amazonses.com\nSubject: hi\n\n5.1.0 - text\n";
        assert!(read(plain, &SES_DSN).is_empty());
    }

    #[test]
    fn workmail_reads_the_fields_of_its_technical_report() {
        let raw = "From: MAILER-DAEMON@us-west-2.amazonses.com\nSubject: Delivery Status Notification (Failure)\n\n\
            An error occurred while trying to deliver the mail to the following recipients:\nann@example.org\n\n\
            Technical report:\n\nReporting-MTA: dsn; a1.example.com\n\n\
            Action: failed\nFinal-Recipient: rfc822; ann@example.org\n\
            Diagnostic-Code: smtp; 550 5.2.2 <ann@example.org>... Mailbox Full\nStatus: 5.2.2\n";
        let got = read(raw, &WORKMAIL);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.2.2"));
        let other = "From: a@example.net\nSubject: hi\n\nTechnical report:\nnothing to say\n";
        assert!(read(other, &WORKMAIL).is_empty());
    }
}

//! The report of the MTA Sisimai calls X3: a framed "This is an automatically generated Delivery
//! Status Notification." listing `* address` lines under "Delivery to the following recipients
//! failed permanently:" (or "...was aborted after N hour(s):"), then a "Technical details:" frame
//! holding the reply.

use super::layout::{after_line, before_line, contains_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed};
use crate::report::{Action, RecipientReport};

const OPENINGS: &[&str] = &[
    "the following recipients failed permanently:",
    "the following recipients was aborted after",
];

const DETAILS: &[&str] = &["technical details:"];

/// The frame's rule, which closes each section.
const RULE: &[&str] = &["======"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(section) = after_line(body, OPENINGS) else {
        return Vec::new();
    };
    let details = after_line(body, DETAILS).map_or("", |d| before_line(d, RULE)).trim();
    let delayed = contains_any(body, &["was aborted after"]);
    let addresses = before_line(section, RULE)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("* ").and_then(address_in));
    let mut out = each_failed(addresses, details);
    if delayed {
        out.iter_mut().for_each(|r| r.action = Some(Action::Delayed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_starred_address_is_a_recipient_with_the_technical_details() {
        let raw = r#"From: Mail Delivery System <Mail.Delivery.System@mx.example.org>
Subject: Delivery status notification

============================================================================
      This is an automatically generated Delivery Status Notification.

Delivery to the following recipients failed permanently:

   * bob@example.net

============================================================================
                             Technical details:

SMTP:RCPT host 192.0.2.8: 553 5.3.0 <bob@example.net>... No such user here

============================================================================
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code, got[0].status.as_str()),
            ("bob@example.net", 553, "5.3.0")
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\n   * bob@example.net\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

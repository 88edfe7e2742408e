//! The report Sisimai files under X2 that opens "NOTICE: Delivery Failure." and "Your delivery to
//! the following address has been failed.": a `Delivery failed: address` line per recipient with
//! the session's words below it (`Remote host said[Response Message]: 554 ...`, `STEP: DATA SEND`).

use super::layout::after_line;
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

const OPENING: &[&str] = &["your delivery to the following address has been failed"];

/// The session step's words, lower-case, and the command each names.
const STEPS: &[(&str, &str)] = &[
    ("step: data", "DATA"),
    ("failed after i sent the message", "DATA"),
    ("step: rcpt", "RCPT"),
    ("does not like recipient", "RCPT"),
    ("step: mail", "MAIL"),
];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line(&mail.body, OPENING) else {
        return Vec::new();
    };
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut open = false;
    for line in section.lines().map(str::trim) {
        if let Some(named) = line.strip_prefix("Delivery failed:") {
            open = false;
            if let Some(address) = address_in(named) {
                blocks.push((address, String::new()));
                open = true;
            }
        } else if line.is_empty() {
            open = false;
        } else if let (true, Some((_, text))) = (open, blocks.last_mut()) {
            text.push_str(line);
            text.push('\n');
        }
    }
    blocks
        .into_iter()
        .map(|(address, text)| {
            let mut r = failed_with_command(&address, &text);
            let lower = text.to_ascii_lowercase();
            if let Some((_, command)) = STEPS.iter().find(|(w, _)| lower.contains(w)) {
                r.command = (*command).to_string();
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_delivery_failed_line_is_a_recipient() {
        let raw = r#"From: postmaster@mx.example.org
Subject: Delivery failure

NOTICE: Delivery Failure.

Your delivery to the following address has been failed.
------------------------------------------------------

Delivery failed: bob@example.net
192.0.2.1 failed after I sent the message.
Remote host said[Response Message]: 554 5.4.14 Hop count exceeded
STEP: DATA SEND
"#;
        let got = mail_of(raw, read);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].reply_code),
            (1, "bob@example.net", 554)
        );
        assert_eq!((got[0].status.as_str(), got[0].command.as_str()), ("5.4.14", "DATA"));
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(
            mail_of(
                "From: a@example.org\nSubject: x\n\nDelivery failed: bob@example.net\n",
                read
            )
            .is_empty()
        );
    }
}

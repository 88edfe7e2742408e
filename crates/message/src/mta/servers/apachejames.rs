//! Apache James's bounce (its Bounce mailet's text, also used by Verizon's vtext.com): "Error:
//! ...", the reply under "Error message below:", and under "Message details:" the envelope,
//! whose `RCPT TO:` lines name the recipients.

use super::layout::{after_line, before_line};
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed};
use crate::report::RecipientReport;

const BELOW: &[&str] = &["error message below:"];
const DETAILS: &[&str] = &["message details:"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let (Some(error), Some(details)) = (after_line(body, BELOW), after_line(body, DETAILS)) else {
        return Vec::new();
    };
    let said = before_line(error, DETAILS).trim();
    let addresses = details
        .lines()
        .filter_map(|line| line.trim().strip_prefix("RCPT TO:"))
        .filter_map(address_in);
    each_failed(addresses, said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_envelope_names_the_recipient_and_the_error_gives_the_reply() {
        let raw = r#"From: post_master@mx.example.org
Subject: Re:Test message

Error: Invalid user address

Error message below:
550 - Requested action not taken: no such user here

Message details:
  Subject: Test message
  MAIL FROM: alice@example.org
  RCPT TO: bob@example.net
  From: alice@example.org
"#;
        let got = mail_of(raw, read);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].reply_code),
            (1, "bob@example.net", 550)
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(mail_of("From: a@example.org\nSubject: x\n\nRCPT TO: bob@example.net\n", read).is_empty());
    }
}

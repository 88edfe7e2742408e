//! Ipswitch IMail Server's report ("Undeliverable Mail"): one `Reason: address` line per
//! recipient (`Unknown user: bob@example.net`), then "Original message follows."; or, for a
//! reply the remote server gave, "undeliverable to address" and the reply below "Body of message
//! generated response:".

use super::layout::{after_line, before_line, find_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed, failed_with_command};
use crate::report::RecipientReport;

const CLOSING: &[&str] = &["original message follows."];

const RESPONSE: &[&str] = &["body of message generated response:"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    if !mail.subject().to_ascii_lowercase().contains("undeliverable mail") {
        return Vec::new();
    }
    if find_any(body, CLOSING).is_none() {
        return responses(body);
    }
    before_line(body, CLOSING)
        .lines()
        .filter_map(|line| {
            let (reason, named) = line.trim().rsplit_once(": ")?;
            let address = address_in(named).filter(|_| !named.trim().contains(' '))?;
            // The reply, when the remote server gave one, follows the reason on the same line.
            Some(failed_with_command(&address, reason))
        })
        .collect()
}

/// `undeliverable to address` lines, each with the reply below "Body of message generated response:".
fn responses(body: &str) -> Vec<RecipientReport> {
    let response = after_line(body, RESPONSE).unwrap_or("");
    let reply: Vec<&str> = response
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let addresses = body
        .lines()
        .filter_map(|line| line.trim().strip_prefix("undeliverable to "))
        .filter_map(address_in);
    each_failed(addresses, &reply.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_reason_line_names_a_recipient() {
        let raw = r#"From: "Postmaster" <postmaster@mx.example.org>
Subject: Undeliverable Mail

Unknown user: bob@example.net
User mailbox exceeds allowed size: eve@example.com

Original message follows.

Note: carol@example.org
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].diagnostic.as_str()),
            ("bob@example.net", "Unknown user")
        );
        assert_eq!(got[1].recipient, "eve@example.com");
    }

    #[test]
    fn a_remote_reply_is_read_below_its_heading() {
        let raw = r#"From: "Postmaster" <postmaster@mx.example.org>
Subject: Undeliverable Mail

undeliverable to bob@example.net

Body of message generated response:
550-REJECTED - Blacklisted URL in message.
550 See the list

Sent by carol@example.org
"#;
        let got = mail_of(raw, read);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].reply_code),
            (1, "bob@example.net", 550)
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: Undeliverable Mail\n\nUnknown user: bob@example.net\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

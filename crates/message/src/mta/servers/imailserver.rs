//! Ipswitch IMail Server's report ("Undeliverable Mail"): one `Reason: address` line per
//! recipient (`Unknown user: bob@example.net`), then "Original message follows."

use super::layout::{before_line, find_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

const CLOSING: &[&str] = &["original message follows."];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    if !mail.subject().to_ascii_lowercase().contains("undeliverable mail") || find_any(body, CLOSING).is_none() {
        return Vec::new();
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
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: Undeliverable Mail\n\nUnknown user: bob@example.net\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

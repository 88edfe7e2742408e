//! Verizon Wireless's MMS gateway report ("Message could not be delivered to mobile."): the
//! reason on the `Error:` line, the recipient on the `To:` line under "Original Message:".

use super::layout::after_line;
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed};
use crate::report::RecipientReport;

const ORIGINAL: &[&str] = &["original message:"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    if !body
        .to_ascii_lowercase()
        .contains("message could not be delivered to mobile")
    {
        return Vec::new();
    }
    let Some(original) = after_line(body, ORIGINAL) else {
        return Vec::new();
    };
    let error = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("Error:"))
        .map_or("", str::trim);
    let addresses = original
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("To:"))
        .flat_map(|to| to.split(',').filter_map(address_in).collect::<Vec<_>>());
    each_failed(addresses, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_original_to_is_the_recipient() {
        let raw = r#"From: MMSC NDR Administrator <sysadmin@mmsc.example.com>
Subject: Undeliverable Message

Message could not be delivered to mobile.
Error: No valid recipients for this MM

Original Message:
From: alice <alice@example.org>
To: 5550100@mms.example.com
Subject: hi
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].diagnostic.as_str()),
            ("5550100@mms.example.com", "No valid recipients for this MM")
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(
            mail_of(
                "From: a@example.org\nSubject: x\n\nOriginal Message:\nTo: bob@example.net\n",
                read
            )
            .is_empty()
        );
    }
}

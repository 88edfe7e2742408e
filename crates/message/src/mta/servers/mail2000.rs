//! The report of the MTA Sisimai calls X1 (its samples' Received lines name Mail2000): after
//! "---The following addresses had delivery errors---", one `address [reason]` line each.

use super::layout::after_line;
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

const OPENING: &[&str] = &["---the following addresses had delivery errors---"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line(&mail.body, OPENING) else {
        return Vec::new();
    };
    section
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let (head, reason) = line.split_once(" [")?;
            let address = address_in(head).filter(|_| !head.contains(' '))?;
            Some(failed_with_command(
                &address,
                reason.strip_suffix(']').unwrap_or(reason),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_address_line_is_a_recipient() {
        let raw = r#"From: "Mail Deliver System" <MAILER-DAEMON@mx.example.org>
Subject: Returned Mail: User unknown

The original message was received at Tue, 1 Dec 2026 10:00:00 +0900
from alice@example.org

---The following addresses had delivery errors---

bob@example.net [User unknown]
eve@example.com [Connection timed out]

carol@example.org [not a recipient]
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].diagnostic.as_str()),
            ("bob@example.net", "User unknown")
        );
        assert_eq!(got[1].recipient, "eve@example.com");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\nbob@example.net [hello]\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

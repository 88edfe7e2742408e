//! Smail 3's report: ruled headings `|---- Message log follows: ----|`, `|---- Failed addresses
//! follow: ----|` (one ` address ... reason` line each) and `|---- Message text follows: ----|`
//! before the returned message.

use crate::mime::Mail;
use crate::mta::text::{address_in, after_line, before_line, failed};
use crate::report::RecipientReport;

const FAILED: &[&str] = &["failed addresses follow:"];

/// The headings after the failed addresses.
const CLOSINGS: &[&str] = &["message text follows:", "message log follows:"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line(&mail.body, FAILED) else {
        return Vec::new();
    };
    before_line(section, CLOSINGS)
        .lines()
        .filter_map(|line| {
            let (named, reason) = line.split_once(" ... ")?;
            let address = address_in(named.trim()).filter(|_| !named.trim().contains(' '))?;
            Some(failed(&address, reason))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_failed_address_line_is_a_recipient() {
        let raw = r#"From: <MAILER-DAEMON@mx.example.net>
Subject: mail failed, returning to sender

|------------------------- Message log follows: -------------------------|
 no valid recipients were found for this message
|------------------------- Failed addresses follow: ---------------------|
 bob@example.org ... unknown host
 <eve@example.com> ... 550 5.1.1 user unknown
|------------------------- Message text follows: ------------------------|
To: carol@example.org ... not this one
"#;
        let got = mail_of(raw, read);
        let summary: Vec<(&str, &str, u16)> = got
            .iter()
            .map(|r| (r.recipient.as_str(), r.diagnostic.as_str(), r.reply_code))
            .collect();
        assert_eq!(
            summary,
            [
                ("bob@example.org", "unknown host", 0),
                ("eve@example.com", "550 5.1.1 user unknown", 550)
            ]
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\nbob@example.org ... see you\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

//! DragonFly Mail Agent's (dma) report: "There was an error delivering your mail to <address>.",
//! the remote host's reply below it, then "Message headers follow."

use super::layout::{before_line, find_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

const OPENING: &str = "there was an error delivering your mail to ";

const CLOSINGS: &[&str] = &["message headers follow", "original message follows"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(at) = find_any(body, &[OPENING]) else {
        return Vec::new();
    };
    let Some(rest) = body.get(at + OPENING.len()..) else {
        return Vec::new();
    };
    let (line, below) = rest.split_once('\n').unwrap_or((rest, ""));
    let Some(address) = address_in(line) else {
        return Vec::new();
    };
    vec![failed_with_command(&address, before_line(below, CLOSINGS))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_one_recipient_and_the_reply_below_it_are_read() {
        let raw = r#"From: MAILER-DAEMON <>
Subject: Mail delivery failed

This is the DragonFly Mail Agent v0.13 at mx.example.org.

There was an error delivering your mail to <bob@example.net>.

mx.example.net [192.0.2.9] did not like our RCPT TO:
550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown

Message headers follow.

To: <carol@example.org>
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "bob@example.net");
        assert_eq!(
            (got[0].reply_code, got[0].status.as_str(), got[0].command.as_str()),
            (550, "5.1.1", "RCPT")
        );
        assert_eq!(got[0].remote_mta, "mx.example.net");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\nThere was an error, <bob@example.net>.\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

//! Trend Micro InterScan's reports: the session as `Sent <<< RCPT TO:<address>` and
//! `Received >>> 550 ...` lines, or "Unable to deliver message to <address>" after "Message
//! from InterScan Messaging Security Suite".

use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let mut out = Vec::new();
    let mut sent: Option<(String, String)> = None;
    for line in mail.body.lines().map(str::trim) {
        if let Some(command) = line.strip_prefix("Sent <<< ") {
            sent =
                address_in(command).map(|a| (a, command.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase()));
        } else if let Some(reply) = line.strip_prefix("Received >>> ") {
            if let Some((address, command)) = sent.take() {
                let mut r = failed_with_command(&address, reply);
                r.command = command;
                out.push(r);
            }
        } else if let Some((_, rest)) = line.split_once("Unable to deliver message to ")
            && let Some(address) = address_in(rest.split(' ').next().unwrap_or(""))
        {
            out.push(failed_with_command(&address, line));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_session_or_the_notice_names_the_recipient() {
        let raw = r#"From: "InterScan MSS" <postmaster@mx.example.org>
Subject: Undeliverable

Sent <<< RCPT TO:<bob@example.net>
Received >>> 550 5.1.1 <bob@example.net>... user unknown
Unable to deliver message to <eve@example.com> (and other recipients in the same domain).
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code, got[0].command.as_str()),
            ("bob@example.net", 550, "RCPT")
        );
        assert_eq!(got[1].recipient, "eve@example.com");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(mail_of("From: a@example.org\nSubject: x\n\nReceived >>> 550 no\n", read).is_empty());
    }
}

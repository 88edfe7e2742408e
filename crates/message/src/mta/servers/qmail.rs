//! qmail's report (QSBMF, and the wordings of qmail derivatives such as netqmail, indimail and
//! vpopmail's vdelivermail): after the opening paragraph, one paragraph per recipient that
//! starts with `<address>:` at the margin, then `--- Below this line is a copy of the message.`
//! Other programs write the same layout under their own opening ("Unable to deliver message to
//! the following address(es).", "Your mail message to the following address(es) could not be
//! delivered."): [`read_qsbmf`] reads those.

use super::layout::{after_line, before_line, blank};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

/// Lines that open the recipient paragraphs, lower-case.
const OPENINGS: &[&str] = &[
    "i'm afraid i wasn't able to deliver your message to the following addresses",
    "this is the qmail-send program",
];

/// Lines that end the report's text.
const CLOSINGS: &[&str] = &[
    "--- below this line is a copy of the message",
    "--- enclosed is a copy of the message",
    "--- below this line is the original bounce",
    "--- original message follows",
];

/// qmail's own summaries of where the session stopped, lower-case, and the command each names.
const STAGES: &[(&str, &str)] = &[
    ("does not like recipient", "RCPT"),
    ("failed after i sent the message", "DATA"),
    ("failed on data command", "DATA"),
    ("sender was rejected", "MAIL"),
    ("my name was rejected", "HELO"),
    ("most progress was rcpt to", "RCPT"),
    ("most progress was mail from", "MAIL"),
];

/// Openings of the same layout written by other programs, lower-case.
const QSBMF_OPENINGS: &[&str] = &[
    "unable to deliver message to the following address(es)",
    "your mail message to the following address(es) could not be delivered",
];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    paragraphs(&mail.body, OPENINGS)
}

pub(super) fn read_qsbmf(mail: &Mail<'_>) -> Vec<RecipientReport> {
    paragraphs(&mail.body, QSBMF_OPENINGS)
}

/// The `<address>:` paragraphs after the line holding one of `openings`.
fn paragraphs(body: &str, openings: &[&str]) -> Vec<RecipientReport> {
    let Some(section) = after_line(body, openings) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in before_line(section, CLOSINGS).lines() {
        if let Some(address) = recipient_line(line) {
            out.extend(current.take().map(|(a, d)| report(&a, &d)));
            current = Some((address, String::new()));
        } else if blank(line) {
            out.extend(current.take().map(|(a, d)| report(&a, &d)));
        } else if let Some((_, diagnostic)) = current.as_mut() {
            diagnostic.push_str(line.trim());
            diagnostic.push('\n');
        }
    }
    out.extend(current.take().map(|(a, d)| report(&a, &d)));
    out
}

/// The address of a line `<address>:` that opens a recipient's paragraph.
fn recipient_line(line: &str) -> Option<String> {
    let inside = line.trim_end().strip_prefix('<')?.strip_suffix(">:")?;
    address_in(inside)
}

fn report(address: &str, diagnostic: &str) -> RecipientReport {
    let mut r = failed_with_command(address, diagnostic);
    if r.command.is_empty() {
        let lower = r.diagnostic.to_ascii_lowercase();
        if let Some((_, command)) = STAGES.iter().find(|(words, _)| lower.contains(words)) {
            r.command = (*command).to_string();
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_address_paragraph_is_a_recipient() {
        let raw = r#"From: MAILER-DAEMON@mx.example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<bob@example.net>:
192.0.2.9 does not like recipient.
Remote host said: 550 5.1.1 <bob@example.net>: mailbox unavailable
Giving up on 192.0.2.9.

<eve@example.com>:
Sorry, I couldn't find any host named example.com. (#5.1.2)

--- Below this line is a copy of the message.

<carol@example.org>:
not a recipient
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].recipient, "bob@example.net");
        assert_eq!(
            (got[0].reply_code, got[0].status.as_str(), got[0].command.as_str()),
            (550, "5.1.1", "RCPT")
        );
        assert_eq!(got[1].recipient, "eve@example.com");
        assert_eq!((got[1].reply_code, got[1].status.as_str()), (0, "5.1.2"));
    }

    #[test]
    fn the_layout_under_another_programs_opening_is_read_too() {
        let raw = r#"From: MAILER-DAEMON@mx.example.org
Subject: Delivery failure

Message from mx.example.org.
Unable to deliver message to the following address(es).

<bob@example.net>:
Resources temporarily unavailable, please try again later [#4.1.9].

--- Original message follows.
"#;
        assert!(mail_of(raw, read).is_empty());
        let got = mail_of(raw, read_qsbmf);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].status.as_str()),
            (1, "bob@example.net", "4.1.9")
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\n<bob@example.net>:\nhello\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

//! Postfix's report read from its text, for when the DSN part is missing: after "This is the
//! mail system at host ..." (or "This is the Postfix program at host ..."), one paragraph per
//! recipient, `<address>: text` at the margin (`<address> (expanded from <alias>): text`), the
//! text going on over indented lines.

use super::layout::{after_line, blank, contains_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::{Action, RecipientReport};

/// Lines that open the report, lower-case.
const OPENINGS: &[&str] = &["this is the mail system at host", "this is the postfix program at host"];

/// Words of a delay warning.
const WARNING: &[&str] = &["this is a warning only", "delayed mail (still being retried)"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(section) = after_line(body, OPENINGS) else {
        return Vec::new();
    };
    let delayed = contains_any(body, WARNING);
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in section.lines() {
        if let Some((address, text)) = recipient_line(line) {
            out.extend(current.take());
            current = Some((address, text.to_string()));
        } else if blank(line) || !line.starts_with([' ', '\t']) {
            out.extend(current.take());
        } else if let Some((_, text)) = current.as_mut() {
            text.push('\n');
            text.push_str(line.trim());
        }
    }
    out.extend(current.take());
    out.into_iter()
        .map(|(address, text)| {
            let mut r = failed_with_command(&address, &text);
            if delayed {
                r.action = Some(Action::Delayed);
            }
            r
        })
        .collect()
}

/// `<address>: text` or `<address> (expanded from <alias>): text` at the margin.
fn recipient_line(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix('<')?;
    let (inside, after) = rest.split_once('>')?;
    let address = address_in(inside)?;
    let after = after.trim_start();
    let text = if let Some(expanded) = after.strip_prefix("(expanded from") {
        expanded.split_once("):")?.1
    } else {
        after.strip_prefix(':')?
    };
    Some((address, text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_address_paragraph_is_a_recipient() {
        let raw = r#"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

                   The mail system

<bob@example.net>: host mx.example.net[192.0.2.9] said: 550 5.1.1
    <bob@example.net>: Recipient address rejected: User unknown (in reply to
    RCPT TO command)

<list@example.org> (expanded from <eve@example.org>): mail forwarding loop
    for list@example.org
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].recipient, "bob@example.net");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.1.1"));
        assert_eq!(
            (got[0].remote_mta.as_str(), got[0].command.as_str()),
            ("mx.example.net", "RCPT")
        );
        assert_eq!(got[1].recipient, "list@example.org");
        assert_eq!(got[1].diagnostic, "mail forwarding loop for list@example.org");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\n<bob@example.net>: hello\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

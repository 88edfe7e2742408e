//! Postfix's report read from its text, for when the DSN part is missing: after "This is the
//! mail system at host ..." (or "This is the Postfix program at host ..."), one paragraph per
//! recipient, `<address>: text` at the margin (`<address> (expanded from <alias>): text`), the
//! text going on over indented lines.

use std::collections::HashSet;

use super::layout::{after_line, blank, contains_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed, failed_with_command};
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
        // A delivery report the sender asked for lists the recipients that succeeded.
        .filter(|r| r.reply_code / 100 != 2 && !r.status.starts_with("2."))
        .collect()
}

pub(super) fn read_smtpd_transcript(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line(&mail.body, &["transcript of session follows."]) else {
        return Vec::new();
    };
    let mut recipients: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut command = String::new();
    let mut failure: Option<(String, String)> = None;
    // The session's lines, continuation lines joined to the command or reply they belong to.
    let mut entries: Vec<(bool, String)> = Vec::new();
    for line in section.lines() {
        let trimmed = line.trim();
        if let Some(said) = trimmed.strip_prefix("In:") {
            entries.push((true, said.trim().to_string()));
        } else if let Some(said) = trimmed.strip_prefix("Out:") {
            entries.push((false, said.trim().to_string()));
        } else if let (true, Some((_, text))) =
            (line.starts_with([' ', '\t']) && !trimmed.is_empty(), entries.last_mut())
        {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    for (incoming, text) in entries {
        if incoming {
            let upper = text.to_ascii_uppercase();
            if upper.starts_with("RCPT TO:")
                && let Some(address) = address_in(&text)
                && seen.insert(address.to_ascii_lowercase())
            {
                recipients.push(address);
            }
            command = upper.split([' ', ':']).next().unwrap_or("").to_string();
        } else if text.starts_with(['4', '5']) && failure.is_none() {
            failure = Some((text, command.clone()));
        }
    }
    let Some((reply, command)) = failure else {
        return Vec::new();
    };
    let mut out = each_failed(recipients, &reply);
    out.iter_mut().for_each(|r| r.command.clone_from(&command));
    out
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
    fn the_smtpd_transcript_gives_the_recipients_and_the_failing_reply() {
        let raw = r#"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Postfix SMTP server: errors from localhost[127.0.0.1]

Transcript of session follows.

 Out: 220 mx.example.org ESMTP
 In:  MAIL
     FROM:<alice@example.org>
 Out: 250 2.1.0 Ok
 In:  RCPT TO:<bob@example.net> ORCPT=rfc822;bob@example.net
 Out: 250 2.1.5 Ok
 In:  DATA
 Out: 354 End data with <CR><LF>.<CR><LF>
 Out: 451 4.3.0 Error: queue file write error
 In:  QUIT
 Out: 221 2.0.0 Bye
"#;
        let got = mail_of(raw, read_smtpd_transcript);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].reply_code),
            (1, "bob@example.net", 451)
        );
        assert_eq!((got[0].status.as_str(), got[0].command.as_str()), ("4.3.0", "DATA"));
        assert!(
            mail_of(
                raw.replace(" Out: 451 4.3.0 Error: queue file write error\n", "")
                    .as_str(),
                read_smtpd_transcript
            )
            .is_empty()
        );
    }

    #[test]
    fn a_delivery_report_lists_no_failed_recipient() {
        let raw = r#"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Successful Mail Delivery Report

This is the mail system at host mx.example.org.

Enclosed is the mail delivery report that you requested.

<bob@example.net>: delivery via mx.example.net[192.0.2.2]:25: 250 2.1.5 Ok
"#;
        assert!(mail_of(raw, read).is_empty());
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\n<bob@example.net>: hello\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

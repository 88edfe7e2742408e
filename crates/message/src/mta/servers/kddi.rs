//! The reports of KDDI's mail systems: au one net's ("Could not be delivered to: <address>" and
//! the reason on the next line) and EZweb's (`<address>` lines with the reason in the lines
//! around them, or a `Recipient: <address>` block with its `>>>`/`<<<` session).

use super::layout::find_any;
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::{Action, RecipientReport};

const AUONE: &str = "could not be delivered to:";

/// Where the returned message starts in EZweb's text.
const EZWEB_CLOSINGS: &[&str] = &["received: from", "---------------------------------------"];

pub(super) fn read_auone(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let mut out = Vec::new();
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        let lower = line.to_ascii_lowercase();
        let Some(at) = lower.find(AUONE) else { continue };
        let Some(address) = line.get(at + AUONE.len()..).and_then(address_in) else {
            continue;
        };
        let reason = lines.next().unwrap_or("").trim();
        out.push(failed_with_command(&address, reason));
    }
    out
}

pub(super) fn read_ezweb(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let text = match find_any(body, EZWEB_CLOSINGS) {
        Some(at) => body.get(..at).unwrap_or(body),
        None => body,
    };
    let mut recipients: Vec<(String, String)> = Vec::new();
    let mut session = String::new();
    let mut words = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(reply) = line.strip_prefix("<<<") {
            session.push_str(reply.trim());
            session.push('\n');
        } else if line.starts_with(">>>") {
            continue;
        } else if let Some(named) = line
            .strip_prefix("Recipient:")
            .or_else(|| line.starts_with('<').then_some(line))
        {
            let Some(address) = address_in(named) else { continue };
            let said = named.split_once(">:").map_or("", |(_, s)| s.trim());
            recipients.push((address, said.to_string()));
        } else {
            words.push_str(line);
            words.push('\n');
        }
    }
    let delayed = words.to_ascii_lowercase().contains("was not delivered within");
    // Recipients without words of their own share the session's reply, or the text around them.
    let shared = if session.is_empty() {
        words.as_str()
    } else {
        session.as_str()
    };
    let mut template: Option<RecipientReport> = None;
    let mut out: Vec<RecipientReport> = Vec::new();
    for (address, said) in recipients {
        if !said.is_empty() {
            out.push(failed_with_command(&address, &said));
        } else if let Some(t) = &template {
            out.push(RecipientReport {
                recipient: address,
                ..t.clone()
            });
        } else {
            let r = failed_with_command(&address, shared);
            template = Some(r.clone());
            out.push(r);
        }
    }
    if delayed {
        out.iter_mut().for_each(|r| r.action = Some(Action::Delayed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn au_one_net_names_the_recipient_and_the_reason_below() {
        let raw = r#"From: no-reply@mx.example.ne.jp
Subject: Mail

Your mail sent on: Tue, 1 Dec 2026 10:00:00 +0900
     Could not be delivered to: <bob@example.net>
     As their mailbox is full.
"#;
        let got = mail_of(raw, read_auone);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].diagnostic.as_str()),
            ("bob@example.net", "As their mailbox is full.")
        );
        assert!(
            mail_of(
                "From: a@example.org\nSubject: x\n\nhello <bob@example.net>\n",
                read_auone
            )
            .is_empty()
        );
    }

    #[test]
    fn ezweb_reads_the_session_or_the_words_around_the_address() {
        let session = r#"From: Postmaster@mx.example.ne.jp
Subject: Mail System Error - Returned Mail

Each of the following recipients was rejected by a remote
mail server.
    Recipient: <bob@example.net>
    >>> RCPT TO:<bob@example.net>
    <<< 550 <bob@example.net>: User unknown
"#;
        let got = mail_of(session, read_ezweb);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].reply_code),
            (1, "bob@example.net", 550)
        );
        let words = r#"From: Postmaster@mx.example.ne.jp
Subject: Mail System Error - Returned Mail

The user(s) account is disabled.

<eve@example.com>
"#;
        let got = mail_of(words, read_ezweb);
        assert_eq!((got.len(), got[0].recipient.as_str()), (1, "eve@example.com"));
        assert_eq!(got[0].diagnostic, "The user(s) account is disabled.");
        assert!(mail_of("From: a@example.org\nSubject: x\n\nhello\n", read_ezweb).is_empty());
    }
}

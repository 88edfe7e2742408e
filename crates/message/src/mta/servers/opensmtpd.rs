//! OpenSMTPD's report: "This is the MAILER-DAEMON, please DO NOT REPLY", then after "...the
//! following list of recipients:" one `address: reason` line each, up to "Below is a copy of
//! the original message". Its delay warning has the same layout.

use super::layout::{after_line, before_line, contains_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::{Action, RecipientReport};

const OPENINGS: &[&str] = &["following list of recipients:", "list of recipients:"];

const CLOSINGS: &[&str] = &[
    "below is a copy of the original message",
    "please note that this is only a temporary",
];

const WARNING: &[&str] = &[
    "this is only a temporary failure report",
    "a message is delayed for more than",
];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(section) = after_line(body, OPENINGS) else {
        return Vec::new();
    };
    let delayed = contains_any(body, WARNING);
    before_line(section, CLOSINGS)
        .lines()
        .filter(|line| !line.starts_with([' ', '\t']))
        .filter_map(|line| {
            let (head, reason) = line.split_once(": ")?;
            let address = address_in(head).filter(|_| !head.contains(' '))?;
            let mut r = failed_with_command(&address, reason);
            if delayed {
                r.action = Some(Action::Delayed);
            }
            Some(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_address_line_is_a_recipient() {
        let raw = r#"From: Mailer Daemon <MAILER-DAEMON@mx.example.org>
Subject: Delivery status notification: error

    Hi!

    This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.

    An error has occurred while attempting to deliver a message for
    the following list of recipients:

bob@example.net: 550 5.1.1 <bob@example.net>... User Unknown
eve@example.com: Domain does not exist

    Below is a copy of the original message:

carol@example.org: not a recipient
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].recipient, "bob@example.net");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.1.1"));
        assert_eq!(
            (got[1].recipient.as_str(), got[1].diagnostic.as_str()),
            ("eve@example.com", "Domain does not exist")
        );
        assert_eq!(got[1].action, Some(Action::Failed));
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\nbob@example.net: hello\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

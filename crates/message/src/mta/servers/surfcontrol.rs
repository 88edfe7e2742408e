//! SurfControl's report: "Your message could not be sent. A transcript of the attempts to send
//! the message follows.", then per attempt `address: [ip], 550 reply` after "Failed to send to
//! identified host,", up to "--- Message non-deliverable."

use super::layout::{after_line, before_line};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

const OPENING: &[&str] = &["a transcript of the attempts to send the message follows"];
const CLOSING: &[&str] = &["--- message non-deliverable"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line(&mail.body, OPENING) else {
        return Vec::new();
    };
    let mut out: Vec<RecipientReport> = Vec::new();
    for line in before_line(section, CLOSING).lines().map(str::trim) {
        // `bob@example.net: [192.0.2.5], 550 bob@example.net... No such user`
        let Some((named, rest)) = line.split_once(": [") else {
            continue;
        };
        let Some(address) = address_in(named).filter(|_| !named.contains(' ')) else {
            continue;
        };
        let Some((host, said)) = rest.split_once("],") else {
            continue;
        };
        let mut r = failed_with_command(&address, said.trim());
        r.remote_mta = host.trim().to_string();
        // A later attempt for the same recipient replaces the earlier one.
        out.retain(|o| o.recipient != r.recipient);
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_failed_attempt_names_its_recipient_host_and_reply() {
        let raw = r#"From: <MAILER-DAEMON@mx.example.org>
Subject: Hello

Your message could not be sent.
A transcript of the attempts to send the message follows.
The number of attempts made: 1
Addressed To: bob@example.net

Thu 29 Apr 2010 23:34:45 +0900
Failed to send to identified host,
bob@example.net: [192.0.2.5], 550 bob@example.net... No such user
--- Message non-deliverable.
"#;
        let got = mail_of(raw, read);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].reply_code),
            (1, "bob@example.net", 550)
        );
        assert_eq!(got[0].remote_mta, "192.0.2.5");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(
            mail_of(
                "From: a@example.org\nSubject: x\n\nbob@example.net: [192.0.2.5], 550 no\n",
                read
            )
            .is_empty()
        );
    }
}

//! Courier's report: after "Your message to the following recipients cannot be delivered:" (or
//! "...has not yet been delivered to the following recipients:" in a delay notice), one
//! paragraph per recipient, `<address>:` at the margin, then the host and the session
//! (`>>> RCPT TO:<...>`, `<<< 550 ...`), up to the next rule of dashes.

use super::layout::{after_line, before_line, contains_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::{Action, RecipientReport};

const OPENINGS: &[&str] = &[
    "your message to the following recipients cannot be delivered:",
    "has not yet been delivered to the following recipients:",
];

const RULE: &[&str] = &["-----------------------------------"];

const DELAY: &[&str] = &["has not yet been delivered to the following recipients"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(section) = after_line(body, OPENINGS) else {
        return Vec::new();
    };
    let delayed = contains_any(body, DELAY);
    let mut blocks: Vec<(String, String, String)> = Vec::new();
    for line in before_line(section, RULE).lines() {
        let trimmed = line.trim();
        if let Some(inside) = trimmed.strip_prefix('<').and_then(|l| l.strip_suffix(">:"))
            && !line.starts_with([' ', '\t'])
            && let Some(address) = address_in(inside)
        {
            blocks.push((address, String::new(), String::new()));
        } else if let Some((_, host, said)) = blocks.last_mut() {
            if let Some(reply) = trimmed.strip_prefix("<<<") {
                said.push_str(reply.trim());
                said.push('\n');
            } else if let Some(command) = trimmed.strip_prefix(">>>") {
                // The command goes in front of the replies it draws, as `after RCPT TO:`.
                said.clear();
                said.push_str("after ");
                said.push_str(command.trim());
                said.push_str(":\n");
            } else if trimmed.ends_with(':') && host.is_empty() {
                *host = trimmed
                    .trim_end_matches(':')
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
            }
        }
    }
    blocks
        .into_iter()
        .map(|(address, host, said)| {
            let mut r = failed_with_command(&address, &said);
            if !host.is_empty() {
                r.remote_mta = host.to_ascii_lowercase();
            }
            if delayed {
                r.action = Some(Action::Delayed);
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_address_paragraph_gives_the_host_and_the_session() {
        let raw = r#"From: postmaster@mx.example.org
Subject: NOTICE: mail delivery status.

This is a delivery status notification from mx.example.org,
running the Courier mail server, version 0.65.2.

---------------------------------------------------------------------------

                           UNDELIVERABLE MAIL

Your message to the following recipients cannot be delivered:

<bob@example.net>:
    mx.example.net [192.0.2.2]:
>>> RCPT TO:<bob@example.net>
<<< 550 5.1.1 <bob@example.net>... User Unknown

<eve@example.cat>:
<<< No such domain.

---------------------------------------------------------------------------
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code, got[0].status.as_str()),
            ("bob@example.net", 550, "5.1.1")
        );
        assert_eq!(
            (got[0].remote_mta.as_str(), got[0].command.as_str()),
            ("mx.example.net", "RCPT")
        );
        assert_eq!(
            (got[1].recipient.as_str(), got[1].diagnostic.as_str()),
            ("eve@example.cat", "No such domain.")
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(
            mail_of(
                "From: a@example.org\nSubject: x\n\n<bob@example.net>:\n<<< 550 no\n",
                read
            )
            .is_empty()
        );
    }
}

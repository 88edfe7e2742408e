//! MailFoundry's report: "Unable to deliver message to: <address>", then the reason under
//! "Delivery failed for the following reason:" (`Server host[ip] failed with: 550 ...`).

use super::layout::after_line;
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed};
use crate::report::RecipientReport;

const OPENING: &str = "Unable to deliver message to:";
const REASON: &[&str] = &["delivery failed for the following reason:"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(reason) = after_line(body, REASON) else {
        return Vec::new();
    };
    let reason: Vec<&str> = reason
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let reason = reason.join("\n");
    // `Server host[ip] failed with: 550 ...`: the host's words follow the colon.
    let said = reason.split_once("failed with:").map_or(reason.as_str(), |(_, s)| s);
    let addresses = body
        .lines()
        .filter_map(|line| line.trim().strip_prefix(OPENING))
        .filter_map(address_in);
    each_failed(addresses, said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_recipient_and_the_reason_below_are_read() {
        let raw = r#"From: MAILER-DAEMON@mx.example.org
Subject: Message delivery has failed

Unable to deliver message to: <bob@example.net>
Delivery failed for the following reason:
Server mx.example.net[192.0.2.2] failed with: 550 <bob@example.net> No such user here

This has been a permanent failure.
"#;
        let got = mail_of(raw, read);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].reply_code),
            (1, "bob@example.net", 550)
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(
            mail_of(
                "From: a@example.org\nSubject: x\n\nUnable to deliver message to: <bob@example.net>\n",
                read
            )
            .is_empty()
        );
    }
}

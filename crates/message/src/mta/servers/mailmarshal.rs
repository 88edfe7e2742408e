//! MailMarshal's report: the reply under "Could not be delivered because of", the recipients
//! under "The following recipients were affected:", then "Additional Information".

use super::layout::{after_line, before_line};
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed};
use crate::report::RecipientReport;

const BECAUSE: &[&str] = &["could not be delivered because of"];
const AFFECTED: &[&str] = &["the following recipients were affected:"];
const CLOSING: &[&str] = &["additional information"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let (Some(because), Some(affected)) = (after_line(body, BECAUSE), after_line(body, AFFECTED)) else {
        return Vec::new();
    };
    let said = before_line(because, AFFECTED).trim();
    let remote = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("Remote-MTA:"))
        .map(|h| h.trim().trim_matches(['<', '>']).to_ascii_lowercase());
    let addresses = before_line(affected, CLOSING)
        .lines()
        .map(str::trim)
        .filter(|l| !l.contains(' '))
        .filter_map(address_in);
    let mut out = each_failed(addresses, said);
    if let Some(host) = remote {
        out.iter_mut().for_each(|r| r.remote_mta.clone_from(&host));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_affected_recipients_share_the_reply() {
        let raw = r#"From: postmaster@mx.example.org
Subject: Undeliverable Mail: "Hello"

Your message:
   From:    alice@example.org
   Subject: Hello

Could not be delivered because of

550 5.1.1 User unknown

The following recipients were affected:
    bob@example.net

Additional Information
======================
Remote-MTA:         <192.0.2.2>
"#;
        let got = mail_of(raw, read);
        assert_eq!(
            (got.len(), got[0].recipient.as_str(), got[0].status.as_str()),
            (1, "bob@example.net", "5.1.1")
        );
        assert_eq!(got[0].remote_mta, "192.0.2.2");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(mail_of("From: a@example.org\nSubject: x\n\n    bob@example.net\n", read).is_empty());
    }
}

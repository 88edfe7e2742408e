//! Barracuda Spam Firewall's notice: "Your message to: address" then "was blocked by our Spam
//! Firewall. ..." (with "Failed to delivery for the recipient address." at times).

use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

const TO: &str = "Your message to:";

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let mut out = Vec::new();
    let mut lines = mail.body.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(named) = line.strip_prefix(TO) else { continue };
        let Some(address) = address_in(named) else { continue };
        // The verdict is the sentence on the next line.
        let verdict = lines.next().unwrap_or("");
        if !verdict.to_ascii_lowercase().starts_with("was blocked by") {
            continue;
        }
        out.push(failed_with_command(&address, verdict));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_blocked_recipient_and_the_verdict_are_read() {
        let raw = r#"From: MAILER-DAEMON <>
Subject: **Message you sent blocked by our bulk email filter**

Your message to: bob@example.net
was blocked by our Spam Firewall. The email you sent with the following subject has NOT BEEN DELIVERED:

Subject: Hello
"#;
        let got = mail_of(raw, read);
        assert_eq!((got.len(), got[0].recipient.as_str()), (1, "bob@example.net"));
        assert!(got[0].diagnostic.starts_with("was blocked by our Spam Firewall."));
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(
            mail_of(
                "From: a@example.org\nSubject: x\n\nYour message to: bob@example.net\nwas lovely\n",
                read
            )
            .is_empty()
        );
    }
}

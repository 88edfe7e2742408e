//! PowerMTA's report ("Hello, this is the mail server on host."): one `<address>  delivery
//! failed; will not continue trying` line per recipient (`delivery delayed` in a warning); the
//! reply itself is only in the DSN part beside it.

use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::{Action, RecipientReport};

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    mail.body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('<'))
        .filter_map(|line| {
            let (named, said) = line.split_once('>')?;
            let said = said.trim();
            let lower = said.to_ascii_lowercase();
            if !lower.starts_with("delivery ") {
                return None;
            }
            let mut r = failed_with_command(&address_in(named.trim_start_matches('<'))?, said);
            if lower.starts_with("delivery delayed") {
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
        let raw = r#"From: postmaster@mx.example.org
Subject: Delivery report

Hello, this is the mail server on mx.example.org.

I am sending you this message to inform you on the delivery status of a
message you previously sent.  Immediately below you will find a list of
the affected recipients.

  <bob@example.net>  delivery failed; will not continue trying
  <eve@example.com>  delivery delayed; will continue trying
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].action),
            ("bob@example.net", Some(Action::Failed))
        );
        assert_eq!(got[1].action, Some(Action::Delayed));
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(mail_of("From: a@example.org\nSubject: x\n\n<bob@example.net> hello\n", read).is_empty());
    }
}

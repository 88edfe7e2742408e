//! McAfee's (MX Logic/McAfee Email Gateway) report: under "--- The following addresses had
//! delivery problems ---", one `<address>   (reason)` line each.

use super::layout::after_line;
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::RecipientReport;

const OPENING: &[&str] = &["--- the following addresses had delivery problems ---"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line(&mail.body, OPENING) else {
        return Vec::new();
    };
    // Sendmail and BIGLOBE frame the same words with five dashes: the heading is McAfee's only
    // with three.
    let heading = mail
        .body
        .lines()
        .map(str::trim)
        .find(|l| l.to_ascii_lowercase().contains(OPENING[0]));
    if !heading.is_some_and(|h| h.eq_ignore_ascii_case(OPENING[0])) {
        return Vec::new();
    }
    section
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .filter_map(|line| {
            let (named, reason) = line.split_once(['(', ' ']).map_or((line, ""), |(a, r)| (a, r));
            let address = address_in(named.trim())?;
            let reason = reason.trim().trim_start_matches('(').trim_end_matches(')');
            Some(failed_with_command(&address, reason))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_address_line_is_a_recipient_with_its_reason() {
        let raw = r#"From: <MAILER-DAEMON@mx.example.org>
Subject: Delivery Status

    --- The following addresses had delivery problems ---

<bob@example.net>   (5.1.1 <bob@example.net>... User unknown)
<eve@example.com>   (Unknown user eve@example.com)
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].status.as_str()),
            ("bob@example.net", "5.1.1")
        );
        assert_eq!(got[1].diagnostic, "Unknown user eve@example.com");
    }

    #[test]
    fn the_five_dash_heading_of_other_mtas_is_not_mcafee() {
        let raw = "From: a@example.org\nSubject: x\n\n   ----- The following addresses had delivery problems -----\n<bob@example.net> (unrecoverable error)\n";
        assert!(mail_of(raw, read).is_empty());
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(mail_of("From: a@example.org\nSubject: x\n\n<bob@example.net>   (no)\n", read).is_empty());
    }
}

//! fml's (a mailing list manager's) refusal notices, sent from the list's admin address with
//! `X-MLServer: fml`: the first paragraph names the list's address in angle brackets ("You are
//! not a member of this mailing list <list@example.org>.", "Duplicated Message-ID in
//! <list@example.org>.") and says why.

use crate::mime::Mail;
use crate::mta::text::{address_in, clip, failed};
use crate::report::RecipientReport;

/// Openings of fml's refusal notices, lower-case.
const NOTICES: &[&str] = &[
    "not a member of this mailing list",
    "duplicated message-id in",
    "loop alert",
];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    if !mail
        .header("X-MLServer")
        .is_some_and(|h| h.to_ascii_lowercase().contains("fml"))
    {
        return Vec::new();
    }
    let paragraph: Vec<&str> = mail
        .body
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let Some(first) = paragraph.first() else {
        return Vec::new();
    };
    let lower = first.to_ascii_lowercase();
    if !NOTICES.iter().any(|n| lower.contains(n)) {
        return Vec::new();
    }
    let Some(address) = first
        .split_once('<')
        .and_then(|(_, rest)| address_in(&format!("<{rest}")))
    else {
        return Vec::new();
    };
    vec![failed(&address, clip(&paragraph.join("\n")))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_list_address_of_the_notice_is_the_recipient() {
        let raw = r#"From: list-admin@example.org
Subject: You alice@example.net are not member (list ML)
X-MLServer: fml [fml 4.0.3 release]

You are not a member of this mailing list <list@example.org>.

If you know the general guide of this list, please send mail.
"#;
        let got = mail_of(raw, read);
        assert_eq!((got.len(), got[0].recipient.as_str()), (1, "list@example.org"));
        assert_eq!(
            got[0].diagnostic,
            "You are not a member of this mailing list <list@example.org>."
        );
    }

    #[test]
    fn a_list_post_is_not_a_notice() {
        let raw =
            "From: list@example.org\nSubject: hello\nX-MLServer: fml [fml 4.0.3 release]\n\nHello <bob@example.net>\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

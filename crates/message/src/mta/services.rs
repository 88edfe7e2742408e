//! Non-DSN report readers for hosted services and Exchange: Exchange 2003 to Office 365 and
//! Outlook.com, Gmail, Google Workspace and Groups, Yahoo, Amazon SES and WorkMail, Domino and
//! Notes, GMX and 1&1, Zoho, Mimecast, Verizon, MX Logic and BIGLOBE; one file per family.

use super::Reader;

mod amazon;
mod biglobe;
mod domino;
mod exchange;
mod google;
mod mimecast;
mod mxlogic;
mod united_internet;
mod verizon;
mod yahoo;
mod zoho;

/// This group's readers, most specific first: the services whose cues name them (a sender
/// address or a wording of their own) before Exchange, whose wording other systems quote.
pub(crate) static READERS: &[Reader] = &[
    google::GOOGLE_GROUPS,
    google::GMAIL,
    google::GMAIL_CURRENT,
    yahoo::YAHOO,
    amazon::SES_NOTIFICATION,
    amazon::SES_DSN,
    amazon::WORKMAIL,
    domino::DOMINO,
    domino::NOTES,
    united_internet::GMX,
    united_internet::EINSUNDEINS,
    zoho::ZOHO,
    mimecast::MIMECAST,
    verizon::VERIZON,
    biglobe::BIGLOBE,
    mxlogic::MXLOGIC,
    exchange::EXCHANGE2003,
    exchange::EXCHANGE2007,
];

/// Test support: the recipients `reader` reads from the raw message `raw`.
#[cfg(test)]
pub(super) fn read_with(raw: &str, reader: &Reader) -> Vec<crate::report::RecipientReport> {
    use crate::{Limits, mime, mime::Mail};
    let Ok(message) = mime::parse(raw.as_bytes(), &Limits::default()) else {
        return Vec::new();
    };
    let Ok(mail) = Mail::new(&message, &Limits::default()) else {
        return Vec::new();
    };
    (reader.read)(&mail)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Kind, ReadOptions};

    /// Where these readers disagree with Sisimai 5.1.0 on its own set of emails, on purpose:
    /// (file, what we read, why).
    const DISAGREEMENTS_WITH_SISIMAI: [(&str, &str, &str); 3] = [
        (
            "lhost-mimecast-01.eml",
            "bounce: sabineko@neko.ef.example.org failed, status 5.4.1",
            "Sisimai 5.1.0 has no Mimecast reader and leaves it unread; it is Mimecast's delivery failure report",
        ),
        (
            "lhost-amazonworkmail-05.eml",
            "status 4.4.7, reply code 554",
            "the report's own Status field and Diagnostic-Code say 4.4.7 and 554; Sisimai takes the earlier \
             reply quoted inside the diagnostic (<421 4.4.2 Connection timed out>)",
        ),
        (
            "lhost-amazonworkmail-07.eml",
            "status 4.4.7, reply code 554",
            "as for lhost-amazonworkmail-05.eml",
        ),
    ];

    fn read(name: &str) -> crate::Report {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/sisimai-set-of-emails/maildir/bsd")
            .join(name);
        let raw = std::fs::read(&path).unwrap();
        crate::read(&raw, &ReadOptions::default()).unwrap()
    }

    #[test]
    fn the_listed_disagreements_with_sisimai_hold() {
        assert!(
            DISAGREEMENTS_WITH_SISIMAI
                .iter()
                .all(|(_, ours, why)| !ours.is_empty() && !why.is_empty())
        );
        let mimecast = read(DISAGREEMENTS_WITH_SISIMAI[0].0);
        assert_eq!(mimecast.kind, Kind::Bounce);
        let r = &mimecast.recipients[0];
        assert_eq!(
            (r.recipient.as_str(), r.status.as_str()),
            ("sabineko@neko.ef.example.org", "5.4.1")
        );
        for (file, _, _) in &DISAGREEMENTS_WITH_SISIMAI[1..] {
            let report = read(file);
            let r = &report.recipients[0];
            assert_eq!((r.status.as_str(), r.reply_code), ("4.4.7", 554), "{file}");
        }
    }
}

/// Hostile input: every reader on messages made of its own cues, addresses and junk.
#[cfg(test)]
mod hostile {
    use proptest::prelude::*;

    use super::{READERS, read_with};
    use crate::mta::text::MAX_DIAGNOSTIC_BYTES;

    /// Pieces that steer the readers into their layouts.
    const PIECES: [&str; 24] = [
        "ann@example.org",
        "<bob@example.org>:",
        "\"carol@example.org\":",
        "dave@example.org<mailto:dave@example.org>",
        "Remote Server returned '550 5.1.1 x",
        "'",
        "#550 5.1.1 ##",
        "Diagnostic information for administrators:",
        "did not reach the following recipient(s):",
        " on Mon",
        "Delivery to the following recipient failed permanently:",
        "Technical details of permanent failure:",
        "** Address not found **",
        "wasn't delivered to ",
        "The response was:",
        "Sorry, we were unable to deliver your message to the following address.",
        "[RCPT_TO]",
        "was not delivered to:",
        "because:",
        "------- Failure Reasons",
        "ERROR_CODE :550,",
        "[Status: Error, Address: <e@example.org>, ResponseCode 421, , x]",
        "{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[{\"emailAddress\":\"f@example.org\"}]}}",
        "é\u{1F600}550:",
    ];

    fn body() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                (0..PIECES.len()).prop_map(|i| PIECES[i].to_string()),
                Just("\n".to_string()),
                Just("\n\n".to_string()),
                "[ -~é]{0,12}",
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn no_reader_panics_and_each_recipient_is_an_address(body in body()) {
            for from in ["mailer-daemon@googlemail.com", "MAILER-DAEMON@mail.gmx.com", "mailer-daemon@mail.zoho.com",
                "no-reply@sns.amazonaws.com", "post_master@vtext.com"] {
                let raw = format!("From: {from}\nX-Failed-Recipients: g@example.org\nSubject: x\n\n{body}\n");
                for reader in READERS {
                    for r in read_with(&raw, reader) {
                        prop_assert!(crate::mta::text::is_address(&r.recipient), "{} read {:?}", reader.name, r.recipient);
                    }
                }
            }
        }
    }

    /// Many recipients sharing one long reason cost recipients times a bounded diagnostic.
    #[test]
    fn a_long_shared_reason_is_bounded_per_recipient() {
        let addresses: String = (0..2000).map(|i| format!("  user{i}@example.org\n")).collect();
        let reason = "x ".repeat(50_000);
        let raw = format!(
            "From: postmaster@example.org\nSubject: DELIVERY FAILURE\n\nYour message\n\nwas not delivered to:\n\n\
             {addresses}\nbecause:\n\n  {reason}\n"
        );
        let got = read_with(&raw, &super::domino::DOMINO);
        assert_eq!(got.len(), 2000);
        assert!(got.iter().all(|r| r.diagnostic.len() <= MAX_DIAGNOSTIC_BYTES));
    }
}

/// The text tools this group added to `mta::text`.
#[cfg(test)]
mod text_tools {
    use crate::mta::text::*;

    #[test]
    fn sections_and_lone_addresses_are_found_ignoring_case() {
        let text = "Intro\nDiagnostic Information:\nbob@example.com\nReceived: from x\n";
        let after = after_line_with(text, "diagnostic information:").unwrap();
        assert_eq!(after, "bob@example.com\nReceived: from x\n");
        assert_eq!(before_line_starting(after, &["received:"]), "bob@example.com\n");
        assert_eq!(find_ignore_case("aé Bc", "bc"), Some(4));
        assert_eq!(after_line_with(text, "absent"), None);
        assert_eq!(
            lone_address("  \"bob@example.com\":").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            lone_address("bob@example.com<mailto:bob@example.com>").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(lone_address("Bob<mailto:bob@example.com>"), None);
        assert_eq!(lone_address("write to bob@example.com"), None);
    }

    #[test]
    fn loose_codes_are_read_only_at_the_start() {
        assert_eq!(
            loose_code("550: 5.2.2 Mailbox Full"),
            Some((550, Some("5.2.2".to_string())))
        );
        assert_eq!(loose_code("550 - no such user"), Some((550, None)));
        assert_eq!(loose_code("421 5.0.0 class differs"), Some((421, None)));
        assert_eq!(loose_code("mailbox 550"), None);
        assert_eq!(loose_code("999: no"), None);
        let r = failed_loose("bob@example.com", "501: 5.1.8 Sender address rejected");
        assert_eq!((r.reply_code, r.status.as_str()), (501, "5.1.8"));
    }
}

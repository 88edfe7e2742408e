//! IBM (Lotus) Domino and Notes reports: Domino's `Your message ... was not delivered to:`
//! with the addresses, then `because:` with the reason; the older Notes SMTP MTA's
//! `------- Failure Reasons --------` section, each reason followed by the addresses it concerns.

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, failed_each, fold, lone_address};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// Domino.
pub(in crate::mta) const DOMINO: Reader = Reader {
    name: "domino",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &["was not delivered to:"],
    },
    read: read_domino,
};

/// The Lotus Notes SMTP MTA.
pub(in crate::mta) const NOTES: Reader = Reader {
    name: "notes",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &["------- failure reasons"],
    },
    read: read_notes,
};

fn read_domino(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(list) = after_line_with(&mail.body, "was not delivered to:") else {
        return Vec::new();
    };
    let addresses: Vec<String> = before_line_starting(list, &["because:"])
        .lines()
        .filter_map(lone_address)
        .collect();
    let reason = after_line_with(list, "because:").unwrap_or("");
    // The reason runs to the first blank line after it.
    let reason = reason.trim_start_matches('\n');
    let reason = reason.split("\n\n").next().unwrap_or("");
    let reason = fold(reason);
    failed_each(addresses.iter().map(String::as_str), &reason)
}

fn read_notes(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line_with(&mail.body, "------- failure reasons") else {
        return Vec::new();
    };
    let section = before_line_starting(section, &["------- returned message"]);
    let mut out = Vec::new();
    let mut reason = String::new();
    // The reason folded once, for every address that follows it.
    let mut folded: Option<String> = None;
    for line in section.lines() {
        if let Some(address) = lone_address(line) {
            let diagnostic = folded.get_or_insert_with(|| fold(&reason));
            out.extend(failed_each([address.as_str()], diagnostic));
        } else if !line.trim().is_empty() {
            // A reason line after addresses starts the next reason.
            if folded.take().is_some() {
                reason.clear();
            }
            reason.push_str(line);
            reason.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn domino_reads_the_addresses_and_the_reason() {
        let raw = "From: Postmaster@example.org\nSubject: DELIVERY FAILURE: User ann not listed\n\n\
            Your message\n\n  Subject: Hello\n\nwas not delivered to:\n\n  ann@example.org\n\n\
            because:\n\n  User ann (ann@example.org) not listed in Domino Directory\n\nOther text\n";
        let got = read(raw, &DOMINO);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert_eq!(
            got[0].diagnostic,
            "User ann (ann@example.org) not listed in Domino Directory"
        );
        assert_eq!(got[0].reply_code, 0);
        let other = "From: a@example.net\nSubject: hi\n\nThe parcel was not delivered to: our office.\n";
        assert!(read(other, &DOMINO).is_empty());
    }

    #[test]
    fn notes_reads_each_reason_and_its_addresses() {
        let raw = "From: postmaster@example.org\nSubject: Undeliverable message\n\n\
            ------- Failure Reasons  --------\n\nUser not listed in public Name & Address Book\n\
            ann@example.org\nbob@example.org\nMailbox full\ncarol@example.org\n\n\
            ------- Returned Message --------\nTo: dave@example.org\n\ndave@example.org\n";
        let got = read(raw, &NOTES);
        let summary: Vec<(&str, &str)> = got
            .iter()
            .map(|r| (r.recipient.as_str(), r.diagnostic.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("ann@example.org", "User not listed in public Name & Address Book"),
                ("bob@example.org", "User not listed in public Name & Address Book"),
                ("carol@example.org", "Mailbox full"),
            ]
        );
        let other = "From: a@example.net\nSubject: hi\n\nann@example.org\n";
        assert!(read(other, &NOTES).is_empty());
    }
}

//! Mimecast's report: `-- address` under `could not be delivered:`, then `The problem appears
//! to be :` and `Additional information follows :`, each value on a `-- ` line.

use crate::mime::Mail;
use crate::mta::text::{after_line_with, failed_loose, is_address};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// Mimecast.
pub(in crate::mta) const MIMECAST: Reader = Reader {
    name: "mimecast",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &["an email that you attempted to send to the following address could not be delivered:"],
    },
    read: read_mimecast,
};

fn read_mimecast(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(list) = after_line_with(&mail.body, "to the following address could not be delivered:") else {
        return Vec::new();
    };
    // Each value is on a line of its own after `-- `.
    let value_after = |marker: &str| -> String {
        let text = after_line_with(list, marker).unwrap_or("");
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|l| l.trim().is_empty())
            .take_while(|l| !l.trim().is_empty())
            .collect();
        let joined = lines.join(" ");
        joined.trim().trim_start_matches("--").trim().to_string()
    };
    let Some(address) = list
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| l.strip_prefix("--"))
        .map(str::trim)
        .filter(|a| is_address(a))
    else {
        return Vec::new();
    };
    let detail = value_after("additional information follows");
    let problem = value_after("the problem appears to be");
    let reply = if detail.is_empty() { problem } else { detail };
    vec![failed_loose(address, &reply)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn mimecast_reads_the_address_and_the_additional_information() {
        let raw = "From: postmaster@example.org\nSubject: [Postmaster] Email Delivery Failure\n\n\
            An email that you attempted to send to the following address could not be delivered:\n\n\
            -- ann@example.org\n\nThe problem appears to be :\n\n-- Recipient email address is possibly incorrect\n\n\
            Additional information follows :\n\n-- 5.4.1 Recipient address rejected: Access denied.\n\n";
        let got = read(raw, &MIMECAST);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].status.as_str()),
            ("ann@example.org", "5.4.1")
        );
        let other = "From: a@example.net\nSubject: hi\n\nNothing to report.\n";
        assert!(read(other, &MIMECAST).is_empty());
    }
}

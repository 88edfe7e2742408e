//! Verizon Wireless' messaging gateways: `Error message below:` with the reply, and the
//! recipient in `RCPT TO:` (or the returned message's `To:`).

use crate::mime::Mail;
use crate::mta::text::{after_line_with, failed_loose, fold};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// Verizon Wireless' SMS and MMS gateways.
pub(in crate::mta) const VERIZON: Reader = Reader {
    name: "verizon",
    cues: Cues {
        from: &["@vtext.com", "vzwpix.com"],
        subject: &[],
        headers: &[],
        body: &[],
    },
    read: read_verizon,
};

fn read_verizon(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let from_body = verizon_report(&mail.body);
    if !from_body.is_empty() {
        return from_body;
    }
    // Its MMS gateway folds the multipart's boundary badly, leaving the report in a part the
    // MIME view does not take for text: each top-level part is tried in turn, line ends
    // normalised as the body's are.
    mail.parts
        .iter()
        .filter(|p| p.depth == 0)
        .map(|p| verizon_report(&crate::mime::normalise_line_ends(p.text.to_string())))
        .find(|r| !r.is_empty())
        .unwrap_or_default()
}

fn verizon_report(body: &str) -> Vec<RecipientReport> {
    // `RCPT TO: bob@vtext.com` in the message details, else the returned message's `To:`.
    let recipient = body.lines().map(str::trim).find_map(|l| {
        let value = l.strip_prefix("RCPT TO:").or_else(|| l.strip_prefix("To:"))?;
        crate::mta::text::address_in(value)
    });
    let Some(recipient) = recipient else {
        return Vec::new();
    };
    let reply = match after_line_with(body, "error message below:") {
        Some(below) => fold(below.trim_start_matches('\n').split("\n\n").next().unwrap_or("")),
        None => body
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("Error:"))
            .map(|e| e.trim().to_string())
            .unwrap_or_default(),
    };
    if reply.is_empty() {
        return Vec::new();
    }
    vec![failed_loose(&recipient, &reply)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn verizon_reads_the_error_and_the_rcpt_to() {
        let raw = "From: post_master@vtext.com\nSubject: Re: hi\n\nError: Invalid user address\n\n\
            Error message below:\n550 - Requested action not taken: no such user here\n\n\
            Message details:\n  Subject: hi\n  MAIL FROM: ann@example.org\n  RCPT TO: 5550100@vtext.com\n";
        let got = read(raw, &VERIZON);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code),
            ("5550100@vtext.com", 550)
        );
        let other = "From: bob@vtext.com\nSubject: hi\n\nsee you\n";
        assert!(read(other, &VERIZON).is_empty());
    }
}

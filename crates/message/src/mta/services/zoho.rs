//! Zoho Mail's report: `address Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 ...` lines,
//! and its delay warning's `[Status: Error, Address: <address>, ResponseCode 421, , ...]`.

use crate::mime::Mail;
use crate::mta::text::{failed_loose, find_ignore_case, is_address};
use crate::mta::{Cues, Reader};
use crate::report::{Action, RecipientReport};

/// Zoho Mail.
pub(in crate::mta) const ZOHO: Reader = Reader {
    name: "zoho",
    cues: Cues {
        from: &["@mail.zoho."],
        subject: &[],
        headers: &[],
        body: &[],
    },
    read: read_zoho,
};

fn read_zoho(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let warning = find_ignore_case(&mail.body, "this is a warning message only").is_some();
    let mut out = Vec::new();
    for line in mail.body.lines() {
        let trimmed = line.trim();
        // `[Status: Error, Address: <bob@example.com>, ResponseCode 421, , Host not reachable.]`
        if let Some(inner) = trimmed.strip_prefix("[Status:").and_then(|t| t.strip_suffix(']')) {
            let mut fields = inner.split(',').map(str::trim);
            let address = fields
                .clone()
                .find_map(|f| f.strip_prefix("Address:"))
                .map(|a| a.trim().trim_matches(['<', '>']));
            let code = fields
                .clone()
                .find_map(|f| f.strip_prefix("ResponseCode"))
                .map(str::trim)
                .unwrap_or("");
            let text: Vec<&str> = fields
                .by_ref()
                .skip_while(|f| !f.starts_with("ResponseCode"))
                .skip(1)
                .filter(|f| !f.is_empty())
                .collect();
            if let Some(address) = address.filter(|a| is_address(a)) {
                out.push(zoho_recipient(address, &format!("{code} {}", text.join(", ")), warning));
            }
            continue;
        }
        // `bob@example.com Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <bob@...>... User Unknown`
        let Some((address, rest)) = trimmed.split_once(' ') else {
            continue;
        };
        if !is_address(address) || !rest.contains("ERROR_CODE :") {
            continue;
        }
        let mut parts = rest.split("ERROR_CODE :").skip(1);
        let code = parts.next().unwrap_or("").trim().trim_end_matches(',');
        let text = parts.collect::<Vec<_>>().join(" ");
        let text = text.trim().trim_start_matches(',').trim();
        out.push(zoho_recipient(address, &format!("{code} {text}"), warning));
    }
    out
}

fn zoho_recipient(address: &str, reply: &str, warning: bool) -> RecipientReport {
    let mut report = failed_loose(address, reply.trim());
    if warning {
        report.action = Some(Action::Delayed);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn zoho_reads_its_error_code_lines() {
        let raw = "From: mailer-daemon@mail.zoho.com\nSubject: Undelivered Mail Returned to Sender\n\n\
            This is a permanent error.\n\n\
            ann@example.org Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <ann@example.org>... User Unknown\n\
            bob@example.org Error, ERROR_CODE :421, ERROR_CODE :, Host not reachable.\n";
        let got = read(raw, &ZOHO);
        let summary: Vec<(&str, u16, &str)> = got
            .iter()
            .map(|r| (r.recipient.as_str(), r.reply_code, r.status.as_str()))
            .collect();
        assert_eq!(
            summary,
            [("ann@example.org", 550, "5.1.1"), ("bob@example.org", 421, "")]
        );

        let delay = "From: mailer-daemon@mail.zoho.com\nSubject: Delay\n\nTHIS IS A WARNING MESSAGE ONLY.\n\n\
            [Status: Error, Address: <carol@example.org>, ResponseCode 421, , Host not reachable.]\n";
        let got = read(delay, &ZOHO);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code),
            ("carol@example.org", 421)
        );
        assert_eq!(got[0].action, Some(Action::Delayed));

        let other = "From: ann@mail.zoho.com\nSubject: hi\n\nbob@example.org is my new address\n";
        assert!(read(other, &ZOHO).is_empty());
    }
}

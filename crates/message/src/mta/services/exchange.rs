//! Microsoft Exchange's own reports: Exchange 2003 (`did not reach the following
//! recipient(s):`, one `address on date` line per recipient with its reason indented under it)
//! and Exchange 2007 and later, Office 365 and Outlook.com (the `Diagnostic information for
//! administrators:` section: a bare address line, then `Remote Server returned '...'` or
//! `#550 5.1.1 ...##`).

use std::collections::HashSet;

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, fold, lone_address};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// Exchange 2000/2003.
pub(in crate::mta) const EXCHANGE2003: Reader = Reader {
    name: "exchange2003",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &[
            "did not reach the following recipient(s):",
            "the following recipient(s) could not be reached:",
        ],
    },
    read: read_2003,
};

/// Exchange 2007 and later, Exchange Online (Office 365) and Outlook.com.
pub(in crate::mta) const EXCHANGE2007: Reader = Reader {
    name: "exchange2007",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &[
            "diagnostic information for administrators:",
            "delivery has failed to these recipients or",
            "remote server returned '",
        ],
    },
    read: read_2007,
};

/// Where the section of an Exchange 2003 report listing the recipients starts.
const LIST_2003: [&str; 2] = [
    "did not reach the following recipient(s):",
    "the following recipient(s) could not be reached:",
];

fn read_2003(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = LIST_2003.iter().find_map(|m| after_line_with(&mail.body, m)) else {
        return Vec::new();
    };
    let mut out: Vec<RecipientReport> = Vec::new();
    // The recipient being read and the lines of its reason.
    let mut current: Option<(String, String)> = None;
    for line in section.lines() {
        if let Some(recipient) = recipient_2003(line) {
            flush_2003(&mut current, &mut out);
            current = Some((recipient, String::new()));
        } else if line.trim().is_empty() {
            flush_2003(&mut current, &mut out);
        } else if let Some((_, reason)) = current.as_mut() {
            reason.push_str(line);
            reason.push('\n');
        }
    }
    flush_2003(&mut current, &mut out);
    out
}

/// `bob@example.com on Thu, 29 Apr 2010 00:00:00 -0000`: the line that opens a recipient.
fn recipient_2003(line: &str) -> Option<String> {
    let trimmed = line.trim();
    let (first, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
    let rest = rest.trim_start();
    let dated = rest.is_empty() || rest.starts_with("on ");
    (dated && crate::mta::text::is_address(first)).then(|| first.to_string())
}

fn flush_2003(current: &mut Option<(String, String)>, out: &mut Vec<RecipientReport>) {
    if let Some((recipient, reason)) = current.take() {
        out.push(crate::mta::text::failed(&recipient, &reason));
    }
}

/// Where the returned message's headers start, ending the administrators' section.
const HEADERS_2007: [&str; 3] = ["original message headers", "received:", "return-path:"];

fn read_2007(mail: &Mail<'_>) -> Vec<RecipientReport> {
    // The administrators' section when it is labelled in English; otherwise (a translated
    // report) the whole text, where only an address followed by a server's reply counts.
    let section = after_line_with(&mail.body, "diagnostic information for administrators").unwrap_or(&mail.body);
    let section = before_line_starting(section, &HEADERS_2007);
    let mut out = Recipients2007::default();
    let mut block: Option<(String, Vec<&str>)> = None;
    for line in section.lines() {
        if let Some(recipient) = lone_address(line) {
            out.flush(&mut block);
            block = Some((recipient, Vec::new()));
        } else if line.trim().is_empty() {
            out.flush(&mut block);
        } else if let Some((_, lines)) = block.as_mut() {
            lines.push(line);
        }
    }
    out.flush(&mut block);
    if out.reports.is_empty() {
        return listed_2007(&mail.body);
    }
    out.reports
}

/// A report without the administrators' section: the recipients listed under `Delivery has
/// failed to these recipients or groups:`, each with the explanation under it (Exchange's
/// words: there is no server reply to give).
fn listed_2007(body: &str) -> Vec<RecipientReport> {
    let Some(list) = after_line_with(body, "delivery has failed to these recipients or") else {
        return Vec::new();
    };
    let list = before_line_starting(
        list,
        &["diagnostic information for administrators", "original message headers"],
    );
    let mut out = Vec::new();
    let mut lines = list.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(recipient) = lone_address(line) else { continue };
        let mut explanation = String::new();
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() || lone_address(next).is_some() {
                break;
            }
            explanation.push_str(next);
            explanation.push('\n');
            lines.next();
        }
        out.push(crate::mta::text::failed_loose(&recipient, &fold(&explanation)));
    }
    out
}

/// The recipients read so far, each address once.
#[derive(Default)]
struct Recipients2007 {
    reports: Vec<RecipientReport>,
    seen: HashSet<String>,
}

impl Recipients2007 {
    /// Ends the block of one recipient: kept when it holds a server's reply and the address
    /// is new.
    fn flush(&mut self, block: &mut Option<(String, Vec<&str>)>) {
        let Some((recipient, lines)) = block.take() else { return };
        if self.seen.contains(&recipient.to_ascii_lowercase()) {
            return;
        }
        if let Some(report) = reply_2007(&recipient, &lines) {
            self.seen.insert(recipient.to_ascii_lowercase());
            self.reports.push(report);
        }
    }
}

/// The reply in one recipient's block: the first (latest) `... returned '<reply>'`, or a
/// `#<reply>##` line; the host is the one the attempt names, or a host alone on a line before it.
fn reply_2007(recipient: &str, lines: &[&str]) -> Option<RecipientReport> {
    let mut host = String::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        // Exchange 2010: `#< #5.1.1 smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found> #SMTP#`.
        if trimmed.starts_with("#<")
            && let Some(at) = crate::mta::text::find_ignore_case(trimmed, "smtp;")
        {
            let rest = trimmed.get(at + "smtp;".len()..).unwrap_or("");
            let reply = rest.rsplit_once('>').map_or(rest, |(reply, _)| reply);
            return Some(with_host(recipient, reply, host));
        }
        // Exchange 2007: `#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##`.
        if let Some(hashed) = trimmed
            .strip_prefix('#')
            .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        {
            let reply = hashed.split_once("##").map_or(hashed, |(reply, _)| reply);
            return Some(with_host(recipient, reply, host));
        }
        if let Some(at) = crate::mta::text::find_ignore_case(trimmed, "returned '") {
            let before = trimmed.get(..at).unwrap_or("");
            if let Some(named) = server_named(before) {
                host = named;
            }
            // The reply runs to the line that ends with the closing quote: replies hold
            // apostrophes of their own, and long ones wrap.
            let mut reply = trimmed.get(at + "returned '".len()..).unwrap_or("").to_string();
            let mut rest = lines.iter().skip(i + 1);
            while !reply.trim_end().ends_with('\'') {
                let Some(next) = rest.next() else { break };
                reply.push(' ');
                reply.push_str(next.trim());
            }
            let reply = reply.trim_end().trim_end_matches('\'');
            return Some(with_host(recipient, reply, host));
        }
        if host.is_empty() && is_host(trimmed) {
            host = trimmed.to_ascii_lowercase();
        }
    }
    None
}

/// `Remote Server at mx.example.com (192.0.2.1) ` or `5/25/2018 8:21:10 AM - Server at mx.example.com `.
fn server_named(before: &str) -> Option<String> {
    let at = crate::mta::text::find_ignore_case(before, "server at ")?;
    let named = before.get(at + "server at ".len()..)?.split_whitespace().next()?;
    is_host(named).then(|| named.to_ascii_lowercase())
}

/// `mx.example.com`: one word of letters, digits, dots and hyphens with a dot inside.
fn is_host(word: &str) -> bool {
    word.contains('.')
        && !word.starts_with('.')
        && !word.ends_with('.')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && word.chars().any(|c| c.is_ascii_alphabetic())
}

fn with_host(recipient: &str, reply: &str, host: String) -> RecipientReport {
    let mut report = crate::mta::text::failed_loose(recipient, &fold(reply));
    if !host.is_empty() {
        report.remote_mta = host;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn exchange_2003_reads_each_dated_recipient_and_its_reason() {
        let raw = "From: postmaster@example.net\nSubject: Undeliverable: hello\n\n\
            Your message\n\n  To:      ann@example.org\n  Subject: hello\n\n\
            did not reach the following recipient(s):\n\n\
            ann@example.org on Mon, 1 Mar 2004 10:00:00 +0000\n\
            \x20   The recipient name is not recognized\n\
            \x20   MSEXCH:IMS:ORG:SITE:SERVER 0 (000C05A6) Unknown Recipient\n\
            bob@example.org on Mon, 1 Mar 2004 10:00:00 +0000\n\
            \x20   The e-mail account does not exist at the organization this message was sent to.\n\n";
        let got = read(raw, &EXCHANGE2003);
        let names: Vec<&str> = got.iter().map(|r| r.recipient.as_str()).collect();
        assert_eq!(names, ["ann@example.org", "bob@example.org"]);
        assert!(got[0].diagnostic.contains("Unknown Recipient"));
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (0, ""));
        let other = "From: a@example.net\nSubject: hi\n\nann@example.org on Monday said hello.\n";
        assert!(read(other, &EXCHANGE2003).is_empty());
    }

    #[test]
    fn exchange_2007_reads_the_administrators_section() {
        let raw = "From: postmaster@example.com\nSubject: Undeliverable: hi\n\n\
            Delivery has failed to these recipients or groups:\n\n\
            carol@example.org<mailto:carol@example.org>\n\
            The email address you entered couldn't be found.\n\n\
            Diagnostic information for administrators:\n\n\
            Generating server: gen.example.com\n\n\
            carol@example.org\n\
            mx.example.org\n\
            Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; it's not\n\
            found'\n\n\
            dave@example.org\n\
            #550 5.2.2 STOREDRV.Deliver: mailbox full ##\n\n\
            erin@example.org\n\
            6/19/2018 7:32:05 AM - Server at relay.example.org returned '450 4.4.316 Connection refused'\n\
            6/19/2018 7:26:11 AM - Server at other.example.org returned '451 4.4.0 Earlier'\n\n\
            Original message headers:\n\nReceived: from a by b\nTo: frank@example.org\n";
        let got = read(raw, &EXCHANGE2007);
        let summary: Vec<(&str, u16, &str, &str)> = got
            .iter()
            .map(|r| {
                (
                    r.recipient.as_str(),
                    r.reply_code,
                    r.status.as_str(),
                    r.remote_mta.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("carol@example.org", 550, "5.1.10", "mx.example.org"),
                ("dave@example.org", 550, "5.2.2", ""),
                ("erin@example.org", 450, "4.4.316", "relay.example.org"),
            ]
        );
        assert!(got[0].diagnostic.ends_with("it's not found"));
        let other = "From: a@example.net\nSubject: hi\n\nbob@example.org\nThanks, see you.\n";
        assert!(read(other, &EXCHANGE2007).is_empty());
    }

    #[test]
    fn exchange_2010_codes_and_reports_without_an_administrators_section_are_read() {
        let raw = "From: postmaster@example.com\nSubject: Undeliverable: hi\n\n\
            Diagnostic information for administrators:\n\nGenerating server: gen.example.com\n\n\
            ann@example.org\n#< #5.1.1 smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found> #SMTP#\n\n\
            Original message headers:\n";
        let got = read(raw, &EXCHANGE2007);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.1.1"));
        assert_eq!(got[0].diagnostic, "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found");

        let listed = "From: postmaster@example.com\nSubject: Undeliverable: hi\n\n\
            Delivery has failed to these recipients or groups:\n\n\
            bob@example.org<mailto:bob@example.org>\nThe recipient's mailbox is full.\n\n\
            Carol<mailto:carol@example.org>\nNot a lone address, not read.\n";
        let got = read(listed, &EXCHANGE2007);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "bob@example.org");
        assert_eq!(
            (got[0].reply_code, got[0].diagnostic.as_str()),
            (0, "The recipient's mailbox is full.")
        );
    }

    #[test]
    fn office_365_is_read_from_its_html_when_it_sends_no_text() {
        let raw = "From: Microsoft Outlook <postmaster@outlook.com>\nSubject: Undeliverable: hi\n\
            MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n\
            <html><body><p><b>Delivery has failed to these recipients or groups:</b></p>\
            <p><a href=\"mailto:ann@example.org\">ann@example.org</a><br>The email address couldn&#39;t be found.</p>\
            <p><b>Diagnostic information for administrators:</b></p>\
            <p>Generating server: BN1PR0101MB.prod.outlook.com<br><br>ann@example.org<br>\
            Remote Server returned &#39;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found&#39;<br><br></p>\
            <p>Original message headers:</p><pre>Received: from a by b</pre></body></html>\n";
        let got = read(raw, &EXCHANGE2007);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].recipient, "ann@example.org");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.1.10"));
    }
}

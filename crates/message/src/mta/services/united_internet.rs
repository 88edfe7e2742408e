//! United Internet's reports (GMX and 1&1): `The following address failed:`, then per
//! recipient the address, `SMTP error from remote server after RCPT command:` / `host:` and the
//! reply, or `Reason:` and a text, up to `--- The header of the original message is following. ---`.

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, failed_loose, lone_address};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// GMX (United Internet).
pub(in crate::mta) const GMX: Reader = Reader {
    name: "gmx",
    cues: Cues {
        from: &["@mail.gmx."],
        subject: &[],
        headers: &[],
        body: &[],
    },
    read: read_united_internet,
};

/// 1&1 (United Internet).
pub(in crate::mta) const EINSUNDEINS: Reader = Reader {
    name: "einsundeins",
    cues: Cues {
        from: &["@kundenserver."],
        subject: &[],
        headers: &[],
        body: &["--- the header of the original message is following. ---"],
    },
    read: read_united_internet,
};

fn read_united_internet(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(list) = after_line_with(&mail.body, "failed:") else {
        return Vec::new();
    };
    let list = before_line_starting(list, &["--- the header of the original message"]);
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in list.lines() {
        if let Some(address) = lone_address(line) {
            if let Some((a, lines)) = current.take() {
                out.push(united_internet_recipient(&a, &lines));
            }
            current = Some((address, Vec::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some((a, lines)) = current.take() {
        out.push(united_internet_recipient(&a, &lines));
    }
    out
}

/// One recipient's lines: `SMTP error from remote server after RCPT command:` (or `for TEXT
/// command, host: ... reason: <reply>`), `host: mx.example.com`, then the reply; or
/// `Reason:` / `For the following reason:` and a text.
fn united_internet_recipient(address: &str, lines: &[&str]) -> RecipientReport {
    let (mut command, mut host, mut reply) = ("", String::new(), String::new());
    for line in lines {
        let trimmed = line.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("smtp error from") {
            command = if lower.contains("rcpt") {
                "RCPT"
            } else if lower.contains("mail from") || lower.contains("mail command") {
                "MAIL"
            } else if lower.contains("data") || lower.contains("text command") {
                "DATA"
            } else {
                ""
            };
            if let Some(at) = lower.find("host: ") {
                host = lower
                    .get(at + 6..)
                    .and_then(|h| h.split_whitespace().next())
                    .unwrap_or("")
                    .to_string();
            }
            if let Some(at) = lower.find("reason:") {
                reply.push_str(trimmed.get(at + 7..).unwrap_or(""));
                reply.push(' ');
            }
        } else if let Some(named) = lower.strip_prefix("host:") {
            host = named.trim().to_string();
        } else if lower == "reason:" || lower.ends_with("the following reason:") {
            continue;
        } else {
            reply.push_str(trimmed);
            reply.push(' ');
        }
    }
    let mut report = failed_loose(address, reply.trim());
    report.command = command.to_string();
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
    fn gmx_and_einsundeins_read_the_failed_addresses() {
        let raw = "From: MAILER-DAEMON@mail.gmx.com\nSubject: Mail delivery failed\n\n\
            A message that you sent could not be delivered to one or more of\nits recipients. \
            This is a permanent error. The following address\nfailed:\n\n\
            \"ann@example.org\":\nSMTP error from remote server after RCPT command:\nhost: mx.example.org\n\
            5.2.2 <ann@example.org>... Mailbox Full\n\n<bob@example.org>\nReason:\ndelivery retry timeout exceeded\n\n\
            --- The header of the original message is following. ---\nTo: carol@example.org\n";
        let got = read(raw, &GMX);
        let summary: Vec<(&str, &str, &str, &str)> = got
            .iter()
            .map(|r| {
                (
                    r.recipient.as_str(),
                    r.status.as_str(),
                    r.command.as_str(),
                    r.remote_mta.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("ann@example.org", "5.2.2", "RCPT", "mx.example.org"),
                ("bob@example.org", "", "", "")
            ]
        );
        assert_eq!(got[1].diagnostic, "delivery retry timeout exceeded");

        let einsundeins = "From: mailer-daemon@kundenserver.de\nSubject: Mail delivery failed\n\n\
            This is a permanent error. The following address(es)\nfailed:\n\nann@example.org:\n\
            SMTP error from remote server for TEXT command, host: mx.example.org (192.0.2.1) reason: 550 5.2.0 Rejected\n\n\
            --- The header of the original message is following. ---\n";
        let got = read(einsundeins, &EINSUNDEINS);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.2.0"));
        assert_eq!(
            (got[0].command.as_str(), got[0].remote_mta.as_str()),
            ("DATA", "mx.example.org")
        );

        let other = "From: a@example.net\nSubject: hi\n\nThe login failed:\nsee you\n";
        assert!(read(other, &GMX).is_empty());
    }
}

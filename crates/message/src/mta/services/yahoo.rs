//! Yahoo's own report: `Sorry, we were unable to deliver your message to the following
//! address.`, then per recipient `<address>:`, `Remote host said:` with the reply, and the SMTP
//! command in brackets (`[RCPT_TO]`).

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, failed_loose, find_ignore_case, fold};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// Yahoo Mail (and Yahoo Japan) as the sending MTA.
pub(in crate::mta) const YAHOO: Reader = Reader {
    name: "yahoo",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &["sorry, we were unable to deliver your message to the following address"],
    },
    read: read_yahoo,
};

fn read_yahoo(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(list) = after_line_with(&mail.body, "sorry, we were unable to deliver your message") else {
        return Vec::new();
    };
    let list = before_line_starting(list, &["--- below this line is a copy of the message"]);
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in list.lines() {
        if let Some(recipient) = recipient_line(line) {
            flush(&mut current, &mut out);
            current = Some((recipient, String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    flush(&mut current, &mut out);
    out
}

/// `<bob@example.com>:` alone on its line.
fn recipient_line(line: &str) -> Option<String> {
    let inside = line.trim().strip_prefix('<')?.strip_suffix(">:")?;
    crate::mta::text::is_address(inside).then(|| inside.to_string())
}

fn flush(current: &mut Option<(String, String)>, out: &mut Vec<RecipientReport>) {
    let Some((recipient, text)) = current.take() else {
        return;
    };
    let mut text = fold(&text);
    // `[RCPT_TO]` names the command the reply answered; it is the report's word, not the server's.
    let mut command = "";
    if let Some(open) = text.rfind('[')
        && let Some(name) = text.get(open + 1..).and_then(|t| t.strip_suffix(']'))
    {
        command = match name {
            "RCPT_TO" => "RCPT",
            "MAIL_FROM" => "MAIL",
            "DATA" => "DATA",
            _ => "",
        };
        if !command.is_empty() {
            text.truncate(open);
        }
    }
    let reply = match find_ignore_case(&text, "remote host said:") {
        Some(at) => text.get(at + "remote host said:".len()..).unwrap_or(""),
        None => &text,
    };
    let mut report = failed_loose(&recipient, reply.trim());
    report.command = command.to_string();
    out.push(report);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn yahoo_reads_each_recipient_its_reply_and_command() {
        let raw = "From: MAILER-DAEMON@yahoo.com\nSubject: Failure Notice\n\n\
            Sorry, we were unable to deliver your message to the following address.\n\n\
            <ann@example.org>:\nRemote host said:\n550 5.1.1 <ann@example.org>... User Unknown\n[RCPT_TO]\n\n\
            <bob@example.org>:\n550: 5.2.2 <bob@example.org>... Mailbox Full\n\n\
            <carol@example.org>:\nNo mx record found for domain=example.org\n\n\
            --- Below this line is a copy of the message.\n\nTo: <dave@example.org>:\n";
        let got = read(raw, &YAHOO);
        let summary: Vec<(&str, u16, &str, &str)> = got
            .iter()
            .map(|r| {
                (
                    r.recipient.as_str(),
                    r.reply_code,
                    r.status.as_str(),
                    r.command.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("ann@example.org", 550, "5.1.1", "RCPT"),
                ("bob@example.org", 550, "5.2.2", ""),
                ("carol@example.org", 0, "", ""),
            ]
        );
        assert_eq!(got[0].diagnostic, "550 5.1.1 <ann@example.org>... User Unknown");
        let other = "From: a@example.net\nSubject: hi\n\n<ann@example.org>:\nsee you\n";
        assert!(read(other, &YAHOO).is_empty());
    }
}

//! The report of the MTA Sisimai calls X6: "We had trouble delivering your message. Full details
//! follow:", then one line per failure, "The following recipients returned permanent errors:
//! address. Reason: ... [reply]" or "SMTP Server <host> rejected recipient <address> (...). It
//! responded as follows: [reply]".

use super::layout::{after_line, before_line};
use crate::mime::Mail;
use crate::mta::text::{address_in, command_in, failed_with_command};
use crate::report::RecipientReport;

const OPENING: &[&str] = &["we had trouble delivering your message. full details follow:"];

const CLOSING: &[&str] = &["the attachment contains the original mail headers"];

const LISTS: &[&str] = &["returned permanent errors:", "rejected recipient "];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(section) = after_line(&mail.body, OPENING) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in before_line(section, CLOSING).lines() {
        let lower = line.to_ascii_lowercase();
        let Some((at, cue)) = LISTS.iter().find_map(|c| lower.find(c).map(|at| (at, *c))) else {
            continue;
        };
        let named = line.get(at + cue.len()..).unwrap_or("");
        let named = named.split_once(". Reason:").map_or(named, |(a, _)| a);
        let named = named.split_once(" (").map_or(named, |(a, _)| a);
        // The reply itself is in the last brackets, after the server's words.
        let reply = line
            .rsplit_once('[')
            .and_then(|(_, r)| r.strip_suffix(']'))
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()));
        let diagnostic = reply.unwrap_or(line);
        for address in named.split([',', ' ']).filter_map(address_in) {
            let mut r = failed_with_command(&address, diagnostic);
            if r.command.is_empty() {
                // The command is named in the server's words, not in the reply.
                r.command = command_in(line).to_string();
            }
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_failure_line_names_its_recipients_and_reply() {
        let raw = r#"From: mailer-daemon
Subject: There was an error sending your mail

We had trouble delivering your message. Full details follow:

2 error(s):

SMTP Server <mx.example.net> rejected recipient <bob@example.net> (Error following RCPT command). It responded as follows: [550 5.1.1 User unknown]
The following recipients returned permanent errors: eve@example.com. Reason: SMTP Server <192.0.2.1> refused to accept your message (DATA), with the following error message: [554 5.4.6 Hop count exceeded]

The attachment contains the original mail headers.
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code, got[0].status.as_str()),
            ("bob@example.net", 550, "5.1.1")
        );
        assert_eq!(got[0].command, "RCPT");
        assert_eq!(
            (got[1].recipient.as_str(), got[1].reply_code, got[1].status.as_str()),
            ("eve@example.com", 554, "5.4.6")
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\nrejected recipient <bob@example.net>\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

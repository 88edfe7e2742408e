//! m-FILTER's report: the failed address alone on a line, then `-------server message` with the
//! reply, `-------SMTP command` with the command, and `-------original message` (or `...mail info`).

use super::layout::find_any;
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed};
use crate::report::RecipientReport;

const SERVER: &str = "-------server message";
const COMMAND: &str = "-------smtp command";

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(at) = find_any(body, &[SERVER]) else {
        return Vec::new();
    };
    let (before, after) = (body.get(..at).unwrap_or(""), body.get(at..).unwrap_or(""));
    // The addresses are the lines just above the server's message that are an address alone.
    let addresses: Vec<String> = before
        .lines()
        .rev()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.contains(' '))
        .filter_map(address_in)
        .collect();
    let mut sections = after
        .split("\n-------")
        .map(|s| s.split_once('\n').map_or("", |(_, text)| text));
    let said = sections.next().unwrap_or("").trim();
    let command = if find_any(after, &[COMMAND]).is_some() {
        sections.next().unwrap_or("").split_whitespace().next().unwrap_or("")
    } else {
        ""
    };
    let mut out = each_failed(addresses.into_iter().rev(), said);
    out.iter_mut().for_each(|r| r.command = command.to_ascii_uppercase());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_address_above_the_server_message_is_the_recipient() {
        let raw = r#"From: POSTMASTER <postmaster@mx.example.org>
Subject: failure notice

The message could not be sent to the address below.

bob@example.net


-------server message
550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown

-------SMTP command
DATA

-------original message
To: carol@example.org
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code, got[0].status.as_str()),
            ("bob@example.net", 550, "5.1.1")
        );
        assert_eq!(got[0].command, "DATA");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\nbob@example.net\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

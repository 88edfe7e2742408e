//! McAfee MX Logic's report (hosted filtering): Exim's first lines, then `<address>: reply`
//! lines up to `Included is a copy of the message header:`.

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, failed_loose, is_address};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// McAfee's MX Logic (hosted filtering), whose report follows Exim's first lines.
pub(in crate::mta) const MXLOGIC: Reader = Reader {
    name: "mxlogic",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &["included is a copy of the message header:"],
    },
    read: read_mxlogic,
};

/// `The following address failed:`, then per recipient `<address>: <reply>` with the reply's
/// continuation lines, up to `Included is a copy of the message header:`.
fn read_mxlogic(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(list) = ["address failed:", "addresses failed:"]
        .iter()
        .find_map(|m| after_line_with(&mail.body, m))
    else {
        return Vec::new();
    };
    let list = before_line_starting(list, &["included is a copy of the message header"]);
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in list.lines() {
        let opened = line
            .trim()
            .strip_prefix('<')
            .and_then(|l| l.split_once(">:"))
            .filter(|(address, _)| is_address(address));
        if let Some((address, reply)) = opened {
            if let Some((a, text)) = current.take() {
                out.push(failed_loose(&a, &text));
            }
            current = Some((address.to_string(), reply.to_string()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push(' ');
            text.push_str(line.trim());
        }
    }
    if let Some((a, text)) = current.take() {
        out.push(failed_loose(&a, &text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn mxlogic_reads_each_address_and_its_reply() {
        let raw = "From: MAILER-DAEMON@relay.example.net\nSubject: Mail delivery failed\n\n\
            This message was created automatically by mail delivery software.\n\n\
            A message that you have sent could not be delivered to one or more\n\
            recipients.  This is a permanent error.  The following address failed:\n\n\
            \x20 <ann@example.org>: 550 5.1.1 <ann@example.org>: Recipient address rejected\n\
            \x20 <bob@example.org>: 550 unknown user\n<bob@example.org>\n\n\n\
            Included is a copy of the message header:\n-----\nTo: <carol@example.org>: x\n";
        let got = read(raw, &MXLOGIC);
        let summary: Vec<(&str, u16, &str)> = got
            .iter()
            .map(|r| (r.recipient.as_str(), r.reply_code, r.status.as_str()))
            .collect();
        assert_eq!(
            summary,
            [("ann@example.org", 550, "5.1.1"), ("bob@example.org", 550, "")]
        );
        let other = "From: a@example.net\nSubject: hi\n\nIncluded is a copy of the message header:\n<a@b.example>: x\n";
        assert!(read(other, &MXLOGIC).is_empty());
    }
}

//! Exim's own report: after "The following address(es) failed:" (or "...has not yet been
//! delivered is:" in a delay warning), each recipient on a line indented two spaces, its
//! diagnostic on the lines below indented four, then the copy of the message.

use crate::mime::Mail;
use crate::mta::text::{address_in, after_line, before_line, blank, contains_any, failed, indent, paragraph};
use crate::report::RecipientReport;

/// Lines that introduce the recipient list, lower-case.
const OPENINGS: &[&str] = &[
    "following address(es) failed:",
    "following addresses failed:",
    "the following address failed:",
    "has not yet been delivered is:",
    "have not yet been delivered are:",
    "incorrectly constructed:",
    "following address(es)\nfailed:",
    "following\naddress(es) failed:",
];

/// Lines that end the report's text.
const CLOSINGS: &[&str] = &[
    "------ this is a copy of",
    "----- this is a copy of",
    "------ the body of the message",
    "------ this is a copy of your message",
    "the following text was generated during the delivery attempt",
    "no action is required on your part",
    "included is a copy of the message header",
    "--- the header of the original message",
];

/// The heading of the delivery program's own output.
const GENERATED: &str = "the following text was generated during the delivery attempt";

/// Exim's own opening sentence.
const EXIM: &str = "this message was created automatically by mail delivery software";

/// Words of a delay warning.
const DELAY: &[&str] = &["has not yet been delivered", "have not yet been delivered"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let delayed = contains_any(body, DELAY);
    // The header names who failed, in the list's order, when a list line names a local part only.
    let header: Vec<String> = mail
        .header("X-Failed-Recipients")
        .map(|h| h.split(',').filter_map(address_in).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    if let Some(section) = after_line(body, OPENINGS) {
        for (i, (first, rest)) in blocks(before_line(section, CLOSINGS)).into_iter().enumerate() {
            if let Some(r) = recipient(first, &rest, header.get(i), delayed) {
                out.push(r);
            }
        }
    }
    if out.is_empty() {
        // 1&1's variant: the address at the margin, the reason below it (after "For the following reason:").
        if let Some(section) = after_line(body, OPENINGS) {
            let section = before_line(section, CLOSINGS);
            let mut lines = section.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("");
            if let Some(address) = address_in(first).filter(|_| !first.contains(' ')) {
                let reason: Vec<&str> = lines
                    .filter(|l| !l.eq_ignore_ascii_case("for the following reason:"))
                    .collect();
                out.push(recipient_of(&address, &reason.join("\n"), delayed));
            }
        }
    }
    // A pipe's or a file's own words on why it failed follow the list, under a ruled heading
    // naming the delivery: they are the one recipient's diagnostic when the list gives none.
    if let [r] = out.as_mut_slice()
        && r.diagnostic.is_empty()
        && let Some(generated) = after_line(body, &[GENERATED])
    {
        let below = generated.split_once("------\n").map_or("", |(_, below)| below);
        let said: Vec<&str> = paragraph(before_line(below, CLOSINGS)).collect();
        if !said.is_empty() {
            *r = recipient_of(&r.recipient, &said.join("\n"), delayed);
        }
    }
    if out.is_empty() && contains_any(body, &[EXIM]) {
        // Exim's text without a list: the header still names who failed. (Other MTAs set the
        // header too, so it alone does not make a report Exim's.)
        out.extend(header.iter().map(|address| recipient_of(address, "", delayed)));
    }
    out
}

/// The recipient blocks: a line indented less than four columns, and the lines below it
/// indented more. A line back at the margin ends the list.
fn blocks(section: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in section.lines() {
        if blank(line) {
            continue;
        }
        match indent(line) {
            0 => {
                if !out.is_empty() {
                    break;
                }
            }
            // Some Exims put the host at the recipient's indent.
            1..=3 if line.trim_start().starts_with("host ") && !out.is_empty() => {
                if let Some((_, rest)) = out.last_mut() {
                    rest.push(line.trim());
                }
            }
            1..=3 => out.push((line.trim(), Vec::new())),
            _ => match out.last_mut() {
                Some((_, rest)) => rest.push(line.trim()),
                // An Exim without the two-space indent: its recipient line is the first one.
                None => out.push((line.trim(), Vec::new())),
            },
        }
    }
    out
}

fn recipient(first: &str, rest: &[&str], listed: Option<&String>, delayed: bool) -> Option<RecipientReport> {
    // `save to /path` and `pipe to |cmd` deliveries name the address they came from below.
    let generated = rest
        .iter()
        .find_map(|l| l.strip_prefix("generated by ").and_then(address_in));
    let address = match address_in(first) {
        Some(a) if !first.starts_with("save to ") => a,
        _ => generated.or_else(|| address_in(first)).or_else(|| {
            listed
                .filter(|a| first.split([' ', ':']).next().is_some_and(|local| a.starts_with(local)))
                .cloned()
        })?,
    };
    // After the address, the first line may carry the diagnostic (`addr: malformed address`).
    let mut diagnostic = String::new();
    if let Some((_, said)) = first.split_once(">:").or_else(|| first.split_once(": ")) {
        diagnostic.push_str(said.trim());
    }
    for line in rest {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("generated by ")
            || lower.starts_with("(ultimately generated from")
            || lower.starts_with("(generated from")
        {
            continue;
        }
        let line = line.strip_prefix("Delay reason: ").unwrap_or(line);
        if !diagnostic.is_empty() {
            diagnostic.push('\n');
        }
        diagnostic.push_str(line);
    }
    Some(recipient_of(&address, &diagnostic, delayed))
}

fn recipient_of(address: &str, diagnostic: &str, delayed: bool) -> RecipientReport {
    failed(address, diagnostic).delayed_if(delayed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;
    use crate::report::Action;

    #[test]
    fn each_indented_address_is_a_recipient_with_the_lines_below_as_its_diagnostic() {
        let raw = r#"From: Mail Delivery System <Mailer-Daemon@mx.example.org>
X-Failed-Recipients: bob@example.net, eve@example.com
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  bob@example.net
    SMTP error from remote mail server after RCPT TO:<bob@example.net>:
    host mx.example.net [192.0.2.7]: 550 5.1.1 <bob@example.net>: no such user

  eve@example.com
    (ultimately generated from alias@example.org)
    retry timeout exceeded

------ This is a copy of the message, including all the headers. ------

To: someone@example.org <carol@example.org>
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].recipient, "bob@example.net");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.1.1"));
        assert_eq!(
            (got[0].remote_mta.as_str(), got[0].command.as_str()),
            ("mx.example.net", "RCPT")
        );
        assert_eq!(got[1].recipient, "eve@example.com");
        assert_eq!(
            (got[1].diagnostic.as_str(), got[1].reply_code),
            ("retry timeout exceeded", 0)
        );
    }

    #[test]
    fn a_delay_warning_reports_delayed_recipients() {
        let raw = r#"From: Mail Delivery System <Mailer-Daemon@mx.example.org>
Subject: Warning: message delayed

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mx.example.org.

The address to which the message has not yet been delivered is:

  bob@example.net
    host mx.example.net [192.0.2.7]
    Delay reason: SMTP error from remote mail server after MAIL FROM:<a@example.org>:
    451 4.7.1 greylisted

No action is required on your part.
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].action, Some(Action::Delayed));
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (451, "4.7.1"));
        assert_eq!(got[0].command, "MAIL");
    }

    #[test]
    fn the_margin_variant_gives_the_reason_below_the_address() {
        let raw = r#"From: "Mail Delivery System" <mailer-daemon@mx.example.de>
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of
its recipients. This is a permanent error.

The following address failed:

bob@example.net

For the following reason:

Mail size limit exceeded.

--- The header of the original message is following. ---
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].diagnostic.as_str()),
            ("bob@example.net", "Mail size limit exceeded.")
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = r#"From: bob@example.net
Subject: hello

The following address(es) failed:

none at all
"#;
        assert!(mail_of(raw, read).is_empty());
    }

    #[test]
    fn a_list_whose_opening_wraps_before_its_last_words_is_read() {
        let raw = r#"From: Mail Delivery System <Mailer-Daemon@mx.example.org>
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: bob@example.net

This message was created automatically by mail delivery software.

A message sent by

  <ann@example.org>

could not be delivered to one or more of its recipients. The following
address(es) failed:

  bob@example.net
    (ultimately generated from carol@example.net)
    all hosts have been failing for a long time and were last tried after this message arrived
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].diagnostic.starts_with("all hosts have been failing"),
            "{}",
            got[0].diagnostic
        );
    }

    #[test]
    fn a_pipe_s_own_words_are_its_recipient_s_diagnostic() {
        let raw = r#"From: Mail Delivery System <Mailer-Daemon@mx.example.org>
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  pipe to |/usr/local/bin/filter bob@example.net
    generated by bob@example.net

The following text was generated during the delivery attempt:

------ pipe to |/usr/local/bin/filter bob@example.net
       generated by bob@example.net ------

filter: cannot open /home/bob/.rules: No such file or directory

------ This is a copy of the message, including all the headers. ------
To: carol@example.org
"#;
        let got = mail_of(raw, read);
        let summary: Vec<(&str, &str)> = got
            .iter()
            .map(|r| (r.recipient.as_str(), r.diagnostic.as_str()))
            .collect();
        assert_eq!(
            summary,
            [(
                "bob@example.net",
                "filter: cannot open /home/bob/.rules: No such file or directory"
            )]
        );
    }
}

//! Smaller hosted services' own reports: GMX and 1&1 (United Internet's `The following
//! address failed:` layout), Zoho (`address Invalid Address, ERROR_CODE :550, ERROR_CODE
//! :5.1.1 ...`), Mimecast (`-- address` / `The problem appears to be :`) and Verizon's
//! messaging gateways (`Error message below:` / `RCPT TO:`).

use crate::mime::Mail;
use crate::mta::text::{
    after_line_with, before_line_starting, failed_each, failed_loose, find_ignore_case, fold, is_address, lone_address,
};
use crate::mta::{Cues, Reader};
use crate::report::{Action, RecipientReport};

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

/// BIGLOBE (NEC's ISP).
pub(in crate::mta) const BIGLOBE: Reader = Reader {
    name: "biglobe",
    cues: Cues {
        from: &["@biglobe.ne.jp"],
        subject: &[],
        headers: &[],
        body: &["----- non-delivered information -----"],
    },
    read: read_biglobe,
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

fn read_verizon(mail: &Mail<'_>) -> Vec<RecipientReport> {
    // Its MMS gateway folds the multipart's boundary badly, leaving the report in a part the
    // MIME view does not take for text: each top-level part is tried in turn.
    let texts =
        std::iter::once(mail.body.as_str()).chain(mail.parts.iter().filter(|p| p.depth == 0).map(|p| p.text.as_ref()));
    texts.map(verizon_report).find(|r| !r.is_empty()).unwrap_or_default()
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

/// `----- The following addresses had delivery problems -----`, the addresses, then
/// `----- Non-delivered information -----` and the reason.
fn read_biglobe(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(list) = after_line_with(&mail.body, "----- the following addresses had delivery problems -----") else {
        return Vec::new();
    };
    let addresses: Vec<String> = before_line_starting(list, &["----- non-delivered information"])
        .lines()
        .filter_map(lone_address)
        .collect();
    let reason = after_line_with(list, "----- non-delivered information -----").unwrap_or("");
    let reason = fold(reason.trim_start_matches('\n').split("\n\n").next().unwrap_or(""));
    failed_each(addresses.iter().map(String::as_str), &reason)
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

    #[test]
    fn biglobe_reads_the_addresses_and_the_reason() {
        let raw = "From: postmaster@biglobe.ne.jp\nSubject: Returned mail: Service unavailable\n\n\
            \x20  ----- The following addresses had delivery problems -----\nann@example.org\n\n\
            \x20  ----- Non-delivered information -----\nThe number of messages in recipient's mailbox exceeded.\n\n";
        let got = read(raw, &BIGLOBE);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert!(got[0].diagnostic.starts_with("The number of messages"));
        let other = "From: ann@biglobe.ne.jp\nSubject: hi\n\nann@example.org\n";
        assert!(read(other, &BIGLOBE).is_empty());
    }

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

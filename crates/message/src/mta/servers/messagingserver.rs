//! Sun/Oracle Messaging Server's (and PMDF's) report text: after "Your message cannot be
//! delivered to the following recipients:", a field block per recipient (`Recipient address:`,
//! `Reason:`, `Diagnostic code: smtp; ...`, `Remote system: dns; host ...`).

use super::layout::{after_line, contains_any};
use crate::mime::Mail;
use crate::mta::text::{address_in, failed_with_command};
use crate::report::{Action, RecipientReport};

const OPENINGS: &[&str] = &[
    "cannot be delivered to the following recipients:",
    "has not yet been delivered to the following recipients:",
    "undeliverable for",
];

/// Words of a delay report.
const DELAY: &[&str] = &["has not yet been delivered", "has been enqueued and undeliverable"];

/// One recipient's fields.
#[derive(Default)]
struct Block {
    address: String,
    reason: String,
    diagnostic: String,
    remote: String,
}

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(section) = after_line(body, OPENINGS) else {
        return Vec::new();
    };
    let delayed = contains_any(body, DELAY);
    let mut blocks: Vec<Block> = Vec::new();
    for line in section.lines() {
        let Some((name, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "recipient address" => blocks.push(Block {
                address: address_in(value).unwrap_or_default(),
                ..Block::default()
            }),
            // A routed address (`@relay:user@host`) comes with the address as sent.
            "original address" => {
                if let (Some(b), Some(original)) = (blocks.last_mut(), address_in(value))
                    && (b.address.is_empty() || !b.address.contains('.'))
                {
                    b.address = original;
                }
            }
            "reason" => blocks.last_mut().iter_mut().for_each(|b| b.reason = value.to_string()),
            "diagnostic code" => {
                let code = value.split_once(';').map_or(value, |(_, v)| v).trim();
                blocks
                    .last_mut()
                    .iter_mut()
                    .for_each(|b| b.diagnostic = code.to_string());
            }
            "remote system" => {
                let system = value.split_once(';').map_or(value, |(_, v)| v).trim();
                let host = system.split_whitespace().next().unwrap_or("");
                blocks
                    .last_mut()
                    .iter_mut()
                    .for_each(|b| b.remote = host.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    blocks
        .into_iter()
        .filter(|b| !b.address.is_empty())
        .map(|b| {
            let said = if b.diagnostic.is_empty() {
                &b.reason
            } else {
                &b.diagnostic
            };
            let mut r = failed_with_command(&b.address, said);
            if !b.remote.is_empty() {
                r.remote_mta = b.remote;
            }
            if delayed {
                r.action = Some(Action::Delayed);
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn each_field_block_is_a_recipient() {
        let raw = r#"From: Internet Mail Delivery <postmaster@mx.example.org>
Subject: Delivery Notification: Delivery has failed

This report relates to a message you sent with the following header fields:

  To: bob@example.net

Your message cannot be delivered to the following recipients:

  Recipient address: bob@example.net
  Reason: Remote SMTP server has rejected address
  Diagnostic code: smtp; 550 5.1.1 <bob@example.net>... User unknown
  Remote system: dns; mx.example.net (TCP|192.0.2.1|25)

  Recipient address: eve@example.com
  Reason: Illegal host/domain name found
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].reply_code, got[0].status.as_str()),
            ("bob@example.net", 550, "5.1.1")
        );
        assert_eq!(got[0].remote_mta, "mx.example.net");
        assert_eq!(got[1].diagnostic, "Illegal host/domain name found");
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\nRecipient address: bob@example.net\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

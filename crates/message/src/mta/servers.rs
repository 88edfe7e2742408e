//! Non-DSN report readers for mail server software: Exim, qmail, Sendmail, Postfix, Courier,
//! OpenSMTPD and the rest, one file per family under `servers/`, each reading its family's text
//! layout (so a report still reads when its DSN part is missing).

mod amavis;
mod apachejames;
mod barracuda;
mod biglobe;
mod courier;
mod dragonfly;
mod exim;
mod fml;
mod imailserver;
mod kddi;
mod layout;
mod mail2000;
mod mailfoundry;
mod mailmarshal;
mod mcafee;
mod messagingserver;
mod mfilter;
mod notice;
mod opensmtpd;
mod postfix;
mod powermta;
mod qmail;
mod sendmail;
mod surfcontrol;
mod trendmicro;
mod verizon;
mod x3;
mod x6;

use super::{Cues, Reader};

/// This group's readers, most specific first.
pub(crate) static READERS: &[Reader] = &[
    Reader {
        name: "qmail",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &[
                "this is the qmail-send program",
                "i'm afraid i wasn't able to deliver your message to the following addresses",
            ],
        },
        read: qmail::read,
    },
    Reader {
        name: "dragonfly",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &[
                "this is the dragonfly mail agent",
                "there was an error delivering your mail to <",
            ],
        },
        read: dragonfly::read,
    },
    Reader {
        name: "exim",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &["x-failed-recipients"],
            body: &[
                "this message was created automatically by mail delivery software",
                "recipient addresses that were\nincorrectly constructed",
            ],
        },
        read: exim::read,
    },
    Reader {
        name: "sendmail",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &[
                "----- transcript of session follows -----",
                "----- the following addresses had permanent fatal errors -----",
                "----- the following addresses had transient non-fatal errors -----",
            ],
        },
        read: sendmail::read,
    },
    Reader {
        name: "postfix",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["this is the mail system at host", "this is the postfix program at host"],
        },
        read: postfix::read,
    },
    Reader {
        name: "opensmtpd",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["this is the mailer-daemon, please do not reply to this e"],
        },
        read: opensmtpd::read,
    },
    Reader {
        name: "messagingserver",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &[
                "your message cannot be delivered to the following recipients:",
                "this report relates to a message you sent with the following header fields",
            ],
        },
        read: messagingserver::read,
    },
    Reader {
        name: "qsbmf",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &[
                "unable to deliver message to the following address(es)",
                "your mail message to the following address(es) could not be delivered",
            ],
        },
        read: qmail::read_qsbmf,
    },
    Reader {
        name: "mail2000",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["---the following addresses had delivery errors---"],
        },
        read: mail2000::read,
    },
    Reader {
        name: "x3",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["this is an automatically generated delivery status notification"],
        },
        read: x3::read,
    },
    Reader {
        name: "x6",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["we had trouble delivering your message. full details follow:"],
        },
        read: x6::read,
    },
    Reader {
        name: "mfilter",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["-------server message"],
        },
        read: mfilter::read,
    },
    Reader {
        name: "auone",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["could not be delivered to: <"],
        },
        read: kddi::read_auone,
    },
    Reader {
        name: "ezweb",
        cues: Cues {
            from: &["postmaster@ezweb.ne.jp"],
            subject: &[],
            headers: &[],
            body: &[],
        },
        read: kddi::read_ezweb,
    },
    Reader {
        name: "trendmicro",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["sent <<< rcpt to:", "message from interscan messaging security suite"],
        },
        read: trendmicro::read,
    },
    Reader {
        name: "apachejames",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["error message below:"],
        },
        read: apachejames::read,
    },
    Reader {
        name: "verizon",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["message could not be delivered to mobile"],
        },
        read: verizon::read,
    },
    Reader {
        name: "mailfoundry",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["delivery failed for the following reason:"],
        },
        read: mailfoundry::read,
    },
    Reader {
        name: "biglobe",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["----- the following addresses had delivery problems -----"],
        },
        read: biglobe::read,
    },
    Reader {
        name: "mailmarshal",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["the following recipients were affected:"],
        },
        read: mailmarshal::read,
    },
    Reader {
        name: "courier",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["running the courier mail server"],
        },
        read: courier::read,
    },
    Reader {
        name: "mcafee",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["--- the following addresses had delivery problems ---"],
        },
        read: mcafee::read,
    },
    Reader {
        name: "surfcontrol",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["a transcript of the attempts to send the message follows"],
        },
        read: surfcontrol::read,
    },
    Reader {
        name: "amavis",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &[
                "this nondelivery report was generated by the program amavisd-new",
                "our internal reference code for your message is",
            ],
        },
        read: amavis::read,
    },
    Reader {
        name: "barracuda",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &[
                "was blocked by our spam firewall",
                "was blocked by our spam & virus firewall",
            ],
        },
        read: barracuda::read,
    },
    Reader {
        name: "powermta",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["hello, this is the mail server on"],
        },
        read: powermta::read,
    },
    Reader {
        name: "postfix",
        cues: Cues {
            from: &[],
            subject: &["postfix smtp server: errors from"],
            headers: &[],
            body: &[],
        },
        read: postfix::read_smtpd_transcript,
    },
    Reader {
        name: "notice",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &[],
            body: &["your delivery to the following address has been failed"],
        },
        read: notice::read,
    },
    Reader {
        name: "fml",
        cues: Cues {
            from: &[],
            subject: &[],
            headers: &["x-mlserver"],
            body: &[],
        },
        read: fml::read,
    },
    Reader {
        name: "imailserver",
        cues: Cues {
            from: &[],
            subject: &["undeliverable mail"],
            headers: &[],
            body: &["original message follows."],
        },
        read: imailserver::read,
    },
];

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::READERS;
    use crate::Limits;
    use crate::mime::{Mail, parse};
    use crate::mta::text::is_address;
    use crate::report::{Action, RecipientReport};

    /// Lines the readers look for, and lines that break their layouts, to build hostile bodies from.
    const PIECES: &[&str] = &[
        "The following address(es) failed:",
        "  bob@example.net",
        "    host mx.example.net [192.0.2.1]: 550 5.1.1 no",
        "<bob@example.net>:",
        "<bob@example.net>: host x said: 550 5.1.1 no (in reply to RCPT TO command)",
        "This is the qmail-send program at x.",
        "Unable to deliver message to the following address(es).",
        "   ----- Transcript of session follows -----",
        "   ----- The following addresses had permanent fatal errors -----",
        "... while talking to mx.example.net.:",
        ">>> RCPT To:<bob@example.net>",
        "<<< 550 5.1.1 no",
        "550 5.1.1 <bob@example.net>... User unknown",
        "    (reason: 550 5.1.1 no)",
        "    (expanded from: <eve@example.com>)",
        "\"|/usr/bin/x\"",
        "This is the mail system at host x.",
        "There was an error delivering your mail to <bob@example.net>.",
        "the following list of recipients:",
        "bob@example.net: 550 no",
        "Recipient address: @relay:bob@x",
        "Original address: bob@example.net",
        "---The following addresses had delivery errors---",
        "bob@example.net [User unknown]",
        "   * bob@example.net",
        "Technical details:",
        "=====",
        "-------server message",
        "-------SMTP command",
        "Could not be delivered to: <bob@example.net>",
        "Recipient: <bob@example.net>",
        "Sent <<< RCPT TO:<bob@example.net>",
        "Received >>> 550 no",
        "Error message below:",
        "Message details:",
        "  RCPT TO: bob@example.net",
        "Delivery failed for the following reason:",
        "Unable to deliver message to: <bob@example.net>",
        "----- The following addresses had delivery problems -----",
        "----- Non-delivered information -----",
        "The following recipients were affected:",
        "Could not be delivered because of",
        "Transcript of session follows.",
        " In:  RCPT TO:<bob@example.net>",
        " Out: 550 5.1.1 no",
        "Delivery failed: bob@example.net",
        "Your delivery to the following address has been failed.",
        "We had trouble delivering your message. Full details follow:",
        "rejected recipient <bob@example.net> [550 5.1.1 no]",
        "You are not a member of this mailing list <list@example.org>.",
        "undeliverable to bob@example.net",
        "Body of message generated response:",
        "Original message follows.",
        "Message could not be delivered to mobile.",
        "Original Message:",
        "To: bob@example.net",
        "",
        "   ",
        "\t\u{e9}\u{3042}<>@:;[]...",
        "<@>:",
        "a@b",
        "Delay reason: 451 4.7.1 later",
    ];

    fn hostile_body() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(PIECES).prop_map(str::to_string),
                1 => "[ -~\u{e9}\u{3042}]{0,40}",
            ],
            0..40,
        )
        .prop_map(|lines| lines.join("\n"))
    }

    /// Every reader of the group on `raw`, each recipient checked to be an address.
    fn read_all(raw: &str) {
        let limits = Limits::default();
        let Ok(message) = parse(raw.as_bytes(), &limits) else {
            return;
        };
        let Ok(mail) = Mail::new(&message, &limits) else { return };
        for reader in READERS {
            for r in (reader.read)(&mail) {
                assert!(
                    is_address(&r.recipient),
                    "{} read recipient {:?}",
                    reader.name,
                    r.recipient
                );
            }
        }
    }

    proptest! {
        #[test]
        fn no_reader_panics_or_reads_a_non_address_on_hostile_text(body in hostile_body(), crlf in any::<bool>()) {
            let raw = format!(
                "From: MAILER-DAEMON@mx.example.org\nSubject: Undeliverable Mail\nX-Failed-Recipients: bob@example.net\n\
                 X-MLServer: fml\n\n{body}\n"
            );
            read_all(&if crlf { raw.replace('\n', "\r\n") } else { raw });
        }
    }

    /// Corpus reports (Sisimai's set of emails) this group reads differently from Sisimai 5.1.0 on
    /// purpose: file, recipient, reply code, action, and why.
    const DISAGREEMENTS: &[(&str, &str, u16, Action, &str)] = &[
        (
            "lhost-exim-32.eml",
            "kijitora@example.net",
            571,
            Action::Failed,
            "the reply `571 No PTR Record found` is in the text; Sisimai reads no reply code",
        ),
        (
            "lhost-exim-06.eml",
            "kijitora@example.com",
            0,
            Action::Failed,
            "\"This is a permanent error\" (retry timeout exceeded); Sisimai says delayed from its reason, expired",
        ),
        (
            "lhost-exim-38.eml",
            "kijitora@example.co.jp",
            450,
            Action::Delayed,
            "a delay warning (\"has not yet been delivered\"); Sisimai says failed",
        ),
        (
            "lhost-opensmtpd-12.eml",
            "neko@nyaan.jp",
            0,
            Action::Delayed,
            "OpenSMTPD's delay warning (\"A message is delayed\"); Sisimai says failed",
        ),
        (
            "lhost-x1-03.eml",
            "kijitora@example.org",
            0,
            Action::Failed,
            "a bounce in Mail2000's layout that Sisimai does not read",
        ),
        (
            "lhost-x1-04.eml",
            "kijitora-neko@neko.example.go.jp",
            0,
            Action::Failed,
            "a bounce in Mail2000's layout that Sisimai does not read",
        ),
        (
            "lhost-mfilter-05.eml",
            "kijitora@example.co.jp",
            452,
            Action::Failed,
            "an m-FILTER bounce (base64 text) that Sisimai does not read",
        ),
        (
            "lhost-sendmail-56.eml",
            "neko-nyaan@icloud.example.com",
            554,
            Action::Failed,
            "the recipient failed on `554 ... not accepting connections`; Sisimai takes the 421 answering QUIT",
        ),
    ];

    #[test]
    fn the_corpus_reports_read_differently_from_sisimai_read_as_listed() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/sisimai-set-of-emails/maildir/bsd/"
        );
        let limits = Limits::default();
        for (file, recipient, code, action, why) in DISAGREEMENTS {
            let raw = std::fs::read(format!("{dir}{file}")).expect("the corpus file is there");
            let message = parse(&raw, &limits).expect("the corpus file parses");
            let mail = Mail::new(&message, &limits).expect("the corpus file is within limits");
            let got = crate::mta::candidates(&mail)
                .map(|r| (r.read)(&mail))
                .find(|got| !got.is_empty())
                .unwrap_or_default();
            let r = got
                .iter()
                .find(|r| r.recipient == *recipient)
                .unwrap_or_else(|| panic!("{file}: {recipient} not read ({why})"));
            assert_eq!((r.reply_code, r.action), (*code, Some(*action)), "{file}: {why}");
        }
    }

    #[test]
    fn a_large_report_is_read_in_linear_time() {
        // Each layout's cues and recipient lines repeated: a quadratic reader would take minutes.
        let block: String = PIECES.iter().map(|p| format!("{p}\n")).collect();
        let raw = format!(
            "From: MAILER-DAEMON@mx.example.org\nSubject: Undeliverable Mail\nX-MLServer: fml\n\n{}",
            block.repeat(1500)
        );
        let started = Instant::now();
        read_all(&raw);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}",
            started.elapsed()
        );
    }

    /// What `read` makes of the raw message `raw`, checked to be the same with CRLF line ends.
    pub(crate) fn mail_of(raw: &str, read: fn(&Mail<'_>) -> Vec<RecipientReport>) -> Vec<RecipientReport> {
        let limits = Limits::default();
        let got = |raw: &str| {
            let message = parse(raw.as_bytes(), &limits).expect("the test message parses");
            let mail = Mail::new(&message, &limits).expect("the test message is within limits");
            read(&mail)
        };
        let lf = got(raw);
        assert_eq!(lf, got(&raw.replace('\n', "\r\n")), "CRLF reads the same");
        lf
    }
}

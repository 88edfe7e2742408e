//! Non-DSN report readers for mail server software: Exim, qmail, Sendmail, Postfix, Courier, OpenSMTPD and the rest.

mod apachejames;
mod biglobe;
mod dragonfly;
mod exim;
mod fml;
mod imailserver;
mod kddi;
mod layout;
mod mail2000;
mod mailfoundry;
mod mailmarshal;
mod messagingserver;
mod mfilter;
mod notice;
mod opensmtpd;
mod postfix;
mod qmail;
mod sendmail;
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
    use crate::Limits;
    use crate::mime::{Mail, parse};
    use crate::report::RecipientReport;

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

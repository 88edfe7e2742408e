//! Non-DSN report readers for mail server software: Exim, qmail, Sendmail, Postfix, Courier, OpenSMTPD and the rest.

mod dragonfly;
mod exim;
mod layout;
mod messagingserver;
mod opensmtpd;
mod postfix;
mod qmail;
mod sendmail;

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

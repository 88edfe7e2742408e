//! Google's own reports: Gmail's older `Delivery to the following recipient failed
//! permanently:` / `has been delayed:` with `Technical details of ... failure:`; its current
//! `** Address not found **` layout (one recipient named in a sentence, then `The response
//! was:` and the reply), also sent for Google Workspace; and Google Groups' notice that a group
//! refused a post (any language; the group is named in `X-Failed-Recipients`).

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, failed_each, find_ignore_case, fold, lone_address};
use crate::mta::{Cues, Reader};
use crate::report::{Action, RecipientReport};

/// Gmail (and Google Workspace mailboxes) as the sending MTA.
pub(in crate::mta) const GMAIL: Reader = Reader {
    name: "gmail",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        // Singular only: other MTAs write `Delivery to the following recipients failed
        // permanently:` in layouts of their own.
        body: &[
            "delivery to the following recipient failed permanently:",
            "delivery to the following recipient has been delayed:",
        ],
    },
    read: read_gmail,
};

/// Gmail and Google Workspace's current layout.
pub(in crate::mta) const GMAIL_CURRENT: Reader = Reader {
    name: "gmail",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &[
            "** address not found **",
            "** message not delivered **",
            "** message blocked **",
            "** delivery incomplete **",
        ],
    },
    read: read_gmail_current,
};

/// A Google Group refusing a post.
pub(in crate::mta) const GOOGLE_GROUPS: Reader = Reader {
    name: "googlegroups",
    cues: Cues {
        from: &[],
        subject: &[],
        headers: &[],
        body: &["https://groups.google.com/support/"],
    },
    read: read_groups,
};

/// Where the returned message starts.
const ORIGINAL: [&str; 2] = ["----- original message -----", "----- message header follows -----"];

fn read_gmail(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = before_line_starting(&mail.body, &ORIGINAL);
    let Some(list) = [
        "delivery to the following recipient failed",
        "delivery to the following recipient has",
    ]
    .iter()
    .find_map(|m| after_line_with(body, m)) else {
        return Vec::new();
    };
    let opener = body.get(..body.len() - list.len()).unwrap_or("");
    let delayed = find_ignore_case(opener, "has been delayed").is_some();
    let recipients: Vec<String> = before_line_starting(list, &["technical details of", "message will be retried"])
        .lines()
        .filter_map(lone_address)
        .collect();
    // The details start on the marker's own line, after its colon.
    let details = find_ignore_case(list, "technical details of")
        .and_then(|at| list.get(at..))
        .and_then(|d| d.split_once(':'))
        .map_or("", |(_, rest)| rest);
    let reply = match find_ignore_case(details, "the error that the other server returned was:") {
        Some(at) => details
            .get(at + "the error that the other server returned was:".len()..)
            .unwrap_or(""),
        None => details,
    };
    let reply = undouble_code(&fold(reply));
    let host = rejecting_host(details);
    let mut reports = failed_each(recipients.iter().map(String::as_str), &reply);
    for r in &mut reports {
        if delayed {
            r.action = Some(Action::Delayed);
        }
        if r.remote_mta.is_empty()
            && let Some(host) = &host
        {
            r.remote_mta.clone_from(host);
        }
    }
    reports
}

/// Gmail writes the remote code twice (`554 554 5.7.0 Header error`): once is the reply.
fn undouble_code(reply: &str) -> String {
    let mut words = reply.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some(a), Some(b), rest) if a == b && a.len() == 3 && a.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{a} {}", rest.unwrap_or(""))
        }
        _ => reply.to_string(),
    }
}

/// `... rejected by the server for the recipient domain example.jp by mx.example.jp. [192.0.2.1].`
fn rejecting_host(details: &str) -> Option<String> {
    let at = find_ignore_case(details, "for the recipient domain ")?;
    let rest = details.get(at..)?;
    let by = rest.find(" by ")?;
    let host = rest.get(by + 4..)?.split_whitespace().next()?.trim_end_matches('.');
    (host.contains('.') && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .then(|| host.to_ascii_lowercase())
}

/// Where the sentence naming the recipient puts it.
const NAMED_IN: [&str; 3] = ["delivered to ", "delivering your message to ", "your message to "];

/// Where the reply starts.
const RESPONSE: [&str; 2] = ["the response from the remote server was:", "the response was:"];

fn read_gmail_current(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = before_line_starting(&mail.body, &ORIGINAL);
    let Some(heading) = body
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("** ") && l.ends_with(" **"))
    else {
        return Vec::new();
    };
    let delayed = heading.eq_ignore_ascii_case("** delivery incomplete **");
    // The recipient is the address right after `delivered to` in the first sentence naming one;
    // a report whose sentence names none (`Send mail as` misconfigured) lists it only in
    // `X-Failed-Recipients`.
    let named = NAMED_IN.iter().find_map(|m| {
        let at = find_ignore_case(body, m)?;
        let named = body.get(at + m.len()..)?.split_whitespace().next()?;
        let named = named.trim_end_matches(['.', ',']);
        crate::mta::text::is_address(named).then(|| named.to_string())
    });
    let recipients: Vec<String> = match named {
        Some(named) => vec![named],
        None => mail
            .header("X-Failed-Recipients")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| crate::mta::text::is_address(a))
            .map(str::to_string)
            .collect(),
    };
    let reply = RESPONSE
        .iter()
        .find_map(|m| after_line_with(body, m))
        .map(|r| fold(r.trim_start_matches('\n').split("\n\n").next().unwrap_or("")))
        .unwrap_or_default();
    let mut reports = failed_each(recipients.iter().map(String::as_str), &reply);
    if delayed {
        for r in &mut reports {
            r.action = Some(Action::Delayed);
        }
    }
    reports
}

fn read_groups(mail: &Mail<'_>) -> Vec<RecipientReport> {
    // The notice is Google's only when Google's mailer sent it and names the group it refused.
    if !mail
        .from_address()
        .to_ascii_lowercase()
        .starts_with("mailer-daemon@google")
    {
        return Vec::new();
    }
    let Some(groups) = mail.header("X-Failed-Recipients") else {
        return Vec::new();
    };
    let notice = fold(before_line_starting(&mail.body, &ORIGINAL));
    failed_each(
        groups
            .split(',')
            .map(str::trim)
            .filter(|g| crate::mta::text::is_address(g)),
        &notice,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn gmail_reads_the_recipient_and_the_other_servers_reply() {
        let raw = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n\
            Subject: Delivery Status Notification (Failure)\n\n\
            Delivery to the following recipient failed permanently:\n\n     ann@example.org\n\n\
            Technical details of permanent failure:\n\
            Google tried to deliver your message, but it was rejected by the server for the recipient \
            domain example.org by mx.example.org. [192.0.2.7].\n\n\
            The error that the other server returned was:\n554 554 5.7.1 Service unavailable\n\n\
            ----- Original message -----\n\nTo: other@example.org\n";
        let got = read(raw, &GMAIL);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (554, "5.7.1"));
        assert_eq!(got[0].remote_mta, "mx.example.org");
        assert_eq!(got[0].action, Some(Action::Failed));

        let delayed = "From: mailer-daemon@googlemail.com\nSubject: Delay\n\n\
            Delivery to the following recipient has been delayed:\n\n     bob@example.org\n\n\
            Message will be retried for 2 more day(s)\n\n\
            Technical details of temporary failure:\nThe recipient server did not accept our requests to connect.\n";
        let got = read(delayed, &GMAIL);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].action, Some(Action::Delayed));
        assert_eq!(got[0].reply_code, 0);

        let other = "From: a@example.net\nSubject: hi\n\nThe meeting is at noon.\nann@example.org\n";
        assert!(read(other, &GMAIL).is_empty());
    }

    #[test]
    fn gmail_reads_its_current_layout() {
        let raw = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nSubject: Delivery Status Notification (Failure)\n\n\
            ** Address not found **\n\nYour message wasn't delivered to ann@example.org because the address couldn't be found.\n\n\
            Learn more here: https://support.google.com/mail/?p=NoSuchUser\n\n\
            The response from the remote server was:\n550 #5.1.0 Address rejected.\n\n";
        let got = read(raw, &GMAIL_CURRENT);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert_eq!((got[0].reply_code, got[0].status.as_str()), (550, "5.1.0"));

        let delayed = "From: mailer-daemon@googlemail.com\nSubject: Delay\n\n** Delivery incomplete **\n\n\
            There was a temporary problem delivering your message to bob@example.org. Gmail will retry.\n\n\
            The response was:\nThe recipient server did not accept our requests to connect.\n";
        let got = read(delayed, &GMAIL_CURRENT);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].action),
            ("bob@example.org", Some(Action::Delayed))
        );

        let unnamed = "From: mailer-daemon@googlemail.com\nX-Failed-Recipients: team@example.org\nSubject: x\n\n\
            ** Message not delivered **\n\nYour 'Send mail as' settings are misconfigured.\n\n\
            The response was:\n\nUnspecified Error (SENT_SECOND_EHLO): Smtp server does not advertise AUTH\n";
        let got = read(unnamed, &GMAIL_CURRENT);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "team@example.org");
        assert!(got[0].diagnostic.starts_with("Unspecified Error"));

        let blocked = "From: mailer-daemon@googlemail.com\nSubject: x\n\n** Message blocked **\n\n\
            Your message to carol@example.org has been blocked. See technical details below.\n\n\
            The response was:\n550 5.7.1 Message rejected by policy\n";
        let got = read(blocked, &GMAIL_CURRENT);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].recipient.as_str(), got[0].status.as_str()),
            ("carol@example.org", "5.7.1")
        );

        let other = "From: a@example.net\nSubject: hi\n\n** Important **\n\nPlease write to ann@example.org.\n";
        assert!(read(other, &GMAIL_CURRENT).is_empty());
    }

    #[test]
    fn google_groups_reads_the_refused_group_from_its_header() {
        let raw = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n\
            X-Failed-Recipients: team@googlegroups.com\nSubject: Delivery Status Notification (Failure)\n\n\
            Hello ann@example.org,\n\nThe group you tried to contact (team) may not exist.\n\
            Visit the Help Center at https://groups.google.com/support/.\n\n\
            ----- Original message -----\n\nTo: team@googlegroups.com\n";
        let got = read(raw, &GOOGLE_GROUPS);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "team@googlegroups.com");
        assert!(got[0].diagnostic.contains("may not exist"));
        let forwarded = raw.replace("mailer-daemon@googlemail.com", "ann@example.org");
        assert!(read(&forwarded, &GOOGLE_GROUPS).is_empty());
    }
}

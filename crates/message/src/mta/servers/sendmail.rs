//! Sendmail's report (and V5 Sendmail's), read from its text so it holds when the DSN part is
//! missing: the "----- The following addresses had permanent fatal errors -----" list (`<address>`
//! then `(reason: ...)`), and the "----- Transcript of session follows -----" (`... while talking
//! to host:`, `>>> COMMAND`, `<<< reply`, then `550 <address>... text` for each recipient).

use std::collections::HashMap;

use super::layout::{before_line, from_line};
use crate::mime::Mail;
use crate::mta::text::{address_in, clip, failed, fold};
use crate::report::{Action, RecipientReport};

/// Lines that open the report's sections, lower-case.
const OPENINGS: &[&str] = &[
    "----- the following addresses had",
    "----- transcript of session follows -----",
];

/// Lines that end the report's text.
const CLOSINGS: &[&str] = &[
    "----- unsent message follows -----",
    "----- original message follows -----",
    "----- message header follows -----",
    "----- returned message follows -----",
    "----- the header of the original message",
    "reporting-mta:",
];

/// Words of a delay warning.
const WARNING: &str = "this is a warning message only";

/// One recipient as the report's sections give it.
#[derive(Default)]
struct Entry {
    address: String,
    /// The `(reason: ...)` of the recipient list.
    reason: String,
    /// The remote server's replies the transcript shows for it.
    replies: String,
    /// Its own status line in the transcript (`550 5.1.1 <bob@example.net>... User unknown`).
    status_line: String,
    host: String,
    command: String,
    delayed: bool,
    /// Listed under "permanent fatal errors": failed, whatever earlier attempts said.
    fatal: bool,
}

/// The transcript's state since the last `... while talking to host:`.
#[derive(Default)]
struct Session {
    host: String,
    command: String,
    replies: String,
    quitting: bool,
}

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let Some(section) = from_line(body, OPENINGS) else {
        return Vec::new();
    };
    let section = before_line(section, CLOSINGS);
    // A report forwarded inline arrives quoted: the opening line tells.
    let quoted = section.starts_with('>');
    let warning = body.to_ascii_lowercase().contains(WARNING);
    let mut entries: Vec<Entry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut in_list = false;
    let mut delayed_list = false;
    let mut session: Option<Session> = None;
    // The reason of a list line that names no address yet (`"|/usr/bin/program"`).
    let mut unnamed: Option<String> = None;
    // Transcript lines that are neither session nor a recipient's status.
    let mut loose = String::new();
    for line in section.lines() {
        let line = if quoted { unquote(line) } else { line };
        let trimmed = line.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("----- the following addresses had") {
            in_list = true;
            delayed_list = lower.contains("transient");
            continue;
        }
        if lower.starts_with("----- transcript of session follows") {
            in_list = false;
            continue;
        }
        if in_list {
            if let Some(reason) = trimmed.strip_prefix("(reason:") {
                let reason = reason.trim_end_matches(')').trim();
                // A delivery program's exit status alone (`(reason: 255)`) is no reply.
                let reason = if reason.bytes().all(|b| b.is_ascii_digit()) {
                    ""
                } else {
                    reason
                };
                let reason = reason.to_string();
                match (unnamed.as_mut(), entries.last_mut()) {
                    (Some(pending), _) => *pending = reason,
                    (None, Some(e)) => e.reason = reason,
                    (None, None) => {}
                }
            } else if let Some(from) = trimmed.strip_prefix("(expanded from:") {
                // A pipe or file delivery is named by the address it was expanded from.
                if let (Some(reason), Some(address)) = (unnamed.take(), address_in(from)) {
                    let e = entry(&mut entries, &mut index, &address);
                    e.reason = reason;
                    e.delayed |= delayed_list;
                    e.fatal |= !delayed_list;
                }
            } else if !line.starts_with([' ', '\t']) && !trimmed.is_empty() {
                unnamed = None;
                match address_in(trimmed) {
                    Some(address) if !trimmed.starts_with(['"', '|', '/']) => {
                        let e = entry(&mut entries, &mut index, &address);
                        e.delayed |= delayed_list;
                        e.fatal |= !delayed_list;
                    }
                    _ => unnamed = Some(String::new()),
                }
            }
            continue;
        }
        if let Some(host) = talking_to(&lower, trimmed) {
            session = Some(Session {
                host,
                ..Session::default()
            });
        } else if let Some(command) = trimmed.strip_prefix(">>> ") {
            let s = session.get_or_insert_with(Session::default);
            // The replies to QUIT close a session that already failed: they are not the failure.
            s.quitting = command_word(command) == "QUIT";
            if !s.quitting {
                s.command = command_word(command);
                s.replies.clear();
            }
        } else if let Some(reply) = trimmed.strip_prefix("<<< ").or_else(|| trimmed.strip_prefix("<<<")) {
            let s = session.get_or_insert_with(Session::default);
            if !s.quitting {
                s.replies.push_str(reply.trim());
                s.replies.push('\n');
            }
        } else if let Some((address, text)) = status_line(trimmed) {
            loose.clear();
            let e = entry(&mut entries, &mut index, &address);
            e.status_line = trimmed.to_string();
            e.delayed |= text.trim_start().starts_with("Deferred");
            if let Some(s) = session.take() {
                e.replies = s.replies;
                e.host = s.host;
                e.command = s.command;
            }
        } else if !trimmed.is_empty() {
            loose.push_str(trimmed);
            loose.push('\n');
        }
    }
    // A session no status line took (a failure at DATA for every recipient) speaks for the last
    // recipient without replies of its own.
    if let Some(s) = session.filter(|s| !s.replies.is_empty())
        && let Some(e) = entries.iter_mut().rev().find(|e| e.replies.is_empty())
    {
        e.replies = s.replies;
        e.host = s.host;
        e.command = s.command;
    }
    // Transcript lines that name nobody (a local delivery's error output) speak for the last
    // recipient the list left without a reason.
    if let Some(e) = entries
        .iter_mut()
        .rev()
        .find(|e| e.reason.is_empty() && e.status_line.is_empty() && e.replies.is_empty())
    {
        e.replies = loose;
    }
    entries
        .into_iter()
        .map(|e| {
            // The list's reason is the reply's first line; the session, when it holds that
            // reply, has all of it.
            let reason = fold(&e.reason);
            let holds_reason = |d: &String| !reason.is_empty() && fold(d).contains(&reason);
            let diagnostic = [&e.replies, &e.status_line]
                .into_iter()
                .find(|d| holds_reason(d))
                .or_else(|| {
                    [&e.reason, &e.replies, &e.status_line]
                        .into_iter()
                        .find(|d| !d.trim().is_empty())
                })
                .map_or("", |d| d.as_str());
            let mut r = failed(&e.address, clip(diagnostic));
            if !e.host.is_empty() {
                r.remote_mta = e.host;
            }
            r.command = e.command;
            if (e.delayed || warning) && !e.fatal {
                r.action = Some(Action::Delayed);
            }
            r
        })
        .collect()
}

/// The entry for `address`, added at the end when new.
fn entry<'e>(entries: &'e mut Vec<Entry>, index: &mut HashMap<String, usize>, address: &str) -> &'e mut Entry {
    let key = address.to_ascii_lowercase();
    let at = *index.entry(key).or_insert_with(|| {
        entries.push(Entry {
            address: address.to_string(),
            ..Entry::default()
        });
        entries.len() - 1
    });
    &mut entries[at]
}

/// One level of `>` quoting removed.
fn unquote(line: &str) -> &str {
    let line = line.strip_prefix('>').unwrap_or(line);
    line.strip_prefix(' ').unwrap_or(line)
}

/// The host of `... while talking to mx.example.com.:`.
fn talking_to(lower: &str, line: &str) -> Option<String> {
    let at = lower.find("while talking to ")?;
    let host = line.get(at + "while talking to ".len()..)?;
    let host = host.trim().trim_end_matches(':').trim_end_matches('.');
    Some(host.to_ascii_lowercase())
}

/// The SMTP verb of a transcript's `>>>` line (`RCPT`, `MAIL`, `DATA`).
fn command_word(command: &str) -> String {
    let word = command.split([' ', ':']).next().unwrap_or("");
    word.to_ascii_uppercase()
}

/// A transcript line giving one recipient's outcome, `550 5.1.1 <address>... text` (code and
/// status optional), as its address and text.
fn status_line(line: &str) -> Option<(String, &str)> {
    let mut rest = line;
    for _ in 0..2 {
        let word = rest.split(' ').next().unwrap_or("");
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            rest = rest.get(word.len()..)?.trim_start();
        }
    }
    let (head, text) = rest.split_once("...")?;
    if head.contains(' ') && !head.starts_with('<') {
        return None;
    }
    Some((address_in(head)?, text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_recipient_list_and_the_transcript_are_read_together() {
        let raw = r#"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
Subject: Returned mail: see transcript for details

The original message was received at Tue, 1 Dec 2026 10:00:00 GMT

   ----- The following addresses had permanent fatal errors -----
<bob@example.net>
    (reason: 550 5.1.1 <bob@example.net>... User unknown)
<eve@example.com>

   ----- Transcript of session follows -----
... while talking to mx.example.net.:
>>> RCPT To:<bob@example.net>
<<< 550 5.1.1 <bob@example.net>... User unknown
550 5.1.1 <bob@example.net>... User unknown
... while talking to mx.example.com.:
>>> DATA
<<< 554 5.7.1 Message refused
554 5.0.0 <eve@example.com>... Service unavailable

   ----- Original message follows -----
550 <carol@example.org>... not a recipient
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
        assert_eq!((got[1].reply_code, got[1].status.as_str()), (554, "5.7.1"));
        assert_eq!(got[1].command, "DATA");
    }

    #[test]
    fn a_v5_transcript_alone_gives_each_status_line_and_its_session() {
        let raw = r#"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
Subject: Returned mail: User unknown

   ----- Transcript of session follows -----
While talking to mail.example.net:
>>> MAIL From:<alice@example.org>
<<< 501 <alice@example.org>... sender refused
554 <bob@example.net>... Remote protocol error
550 <eve@example.com>... 550 Host unknown (Authoritative answer from name server)
<dan@example.com>... Deferred: Connection timed out

   ----- Unsent message follows -----
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].reply_code, got[0].command.as_str()), (501, "MAIL"));
        assert_eq!((got[1].recipient.as_str(), got[1].reply_code), ("eve@example.com", 550));
        assert_eq!(got[1].remote_mta, "");
        assert_eq!(got[2].action, Some(Action::Delayed));
    }

    #[test]
    fn a_fatal_recipient_whose_attempts_were_deferred_has_failed() {
        let raw = r#"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
Subject: Returned mail: see transcript for details

   ----- The following addresses had permanent fatal errors -----
<bob@example.net>

   ----- Transcript of session follows -----
<bob@example.net>... Deferred: Connection refused by mx.example.net.
Message could not be delivered for 5 days
"#;
        let got = mail_of(raw, read);
        assert_eq!((got.len(), got[0].action), (1, Some(Action::Failed)));
    }

    #[test]
    fn a_session_without_status_lines_speaks_for_the_listed_recipient() {
        let raw = r#"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
Subject: Returned mail: see transcript for details

   ----- The following addresses had permanent fatal errors -----
<bob@example.net>

   ----- Transcript of session follows -----
>>> RCPT TO:<bob@example.net>
<<< 553 Invalid recipient bob@example.net
"#;
        let got = mail_of(raw, read);
        assert_eq!((got.len(), got[0].reply_code), (1, 553));
    }

    #[test]
    fn the_session_gives_the_whole_reply_the_list_cut_to_one_line() {
        let raw = r#"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
Subject: Returned mail: see transcript for details

   ----- The following addresses had permanent fatal errors -----
bob@example.net
    (reason: 550-5.7.1 Unauthenticated email is not accepted due to domain's)

   ----- Transcript of session follows -----
... while talking to mx.example.net.:
>>> DATA
<<< 550-5.7.1 Unauthenticated email is not accepted due to domain's
<<< 550 5.7.1 DMARC policy.
554 5.0.0 Service unavailable
"#;
        let got = mail_of(raw, read);
        assert_eq!(got.len(), 1);
        assert!(got[0].diagnostic.contains("DMARC policy"), "{}", got[0].diagnostic);
        assert_eq!(
            (got[0].reply_code, got[0].status.as_str(), got[0].command.as_str()),
            (550, "5.7.1", "DATA")
        );
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        let raw = "From: bob@example.net\nSubject: hello\n\n550 <bob@example.net>... User unknown\n";
        assert!(mail_of(raw, read).is_empty());
    }
}

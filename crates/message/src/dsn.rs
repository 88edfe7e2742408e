//! RFC 3464 / RFC 6533 delivery-status fields: the per-message group (`Reporting-MTA`,
//! `Arrival-Date`) and one group per recipient, read leniently the way real MTAs write them
//! (folded lines, any case, misspelt names, missing blank lines between groups, `type; value`).

use std::borrow::Cow;

use rebound_engine::{Enhanced, Reply};

use crate::mta::text::{address_in, exit_status, fold, is_address};
use crate::report::{Action, RecipientReport};

/// What one delivery-status text says.
#[derive(Debug, Default)]
pub(crate) struct Dsn {
    /// `Reporting-MTA`'s name, without its `dns;` type.
    pub reporting_mta: String,
    /// `Arrival-Date`, as written.
    pub arrival_date: String,
    /// One entry per recipient group that names a recipient.
    pub recipients: Vec<RecipientReport>,
}

/// The DSN fields this reader knows, by their normalised name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ReportingMta,
    ArrivalDate,
    FinalRecipient,
    OriginalRecipient,
    ActualRecipient,
    Action,
    Status,
    RemoteMta,
    DiagnosticCode,
    LastAttemptDate,
    WillRetryUntil,
}

/// Recognises a field name: case, `-`, `_` and spaces do not matter, and the prefixes accept
/// the misspellings and truncations MTAs write (`Final-Recipent`, `Diagnostic-Code`,
/// `Last-Attempt`).
fn field(name: &str) -> Option<Field> {
    // Normalised into a buffer on the stack: this runs for every `Name: value` line of every
    // text part. Longer names are cut at the buffer's length; no prefix is that long, and a
    // name compared whole (`status`) is far shorter, so the answer is the same.
    let mut buffer = [0u8; 40];
    let mut len = 0;
    for (slot, b) in buffer
        .iter_mut()
        .zip(name.bytes().filter(|b| !matches!(b, b'-' | b'_' | b' ' | b'\t')))
    {
        *slot = b.to_ascii_lowercase();
        len += 1;
    }
    let n = buffer.get(..len).unwrap_or_default();
    let table: [(&str, Field); 11] = [
        ("reportingmta", Field::ReportingMta),
        ("arrivaldate", Field::ArrivalDate),
        ("finalrecip", Field::FinalRecipient),
        ("originalrecip", Field::OriginalRecipient),
        ("xactualrecip", Field::ActualRecipient),
        ("action", Field::Action),
        ("status", Field::Status),
        ("remotemta", Field::RemoteMta),
        ("diagnosticcode", Field::DiagnosticCode),
        ("lastattempt", Field::LastAttemptDate),
        ("willretry", Field::WillRetryUntil),
    ];
    let found = table
        .iter()
        .find(|(prefix, _)| n.starts_with(prefix.as_bytes()))
        .map(|(_, f)| *f);
    // `Status` must be the whole name: `X-Status`-like names and `Statusxyz` are not it.
    match found {
        Some(Field::Status) if n != b"status" => None,
        Some(Field::Action) if n != b"action" => None,
        other => other,
    }
}

/// One field as read: its name and its unfolded value.
pub(crate) struct Line<'t> {
    /// The name as written.
    pub name: &'t str,
    /// The value, continuation lines joined with one space (borrowed when there are none).
    pub value: Cow<'t, str>,
}

/// Splits `text` into header-like fields, unfolding continuation lines; a blank line or a line
/// that is neither a field nor a continuation is reported as `None` (a group break). Lazily, one
/// field at a time: a status part is read without a list of its lines.
pub(crate) fn fields(text: &str) -> impl Iterator<Item = Option<Line<'_>>> {
    let mut lines = text
        .split('\n')
        .map(|raw| {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            // A report quoted in a reply or forward (`> Final-Recipient: ...`) reads the same.
            match line.strip_prefix('>') {
                Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
                None => line,
            }
        })
        .peekable();
    std::iter::from_fn(move || {
        let line = lines.next()?;
        // A continuation line with no field before it is a break, as a blank line is.
        if line.trim().is_empty() || line.starts_with([' ', '\t']) {
            return Some(None);
        }
        let Some((name, value)) = line.split_once(':').filter(|(name, _)| is_field_name(name)) else {
            return Some(None);
        };
        let mut value = Cow::Borrowed(value.trim());
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t']) && !l.trim().is_empty()) {
            let value = value.to_mut();
            value.push(' ');
            value.push_str(next.trim());
        }
        Some(Some(Line { name, value }))
    })
}

fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// `rfc822; <bob@example.com>` → (`rfc822`, `<bob@example.com>`). The type is the word before
/// the first `;` when it is one short token; otherwise the whole value is the value.
pub(crate) fn typed(value: &str) -> (&str, &str) {
    match value.split_once(';') {
        Some((kind, rest))
            if !kind.trim().is_empty()
                && kind.trim().len() <= 24
                && !kind.trim().contains(char::is_whitespace)
                && !kind.contains('@') =>
        {
            (kind.trim(), rest.trim())
        }
        _ => ("", value.trim()),
    }
}

/// The address of a recipient field: the inside of `<...>` or the first word with an `@`; an
/// address without one (`LOCAL; bob`) stays as written.
fn recipient_value(value: &str) -> String {
    let (_, rest) = typed(value);
    // One word with an `@` is the address as written, quoted local parts included
    // (`"john..doe"@example.com`).
    let word = rest.trim().trim_start_matches('<').trim_end_matches(['>', ',', ';']);
    if word.contains('@') && !word.contains(char::is_whitespace) && !word.contains(['<', '>']) {
        return word.to_string();
    }
    if let Some(a) = address_in(rest) {
        return a;
    }
    let word = rest.split_whitespace().next().unwrap_or("");
    word.trim_matches(['<', '>', '"', '\'']).to_string()
}

/// The host of `Remote-MTA`/`Reporting-MTA`: `dns; mx.example.com [192.0.2.1]` →
/// `mx.example.com`; a bare address in brackets gives the address.
pub(crate) fn host_value(value: &str) -> String {
    let (_, rest) = typed(value);
    let word = rest.split_whitespace().next().unwrap_or("");
    let word = match word.strip_prefix('[') {
        Some(inner) => inner.split(']').next().unwrap_or(""),
        None => word.split('[').next().unwrap_or(""),
    };
    word.trim_end_matches(['.', ',', ';']).to_string()
}

/// `Action`, including the words MTAs use instead of RFC 3464's.
pub(crate) fn action(value: &str) -> Option<Action> {
    let word: String = value
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Some(match word.as_str() {
        "failed" | "failure" | "fail" | "bounced" | "bounce" | "rejected" | "reject" | "error" | "undeliverable" => {
            Action::Failed
        }
        "delayed" | "delay" | "deferred" | "defer" | "transient" | "retrying" | "queued" => Action::Delayed,
        "delivered" | "deliverable" | "deliver" | "sent" | "success" | "succeeded" | "ok" => Action::Delivered,
        "relayed" | "relay" => Action::Relayed,
        "expanded" | "expand" => Action::Expanded,
        _ => return None,
    })
}

/// The first enhanced status code (`5.1.1`) in `value`.
pub(crate) fn status(value: &str) -> Option<Enhanced> {
    value
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '#' | ',' | ';' | '<' | '>'))
        .find_map(|w| Enhanced::parse(w.trim_end_matches(['.', ':'])))
}

/// A reply code quoted inside a diagnostic (`... 550-'5.2.2 <bob@example.com>... Mailbox
/// Full'`): three digits of class 2, 4 or 5 standing alone, followed by `-`, a space or a quote,
/// with the enhanced code right after when there is one. One pass over the text.
fn quoted_reply(text: &str) -> Option<(u16, Option<Enhanced>)> {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 3 <= b.len() {
        let head = b.get(i..i + 3)?;
        let starts = i == 0 || !b[i - 1].is_ascii_alphanumeric() && !matches!(b[i - 1], b'.' | b'-' | 0x80..);
        let after = b.get(i + 3).copied();
        if starts
            && matches!(head[0], b'2' | b'4' | b'5')
            && head[1].is_ascii_digit()
            && head[2].is_ascii_digit()
            && matches!(after, None | Some(b' ' | b'-' | b'\'' | b'"'))
        {
            let code = u16::from(head[0] - b'0') * 100 + u16::from(head[1] - b'0') * 10 + u16::from(head[2] - b'0');
            let rest = text.get(i + 3..).unwrap_or("");
            let rest = rest.trim_start_matches([' ', '-', '\'', '"']);
            let word = rest
                .split(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | ')' | ','))
                .next()
                .unwrap_or("");
            return Some((code, Enhanced::parse(word.trim_end_matches(['.', ':']))));
        }
        i += 1;
    }
    None
}

/// Whether a recipient field names a mailbox (`bob@host`, unqualified hosts included), not a
/// source route (`@relay:bob@host`), a bare `@host`, a path or a pipe.
pub(crate) fn names_a_mailbox(s: &str) -> bool {
    s.rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !s.starts_with(['@', '/', '|']))
}

/// A recipient group being read, with what it has seen so far.
#[derive(Default)]
struct Group {
    report: RecipientReport,
    /// The `Status` field as read, before the diagnostic fills a missing one.
    status: Option<Enhanced>,
    /// Whether the group names its recipient.
    has_final: bool,
    /// Whether the group has any recipient field at all.
    started: bool,
    /// Whether the group opened with `Original-Recipient`.
    original_first: bool,
    /// An action word the reader did not know, so the status decides.
    unknown_action: bool,
    actual: String,
}

impl Group {
    fn finish(mut self) -> Option<RecipientReport> {
        if self.report.recipient.is_empty() {
            if !self.actual.is_empty() {
                self.report.recipient = std::mem::take(&mut self.actual);
            } else if !self.report.original_recipient.is_empty() {
                self.report.recipient = self.report.original_recipient.clone();
            } else {
                return None;
            }
        }
        let r = &mut self.report;
        // A final recipient that is no address (a source route `@host:bob@server`, a bare
        // `@host`) is a worse name than a good original recipient.
        if !names_a_mailbox(&r.recipient) && is_address(&r.original_recipient) {
            r.recipient = std::mem::take(&mut r.original_recipient);
        }
        if r.original_recipient.eq_ignore_ascii_case(&r.recipient) {
            r.original_recipient.clear();
        }
        let program = exit_status(&r.diagnostic);
        let reply = if program {
            Reply::default()
        } else {
            Reply::from_text(&r.diagnostic)
        };
        r.reply_code = reply.code;
        // The engine reads `550 5.1.1`; `550 #5.1.0` and `(5.1.1)` are read here, and a reply
        // quoted inside the reporter's own words (`5.1.0 - Unknown address error 550-'5.7.1
        // ...'`), whose codes are the remote server's and so say more than the wrapper's.
        let quoted = if reply.code == 0 && !program {
            quoted_reply(&r.diagnostic)
        } else {
            None
        };
        if let Some((code, _)) = quoted {
            r.reply_code = code;
        }
        // The remote server's own enhanced code, right after its reply code, is its word on
        // what happened: it wins over the reporting MTA's `Status` (often a summary such as
        // 4.4.7 "expired" or a generic 5.0.0).
        let remote = quoted.and_then(|(_, e)| e).or(reply.enhanced);
        let status = match (self.status, remote) {
            (_, Some(remote)) => Some(remote),
            // A code elsewhere in the words (`#5.1.0`) only details a generic `Status` of its
            // class, or stands in for a missing one.
            (Some(field), None) => match status(&r.diagnostic) {
                Some(words) if field.subject == 0 && field.detail == 0 && words.class == field.class => Some(words),
                _ => Some(field),
            },
            (None, None) => status(&r.diagnostic),
        };
        r.status = status.map(|e| e.to_string()).unwrap_or_default();
        if r.remote_mta.is_empty() {
            r.remote_mta = reply.remote_host;
        }
        if r.action.is_none() {
            // No action (or one no one defined): the status class says what happened.
            let class = status
                .map(|e| e.class)
                .or_else(|| (reply.code != 0).then_some((reply.code / 100) as u8));
            r.action = match class {
                Some(5) => Some(Action::Failed),
                Some(4) => Some(Action::Delayed),
                Some(2) => Some(Action::Delivered),
                _ if self.unknown_action || !r.diagnostic.is_empty() => Some(Action::Failed),
                _ => None,
            };
        }
        Some(self.report)
    }
}

/// Reads every DSN field group in `text`.
pub(crate) fn parse(text: &str) -> Dsn {
    let mut dsn = Dsn::default();
    let mut group = Group::default();
    for line in fields(text) {
        let Some(line) = line else {
            // A break ends a recipient group once it names its recipient.
            if group.has_final {
                dsn.recipients.extend(std::mem::take(&mut group).finish());
            }
            continue;
        };
        let Some(f) = field(line.name) else { continue };
        let value = line.value.as_ref();
        match f {
            Field::ReportingMta => {
                if dsn.reporting_mta.is_empty() {
                    dsn.reporting_mta = host_value(value);
                }
            }
            Field::ArrivalDate => {
                if dsn.arrival_date.is_empty() {
                    dsn.arrival_date = value.to_string();
                }
            }
            Field::FinalRecipient => {
                // A second recipient in one group: the blank line between groups is missing.
                if group.has_final {
                    dsn.recipients.extend(std::mem::take(&mut group).finish());
                }
                group.report.recipient = recipient_value(value);
                group.has_final = true;
                group.started = true;
            }
            Field::OriginalRecipient => {
                // Groups that open with `Original-Recipient` start anew at the next one; in groups
                // that open with `Final-Recipient` it belongs to the final recipient before it.
                if !group.report.original_recipient.is_empty() || group.has_final && group.original_first {
                    dsn.recipients.extend(std::mem::take(&mut group).finish());
                }
                group.original_first |= !group.started;
                group.report.original_recipient = recipient_value(value);
                group.started = true;
            }
            Field::ActualRecipient => {
                group.actual = recipient_value(value);
            }
            Field::Action => {
                group.report.action = action(value);
                group.unknown_action = group.report.action.is_none();
            }
            Field::Status => group.status = status(value),
            Field::RemoteMta => group.report.remote_mta = host_value(value),
            Field::DiagnosticCode => {
                let (kind, text) = typed(value);
                group.report.diagnostic_type = kind.to_ascii_lowercase();
                group.report.diagnostic = fold(text);
            }
            Field::LastAttemptDate => group.report.last_attempt = value.to_string(),
            Field::WillRetryUntil => group.report.will_retry_until = value.to_string(),
        }
    }
    if group.started {
        dsn.recipients.extend(group.finish());
    }
    dsn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_read_with_folding_types_and_any_case() {
        let text = "Reporting-MTA: dns; mx.example.net\nArrival-Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n\
                    Final-Recipient: rfc822; <bob@example.com>\nAction: failed\nStatus: 5.1.1\n\
                    Remote-MTA: dns; mx.example.com [192.0.2.1]\nDIAGNOSTIC-CODE: smtp; 550 5.1.1 <bob@example.com>:\n  \
                    Recipient address rejected: User unknown\nLast-Attempt-Date: Mon, 1 Jan 2024 00:00:01 +0000\n";
        let dsn = parse(text);
        assert_eq!(dsn.reporting_mta, "mx.example.net");
        assert_eq!(dsn.arrival_date, "Mon, 1 Jan 2024 00:00:00 +0000");
        assert_eq!(dsn.recipients.len(), 1);
        let r = &dsn.recipients[0];
        assert_eq!(r.recipient, "bob@example.com");
        assert_eq!(r.action, Some(Action::Failed));
        assert_eq!((r.status.as_str(), r.reply_code), ("5.1.1", 550));
        assert_eq!(r.remote_mta, "mx.example.com");
        assert_eq!(r.diagnostic_type, "smtp");
        assert_eq!(
            r.diagnostic,
            "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown"
        );
        assert_eq!(r.last_attempt, "Mon, 1 Jan 2024 00:00:01 +0000");
    }

    #[test]
    fn misspelt_names_odd_actions_and_missing_blank_lines_are_read() {
        let text = "Final-Recipent: RFC822; alice@example.com\nAction: failure\nStatus: 5.2.2 (mailbox full)\n\
                    Final-Recipient: rfc822; carol@example.com\nAction: delay\nstatus: 4.4.7\n\
                    Will-Retry-Until: tomorrow\n";
        let dsn = parse(text);
        let got: Vec<_> = dsn
            .recipients
            .iter()
            .map(|r| (r.recipient.as_str(), r.action, r.status.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("alice@example.com", Some(Action::Failed), "5.2.2"),
                ("carol@example.com", Some(Action::Delayed), "4.4.7")
            ]
        );
        assert_eq!(dsn.recipients[1].will_retry_until, "tomorrow");
    }

    #[test]
    fn a_program_s_exit_status_is_no_reply_code() {
        let dsn = parse(
            "Final-Recipient: rfc822;bob@example.com\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: X-Unix; 255\n",
        );
        let r = &dsn.recipients[0];
        assert_eq!(
            (r.status.as_str(), r.reply_code, r.diagnostic.as_str()),
            ("5.0.0", 0, "255")
        );
    }

    #[test]
    fn a_missing_status_comes_from_the_diagnostic_and_a_missing_action_from_the_status() {
        let dsn = parse(
            "Original-Recipient: rfc822;bob@example.com\nFinal-Recipient: rfc822;bob@example.com\n\
                         Diagnostic-Code: X-Unix; 452 4.2.2 Over quota\n",
        );
        let r = &dsn.recipients[0];
        assert_eq!((r.status.as_str(), r.reply_code), ("4.2.2", 452));
        assert_eq!(r.action, Some(Action::Delayed));
        assert_eq!(r.diagnostic_type, "x-unix");
        assert_eq!(r.original_recipient, "", "the same as the final recipient");
    }

    #[test]
    fn a_reply_quoted_in_the_reporters_words_gives_the_codes() {
        let dsn = parse(
            "Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.0.0\n\
             Diagnostic-Code: smtp; 5.1.0 - Unknown address error 550-'5.2.2 <bob@example.com>... Mailbox Full'\n",
        );
        let r = &dsn.recipients[0];
        assert_eq!((r.status.as_str(), r.reply_code), ("5.2.2", 550));
        assert_eq!(quoted_reply("error 550-'Unknown user'"), Some((550, None)));
        assert_eq!(quoted_reply("port 2525 and id 5501x"), None);
        assert_eq!(quoted_reply("é550"), None);
    }

    #[test]
    fn original_recipient_belongs_to_its_group_in_either_order() {
        // Final first, with the action before it: one group.
        let dsn = parse(
            "Action: failed\nFinal-Recipient: rfc822; bob@example.com\n\
                         Original-Recipient: rfc822; robert@example.com\nStatus: 5.1.1\n",
        );
        assert_eq!(dsn.recipients.len(), 1);
        assert_eq!(dsn.recipients[0].original_recipient, "robert@example.com");
        // Original first, and no blank line between the groups: two groups.
        let dsn = parse(
            "Original-Recipient: rfc822; a@example.com\nFinal-Recipient: rfc822; a@example.com\n\
                         Action: failed\nStatus: 5.1.1\nOriginal-Recipient: rfc822; b0@example.com\n\
                         Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.2.2\n",
        );
        let got: Vec<_> = dsn
            .recipients
            .iter()
            .map(|r| (r.recipient.as_str(), r.original_recipient.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a@example.com", "", "5.1.1"),
                ("b@example.com", "b0@example.com", "5.2.2")
            ]
        );
    }

    #[test]
    fn a_source_routed_final_recipient_yields_to_the_original_and_quotes_are_kept() {
        let dsn = parse(
            "Original-recipient: rfc822;bob@example.com\n\
                         Final-recipient: rfc822;@relay.example.net:bob@server\nAction: failed\n\n\
                         Final-Recipient: rfc822; \"john..doe\"@example.com\nAction: failed\n",
        );
        let got: Vec<_> = dsn.recipients.iter().map(|r| r.recipient.as_str()).collect();
        assert_eq!(got, ["bob@example.com", "\"john..doe\"@example.com"]);
    }

    #[test]
    fn a_global_dsn_reads_utf8_addresses() {
        let dsn = parse("Final-Recipient: utf-8; ひろし@例え.jp\nAction: failed\nStatus: 5.1.1\n");
        assert_eq!(dsn.recipients[0].recipient, "ひろし@例え.jp");
    }

    #[test]
    fn text_without_fields_has_no_recipients() {
        assert!(parse("Hello,\nthis is not a report: at all.\n").recipients.is_empty());
        assert!(parse("").recipients.is_empty());
    }
}

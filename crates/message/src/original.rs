//! The returned original message: its identifying headers and the ones the caller asked for,
//! read from an attached `message/rfc822` (or `message/global`), a `text/rfc822-headers` part,
//! or a run of the original's headers quoted in the bounce's body.

use mail_parser::{HeaderValue, Message};

use crate::mime::Mail;
use crate::mta::text::fold;
use crate::report::Original;

/// The headers that identify a quoted original; a run of header lines must carry
/// `Message-ID`, or `From` and `Subject`, to be taken for one.
const IDENTIFYING: [&str; 5] = ["message-id", "from", "to", "subject", "date"];

/// A returned original as found in a bounce.
pub(crate) struct Found {
    /// Its identifying and asked-for headers.
    pub original: Original,
    /// Where in the bounce it was found.
    pub from: &'static str,
    /// The addresses of its `To` and `Cc`, in order.
    pub recipients: Vec<String>,
}

/// The original and where it was found, when the bounce carries one.
pub(crate) fn find(mail: &Mail<'_>, asked: &[String]) -> Option<Found> {
    // An attached message of the report itself first; one nested deeper only when the top
    // level has none (a forwarded bounce).
    let attached = mail
        .parts
        .iter()
        .filter_map(|p| p.message.map(|m| (p.depth, m)))
        .min_by_key(|(depth, _)| *depth);
    if let Some((_, m)) = attached {
        return Some(found(m, asked, "message/rfc822 part"));
    }
    let parser = crate::mime::parser();
    if let Some(p) = mail
        .parts
        .iter()
        // RFC 6522 and RFC 6533 headers parts; `text/rfc822-header` (singular) is a misspelling
        // some feedback loops write.
        .find(|p| {
            matches!(
                p.content_type.as_str(),
                "text/rfc822-headers" | "text/rfc822-header" | "message/global-headers"
            )
        })
    {
        let text = header_block(&p.text);
        if let Some(m) = parser.parse_headers(text.as_bytes()) {
            return Some(found(&m, asked, "text/rfc822-headers part"));
        }
    }
    let quoted = quoted_headers(&mail.body)?;
    let m = parser.parse_headers(quoted.as_bytes())?;
    Some(found(&m, asked, "headers quoted in the body"))
}

/// The header block of `text`, ending at the first blank line, with a blank line appended so
/// the parser sees the block's end.
fn header_block(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    for line in text.lines() {
        if line.trim().is_empty() && !out.is_empty() {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Whether `line` looks like `Name: value`.
fn header_name(line: &str) -> Option<&str> {
    let (name, _) = line.split_once(':')?;
    let ok = !name.is_empty()
        && name.len() <= 76
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    ok.then_some(name)
}

/// Whether `line` looks like `Some Words: value`, a labelled field whose name has spaces.
fn spaced_field(line: &str) -> bool {
    line.split_once(':').is_some_and(|(name, _)| {
        name.contains(' ')
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '(' | ')'))
    })
}

/// The first run of header lines in `body` that identifies a message: one pass over the lines.
/// Quoting (`> `) and the indentation some MTAs give the pasted headers are removed.
fn quoted_headers(body: &str) -> Option<String> {
    let mut run = String::new();
    let mut seen = [false; IDENTIFYING.len()];
    let mut lines = 0usize;
    // How far the run's header lines are indented: a continuation line is indented further.
    // In an indented block (`  Subject: x`, `  Sent date: y`) a field whose name has spaces is
    // the block's own, passed over, not a continuation of the field above.
    let mut margin = 0usize;
    let identifies = |seen: &[bool; 5]| seen[0] || seen[1] && seen[3];
    for raw in body.lines() {
        let quoted = raw.strip_prefix('>').map(|l| l.strip_prefix(' ').unwrap_or(l));
        let line = quoted.unwrap_or(raw);
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if lines > 0 && margin > 0 && indent == margin && spaced_field(trimmed) {
            continue;
        }
        let continuation = indent > margin && !trimmed.is_empty();
        if lines > 0 && continuation && header_name(trimmed).is_none() {
            run.push_str(line);
            run.push('\n');
            continue;
        }
        if let Some(name) = header_name(trimmed) {
            if lines == 0 {
                margin = indent;
            }
            if let Some(i) = IDENTIFYING.iter().position(|h| name.eq_ignore_ascii_case(h)) {
                seen[i] = true;
            }
            run.push_str(trimmed);
            run.push('\n');
            lines += 1;
            continue;
        }
        if lines >= 2 && identifies(&seen) {
            break;
        }
        run.clear();
        seen = [false; IDENTIFYING.len()];
        lines = 0;
        margin = 0;
    }
    (lines >= 2 && identifies(&seen)).then(|| {
        run.push('\n');
        run
    })
}

fn found(m: &Message<'_>, asked: &[String], from: &'static str) -> Found {
    let recipients = [m.to(), m.cc()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address.as_deref())
        .filter(|a| a.contains('@'))
        .map(str::to_string)
        .collect();
    Found {
        original: original_of(m, asked),
        from,
        recipients,
    }
}

/// The identifying headers of `m` and the asked-for ones.
fn original_of(m: &Message<'_>, asked: &[String]) -> Original {
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> String {
        a.map(|a| {
            a.iter()
                .filter_map(|a| a.address.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    let mut from = addresses(m.from());
    if from.is_empty() {
        from = value_of(m, "From");
    }
    let mut to = addresses(m.to());
    if to.is_empty() {
        to = value_of(m, "To");
    }
    let message_id = match m.message_id() {
        Some(id) => id.trim().trim_matches(['<', '>']).to_string(),
        None => value_of(m, "Message-ID").trim_matches(['<', '>']).to_string(),
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(asked.len());
    for name in asked {
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        headers.push((name.clone(), value_of(m, name)));
    }
    Original {
        message_id,
        from,
        to,
        subject: value_of(m, "Subject"),
        date: value_of(m, "Date"),
        headers,
    }
}

/// The first header `name` of `m` (case-insensitive): decoded text when the parser read it as
/// text (RFC 2047 words decoded), else the raw value unfolded; "" when absent.
fn value_of(m: &Message<'_>, name: &str) -> String {
    let Some(h) = m
        .root_part()
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
    else {
        return String::new();
    };
    match &h.value {
        HeaderValue::Text(t) => fold(t),
        _ => m.header_raw(h.name.as_str()).map(fold).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_run_is_found_after_the_bounce_text() {
        let body = "Sorry, it failed.\nReason: unknown user\n\n------ This is a copy of the message's headers.\n\
                    Received: from a\n  by b\nMessage-ID: <m1@example.org>\nFrom: Ann <ann@example.org>\n\
                    Subject: Hello\n\nbody\n";
        let run = quoted_headers(body).unwrap_or_default();
        assert!(run.starts_with("Received: from a\n  by b\nMessage-ID"), "{run}");
    }

    #[test]
    fn fields_of_an_indented_block_are_not_continuations_of_each_other() {
        let body = "Message details:\n  Subject: Test message\n  Sent date: Wed Jun 12 02:21:53 GMT 2013\n\
                    \x20 MAIL FROM: ann@example.org\n  From: ann@example.org\n    folded on\n\
                    \x20 Size (in bytes): 39\n\nbody\n";
        let run = quoted_headers(body).unwrap_or_default();
        assert_eq!(run, "Subject: Test message\nFrom: ann@example.org\n    folded on\n\n");
    }

    #[test]
    fn a_lone_field_line_is_not_an_original() {
        assert_eq!(quoted_headers("Reason: unknown user\n\nSubject: hi\n"), None);
        assert_eq!(quoted_headers(""), None);
    }
}

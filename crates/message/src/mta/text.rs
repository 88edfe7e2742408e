//! Small text tools every report reader needs: finding an address in a line, folding a
//! diagnostic onto one line, and reading the reply code and status out of it.

use rebound_engine::Reply;

use crate::report::{Action, RecipientReport};

/// The first mail address in `line`: the inside of `<...>` when there is one with an `@`,
/// else the first whitespace-separated word with an `@` in it, trimmed of quotes and punctuation.
pub(crate) fn address_in(line: &str) -> Option<String> {
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let after = rest.get(open + 1..)?;
        let Some(close) = after.find('>') else { break };
        let inside = after.get(..close)?.trim();
        if is_address(inside) {
            return Some(strip_mailto(inside).to_string());
        }
        rest = after.get(close + 1..)?;
    }
    line.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '<' | '>' | '[' | ']'))
        .map(|w| w.trim_matches(|c: char| matches!(c, '"' | '\'' | ':' | '.' | '`')))
        .map(strip_mailto)
        .find(|w| is_address(w))
        .map(str::to_string)
}

fn strip_mailto(s: &str) -> &str {
    s.strip_prefix("mailto:")
        .or_else(|| s.strip_prefix("MAILTO:"))
        .unwrap_or(s)
}

/// Whether `s` looks like `local@domain.tld`: one `@`, both sides non-empty, no spaces, a dot
/// in the domain.
pub(crate) fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.contains(['<', '>', ' '])
        && !domain.contains(['<', '>', ' ', '@'])
}

/// Joins the lines of a diagnostic into one, white space folded.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A failed recipient with its diagnostic; the reply code, status and remote host are read
/// from the diagnostic the way the engine reads a reply (wrappers such as `host X said:` and
/// transcripts included).
pub(crate) fn failed(recipient: &str, diagnostic: &str) -> RecipientReport {
    let diagnostic = fold(diagnostic);
    let reply = Reply::from_text(&diagnostic);
    RecipientReport {
        recipient: recipient.trim().trim_matches(['<', '>']).to_string(),
        action: Some(Action::Failed),
        status: reply.enhanced.map(|e| e.to_string()).unwrap_or_default(),
        reply_code: reply.code,
        remote_mta: reply.remote_host,
        diagnostic_type: if diagnostic.is_empty() {
            String::new()
        } else {
            "smtp".to_string()
        },
        diagnostic,
        ..RecipientReport::default()
    }
}

/// Where `needle` (lower-case ASCII) starts in `text`, ignoring ASCII case. Linear in `text`
/// for a needle of fixed length; the offset is a char boundary since the needle is ASCII.
pub(crate) fn find_ignore_case(text: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return Some(0);
    }
    text.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// The text after the line that holds `marker` (lower-case ASCII, case ignored), from the
/// next line on; `None` when no line holds it.
pub(crate) fn after_line_with<'t>(text: &'t str, marker: &str) -> Option<&'t str> {
    let at = find_ignore_case(text, marker)?;
    let rest = text.get(at..)?;
    Some(rest.split_once('\n').map_or("", |(_, after)| after))
}

/// `text` up to the first line that starts (after leading white space) with any of `ends`
/// (lower-case ASCII, case ignored); all of it when none does.
pub(crate) fn before_line_starting<'t>(text: &'t str, ends: &[&str]) -> &'t str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start().as_bytes();
        if ends.iter().any(|e| {
            trimmed
                .get(..e.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(e.as_bytes()))
        }) {
            return text.get(..offset).unwrap_or(text);
        }
        offset += line.len();
    }
    text
}

/// The line, trimmed, when it is one address and nothing else (`bob@example.com`,
/// `<bob@example.com>`, `"bob@example.com":`, `bob@example.com<mailto:bob@example.com>`).
pub(crate) fn lone_address(line: &str) -> Option<String> {
    let word = line
        .trim()
        .trim_end_matches(':')
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '<' | '>'));
    if is_address(word) {
        return Some(word.to_string());
    }
    // Outlook's `address<mailto:address>`: both halves name the same mailbox.
    let (shown, link) = word.split_once("<mailto:")?;
    let link = link.trim_end_matches('>');
    (is_address(shown) && shown.eq_ignore_ascii_case(link)).then(|| shown.to_string())
}

/// The reply code at the start of `text` written `550:` or `550 -` (forms some services use
/// that the reply parser does not take for a code), with the enhanced status right after it.
pub(crate) fn loose_code(text: &str) -> Option<(u16, Option<String>)> {
    let text = text.trim_start();
    let digits = text.get(..3)?;
    let code: u16 = digits.parse().ok()?;
    if !(200..600).contains(&code) {
        return None;
    }
    let rest = text.get(3..)?;
    let rest = rest
        .strip_prefix(':')
        .or_else(|| rest.trim_start().strip_prefix('-'))
        .or_else(|| rest.strip_prefix(' '))?;
    let status = rest
        .split_whitespace()
        .next()
        .and_then(|w| rebound_engine::Enhanced::parse(w.trim_end_matches([',', ';', ':'])))
        .filter(|e| u16::from(e.class) == code / 100)
        .map(|e| e.to_string());
    Some((code, status))
}

/// The most of a diagnostic a report reader keeps, in bytes. SMTP reply lines are at most
/// 512 bytes (RFC 5321); a report that gives one long text to many recipients would otherwise
/// cost recipients times text.
pub(crate) const MAX_DIAGNOSTIC_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes, at a char boundary.
pub(crate) fn at_most(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// [`failed`] on at most [`MAX_DIAGNOSTIC_BYTES`] of the diagnostic, then the reply's own
/// leading code and status when the reply parser took none: the loose `550:` form, or a status
/// the parser dropped because a later quoted reply (`... -> 550 #5.1.0 ...`) carried none.
pub(crate) fn failed_loose(recipient: &str, diagnostic: &str) -> RecipientReport {
    let mut report = failed(recipient, at_most(diagnostic.trim(), MAX_DIAGNOSTIC_BYTES));
    if let Some((code, status)) = loose_code(&report.diagnostic)
        && (report.reply_code == 0 || report.reply_code == code)
    {
        report.reply_code = code;
        if report.status.is_empty() {
            report.status = status.unwrap_or_default();
        }
    }
    report
}

/// One failure reported for several recipients: the diagnostic is read once.
pub(crate) fn failed_each<'a>(recipients: impl IntoIterator<Item = &'a str>, diagnostic: &str) -> Vec<RecipientReport> {
    let mut model: Option<RecipientReport> = None;
    recipients
        .into_iter()
        .map(|recipient| {
            let model = model.get_or_insert_with(|| failed_loose(recipient, diagnostic));
            RecipientReport {
                recipient: recipient.trim().trim_matches(['<', '>']).to_string(),
                ..model.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_found_inside_angle_brackets_first_then_as_a_word() {
        assert_eq!(
            address_in("<bob@example.com>: User unknown").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            address_in("to \"Bob\" <bob@example.com>").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            address_in("  bob@example.com (user unknown)").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            address_in("mailto:bob@example.com.").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(address_in("no address here <postmaster>"), None);
        assert_eq!(address_in("ends at the @"), None);
    }

    #[test]
    fn a_failed_recipient_takes_code_status_and_host_from_its_diagnostic() {
        let r = failed(
            "<bob@example.com>",
            "host mx.example.com[192.0.2.1] said:\n  550 5.1.1 User unknown",
        );
        assert_eq!(r.recipient, "bob@example.com");
        assert_eq!((r.reply_code, r.status.as_str()), (550, "5.1.1"));
        assert_eq!(r.remote_mta, "mx.example.com");
        assert_eq!(r.action, Some(Action::Failed));
    }
}

/// The SMTP command a report's words say was refused: `RCPT`, `DATA`, `MAIL`, `EHLO` or `HELO`
/// after a wrapper that names it (`after RCPT TO`, `in reply to end of DATA command`, `did not
/// like our final DATA`, `>>> MAIL FROM`, `Error following RCPT command`), the first in the text;
/// empty when none is named.
pub(crate) fn command_in(text: &str) -> &'static str {
    const WRAPPERS: [&str; 7] = [
        "after ",
        "in reply to ",
        "like our ",
        "our final ",
        ">>> ",
        "progress was ",
        "following ",
    ];
    let lower = text.to_ascii_lowercase();
    let mut first: Option<(usize, &'static str)> = None;
    for wrapper in WRAPPERS {
        for (at, _) in lower.match_indices(wrapper) {
            if first.is_some_and(|(seen, _)| seen < at) {
                break;
            }
            let next = lower.get(at + wrapper.len()..).unwrap_or("");
            let named = if next.starts_with("rcpt") {
                "RCPT"
            } else if next.starts_with("mail from") {
                "MAIL"
            } else if next.starts_with("data") || next.starts_with("end of data") || next.starts_with("final data") {
                "DATA"
            } else if next.starts_with("ehlo") {
                "EHLO"
            } else if next.starts_with("helo") {
                "HELO"
            } else {
                continue;
            };
            first = Some((at, named));
            break;
        }
    }
    first.map_or("", |(_, named)| named)
}

/// A failed recipient as [`failed`] reads it, but with the reply read from the diagnostic's
/// lines before they are folded (a reply code opening a line starts a reply: `550-...` lines),
/// and its command read from the wrapper's words.
pub(crate) fn failed_with_command(recipient: &str, diagnostic: &str) -> RecipientReport {
    let diagnostic = clip(diagnostic);
    let mut report = failed(recipient, diagnostic);
    let reply = Reply::from_text(diagnostic);
    report.status = reply.enhanced.map(|e| e.to_string()).unwrap_or_default();
    report.reply_code = reply.code;
    report.remote_mta = reply.remote_host;
    report.command = command_in(&report.diagnostic).to_string();
    report
}

/// The longest diagnostic a report reader keeps, in bytes. A server's reply is a few lines; a
/// longer text is a layout read too far, or hostile, and reading it again for each of many
/// recipients would make a report's cost grow faster than the message.
pub(crate) const MAX_DIAGNOSTIC: usize = 4096;

/// `text` cut to at most [`MAX_DIAGNOSTIC`] bytes, at a character boundary.
pub(crate) fn clip(text: &str) -> &str {
    if text.len() <= MAX_DIAGNOSTIC {
        return text;
    }
    let mut end = MAX_DIAGNOSTIC;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// One failed recipient per address, all with the same diagnostic, read once.
pub(crate) fn each_failed(addresses: impl IntoIterator<Item = String>, diagnostic: &str) -> Vec<RecipientReport> {
    let mut template: Option<RecipientReport> = None;
    addresses
        .into_iter()
        .map(|address| match &template {
            Some(t) => RecipientReport {
                recipient: address.trim().trim_matches(['<', '>']).to_string(),
                ..t.clone()
            },
            None => {
                let r = failed_with_command(&address, diagnostic);
                template = Some(r.clone());
                r
            }
        })
        .collect()
}

#[cfg(test)]
mod command_tests {
    use super::*;

    #[test]
    fn the_first_command_a_wrapper_names_is_the_one_refused() {
        assert_eq!(
            command_in("SMTP error from remote mail server after RCPT TO:<a@b.c>:"),
            "RCPT"
        );
        assert_eq!(command_in("550 5.1.1 No (in reply to end of DATA command)"), "DATA");
        assert_eq!(command_in("mx [192.0.2.1] did not like our final DATA: 554"), "DATA");
        assert_eq!(command_in(">>> MAIL From:<a@b.c>\n<<< 553 no"), "MAIL");
        assert_eq!(command_in("after a long time, then after EHLO x"), "EHLO");
        assert_eq!(
            command_in("rejected recipient <a@b.c> (Error following RCPT command)"),
            "RCPT"
        );
        assert_eq!(command_in("550 User unknown"), "");
    }

    #[test]
    fn long_diagnostics_are_clipped_at_a_character_boundary() {
        let long = "\u{e9}".repeat(MAX_DIAGNOSTIC);
        assert!(clip(&long).len() <= MAX_DIAGNOSTIC && clip(&long).len() > MAX_DIAGNOSTIC - 2);
        assert_eq!(clip("550 short"), "550 short");
        let shared = each_failed(
            ["<a@example.net>".to_string(), "b@example.net".to_string()],
            "550 5.1.1 no",
        );
        assert_eq!(
            (shared[1].recipient.as_str(), shared[1].status.as_str()),
            ("b@example.net", "5.1.1")
        );
    }
}

//! Small text tools every report reader needs: cutting a report's body to the section between
//! its opening and closing lines, finding an address in a line, folding a diagnostic onto one
//! line, and reading the reply code and status out of it. All scans are single passes.

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

/// A failed recipient with its diagnostic (at most [`MAX_DIAGNOSTIC_BYTES`] of it, folded onto
/// one line). The reply code, status and remote host are read the way the engine reads a reply
/// (wrappers such as `host X said:` and transcripts included), from the lines before they are
/// folded so a reply code opening a line starts a reply (`550-...` lines); then the reply's own
/// leading code and status when the reply parser took none: the loose `550:` form, or a status
/// the parser dropped because a later quoted reply (`... -> 550 #5.1.0 ...`) carried none. The
/// refused command is read from the wrapper's words.
pub(crate) fn failed(recipient: &str, diagnostic: &str) -> RecipientReport {
    let lines = clip(diagnostic.trim());
    let reply = if exit_status(lines) {
        Reply::default()
    } else {
        Reply::from_text(lines)
    };
    let diagnostic = fold(lines);
    let mut report = RecipientReport {
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
        command: command_in(&diagnostic).to_string(),
        diagnostic,
        ..RecipientReport::default()
    };
    if let Some((code, status)) = loose_code(&report.diagnostic)
        && (report.reply_code == 0 || report.reply_code == code)
        && !exit_status(&report.diagnostic)
    {
        report.reply_code = code;
        if report.status.is_empty() {
            report.status = status.unwrap_or_default();
        }
    }
    report
}

impl RecipientReport {
    /// The same report as delayed when the report is a delay warning.
    pub(crate) fn delayed_if(mut self, delayed: bool) -> Self {
        if delayed {
            self.action = Some(Action::Delayed);
        }
        self
    }

    /// The same report with `host` as the remote MTA when the report names one; else the host
    /// the reply itself named.
    pub(crate) fn at_host(mut self, host: String) -> Self {
        if !host.is_empty() {
            self.remote_mta = host;
        }
        self
    }
}

/// Whether `diagnostic` is a bare number that is no failure reply: a delivery program's exit
/// status (`(reason: 255)`, `X-Unix; 255`), where a bare `421` is a server's reply.
pub(crate) fn exit_status(diagnostic: &str) -> bool {
    let text = diagnostic.trim();
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with(['4', '5'])
}

/// One failure reported for several recipients: the diagnostic is read once.
pub(crate) fn failed_each<R: AsRef<str>>(
    recipients: impl IntoIterator<Item = R>,
    diagnostic: &str,
) -> Vec<RecipientReport> {
    let mut model: Option<RecipientReport> = None;
    recipients
        .into_iter()
        .map(|recipient| {
            let recipient = recipient.as_ref();
            let model = model.get_or_insert_with(|| failed(recipient, diagnostic));
            RecipientReport {
                recipient: recipient.trim().trim_matches(['<', '>']).to_string(),
                ..model.clone()
            }
        })
        .collect()
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

/// The byte offset in `text` of the first of `cues` (lower-case), matched ASCII case-insensitively.
pub(crate) fn find_any(text: &str, cues: &[&str]) -> Option<usize> {
    find_cue(text, cues).map(|(at, _)| at)
}

/// Where the first of `cues` (lower-case) starts and ends in `text`, ASCII case-insensitively.
fn find_cue(text: &str, cues: &[&str]) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    cues.iter()
        .filter_map(|c| lower.find(c).map(|at| (at, at + c.len())))
        .min()
}

/// Whether `text` holds any of `cues` (lower-case), ASCII case-insensitively.
pub(crate) fn contains_any(text: &str, cues: &[&str]) -> bool {
    find_any(text, cues).is_some()
}

/// The text after the line where the first of `cues` ends (a cue may span lines); `None` when
/// no cue is there.
pub(crate) fn after_line<'t>(text: &'t str, cues: &[&str]) -> Option<&'t str> {
    let (_, end) = find_cue(text, cues)?;
    let rest = text.get(end..)?;
    Some(rest.split_once('\n').map_or("", |(_, after)| after))
}

/// The text from the start of the line that holds the first of `cues`; `None` when no cue is there.
pub(crate) fn from_line<'t>(text: &'t str, cues: &[&str]) -> Option<&'t str> {
    let at = find_any(text, cues)?;
    let start = text.get(..at)?.rfind('\n').map_or(0, |n| n + 1);
    text.get(start..)
}

/// The text before the line that holds the first of `cues` (the copy of the returned message
/// that closes most reports), or all of it.
pub(crate) fn before_line<'t>(text: &'t str, cues: &[&str]) -> &'t str {
    let Some(at) = find_any(text, cues) else { return text };
    let start = text.get(..at).and_then(|t| t.rfind('\n')).map_or(0, |n| n + 1);
    text.get(..start).unwrap_or(text)
}

/// How many columns of white space open `line` (a tab counts as eight).
pub(crate) fn indent(line: &str) -> usize {
    let mut n = 0;
    for c in line.chars() {
        match c {
            ' ' => n += 1,
            '\t' => n += 8,
            _ => break,
        }
    }
    n
}

/// Whether `line` is empty or white space only.
pub(crate) fn blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// The first paragraph of `text`: its lines trimmed, from the first non-blank one to the
/// next blank one.
pub(crate) fn paragraph(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
}

/// The most of a diagnostic a report reader keeps, in bytes. SMTP reply lines are at most
/// 512 bytes (RFC 5321); a longer text is a layout read too far, or hostile, and a report that
/// gives one long text to many recipients would otherwise cost recipients times text.
pub(crate) const MAX_DIAGNOSTIC_BYTES: usize = 4096;

/// `text` cut to at most [`MAX_DIAGNOSTIC_BYTES`] bytes, at a character boundary.
pub(crate) fn clip(text: &str) -> &str {
    rebound_engine::prefix_within(text, MAX_DIAGNOSTIC_BYTES)
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
        let long = "\u{e9}".repeat(MAX_DIAGNOSTIC_BYTES);
        assert!(clip(&long).len() <= MAX_DIAGNOSTIC_BYTES && clip(&long).len() > MAX_DIAGNOSTIC_BYTES - 2);
        assert_eq!(clip("550 short"), "550 short");
        let shared = failed_each(
            ["<a@example.net>".to_string(), "b@example.net".to_string()],
            "550 5.1.1 no",
        );
        assert_eq!(
            (shared[1].recipient.as_str(), shared[1].status.as_str()),
            ("b@example.net", "5.1.1")
        );
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn a_multi_line_reply_is_read_before_its_lines_are_folded() {
        let r = failed(
            "bob@example.com",
            "SMTP error from remote mail server after RCPT TO:<bob@example.com>:\n\
             550-5.1.1 The email account that you tried to reach does not exist.\n\
             550 5.1.1 Please try double-checking the recipient's email address",
        );
        assert_eq!(
            (r.reply_code, r.status.as_str(), r.command.as_str()),
            (550, "5.1.1", "RCPT")
        );
        assert!(!r.diagnostic.contains('\n'), "{}", r.diagnostic);
    }

    #[test]
    fn a_named_host_replaces_the_reply_s_own_and_a_warning_delays() {
        let said = "host mx.example.com[192.0.2.1] said: 452 4.2.2 full";
        let r = failed("bob@example.com", said).at_host(String::new()).delayed_if(false);
        assert_eq!(
            (r.remote_mta.as_str(), r.action),
            ("mx.example.com", Some(Action::Failed))
        );
        let r = failed("bob@example.com", said)
            .at_host("relay.example.com".to_string())
            .delayed_if(true);
        assert_eq!(
            (r.remote_mta.as_str(), r.action),
            ("relay.example.com", Some(Action::Delayed))
        );
    }

    #[test]
    fn a_bare_number_is_an_exit_status_not_a_reply() {
        let r = failed("bob@example.com", " 255 ");
        assert_eq!((r.reply_code, r.status.as_str(), r.diagnostic.as_str()), (0, "", "255"));
        assert_eq!(failed("bob@example.com", "421").reply_code, 421);
    }

    #[test]
    fn a_loose_leading_code_is_taken_when_the_reply_parser_takes_none() {
        let r = failed("bob@example.com", "550: 5.1.1 mailbox unavailable");
        assert_eq!((r.reply_code, r.status.as_str()), (550, "5.1.1"));
        let r = failed("bob@example.com", "no code here, mailbox unavailable");
        assert_eq!((r.reply_code, r.status.as_str()), (0, ""));
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn sections_are_cut_at_the_lines_holding_their_cues() {
        let text = "Intro\nThe following FAILED:\n  a@b.example\n--- Below this line is a copy\nrest";
        let section = after_line(text, &["failed:"]).unwrap_or_default();
        assert_eq!(before_line(section, &["--- below this line"]), "  a@b.example\n");
        assert_eq!(
            from_line(text, &["below this"]),
            Some("--- Below this line is a copy\nrest")
        );
        assert_eq!(after_line(text, &["absent"]), None);
        assert_eq!(before_line("é\nx", &["absent"]), "é\nx");
        assert_eq!((indent("\t  x"), indent("x"), blank("  ")), (10, 0, true));
    }

    #[test]
    fn the_first_paragraph_starts_at_the_first_line_with_words() {
        let got: Vec<&str> = paragraph("\n  \n  550 no\n  such user\n\nlater\n").collect();
        assert_eq!(got, ["550 no", "such user"]);
        assert_eq!(paragraph("").count(), 0);
    }
}

//! Reply normalisation: turns what a receiving server answered into a [`Reply`] the rules can read.

use std::fmt;

use crate::error::InputError;

/// What a caller hands in: the raw fields of one SMTP reply, any of them empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyInput<'a> {
    /// The three-digit reply code; 0 means absent.
    pub code: u32,
    /// The enhanced status code as sent (`5.1.1`, `#5.1.1`, `(5.1.1)`, `-`, `NA`, ...).
    pub enhanced: &'a str,
    /// The diagnostic text, possibly a multi-line reply with continuation prefixes.
    pub text: &'a str,
    /// The recipient address (`user@example.com`), used to detect the provider.
    pub recipient: &'a str,
    /// The host that answered (`mx.example.com` or `mx.example.com[192.0.2.1]`).
    pub remote_host: &'a str,
}

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Enhanced {
    /// 2, 4 or 5.
    pub class: u8,
    /// 0 to 999.
    pub subject: u16,
    /// 0 to 999.
    pub detail: u16,
}

impl Enhanced {
    /// Parses `x.y.z` exactly (no surrounding text); `None` when it is not one.
    pub fn parse(s: &str) -> Option<Enhanced> {
        // Byte by byte: it runs for every candidate in every reply's text.
        let (class, rest) = s.as_bytes().split_first()?;
        let class = match class {
            b'2' => 2,
            b'4' => 4,
            b'5' => 5,
            _ => return None,
        };
        let (subject, rest) = leading_number(rest.strip_prefix(b".")?)?;
        let (detail, rest) = leading_number(rest.strip_prefix(b".")?)?;
        rest.is_empty().then_some(Enhanced { class, subject, detail })
    }
}

/// One to three ASCII digits at the start of `b`, and what follows them.
fn leading_number(b: &[u8]) -> Option<(u16, &[u8])> {
    let digits = b.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) {
        return None;
    }
    let value = b[..digits].iter().fold(0, |n, &d| n * 10 + u16::from(d - b'0'));
    Some((value, &b[digits..]))
}

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A normalised reply: what every rule condition is evaluated against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Reply code, 0 when neither the field nor the text carried one.
    pub code: u16,
    /// Enhanced status code, from the field or else from the text.
    pub enhanced: Option<Enhanced>,
    /// The text on one line: continuation prefixes removed, white space folded.
    pub text: String,
    /// `text` lower-cased; all text patterns match against this.
    pub lower: String,
    /// The recipient's domain, lower-cased, empty when unknown.
    pub recipient_domain: String,
    /// The remote host, lower-cased, without a trailing `[address]` or dot.
    pub remote_host: String,
}

impl Reply {
    /// Normalises the raw fields. Fails only on a code outside 100-599 or an enhanced code
    /// that is present but not `x.y.z`; anything in the text is accepted.
    pub fn parse(input: &ReplyInput<'_>) -> Result<Reply, InputError> {
        let mut code = match input.code {
            0 => 0,
            c @ 100..=599 => c as u16,
            other => return Err(InputError::Code(other)),
        };
        let mut enhanced = parse_enhanced_field(input.enhanced)?;
        let text = join_lines(input.text, &mut code, &mut enhanced);
        if code == 0 || enhanced.is_none() {
            find_codes_in_text(&text, &mut code, &mut enhanced);
        }
        let lower = lower_for_matching(&text);
        Ok(Reply {
            code,
            enhanced,
            text,
            lower,
            recipient_domain: recipient_domain(input.recipient),
            remote_host: normalise_host(input.remote_host),
        })
    }

    /// A reply known only by its text (`550 5.1.1 User unknown`); never fails.
    pub fn from_text(text: &str) -> Reply {
        let input = ReplyInput {
            text,
            ..ReplyInput::default()
        };
        // Text alone cannot produce an invalid field.
        Reply::parse(&input).unwrap_or_default()
    }

    /// The class of the reply: the code's first digit, or the enhanced code's class without a code.
    pub fn class(&self) -> u8 {
        if self.code != 0 {
            (self.code / 100) as u8
        } else {
            self.enhanced.map_or(0, |e| e.class)
        }
    }
}

/// `""`, `-`, `NA`, `N/A`, `Missing` and `none` mean absent; `#5.1.1`, `(5.1.1)` and `[5.1.1]` are accepted.
pub(crate) fn parse_enhanced_field(raw: &str) -> Result<Option<Enhanced>, InputError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let absent = ["-", "na", "n/a", "missing", "none"];
    if absent.iter().any(|a| trimmed.eq_ignore_ascii_case(a)) {
        return Ok(None);
    }
    let unwrapped = trimmed.trim_start_matches('#');
    let unwrapped = unwrapped
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .or_else(|| unwrapped.strip_prefix('[').and_then(|s| s.strip_suffix(']')))
        .unwrap_or(unwrapped)
        .trim();
    Enhanced::parse(unwrapped)
        .map(Some)
        .ok_or_else(|| InputError::enhanced(raw))
}

/// Joins a (possibly multi-line) reply into one line. A line that starts with a reply code
/// (`550-5.1.1 ` or `550 5.1.1 `) loses that prefix; the first code seen fills an absent field.
fn join_lines(raw: &str, code: &mut u16, enhanced: &mut Option<Enhanced>) -> String {
    let mut out = String::with_capacity(raw.len());
    for line in raw.split('\n') {
        let mut rest = line.trim_ascii();
        if let Some((c, after)) = leading_code(rest) {
            if *code == 0 {
                *code = c;
            }
            rest = after;
            if let Some((e, after)) = leading_enhanced(rest) {
                if enhanced.is_none() {
                    *enhanced = Some(e);
                }
                rest = after;
            }
        }
        push_words(&mut out, rest);
    }
    out
}

/// Appends `s` with runs of ASCII white space folded to one space. Byte-wise: ASCII bytes never
/// occur inside a multi-byte UTF-8 sequence, so every cut lands on a character boundary.
fn push_words(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Most replies are one line with single spaces: copy those whole.
    // A fold without early exit: the compiler vectorises it, which `any` would not allow.
    let other_space = bytes
        .iter()
        .fold(false, |seen, &b| seen | matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r'));
    let folded = !other_space && !s.contains("  ");
    if folded {
        if !s.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(s);
        }
        return;
    }
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if start < i {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&s[start..i]);
        }
    }
}

/// A reply code at the start of `s`: three digits, 2xx-5xx, then `-`, a space or the end.
fn leading_code(s: &str) -> Option<(u16, &str)> {
    let b = s.as_bytes();
    if b.len() < 3 || !(b'2'..=b'5').contains(&b[0]) {
        return None;
    }
    if !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return None;
    }
    match b.get(3) {
        None => {}
        Some(b'-' | b' ' | b'\t') => {}
        Some(_) => return None,
    }
    let code = u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
    Some((code, s.get(4..).unwrap_or("").trim_start()))
}

/// An enhanced code at the start of `s`, followed by white space or the end.
fn leading_enhanced(s: &str) -> Option<(Enhanced, &str)> {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let token = s[..end].trim_start_matches('#');
    let token = token
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(token);
    Enhanced::parse(token).map(|e| (e, s[end..].trim_start()))
}

/// Looks inside wrapped replies ("host mx said: 550 5.1.1 ... (in reply to RCPT TO)") for a code
/// and an enhanced code the fields lack. A code is taken only where it stands right before the
/// enhanced code or right after `said:`, so numbers in prose ("over 500 recipients") are left alone.
fn find_codes_in_text(text: &str, code: &mut u16, enhanced: &mut Option<Enhanced>) {
    let found = find_enhanced(text);
    if enhanced.is_none() {
        *enhanced = found.map(|(e, _)| e);
    }
    if *code != 0 {
        return;
    }
    if let Some((_, start)) = found {
        let before = text[..start]
            .strip_suffix(' ')
            .or_else(|| text[..start].strip_suffix('-'));
        if let Some(c) = before.and_then(trailing_code) {
            *code = c;
            return;
        }
    }
    if let Some(pos) = text.find("said:")
        && let Some((c, _)) = leading_code(text[pos + 5..].trim_start())
    {
        *code = c;
    }
}

/// A reply code ending `s`, preceded by the start or a non-alphanumeric character.
fn trailing_code(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() < 3 {
        return None;
    }
    let start = b.len() - 3;
    if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'.') {
        return None;
    }
    // Three bytes that start inside a character are not three digits.
    s.get(start..).and_then(leading_code).map(|(c, _)| c)
}

/// The first enhanced code standing alone in the text, with its byte offset. Candidates are
/// found from the dots (a memchr scan), not byte by byte.
fn find_enhanced(text: &str) -> Option<(Enhanced, usize)> {
    let b = text.as_bytes();
    let mut from = 0;
    for (dot, _) in text.match_indices('.') {
        if dot == 0 || dot < from {
            continue;
        }
        let i = dot - 1;
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        if !matches!(b[i], b'2' | b'4' | b'5') || !boundary {
            continue;
        }
        let mut end = i + 2;
        let mut dots = 1;
        while end < b.len() && (b[end].is_ascii_digit() || (b[end] == b'.' && dots < 2)) {
            if b[end] == b'.' {
                dots += 1;
            }
            end += 1;
        }
        from = end;
        // "5.1.1." at the end of a sentence is fine; "5.1.1.1" (an address) is not.
        let followed_by_digit = b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit);
        let glued = b.get(end).is_some_and(u8::is_ascii_alphanumeric);
        if dots == 2
            && !followed_by_digit
            && !glued
            && let Some(e) = Enhanced::parse(&text[i..end])
        {
            return Some((e, i));
        }
    }
    None
}

/// Lower-cases for matching. `ſ` (long s) becomes `s` so that every character which
/// case-folds to an ASCII letter is that letter in the result; the literal prefilter relies on it.
pub(crate) fn lower_for_matching(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.to_lowercase().replace('ſ', "s")
}

fn recipient_domain(recipient: &str) -> String {
    if recipient.is_empty() {
        return String::new();
    }
    let r = recipient.trim().trim_matches(|c| c == '<' || c == '>');
    match r.rsplit_once('@') {
        Some((_, domain)) => normalise_host(domain),
        None => String::new(),
    }
}

fn normalise_host(host: &str) -> String {
    if host.is_empty() {
        return String::new();
    }
    let h = host.trim();
    let h = h.split('[').next().unwrap_or(h).trim().trim_end_matches('.');
    h.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u32, enhanced: &str, text: &str) -> Reply {
        Reply::parse(&ReplyInput {
            code,
            enhanced,
            text,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn enhanced_codes_are_exactly_class_subject_detail() {
        let parsed = |s: &str| Enhanced::parse(s).map(|e| (e.class, e.subject, e.detail));
        assert_eq!(parsed("5.1.1"), Some((5, 1, 1)));
        assert_eq!(parsed("4.007.999"), Some((4, 7, 999)));
        assert_eq!(parsed("2.0.0"), Some((2, 0, 0)));
        for bad in [
            "", "5", "5.1", "5.1.", "5.1.1.", "5.1.1.1", "5..1", "5.1234.1", "5.1.1000", "3.1.1", "55.1.1", "5.a.1",
            " 5.1.1", "5.1.1 ",
        ] {
            assert_eq!(parsed(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn absent_markers_mean_no_enhanced_code() {
        for marker in ["", "-", "NA", "n/a", "Missing", " none "] {
            assert_eq!(reply(550, marker, "").enhanced, None, "{marker:?}");
        }
    }

    #[test]
    fn wrapped_enhanced_codes_are_accepted() {
        for raw in ["5.1.1", "#5.1.1", "(5.1.1)", "[5.1.1]", " 5.1.1 "] {
            assert_eq!(
                reply(550, raw, "").enhanced.map(|e| e.to_string()).as_deref(),
                Some("5.1.1"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn invalid_fields_are_errors_naming_the_value() {
        let bad_code = Reply::parse(&ReplyInput {
            code: 600,
            ..Default::default()
        });
        assert_eq!(bad_code, Err(InputError::Code(600)));
        let bad_enh = Reply::parse(&ReplyInput {
            enhanced: "5.1",
            ..Default::default()
        });
        assert_eq!(bad_enh, Err(InputError::Enhanced("5.1".into())));
        assert!(
            Reply::parse(&ReplyInput {
                enhanced: "3.1.1",
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            Reply::parse(&ReplyInput {
                enhanced: "5.1.1000",
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn a_long_bad_enhanced_code_is_quoted_by_its_start_only() {
        let hostile = format!("5.{}1.1", "é".repeat(64 * 1024));
        let error = Reply::parse(&ReplyInput {
            enhanced: &hostile,
            ..Default::default()
        })
        .unwrap_err();
        let message = error.to_string();
        assert!(message.len() < 200, "{} bytes: {message:.200}", message.len());
        assert!(message.starts_with("enhanced: \"5.éé"), "{message:.200}");
    }

    #[test]
    fn multi_line_replies_are_joined_without_prefixes() {
        let r = reply(
            0,
            "",
            "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient's email address for typos or\n550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser gsmtp",
        );
        assert_eq!(r.code, 550);
        assert_eq!(r.enhanced.map(|e| e.to_string()).as_deref(), Some("5.1.1"));
        assert_eq!(
            r.text,
            "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser gsmtp"
        );
        assert!(r.lower.starts_with("the email account"));
    }

    #[test]
    fn fields_win_over_the_text() {
        let r = reply(552, "5.2.2", "550 5.1.1 user unknown");
        assert_eq!((r.code, r.enhanced.map(|e| e.to_string())), (552, Some("5.2.2".into())));
        assert_eq!(r.text, "user unknown");
    }

    #[test]
    fn codes_are_found_inside_wrapped_replies() {
        let r = reply(
            0,
            "",
            "host mx.example.com[192.0.2.1] said: 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO command)",
        );
        assert_eq!((r.code, r.enhanced.map(|e| e.to_string())), (550, Some("5.1.1".into())));
        let said = reply(0, "", "host mx.example.com said: 554 Transaction failed");
        assert_eq!((said.code, said.enhanced), (554, None));
        let hash = reply(
            0,
            "",
            "This message is looping: it already has my Delivered-To line. (#5.4.6)",
        );
        assert_eq!(
            (hash.code, hash.enhanced.map(|e| e.to_string())),
            (0, Some("5.4.6".into()))
        );
    }

    #[test]
    fn a_number_after_a_multibyte_character_is_read_without_panicking() {
        // The three bytes before the enhanced code start inside `é`: no code there.
        let r = reply(0, "", "Compte bloqué 5 5.1.1");
        assert_eq!((r.code, r.enhanced.map(|e| e.to_string())), (0, Some("5.1.1".into())));
        assert_eq!(reply(0, "", "Compte bloqué: 550 5.1.1").code, 550);
    }

    #[test]
    fn numbers_in_prose_are_not_codes() {
        let r = reply(
            0,
            "",
            "You have exceeded 500 recipients from 192.0.2.15 today, version 5.4.3.2",
        );
        assert_eq!((r.code, r.enhanced), (0, None));
    }

    #[test]
    fn recipient_domain_and_host_are_normalised() {
        let r = Reply::parse(&ReplyInput {
            recipient: " <Bob@Example.COM> ",
            remote_host: "MX1.Example.com.[192.0.2.1]",
            ..Default::default()
        })
        .unwrap_or_default();
        assert_eq!(r.recipient_domain, "example.com");
        assert_eq!(r.remote_host, "mx1.example.com");
    }

    #[test]
    fn long_s_lowers_to_ascii_s() {
        assert_eq!(lower_for_matching("Mailbox ſIZE"), "mailbox size");
    }
}

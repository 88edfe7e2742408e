//! Reply normalisation: turns what a receiving server answered into a [`Reply`] the rules can read.

use std::fmt;

use smallvec::SmallVec;

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
    /// The text on one line: continuation prefixes and the wrappers around the reply removed,
    /// white space folded. For a transcript, the chosen reply's text only.
    pub text: String,
    /// `text` lower-cased; all text patterns match against this.
    pub lower: String,
    /// The recipient's domain, lower-cased, empty when unknown.
    pub recipient_domain: String,
    /// The remote host, lower-cased, without a trailing `[address]` or dot: the caller's, or
    /// when the caller gave none, the one the wrapper names (`host mx.example.com[...] said:`).
    pub remote_host: String,
    /// When the text held several replies (a session transcript), each of them and which one
    /// the reply was decided on; `None` for a single reply, the common case.
    pub transcript: Option<Box<Transcript>>,
}

/// The replies a transcript held, and the one the reply was decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Every reply found in the text, in order.
    pub replies: Vec<SeenReply>,
    /// Index of the chosen reply in `replies`.
    pub chosen: usize,
    /// Why that one.
    pub why: &'static str,
}

/// One reply of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenReply {
    /// Its reply code.
    pub code: u16,
    /// Its enhanced code, if it carried one right after the reply code.
    pub enhanced: Option<Enhanced>,
    /// The SMTP command it answered, when the wrapper names it.
    pub command: Option<Command>,
    /// Its text, wrappers removed.
    pub text: String,
}

/// The SMTP command a reply answered, as a wrapper names it (`(in reply to RCPT TO command)`,
/// `after end of data:`, `did not like our RCPT TO:`, `>>> DATA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The greeting, before any command (`after initial connection`).
    Connection,
    /// `EHLO`, `HELO` or `LHLO`.
    Hello,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// `DATA`.
    Data,
    /// The end of the message data (`end of DATA`, `final DATA`).
    EndOfData,
}

impl Command {
    /// How `explain` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connection => "connection",
            Command::Hello => "EHLO",
            Command::MailFrom => "MAIL FROM",
            Command::RcptTo => "RCPT TO",
            Command::Data => "DATA",
            Command::EndOfData => "end of DATA",
        }
    }

    /// The command a wrapper's words name, lower-cased input.
    fn named_in(lower: &str) -> Option<Command> {
        if lower.contains("rcpt") {
            Some(Command::RcptTo)
        } else if lower.contains("end of data") || lower.contains("final data") {
            Some(Command::EndOfData)
        } else if lower.contains("data") {
            Some(Command::Data)
        } else if lower.contains("mail from") {
            Some(Command::MailFrom)
        } else if lower.contains("helo") || lower.contains("ehlo") || lower.contains("lhlo") {
            Some(Command::Hello)
        } else if lower.contains("connect") || lower.contains("greeting") {
            Some(Command::Connection)
        } else {
            None
        }
    }

    /// The failure of this command is about the recipient or its message.
    fn fails_recipient(self) -> bool {
        matches!(self, Command::RcptTo | Command::Data | Command::EndOfData)
    }
}

impl Reply {
    /// Normalises the raw fields. Fails only on a code outside 100-599 or an enhanced code
    /// that is present but not `x.y.z`; anything in the text is accepted.
    pub fn parse(input: &ReplyInput<'_>) -> Result<Reply, InputError> {
        let field_code = match input.code {
            0 => 0,
            c @ 100..=599 => c as u16,
            other => return Err(InputError::Code(other)),
        };
        let field_enhanced = parse_enhanced_field(input.enhanced)?;
        let (joined, line_starts) = join_lines(input.text);
        let heads = find_heads(&joined, &line_starts);
        let read = read_replies(joined, &heads, field_code, field_enhanced);
        let mut code = field_code;
        let mut enhanced = field_enhanced;
        if code == 0 {
            code = read.code;
        }
        if enhanced.is_none() {
            // An enhanced code standing alone in the reply's words (`... (#5.1.1)`).
            enhanced = read.enhanced.or_else(|| find_enhanced(&read.text).map(|(e, _)| e));
        }
        let lower = lower_for_matching(&read.text);
        let remote_host = if input.remote_host.is_empty() {
            read.host.as_deref().map(normalise_host).unwrap_or_default()
        } else {
            normalise_host(input.remote_host)
        };
        Ok(Reply {
            code,
            enhanced,
            text: read.text,
            lower,
            recipient_domain: recipient_domain(input.recipient),
            remote_host,
            transcript: read.transcript,
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

/// Offsets in the joined text where an input line began; most replies have one or two lines.
type LineStarts = SmallVec<[usize; 4]>;

/// Joins a (possibly multi-line) text into one line with white space folded, and notes where
/// each non-empty line began: a code there starts a reply.
fn join_lines(raw: &str) -> (String, LineStarts) {
    let mut out = String::with_capacity(raw.len());
    let mut starts = LineStarts::new();
    for line in raw.split('\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        starts.push(if out.is_empty() { 0 } else { out.len() + 1 });
        push_words(&mut out, line);
    }
    (out, starts)
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

/// Where one reply (or one line of a multi-line reply) begins in the joined text.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// Offset of the reply code.
    at: usize,
    /// Offset of its text, after the code, the enhanced code and separators.
    body: usize,
    code: u16,
    enhanced: Option<Enhanced>,
    /// `550-...`: a line of a multi-line reply, more lines to come.
    dash: bool,
    /// A further line of the reply before it (same code): its prefix is dropped, no new reply.
    continues: bool,
}

type Heads = SmallVec<[Head; 4]>;

/// Words before a number in prose that make it a quantity, not a reply code ("exceeded 500").
const QUANTIFIERS: &[&str] = &[
    "than",
    "exceeded",
    "exceeds",
    "exceed",
    "over",
    "of",
    "limit",
    "max",
    "maximum",
    "least",
    "most",
    "about",
    "after",
    "within",
    "by",
    "per",
    "size",
    "score",
    "port",
    "only",
    "first",
    "last",
    "next",
    "to",
    "up",
    "under",
    "above",
    "below",
    "is",
    "are",
    "was",
    "were",
    "be",
    "with",
    "from",
    "at",
    "in",
    "for",
    "has",
    "have",
    "had",
    "all",
    "total",
    "reached",
    "allowed",
    "sent",
    "count",
    "number",
    "rate",
    "every",
    "the",
    "a",
    "an",
    "your",
    "our",
    "approximately",
    "said",
    "around",
    "nearly",
];

/// Words after a number in prose that make it a quantity ("500 recipients", "552 bytes").
const UNITS: &[&str] = &[
    "recipients",
    "messages",
    "mails",
    "emails",
    "bytes",
    "byte",
    "kb",
    "kbytes",
    "mb",
    "gb",
    "k",
    "seconds",
    "second",
    "secs",
    "sec",
    "s",
    "minutes",
    "minute",
    "mins",
    "min",
    "hours",
    "hour",
    "hrs",
    "days",
    "day",
    "times",
    "per",
    "attempts",
    "connections",
    "characters",
    "chars",
    "lines",
    "ms",
    "or",
    "and",
    "to",
    "of",
    "max",
    "more",
    "items",
    "addresses",
    "percent",
];

/// Finds where replies begin: a code at a line start, a code followed by an enhanced code, a
/// code right after a wrapper's cue (`said:`, `smtp;`, `'`, `#`, `<<<`, `->`, `<addr>`), and in
/// a text that already began with a reply, a code standing between words that do not make it a
/// quantity (`... User unknown 503 Bad sequence of commands`). One pass over the bytes; every
/// check looks at a bounded window, so the cost is linear in the text.
fn find_heads(text: &str, line_starts: &[usize]) -> Heads {
    let b = text.as_bytes();
    let mut heads = Heads::new();
    let mut lines = line_starts.iter().peekable();
    let mut i = 0;
    while i + 3 <= b.len() {
        // Sixteen bytes without a digit 2-5 start no code: most of a reply's words are skipped
        // a chunk at a time (a fold without early exit, which the compiler vectorises).
        if let Some(chunk) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok())
            && !chunk.iter().fold(false, |seen, &c| seen | (c.wrapping_sub(b'2') < 4))
        {
            i += 16;
            continue;
        }
        let c = b[i];
        if !(b'2'..=b'5').contains(&c) || !b[i + 1].is_ascii_digit() || !b[i + 2].is_ascii_digit() {
            i += 1;
            continue;
        }
        let next = b.get(i + 3).copied();
        let prev = i.checked_sub(1).map(|p| b[p]);
        while lines.next_if(|&&s| s < i).is_some() {}
        let line_start = lines.peek().is_some_and(|&&s| s == i);
        // `550: User unknown` at the start of a line is a reply too.
        let separated = matches!(next, None | Some(b' ' | b'-')) || (line_start && next == Some(b':'));
        let bounded = matches!(
            prev,
            None | Some(b' ' | b':' | b';' | b'\'' | b'"' | b'>' | b']' | b')' | b'#' | b'=')
        );
        // `#550` opens Exchange's reply only as a word of its own, not as a URL's fragment.
        let fragment = prev == Some(b'#') && i >= 2 && b[i - 2] != b' ';
        if !separated || !bounded || fragment {
            i += 1;
            continue;
        }
        let code = u16::from(c - b'0') * 100 + u16::from(b[i + 1] - b'0') * 10 + u16::from(b[i + 2] - b'0');
        let dash = next == Some(b'-');
        let (body, enhanced) = read_head(b, i, code);
        let strong = line_start || enhanced.is_some() || after_cue(b, i);
        let accepted = if prev == Some(b'#') {
            // Exchange's `#550 5.1.1 ... ##` always carries the enhanced code.
            enhanced.is_some()
        } else if line_start || enhanced.is_some() {
            true
        } else if strong {
            !is_quantity_after(b, body)
        } else {
            !heads.is_empty() && !is_quantity_before(b, i) && !is_quantity_after(b, body) && word_follows(b, body)
        };
        if !accepted {
            i += 3;
            continue;
        }
        // A further line of the same reply: `550-` before it or here, or (loggers drop the
        // dashes) a line that starts with the same code and enhanced code.
        let continues = heads.last().is_some_and(|h: &Head| {
            let same_enhanced = enhanced.is_none() || h.enhanced.is_none() || h.enhanced == enhanced;
            h.code == code && same_enhanced && (h.dash || dash || (line_start && h.enhanced == enhanced))
        });
        let enhanced = match (continues, enhanced, heads.last()) {
            (true, None, Some(h)) => h.enhanced,
            _ => enhanced,
        };
        heads.push(Head {
            at: i,
            body,
            code,
            enhanced,
            dash,
            continues,
        });
        i = body.max(i + 3);
    }
    heads
}

/// Reads what follows a reply code at `at`: a repeated code (`550 550 5.1.1`), an enhanced
/// code, and the separators; returns where the text begins and the enhanced code.
fn read_head(b: &[u8], at: usize, code: u16) -> (usize, Option<Enhanced>) {
    let mut p = skip_separators(b, at + 3);
    p = skip_same_code(b, p, code);
    let enhanced = match leading_enhanced_at(b, p) {
        Some((e, end)) => {
            p = skip_separators(b, end);
            p = skip_same_code(b, p, code);
            Some(e)
        }
        None => None,
    };
    (p, enhanced)
}

fn skip_separators(b: &[u8], mut p: usize) -> usize {
    // At most a few: `550 - text`, `550 : text`.
    let limit = (p + 4).min(b.len());
    while p < limit && matches!(b[p], b' ' | b'-' | b':') {
        p += 1;
    }
    p
}

/// Skips the reply's own code written twice (`550 550 5.1.1 ...`).
fn skip_same_code(b: &[u8], p: usize, code: u16) -> usize {
    let digits = [
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    if b.get(p..p + 3) == Some(&digits[..]) && matches!(b.get(p + 3), None | Some(b' ' | b'-')) {
        skip_separators(b, p + 3)
    } else {
        p
    }
}

/// An enhanced code at `p` (`5.1.1`, `#5.1.1`, `(5.1.1)`), followed by white space, `:` or
/// the end; looks at most 16 bytes.
fn leading_enhanced_at(b: &[u8], p: usize) -> Option<(Enhanced, usize)> {
    let window = &b[p.min(b.len())..(p + 16).min(b.len())];
    let len = window.iter().position(|&c| c == b' ').unwrap_or(window.len());
    let token = &window[..len];
    let token = token.strip_suffix(b":").unwrap_or(token);
    let token = token.strip_prefix(b"#").unwrap_or(token);
    let token = token
        .strip_prefix(b"(")
        .and_then(|t| t.strip_suffix(b")"))
        .unwrap_or(token);
    if len == window.len() && p + 16 < b.len() {
        return None;
    }
    std::str::from_utf8(token)
        .ok()
        .and_then(Enhanced::parse)
        .map(|e| (e, p + len))
}

/// The code at `at` follows a wrapper's cue: `:`, `;`, `'`, `#`, `>` or `<` (`<<<`, `->`, `<addr>`)
/// right before it, or the word `returned`. (`said` without its colon is qmail's summary, `192.0.2.1
/// said 550 for RCPT TO response`, and quotes no reply.)
fn after_cue(b: &[u8], at: usize) -> bool {
    let before = &b[..at];
    let before = before.strip_suffix(b" ").unwrap_or(before);
    match before.last() {
        Some(b':' | b';' | b'\'' | b'#' | b'>' | b'<') => true,
        _ => last_word(before).eq_ignore_ascii_case(b"returned"),
    }
}

/// The last word of `b`: up to 16 letters before its end.
fn last_word(b: &[u8]) -> &[u8] {
    let start = b.len().saturating_sub(16);
    let tail = &b[start..];
    let letters = tail.iter().rev().take_while(|c| c.is_ascii_alphabetic()).count();
    &tail[tail.len() - letters..]
}

/// The first word at `p`: up to 16 letters (or a lone `%`).
fn first_word(b: &[u8], p: usize) -> &[u8] {
    let tail = &b[p.min(b.len())..(p + 16).min(b.len())];
    if tail.first() == Some(&b'%') {
        return &tail[..1];
    }
    let letters = tail.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    &tail[..letters]
}

fn is_quantity_before(b: &[u8], at: usize) -> bool {
    let before = &b[..at];
    let before = before.strip_suffix(b" ").unwrap_or(before);
    let word = last_word(before);
    QUANTIFIERS.iter().any(|q| word.eq_ignore_ascii_case(q.as_bytes()))
}

fn is_quantity_after(b: &[u8], p: usize) -> bool {
    if b.get(p).is_some_and(u8::is_ascii_digit) {
        return true;
    }
    let word = first_word(b, p);
    // A word glued to more letters is cut at 16: not a unit then.
    let whole = !b.get(p + word.len()).is_some_and(u8::is_ascii_alphabetic);
    whole && UNITS.iter().any(|u| word.eq_ignore_ascii_case(u.as_bytes()))
}

/// A reply's text starts with a word or an address, not a number or nothing.
fn word_follows(b: &[u8], p: usize) -> bool {
    b.get(p)
        .is_some_and(|&c| c.is_ascii_alphabetic() || matches!(c, b'<' | b'"' | b'[' | b'(' | b'#') || c >= 0x80)
}

/// What a wrapper said about the reply that follows it.
#[derive(Debug, Default, Clone, Copy)]
struct Cue<'t> {
    command: Option<Command>,
    host: Option<&'t str>,
    /// Exchange's `Remote Server returned '550 ...'`: the closing quote is not the reply's.
    quoted: bool,
    /// Exchange's `#550 5.1.1 ... ##`.
    hashed: bool,
}

/// Removes the wrapper's words that end `segment` and introduce the next reply: `Diagnostic-Code:
/// smtp;`, `host mx.example.com[192.0.2.1] said:`, `... did not like our RCPT TO:`, `Remote host
/// said:`, `reply:`, `<<<` after `>>> RCPT To:<...>`, `Remote Server returned '`, `#`, `->`.
/// Exim's `SMTP error from remote mail server after RCPT TO:<...>:` is read (the command, the
/// host) but kept. Returns what is left.
fn strip_cue(segment: &str) -> (&str, Cue<'_>) {
    let mut cue = Cue::default();
    let lower = segment.to_ascii_lowercase();
    let mut start = 0;
    let mut end = segment.trim_ascii_end().len();
    let ends = |end: usize, s: &str| lower[..end].ends_with(s);
    let trim = |end: usize| lower[..end].trim_ascii_end().len();
    if ends(end, "#") {
        cue.hashed = true;
        end = trim(end - 1);
    } else if ends(end, "'") {
        cue.quoted = true;
        end = trim(end - 1);
        if ends(end, "returned") {
            end = trim(end - "returned".len());
            if ends(end, "remote server") {
                end = trim(end - "remote server".len());
            }
        }
    } else if ends(end, "<<<") {
        end = trim(end - 3);
        if let Some(p) = lower[..end].rfind(">>>") {
            cue.command = Command::named_in(&lower[p..end]);
            end = trim(p);
        }
    } else if ends(end, "->") {
        end = trim(end - 2);
    } else if ends(end, ";") {
        let head = &lower[..end - 1];
        let token_start = head.rfind([' ', ':']).map_or(0, |p| p + 1);
        let token = &head[token_start..];
        if !token.is_empty() && token.len() <= 16 && token.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            end = trim(token_start);
            if ends(end, "diagnostic-code:") {
                end = trim(end - "diagnostic-code:".len());
            }
        }
    } else if ends(end, ":") {
        let head = &lower[..end - 1];
        if head.ends_with("said") {
            end = trim(end - "said:".len());
            if ends(end, "remote host") {
                end = trim(end - "remote host".len());
            } else {
                (end, cue.host) = strip_host(segment, &lower, end);
            }
        } else if head.ends_with("reply") {
            end = trim(end - "reply:".len());
        } else {
            // Exim's `host mx.example.com [192.0.2.1]:`, alone or after its SMTP error line.
            if head.ends_with(']')
                && let (stripped, Some(host)) = strip_host(segment, &lower, end - 1)
            {
                (end, cue.host) = (stripped, Some(host));
            }
            let head = &lower[..end];
            if let Some(p) = head.rfind("smtp error from remote mail server") {
                // Exim's words stay: they name the MTA (its provider marker) and mislead no rule.
                cue.command = Command::named_in(&head[p..]);
                if cue.host.is_none() {
                    let before;
                    (before, cue.host) = strip_host(segment, &lower, trim(p));
                    // `host mx.example.com [192.0.2.1]` opening the text goes, Exim's line stays.
                    if before == 0 && cue.host.is_some() {
                        start = p;
                    }
                }
            } else if let Some(p) = head.rfind("did not like our") {
                cue.command = Command::named_in(&head[p..]);
                (end, cue.host) = strip_host(segment, &lower, trim(p));
            } else if let Some(p) = head.rfind("remote mta ")
                && let host = segment[p + "remote mta ".len()..end - 1].trim_ascii()
                && !host.is_empty()
                && !host.contains(' ')
            {
                // `Remote MTA mx.example.com: 550 ...`
                cue.host = Some(host);
                end = trim(p);
            }
        }
    }
    (&segment[start..end], cue)
}

/// Removes `host mx.example.com[192.0.2.1]`, `host mx.example.com [192.0.2.1]` or
/// `mx.example.com [192.0.2.1]` ending `segment[..end]`; returns the new end and the host.
fn strip_host<'t>(segment: &'t str, lower: &str, end: usize) -> (usize, Option<&'t str>) {
    let trim = |end: usize| lower[..end].trim_ascii_end().len();
    let mut stop = end;
    // A separate `[address]`.
    if lower[..stop].ends_with(']')
        && let Some(open) = lower[..stop].rfind('[')
        && lower[..open].ends_with(' ')
    {
        stop = trim(open);
    }
    let token_start = lower[..stop].rfind(' ').map_or(0, |p| p + 1);
    let token = &segment[token_start..stop];
    let host = token.split('[').next().unwrap_or(token);
    if !host.contains('.') || host.contains(['<', '>', '@']) {
        return (end, None);
    }
    let mut new_end = trim(token_start);
    if lower[..new_end].ends_with("host") && !lower[..new_end - 4].ends_with(|c: char| c.is_ascii_alphanumeric()) {
        new_end = trim(new_end - 4);
    }
    (new_end, Some(host))
}

/// Removes what ends a reply's text but belongs to its wrapper, Exchange's closing `'` or `##`,
/// and reads the command Postfix's `(in reply to RCPT TO command)` names. Those words stay:
/// they name the MTA (its provider marker) and mislead no rule. Returns the end and the command.
fn strip_tail(body: &str, cue: &Cue<'_>) -> (usize, Option<Command>) {
    let mut end = body.trim_ascii_end().len();
    let mut command = None;
    let b = body.as_bytes();
    if cue.quoted && b[..end].ends_with(b"'") {
        end = body[..end - 1].trim_ascii_end().len();
    }
    if cue.hashed {
        end = body[..end].trim_end_matches('#').trim_ascii_end().len();
    }
    if b[..end].ends_with(b")") {
        let window = end.saturating_sub(48);
        if let Some(open) = b[window..end].iter().rposition(|&c| c == b'(') {
            let open = window + open;
            let opens = b[open..end]
                .get(..12)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"(in reply to"));
            if opens {
                command = Command::named_in(&body[open..end].to_ascii_lowercase());
            }
        }
    }
    (end, command)
}

/// How far into a text without a code a wrapper's opening words are looked for.
const WRAPPER_WINDOW: usize = 512;

/// A text without a reply code: its wording is the reply. A wrapper that opens it (`host
/// mx.example.com[192.0.2.1] said:`, `... did not like our final DATA:`) is removed.
fn read_wording(joined: String) -> Read {
    let window = crate::pattern::prefix_within(&joined, WRAPPER_WINDOW);
    // Both wrappers end at a colon, and replies hold few: look behind each (a memchr scan).
    // qmail's phrase is rare: one fast search tells whether to look for it at each colon.
    let qmail = window.contains("like our") || window.contains("LIKE OUR");
    let end = window.match_indices(':').find_map(|(p, _)| {
        let before = &window.as_bytes()[..p];
        let said = before.len() >= 4 && before[before.len() - 4..].eq_ignore_ascii_case(b"said");
        let tail = &before[before.len().saturating_sub(40)..];
        let did_not_like = || tail.windows(16).any(|w| w.eq_ignore_ascii_case(b"did not like our"));
        (said || (qmail && did_not_like())).then_some(p + 1)
    });
    let (mut text, host) = match end {
        Some(end) if joined.is_char_boundary(end) => {
            let (kept, cue) = strip_cue(&joined[..end]);
            let mut text = String::with_capacity(joined.len());
            push_words(&mut text, kept);
            push_words(&mut text, joined[end..].trim_ascii());
            (text, cue.host.map(str::to_string))
        }
        _ => (joined, None),
    };
    let (end, _) = strip_tail(&text, &Cue::default());
    text.truncate(end);
    Read {
        text,
        code: 0,
        enhanced: None,
        host,
        transcript: None,
    }
}

/// A complaint that follows an earlier failure rather than causing one: `503 Bad sequence of
/// commands`, `need RCPT command`, `no valid recipients`, `too many errors`.
fn is_consequence(code: u16, lower: &str) -> bool {
    code == 503
        || [
            "bad sequence",
            "need rcpt",
            "need mail",
            "rcpt first",
            "mail first",
            "no valid recipients",
            "no recipients",
            "must precede",
            "start afresh",
            "out of sequence",
            "too many errors",
        ]
        .iter()
        .any(|p| lower.contains(p))
}

/// What the text said once its replies are read.
struct Read {
    text: String,
    code: u16,
    enhanced: Option<Enhanced>,
    host: Option<String>,
    transcript: Option<Box<Transcript>>,
}

/// Groups the heads into replies, strips their wrappers, chooses the one the recipient failed
/// on and builds the text: what precedes the first reply (its wrapper removed), then the chosen
/// reply's text.
fn read_replies(joined: String, heads: &[Head], field_code: u16, field_enhanced: Option<Enhanced>) -> Read {
    let Some(first) = heads.first() else {
        return read_wording(joined);
    };
    // The single reply at the start, no wrapper around it: the common case, done in place.
    if heads.len() == 1 && first.at == 0 {
        let (end, _) = strip_tail(&joined[first.body..], &Cue::default());
        let (code, enhanced) = (first.code, first.enhanced);
        let mut text = joined;
        text.truncate(first.body + end);
        text.drain(..first.body);
        return Read {
            text,
            code,
            enhanced,
            host: None,
            transcript: None,
        };
    }
    let (prefix, mut cue) = strip_cue(&joined[..first.at]);
    let prefix = prefix.trim_ascii();
    struct Part<'t> {
        code: u16,
        enhanced: Option<Enhanced>,
        command: Option<Command>,
        host: Option<&'t str>,
        pieces: SmallVec<[&'t str; 1]>,
    }
    let mut parts: SmallVec<[Part<'_>; 2]> = SmallVec::new();
    for (k, h) in heads.iter().enumerate() {
        let segment_end = heads.get(k + 1).map_or(joined.len(), |n| n.at);
        let segment = &joined[h.body..segment_end];
        // The end of this segment may be the wrapper of the next reply.
        let (segment, next_cue) = if k + 1 < heads.len() && !heads[k + 1].continues {
            strip_cue(segment)
        } else {
            (segment, Cue::default())
        };
        if h.continues
            && let Some(part) = parts.last_mut()
        {
            part.pieces.push(segment);
        } else {
            parts.push(Part {
                code: h.code,
                enhanced: h.enhanced,
                command: cue.command,
                host: cue.host,
                pieces: SmallVec::from_elem(segment, 1),
            });
        }
        if !heads.get(k + 1).is_some_and(|n| n.continues) {
            // The last piece of this reply: its own wrapper's tail goes.
            if let Some(part) = parts.last_mut()
                && let Some(last) = part.pieces.last_mut()
            {
                let (end, command) = strip_tail(last, &cue);
                *last = &last[..end];
                if command.is_some() {
                    part.command = command;
                }
            }
            // Exchange's quote closes after the last reply it holds (`'550 ... -> 550 ...'`).
            cue = Cue {
                quoted: next_cue.quoted || cue.quoted,
                ..next_cue
            };
        }
    }
    let texts: SmallVec<[String; 2]> = parts
        .iter()
        .map(|p| {
            let mut t = String::new();
            for piece in &p.pieces {
                push_words(&mut t, piece);
            }
            t
        })
        .collect();
    let (chosen, why) = if parts.len() == 1 {
        (0, "")
    } else {
        let candidates: SmallVec<[Candidate; 2]> = parts
            .iter()
            .zip(&texts)
            .map(|(p, t)| Candidate {
                code: p.code,
                enhanced: p.enhanced,
                command: p.command,
                consequence: is_consequence(p.code, &lower_for_matching(t)),
            })
            .collect();
        choose(&candidates, field_code, field_enhanced)
    };
    let mut text = String::with_capacity(prefix.len() + 1 + texts[chosen].len());
    push_words(&mut text, prefix);
    push_words(&mut text, &texts[chosen]);
    let part = &parts[chosen];
    let host = part
        .host
        .or_else(|| parts.iter().find_map(|p| p.host))
        .map(str::to_string);
    let (code, enhanced) = (part.code, part.enhanced);
    let transcript = (parts.len() > 1).then(|| {
        Box::new(Transcript {
            replies: parts
                .iter()
                .zip(texts)
                .map(|(p, text)| SeenReply {
                    code: p.code,
                    enhanced: p.enhanced,
                    command: p.command,
                    text,
                })
                .collect(),
            chosen,
            why,
        })
    });
    Read {
        text,
        code,
        enhanced,
        host,
        transcript,
    }
}

/// One step of `choose`: which replies it takes.
type Test<'a> = &'a dyn Fn(&Candidate) -> bool;

/// What `choose` looks at in each reply of a transcript.
struct Candidate {
    code: u16,
    enhanced: Option<Enhanced>,
    command: Option<Command>,
    /// A complaint that follows an earlier failure (`503 need RCPT`), see [`is_consequence`].
    consequence: bool,
}

/// The reply of a transcript the recipient failed on, and why (see `rules/README.md`):
/// the caller's code names it when a reply has it; else the last permanent reply to RCPT or
/// DATA, then the last permanent reply, then the last failure, each passing over complaints
/// that follow an earlier failure (`503 need RCPT`); else the last failure, else the last reply.
fn choose(replies: &[Candidate], field_code: u16, field_enhanced: Option<Enhanced>) -> (usize, &'static str) {
    let last = |test: Test<'_>| replies.iter().rposition(test);
    if field_code != 0 {
        if field_enhanced.is_some()
            && let Some(i) = last(&|r| r.code == field_code && r.enhanced == field_enhanced)
        {
            return (i, "the last reply with the caller's code and enhanced code");
        }
        if let Some(i) = last(&|r| r.code == field_code) {
            return (i, "the last reply with the caller's code");
        }
    }
    let permanent = |r: &Candidate| r.code / 100 == 5 && !r.consequence;
    let steps: [(Test<'_>, &'static str); 4] = [
        (
            &|r| permanent(r) && r.command.is_some_and(Command::fails_recipient),
            "the last permanent reply to RCPT TO or DATA",
        ),
        (
            &permanent,
            "the last permanent reply that is not a complaint following an earlier failure",
        ),
        (
            &|r| r.code / 100 >= 4 && !r.consequence,
            "the last failure that is not a complaint following an earlier failure",
        ),
        (&|r| r.code / 100 >= 4, "the last failure"),
    ];
    for (test, why) in steps {
        if let Some(i) = last(test) {
            return (i, why);
        }
    }
    (replies.len().saturating_sub(1), "the last reply")
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

    fn enhanced_of(r: &Reply) -> Option<String> {
        r.enhanced.map(|e| e.to_string())
    }

    /// The chosen reply's code, enhanced code and text, and the replies a transcript held.
    fn read(text: &str) -> (u16, Option<String>, String, usize) {
        let r = reply(0, "", text);
        let seen = r.transcript.as_ref().map_or(1, |t| t.replies.len());
        (r.code, enhanced_of(&r), r.text, seen)
    }

    #[test]
    fn dsn_diagnostic_fields_are_unwrapped() {
        for text in [
            "Diagnostic-Code: smtp; 550 5.1.1 <ann@example.net>... User unknown",
            "smtp;550 5.1.1 <ann@example.net>... User unknown",
            "SMTP; 550 5.1.1 <ann@example.net>... User unknown",
            "Diagnostic-Code: X-Postfix; 550 5.1.1 <ann@example.net>... User unknown",
        ] {
            assert_eq!(
                read(text),
                (550, Some("5.1.1".into()), "<ann@example.net>... User unknown".into(), 1),
                "{text}"
            );
        }
        // X-Notes carries Domino's words without a code: they stay the text.
        let notes = read("Diagnostic-Code: X-Notes; User jo.doe (jo.doe@example.org) not listed in Domino Directory");
        assert_eq!(notes.0, 0);
        assert!(notes.2.contains("not listed in Domino Directory"), "{}", notes.2);
    }

    #[test]
    fn postfix_host_said_and_in_reply_to_are_removed_and_the_host_kept() {
        let r = reply(
            0,
            "",
            "host mx2.example.org[198.51.100.7] said: 550 5.1.1 <kim@example.org>: Recipient address rejected: \
             User unknown in local recipient table (in reply to RCPT TO command)",
        );
        assert_eq!((r.code, enhanced_of(&r)), (550, Some("5.1.1".into())));
        assert_eq!(
            r.text,
            "<kim@example.org>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)"
        );
        assert_eq!(r.remote_host, "mx2.example.org");
        // The caller's host wins over the wrapper's.
        let given = Reply::parse(&ReplyInput {
            text: "host mx2.example.org[198.51.100.7] said: 451 4.3.0 try again (in reply to end of DATA command)",
            remote_host: "relay.example.com",
            ..Default::default()
        })
        .unwrap_or_default();
        assert_eq!((given.code, given.remote_host.as_str()), (451, "relay.example.com"));
        assert_eq!(given.text, "try again (in reply to end of DATA command)");
    }

    #[test]
    fn exim_qmail_and_sendmail_wrappers_are_removed() {
        let exim =
            read("SMTP error from remote mail server after RCPT TO:<li@example.com>: 550 5.1.1 No such user here");
        assert_eq!((exim.0, exim.1.as_deref()), (550, Some("5.1.1")));
        // Exim's words stay (they name the MTA); the code and enhanced code are read inside.
        assert!(
            exim.2.ends_with("RCPT TO:<li@example.com>: No such user here"),
            "{}",
            exim.2
        );
        let exim_host = reply(
            0,
            "",
            "host mx.example.com [192.0.2.9]\nSMTP error from remote mail server after end of data:\n552 5.3.4 Message size exceeds fixed limit",
        );
        assert_eq!(exim_host.code, 552);
        assert!(
            exim_host
                .text
                .ends_with("after end of data: Message size exceeds fixed limit"),
            "{}",
            exim_host.text
        );
        assert_eq!(exim_host.remote_host, "mx.example.com");
        let mail_from = read(
            "SMTP error from remote mail server after MAIL FROM:<news@example.com> SIZE=20480: 553 sender domain does not resolve",
        );
        assert_eq!((mail_from.0, mail_from.1), (553, None));
        assert!(
            mail_from.2.ends_with("SIZE=20480: sender domain does not resolve"),
            "{}",
            mail_from.2
        );
        let qmail = read("192.0.2.44 does not like recipient. Remote host said: 550 5.1.1 mailbox unavailable");
        assert_eq!(
            qmail,
            (
                550,
                Some("5.1.1".into()),
                "192.0.2.44 does not like recipient. mailbox unavailable".into(),
                1
            )
        );
        let did_not_like = reply(
            0,
            "",
            "in.example.net [203.0.113.5] did not like our RCPT TO:550 5.7.1 relaying not permitted",
        );
        assert_eq!(
            (did_not_like.code, did_not_like.text.as_str()),
            (550, "relaying not permitted")
        );
        assert_eq!(did_not_like.remote_host, "in.example.net");
        let sendmail = read(
            "----- Transcript of session follows -----\n... while talking to mx.example.org.:\n>>> RCPT To:<pat@example.org>\n<<< 550 5.1.1 <pat@example.org>... User unknown",
        );
        assert_eq!(sendmail.0, 550);
        assert!(
            sendmail.2.ends_with("<pat@example.org>... User unknown"),
            "{}",
            sendmail.2
        );
        assert!(!sendmail.2.contains("RCPT To"), "{}", sendmail.2);
        assert_eq!(read("reply: 421 4.4.2 Connection timed out").2, "Connection timed out");
        let remote_mta = reply(0, "", "Remote MTA mx.example.com: 550 5.7.1 message refused");
        assert_eq!(
            (remote_mta.text.as_str(), remote_mta.remote_host.as_str()),
            ("message refused", "mx.example.com")
        );
    }

    #[test]
    fn exchange_quoted_and_hashed_replies_are_unwrapped() {
        let quoted = read("Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'");
        assert_eq!(
            quoted,
            (
                550,
                Some("5.1.1".into()),
                "RESOLVER.ADR.RecipNotFound; not found".into(),
                1
            )
        );
        let hashed = read("#550 5.2.2 STOREDRV.Deliver: mailbox full ##");
        assert_eq!(
            hashed,
            (550, Some("5.2.2".into()), "STOREDRV.Deliver: mailbox full".into(), 1)
        );
        // A `#554` inside a URL is no reply.
        assert_eq!(read("554 denied - see https://example.com/help#554 [ref 42]").3, 1);
    }

    #[test]
    fn a_transcript_is_decided_on_the_reply_that_failed_the_recipient() {
        // qmail's session: a busy greeting, the rejected recipient, then the complaint it caused.
        let (code, _, text, seen) =
            read("450 busy - try again later 551 not our user here 503 need RCPT command first");
        assert_eq!((code, text.as_str(), seen), (551, "not our user here", 3));
        let r = reply(
            0,
            "",
            "550 Unknown user ann@example.jp 503 Bad sequence of commands 550 Unknown user ann@example.jp",
        );
        let t = r.transcript.as_deref().map(|t| (t.replies.len(), t.chosen));
        assert_eq!(
            (r.code, r.text.as_str(), t),
            (550, "Unknown user ann@example.jp", Some((3, 2)))
        );
        // The reply to RCPT is preferred over a later permanent reply to another command.
        let by_command = read(
            "host a.example.com[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command) \
             host a.example.com[192.0.2.1] said: 554 5.3.0 transaction failed (in reply to QUIT command)",
        );
        assert_eq!(
            (by_command.0, by_command.2.as_str()),
            (550, "no such user (in reply to RCPT TO command)")
        );
        // Only complaints and temporary failures: the temporary failure is the cause.
        assert_eq!(read("421 4.7.0 try later 503 5.5.1 need MAIL before RCPT").0, 421);
        // A positive reply is never the cause when a failure follows.
        assert_eq!(read("354 go ahead 451 4.3.0 queue file write error").0, 451);
        // Several lines, one reply each.
        let lines = read("220 mx.example.com ESMTP\n550 5.7.1 relay not permitted\n221 bye");
        assert_eq!((lines.0, lines.2.as_str(), lines.3), (550, "relay not permitted", 3));
    }

    #[test]
    fn the_callers_code_names_the_reply_in_a_transcript() {
        let r = reply(450, "", "450 4.2.1 try later 550 5.1.1 unknown user");
        assert_eq!(
            (r.code, enhanced_of(&r), r.text.as_str()),
            (450, Some("4.2.1".into()), "try later")
        );
        let why = r.transcript.as_ref().map(|t| t.why);
        assert_eq!(why, Some("the last reply with the caller's code"));
        // A code no reply has: the usual choice, the caller's code kept.
        let other = reply(554, "", "450 4.2.1 try later 550 5.1.1 unknown user");
        assert_eq!((other.code, other.text.as_str()), (554, "unknown user"));
    }

    #[test]
    fn multi_line_continuations_on_one_line_are_one_reply() {
        let (code, enhanced, text, seen) = read(
            "550-5.1.1 The account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the address 550 5.1.1 for typos. gsmtp",
        );
        assert_eq!((code, enhanced.as_deref(), seen), (550, Some("5.1.1"), 1));
        assert_eq!(
            text,
            "The account that you tried to reach does not exist. Please try double-checking the address for typos. gsmtp"
        );
        assert_eq!(read("550 550 5.1.1 user unknown").2, "user unknown");
        // Lines of one reply whose dashes a log dropped stay one reply.
        let undashed = read("550 5.7.1 Message rejected as spam by\n550 5.7.1 the content filter");
        assert_eq!(
            (undashed.2.as_str(), undashed.3),
            ("Message rejected as spam by the content filter", 1)
        );
    }

    #[test]
    fn quantities_in_a_reply_are_not_further_replies() {
        for text in [
            "550 5.7.1 You have exceeded 500 recipients today",
            "452 4.5.3 Too many recipients: limit 250 per message",
            "552 5.3.4 Message size 5242880 exceeds the limit of 250 kb",
            "550 5.7.1 Rejected: spam score 500 over threshold",
        ] {
            let r = reply(0, "", text);
            assert!(r.transcript.is_none(), "{text}: {:?}", r.transcript);
        }
    }

    #[test]
    fn a_summary_of_what_hosts_said_is_not_a_further_reply() {
        let (code, _, text, seen) = read(
            "Sorry, no SMTP connection got far enough; most progress was RCPT TO response; remote host 192.0.2.7 \
             said: 550 no such user here (hosts tried: 192.0.2.7 said 550 for RCPT TO response; 192.0.2.8 said \
             550 for RCPT TO response)",
        );
        assert_eq!((code, seen), (550, 1));
        assert!(text.contains("no such user here"), "{text}");
    }

    #[test]
    fn a_text_without_a_code_is_kept_whole() {
        let r = reply(0, "", "The recipient's mailbox is full and cannot accept messages now");
        assert_eq!((r.code, r.enhanced, r.transcript.is_none()), (0, None, true));
        assert_eq!(r.text, "The recipient's mailbox is full and cannot accept messages now");
    }

    #[test]
    fn a_wrapper_around_wording_without_a_code_is_removed() {
        let r = reply(
            0,
            "",
            "host in1.example.net[192.0.2.8] said: The account you tried to reach is disabled. (in reply to RCPT TO command)",
        );
        assert_eq!(
            (r.code, r.text.as_str()),
            (
                0,
                "The account you tried to reach is disabled. (in reply to RCPT TO command)"
            )
        );
        assert_eq!(r.remote_host, "in1.example.net");
        let exim = reply(
            0,
            "",
            "host mx.example.org [192.0.2.3] SMTP error from remote mail server after RCPT TO:<al@example.org>: Mailbox disabled for this recipient",
        );
        assert!(
            exim.text
                .ends_with("<al@example.org>: Mailbox disabled for this recipient"),
            "{}",
            exim.text
        );
        let qmail = reply(
            0,
            "",
            "mx.example.com [192.0.2.4] did not like our final DATA: message refused as spam",
        );
        assert_eq!(qmail.text, "message refused as spam");
    }

    #[test]
    fn replies_after_an_arrow_or_a_colon_at_a_line_start_are_read() {
        let sent = read("Each recipient was rejected by the remote server. <<< 550 <x@example.jp>: User unknown");
        assert_eq!(
            (sent.0, sent.2.as_str()),
            (
                550,
                "Each recipient was rejected by the remote server. <x@example.jp>: User unknown"
            )
        );
        assert_eq!(read("550: : User unknown").0, 550);
        // Exchange's quote closes after the inner reply, not before it.
        let inner =
            read("Remote Server returned '550 5.1.351 Remote server returned unknown recipient -> 550 Unknown user'");
        assert_eq!((inner.0, inner.2.as_str()), (550, "Unknown user"));
    }

    #[test]
    fn hostile_transcripts_cost_linear_time_and_never_panic() {
        for unit in [
            "550 x ",
            "550-",
            "550 5.1.1 ",
            "said: 550 ",
            "#550 ",
            "smtp; 4",
            "(in reply to ",
            "é550 ",
        ] {
            let text = unit.repeat(64 * 1024 / unit.len());
            let r = reply(0, "", &text);
            assert!(r.text.len() <= text.len(), "{unit:?}");
        }
    }

    #[test]
    fn long_s_lowers_to_ascii_s() {
        assert_eq!(lower_for_matching("Mailbox ſIZE"), "mailbox size");
    }
}

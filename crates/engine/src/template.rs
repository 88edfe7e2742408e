//! Templates of replies: a reply's text with its variable parts masked (addresses, hosts, IPs,
//! numbers, ids, tokens, dates), so that the same wording sent to a million recipients is one
//! template, and no address or id survives into what operators are shown.
//!
//! The scanner is hand-written and linear in the text: the text is cut into white-space
//! separated words, each word into pieces at `<`, `[`, `(` and `=`, and each piece is kept or
//! replaced by [`MASK`] as a whole. What is masked:
//! - anything holding `@` (addresses, message ids) or a digit (numbers, IPs, queue ids, hex ids,
//!   dates and times), except the reply code and enhanced code that start the reply
//!   (`550 5.1.1`), which rules key on; codes starting later lines are continuation prefixes
//!   and are dropped;
//! - dotted host names whose last label looks like a top-level domain (`mx.example.com`);
//! - base64-like runs (long, with the letter case flipping often);
//! - in a URL, the host, the query and the fragment; the path's plain words stay
//!   (`https://<*>/mail/?<*>`);
//! - month and day names next to a mask (`Mon, <*> Dec <*>`), which belong to a date.
//!
//! A mask inside `<...>` or `[...]` takes the brackets with it (`<bob@x>` gives `<*>`), masks
//! next to each other (only punctuation or white space between) collapse into one, and white
//! space folds to one space. `template` is idempotent: a template is its own template.

/// The one mask token.
pub const MASK: &str = "<*>";

/// A base64-like run is at least this long.
const TOKEN_MIN_LEN: usize = 20;

/// The template of `text`: its variable parts replaced by [`MASK`].
pub fn template(text: &str) -> String {
    let mut words: Vec<Word> = Vec::new();
    let mut first_line = true;
    for line in text.split('\n') {
        let mut line_words = line.split_whitespace().peekable();
        if line_words.peek().is_none() {
            continue;
        }
        let codes = leading_codes(line);
        for (index, word) in line_words.enumerate() {
            if index < codes.words {
                // The first line's codes are the reply's; later ones are continuation prefixes.
                if first_line {
                    words.push(Word {
                        text: LeadingCodes::normalised(word),
                        maskish: false,
                    });
                }
                continue;
            }
            words.push(mask_word(word));
        }
        first_line = false;
    }
    mask_date_names(&mut words);
    join_collapsed(&words)
}

/// One word of the output, and whether it is only masks and punctuation.
#[derive(Debug)]
struct Word {
    text: String,
    maskish: bool,
}

/// How many words at the start of a line are reply codes (`550`, `550-`, `550 5.1.1`,
/// `550-5.1.1`, `5.1.1`).
struct LeadingCodes {
    words: usize,
}

impl LeadingCodes {
    /// The code word as kept: the continuation dash dropped (`550-5.1.1` gives `550 5.1.1`).
    fn normalised(word: &str) -> String {
        match word.split_once('-') {
            Some((code, "")) => code.to_string(),
            Some((code, enhanced)) => format!("{code} {enhanced}"),
            None => word.to_string(),
        }
    }
}

fn leading_codes(line: &str) -> LeadingCodes {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return LeadingCodes { words: 0 };
    };
    if is_enhanced(first) {
        return LeadingCodes { words: 1 };
    }
    let (code, rest) = match first.split_once('-') {
        Some((code, rest)) => (code, rest),
        None => (first, ""),
    };
    if !is_reply_code(code) {
        return LeadingCodes { words: 0 };
    }
    if !rest.is_empty() {
        return LeadingCodes {
            words: usize::from(is_enhanced(rest)),
        };
    }
    match words.next() {
        Some(second) if is_enhanced(second) => LeadingCodes { words: 2 },
        _ => LeadingCodes { words: 1 },
    }
}

/// `[245]dd`.
fn is_reply_code(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.len() == 3 && matches!(bytes[0], b'2' | b'4' | b'5') && bytes.iter().all(u8::is_ascii_digit)
}

/// `[245].d{1,3}.d{1,3}`.
fn is_enhanced(word: &str) -> bool {
    let mut parts = word.split('.');
    let class_ok = matches!(parts.next(), Some("2" | "4" | "5"));
    let number =
        |p: Option<&str>| p.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    class_ok && number(parts.next()) && number(parts.next()) && parts.next().is_none()
}

/// Masks the variable pieces of one word.
fn mask_word(word: &str) -> Word {
    let mut out = String::with_capacity(word.len());
    if let Some(url) = mask_url(word) {
        out = url;
    } else {
        let mut start = 0;
        for (i, c) in word.char_indices() {
            if i > start && matches!(c, '<' | '[' | '(' | '=') {
                mask_piece(word.get(start..i).unwrap_or(""), &mut out);
                start = i;
            }
        }
        mask_piece(word.get(start..).unwrap_or(""), &mut out);
    }
    let out = collapse_in_word(&out);
    let maskish = out.contains(MASK) && !without_masks(&out).chars().any(char::is_alphanumeric);
    Word { text: out, maskish }
}

/// The word with its masks removed.
fn without_masks(word: &str) -> String {
    word.replace(MASK, "")
}

/// Masks one piece (`<bob@x>:`, `[1.2.3.4]`, `=abc123`, `mx.example.com`) into `out`.
fn mask_piece(piece: &str, out: &mut String) {
    let lead_len = piece.len() - piece.trim_start_matches(is_lead_punct).len();
    let (lead, rest) = piece.split_at(lead_len);
    let core = rest.trim_end_matches(is_trail_punct);
    let trail = rest.get(core.len()..).unwrap_or("");
    if core.is_empty() || !is_variable(core) {
        out.push_str(piece);
        return;
    }
    // Brackets around a masked piece go with it: `<bob@x>` and `[1.2.3.4]` are one mask each.
    let (lead, trail) = match (lead.strip_suffix(['<', '[']), trail.strip_prefix(['>', ']'])) {
        (Some(lead), Some(trail)) => (lead, trail),
        _ => (lead, trail),
    };
    out.push_str(lead);
    out.push_str(MASK);
    out.push_str(trail);
}

fn is_lead_punct(c: char) -> bool {
    matches!(c, '<' | '(' | '[' | '{' | '"' | '\'' | '=' | '`')
}

fn is_trail_punct(c: char) -> bool {
    matches!(
        c,
        '>' | ')' | ']' | '}' | '"' | '\'' | ',' | ';' | ':' | '.' | '!' | '?' | '`'
    )
}

/// Whether a piece without its surrounding punctuation is variable.
fn is_variable(core: &str) -> bool {
    core == "*"
        || core.contains(MASK)
        || core.contains('@')
        || core.chars().any(|c| c.is_ascii_digit())
        || is_host(core)
        || is_token(core)
}

/// A dotted name whose last label looks like a top-level domain: `mx.example.com`, `EXAMPLE.ORG`.
fn is_host(core: &str) -> bool {
    let core = core.strip_suffix('.').unwrap_or(core);
    let Some((labels, tld)) = core.rsplit_once('.') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    // The last label is letters of one case: `mailbox.Please` is a missing space, not a host.
    let tld_ok = (2..=24).contains(&tld.len())
        && (tld.bytes().all(|b| b.is_ascii_lowercase()) || tld.bytes().all(|b| b.is_ascii_uppercase()));
    tld_ok && labels.split('.').all(label_ok)
}

/// A base64-like run: long, of base64 characters, the letter case flipping often (random text
/// flips about every other letter; CamelCase words rarely).
fn is_token(core: &str) -> bool {
    if core.len() < TOKEN_MIN_LEN
        || !core
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-'))
    {
        return false;
    }
    let mut flips = 0;
    let mut last_upper = None;
    for b in core.bytes().filter(u8::is_ascii_alphabetic) {
        let upper = b.is_ascii_uppercase();
        if last_upper.is_some_and(|l| l != upper) {
            flips += 1;
        }
        last_upper = Some(upper);
    }
    flips * 4 >= core.len()
}

/// A URL (`scheme://host/path?query#fragment`, or `host/path`): host, query and fragment masked,
/// the path's plain words kept.
fn mask_url(word: &str) -> Option<String> {
    let lead_len = word.len() - word.trim_start_matches(is_lead_punct).len();
    let (lead, rest) = word.split_at(lead_len);
    let (scheme, after_scheme) = match rest.split_once("://") {
        Some((scheme, after)) if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) => {
            (Some(scheme), after)
        }
        _ => (None, rest),
    };
    let host_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let (host, tail) = after_scheme.split_at(host_end);
    if scheme.is_none() && !(tail.starts_with('/') && is_host(host)) {
        return None;
    }
    let mut out = String::with_capacity(word.len());
    out.push_str(lead);
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(MASK);
    // A mask ending the URL (a template's own) keeps its `>`.
    let tail_core = if tail.ends_with(MASK) {
        tail
    } else {
        tail.trim_end_matches(is_trail_punct)
    };
    let trail = tail.get(tail_core.len()..).unwrap_or("");
    let (path, query) = match tail_core.find(['?', '#']) {
        Some(at) => tail_core.split_at(at),
        None => (tail_core, ""),
    };
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let plain = segment
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || matches!(b, b'-' | b'_' | b'.'))
            && !is_host(segment)
            && !is_token(segment);
        out.push_str(if plain { segment } else { MASK });
    }
    if let Some(mark) = query.chars().next() {
        out.push(mark);
        if query.len() > 1 {
            out.push_str(MASK);
        }
    }
    out.push_str(trail);
    Some(out)
}

/// Collapses masks with only punctuation between them (`<*>.<*>`, `<*><*>`) into one.
fn collapse_in_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(at) = rest.find(MASK) {
        let (before, after) = rest.split_at(at);
        let after = after.get(MASK.len()..).unwrap_or("");
        let ends_with_mask = out.ends_with(MASK);
        if ends_with_mask && !before.is_empty() && !before.chars().any(char::is_alphanumeric) {
            // Punctuation only between two masks: drop it with the second mask.
        } else {
            out.push_str(before);
            if !(ends_with_mask && before.is_empty()) {
                out.push_str(MASK);
            }
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Month and day names, which a date puts next to its numbers.
const DATE_NAMES: [&str; 40] = [
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
    "January",
    "February",
    "March",
    "April",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "UTC",
    "GMT",
    "Sept",
];

fn is_date_name(word: &str) -> bool {
    let core = word.trim_matches(|c: char| !c.is_alphanumeric());
    DATE_NAMES.contains(&core)
}

/// Masks month and day names joined to a mask through other date names, both ways.
fn mask_date_names(words: &mut [Word]) {
    let mask_at = |words: &mut [Word], i: usize| {
        let core = words[i].text.trim_matches(|c: char| !c.is_alphanumeric()).to_string();
        words[i].text = words[i].text.replacen(&core, MASK, 1);
        words[i].maskish = true;
    };
    for i in 1..words.len() {
        if words[i - 1].maskish && !words[i].maskish && is_date_name(&words[i].text) {
            mask_at(words, i);
        }
    }
    for i in (0..words.len().saturating_sub(1)).rev() {
        if words[i + 1].maskish && !words[i].maskish && is_date_name(&words[i].text) {
            mask_at(words, i);
        }
    }
}

/// Joins the words with single spaces, a run of mask-only words becoming one mask that keeps the
/// run's outer punctuation.
fn join_collapsed(words: &[Word]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < words.len() {
        if !out.is_empty() {
            out.push(' ');
        }
        let mut j = i + 1;
        if words[i].maskish {
            while j < words.len() && words[j].maskish {
                j += 1;
            }
        }
        if j - i == 1 {
            out.push_str(&words[i].text);
        } else {
            let first = &words[i].text;
            let last = &words[j - 1].text;
            out.push_str(first.split_once(MASK).map_or("", |(lead, _)| lead));
            out.push_str(MASK);
            out.push_str(last.rsplit_once(MASK).map_or("", |(_, trail)| trail));
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_unknown_user() {
        assert_eq!(
            template("550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table"),
            "550 5.1.1 <*>: Recipient address rejected: User unknown in virtual mailbox table"
        );
    }

    #[test]
    fn gmail_no_such_user() {
        let reply = "550-5.1.1 The email account that you tried to reach does not exist. Please try\n\
                     550-5.1.1 double-checking the recipient's email address for typos or\n\
                     550-5.1.1 unnecessary spaces. Learn more at\n\
                     550 5.1.1  https://support.google.com/mail/?p=NoSuchUser 41be03b00d2f7-5c6a1b2d3e4si1234567pgm.123 - gsmtp";
        assert_eq!(
            template(reply),
            "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking \
             the recipient's email address for typos or unnecessary spaces. Learn more at \
             https://<*>/mail/?<*> <*> - gsmtp"
        );
    }

    #[test]
    fn hosts_ips_and_dates() {
        assert_eq!(
            template("451 4.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"),
            "451 4.7.1 Service unavailable; Client host <*> blocked using <*>"
        );
        assert_eq!(
            template("421 mx.example.net[2001:db8::1] busy, try again at Mon, 7 Dec 2026 12:03:07 +0000"),
            "421 <*> busy, try again at <*>"
        );
        assert_eq!(
            template("550 5.7.1 RCPT TO:<a@b.c> refused"),
            "550 5.7.1 RCPT TO:<*> refused"
        );
        assert_eq!(
            template("554 id=4Fq2xYz9 rejected (5.7.1)"),
            "554 id=<*> rejected (<*>)"
        );
    }

    #[test]
    fn idempotent_on_examples() {
        for text in [
            "550 5.1.1 <bob@example.com>: Recipient address rejected",
            "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser abc123 - gsmtp",
            "Mon, 7 Dec 2026 x 12 Dec",
            "* <*> [<*>] (<*>) <<*>>",
        ] {
            let once = template(text);
            assert_eq!(template(&once), once, "{text}");
        }
    }
}

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
//! - base64-like runs (long, with the letter case flipping often), hex ids and IPv6 addresses
//!   even without a digit;
//! - in a URL, the host, the query and the fragment; the path's plain words stay
//!   (`https://<*>/mail/?<*>`);
//! - month and day names next to a mask (`Mon, <*> Dec <*>`), which belong to a date.
//!
//! A mask inside `<...>` or `[...]` takes the brackets with it (`<bob@x>` gives `<*>`), masks
//! next to each other (only punctuation or white space between) collapse into one, and white
//! space folds to one space. `template` is idempotent: a template is its own template.

use smallvec::SmallVec;

/// The one mask token.
pub const MASK: &str = "<*>";

/// A base64-like run is at least this long.
const TOKEN_MIN_LEN: usize = 20;

/// A hex id without digits is at least this long (English words of hex letters are shorter).
const HEX_ID_MIN_LEN: usize = 8;

/// The template of `text`: its variable parts replaced by [`MASK`].
///
/// Every word is written once, space-separated, into one buffer and remembered as a span of it,
/// and that buffer is the template unless masks stand next to each other: a reply costs a few
/// allocations, not one per word. The server templates every weakly decided reply.
pub fn template(text: &str) -> String {
    let mut buf = String::with_capacity(text.len());
    let mut scratch = String::new();
    let mut words: SmallVec<[Word; 48]> = SmallVec::new();
    let mut first_line = true;
    for line in text.split('\n') {
        let mut line_words = words_of(line).peekable();
        if line_words.peek().is_none() {
            continue;
        }
        let code_words = leading_code_words(line);
        for (index, (word, special)) in line_words.enumerate() {
            if index < code_words && !first_line {
                continue;
            }
            if !buf.is_empty() {
                buf.push(' ');
            }
            let start = buf.len();
            let maskish = if index < code_words {
                // The first line's codes are the reply's; later ones (skipped above) are
                // continuation prefixes.
                push_normalised_code(word, &mut buf);
                false
            } else if is_plain_word(word, special) {
                buf.push_str(word);
                false
            } else {
                push_masked_word(word, &mut buf, &mut scratch)
            };
            words.push(Word {
                start,
                end: buf.len(),
                maskish,
                date: false,
            });
        }
        first_line = false;
    }
    mask_date_names(&buf, &mut words);
    // A date name is masked only next to a mask, so without neighbouring masks nothing changes.
    if words.windows(2).any(|pair| pair[0].maskish && pair[1].maskish) {
        join_collapsed(&buf, &words)
    } else {
        buf
    }
}

/// The white-space separated words of `line`, as `str::split_whitespace` gives them, each with
/// whether it holds a byte that asks for a closer look ([`SPECIAL`]) before the punctuation that
/// ends it (`rejected.` and `said:` need none). Read byte by byte through one table: a reply is
/// mostly ASCII, and only bytes that may start a multi-byte white-space character are decoded.
fn words_of(line: &str) -> impl Iterator<Item = (&str, bool)> {
    let bytes = line.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            let space = space_len(line, at);
            if space == 0 {
                break;
            }
            at += space;
        }
        let start = at;
        let mut seen = 0;
        while let Some(&b) = bytes.get(at) {
            let class = BYTE_CLASSES[usize::from(b)];
            if class & SPACE != 0 || (class & MAYBE_SPACE != 0 && space_len(line, at) != 0) {
                break;
            }
            seen |= class;
            at += 1;
        }
        let word = line.get(start..at).unwrap_or("");
        // Only `.` and `:` are both special and trailing punctuation: in the trailing run they
        // leave the word's core as plain as it was.
        let special = seen & SPECIAL != 0 && {
            let core = word.trim_end_matches(is_trail_punct);
            core.bytes().any(|b| BYTE_CLASSES[usize::from(b)] & SPECIAL != 0)
        };
        (at > start).then_some((word, special))
    })
}

/// An ASCII white-space byte.
const SPACE: u8 = 1;
/// A byte that may start a multi-byte white-space character: U+0085 and U+00A0 start with 0xC2,
/// U+1680 with 0xE1, U+2000 to U+205F with 0xE2 and U+3000 with 0xE3 (Unicode's White_Space).
const MAYBE_SPACE: u8 = 2;
/// A byte that may make a word variable or split it: a digit, `@`, `.`, `:`, `/`, `<`, `[`, `(`,
/// `=` or `*`.
const SPECIAL: u8 = 4;

/// Each byte's classes.
static BYTE_CLASSES: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut classes = [0; 256];
    let mut b = 0;
    while b < 256 {
        classes[b] = match b as u8 {
            b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' => SPACE,
            b'0'..=b'9' | b'@' | b'.' | b':' | b'/' | b'<' | b'[' | b'(' | b'=' | b'*' => SPECIAL,
            0xC2 | 0xE1..=0xE3 => MAYBE_SPACE,
            _ => 0,
        };
        b += 1;
    }
    classes
}

/// The length of the white-space character at byte `at` of `text`, or 0 if there is none there
/// (a continuation byte of a character is never white space).
fn space_len(text: &str, at: usize) -> usize {
    let Some(&b) = text.as_bytes().get(at) else {
        return 0;
    };
    let class = BYTE_CLASSES[usize::from(b)];
    if class & SPACE != 0 {
        return 1;
    }
    if class & MAYBE_SPACE == 0 {
        return 0;
    }
    text.get(at..)
        .and_then(|rest| rest.chars().next())
        .filter(|c| c.is_whitespace())
        .map_or(0, char::len_utf8)
}

/// `text` with every email address (and any other run around an `@`) replaced by [`MASK`], and
/// nothing else changed: an example of a reply that keeps its wording, codes, hosts and ids but
/// not whom it was about. An address in `<...>` takes the brackets with it. Linear in the text.
pub fn mask_addresses(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = bytes.get(at..).and_then(|rest| rest.iter().position(|&b| b == b'@')) {
        let sign = at + found;
        // The address runs over the bytes an address may hold, both ways from its `@` (ASCII
        // only, so the cut is on a character boundary); never back over what is already out.
        let mut start = sign;
        while start > copied && bytes.get(start - 1).is_some_and(|&b| is_address_byte(b)) {
            start -= 1;
        }
        let mut end = sign + 1;
        while bytes.get(end).is_some_and(|&b| is_address_byte(b) || b == b'@') {
            end += 1;
        }
        if start > copied && bytes.get(start - 1) == Some(&b'<') && bytes.get(end) == Some(&b'>') {
            start -= 1;
            end += 1;
        }
        out.push_str(text.get(copied..start).unwrap_or(""));
        out.push_str(MASK);
        copied = end;
        at = end;
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

/// A byte of an address's local part or domain.
fn is_address_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'.' | b'_'
                | b'%'
                | b'+'
                | b'-'
                | b'='
                | b'\''
                | b'~'
                | b'#'
                | b'$'
                | b'&'
                | b'*'
                | b'/'
                | b'^'
                | b'{'
                | b'}'
                | b'|'
                | b'`'
                | b'!'
                | b'?'
        )
}

/// How much of a reply the unmatched tally templates: its first 512 bytes. An MTA names the cause
/// first, so a longer reply's rest seldom tells wordings apart; and the tally's cost per reply
/// stays bounded whatever a reply's length.
pub const TEMPLATED_BYTES: usize = 512;

/// The template of a reply as the unmatched tally counts it: [`template`] of its first
/// [`TEMPLATED_BYTES`] (cut at a character boundary).
pub fn reply_template(text: &str) -> String {
    template(crate::pattern::prefix_within(text, TEMPLATED_BYTES))
}

/// One word of the output: its span of the buffer, whether it is only masks and punctuation, and
/// whether it is a month or day name masked for standing next to a mask.
#[derive(Debug)]
struct Word {
    start: usize,
    end: usize,
    maskish: bool,
    date: bool,
}

impl Word {
    /// The word as written to the buffer (before any date-name masking).
    fn written<'b>(&self, buf: &'b str) -> &'b str {
        buf.get(self.start..self.end).unwrap_or("")
    }

    /// Writes the word as it is output: a masked date name keeps only its punctuation.
    fn push_to(&self, buf: &str, out: &mut String) {
        let written = self.written(buf);
        if !self.date {
            out.push_str(written);
            return;
        }
        // The name starts at the first alphanumeric character: what precedes it is punctuation.
        let core = written.trim_matches(|c: char| !c.is_alphanumeric());
        let lead = written.len() - written.trim_start_matches(|c: char| !c.is_alphanumeric()).len();
        out.push_str(written.get(..lead).unwrap_or(""));
        out.push_str(MASK);
        out.push_str(written.get(lead + core.len()..).unwrap_or(""));
    }
}

/// The code word as kept: the continuation dash dropped (`550-5.1.1` gives `550 5.1.1`).
fn push_normalised_code(word: &str, out: &mut String) {
    match word.split_once('-') {
        Some((code, "")) => out.push_str(code),
        Some((code, enhanced)) => {
            out.push_str(code);
            out.push(' ');
            out.push_str(enhanced);
        }
        None => out.push_str(word),
    }
}

/// How many words at the start of a line are reply codes (`550`, `550-`, `550 5.1.1`,
/// `550-5.1.1`, `5.1.1`).
fn leading_code_words(line: &str) -> usize {
    let mut words = words_of(line).map(|(word, _)| word);
    let Some(first) = words.next() else {
        return 0;
    };
    if is_enhanced(first) {
        return 1;
    }
    let (code, enhanced) = first.split_once('-').unwrap_or((first, ""));
    if !is_reply_code(code) {
        return 0;
    }
    if !enhanced.is_empty() {
        return usize::from(is_enhanced(enhanced));
    }
    match words.next() {
        Some(second) if is_enhanced(second) => 2,
        _ => 1,
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

/// Writes `word` to `out` with its variable pieces masked; says whether it is only masks and
/// punctuation. `scratch` is reused between words for the collapse pass.
fn push_masked_word(word: &str, out: &mut String, scratch: &mut String) -> bool {
    let word_start = out.len();
    let mut start = 0;
    let mut url_tried = false;
    // `=` starts a value (`id=abc`), unless it is base64 padding (`abc1==`).
    let starts_piece = |i: usize, c: char| match c {
        '<' | '[' | '(' => i > 0,
        '=' => {
            i > 0
                && word
                    .get(i + 1..)
                    .and_then(|r| r.chars().next())
                    .is_some_and(|n| !matches!(n, '=' | '>' | ')' | ']' | '}' | '"' | '\''))
        }
        _ => false,
    };
    let mut pieces = word.char_indices().filter(|&(i, c)| starts_piece(i, c));
    loop {
        let end = pieces.next().map_or(word.len(), |(i, _)| i);
        let piece = word.get(start..end).unwrap_or("");
        // A URL runs to the end of the word, whatever it holds; tried once, so the cost stays linear.
        if !url_tried && piece.contains('/') {
            url_tried = true;
            if push_masked_url(word.get(start..).unwrap_or(""), out) {
                break;
            }
        }
        mask_piece(piece, out);
        if end == word.len() {
            break;
        }
        start = end;
    }
    let written = out.get(word_start..).unwrap_or("");
    if find_mask(written).is_none() {
        return false;
    }
    scratch.clear();
    collapse_in_word(written, scratch);
    out.truncate(word_start);
    out.push_str(scratch);
    only_masks_and_punctuation(scratch)
}

/// Where the first [`MASK`] in `text` starts. Searched from its `<`s: cheaper on a word than a
/// substring searcher, which is set up anew for each call.
fn find_mask(text: &str) -> Option<usize> {
    text.match_indices('<')
        .map(|(at, _)| at)
        .find(|&at| text.get(at..).is_some_and(|rest| rest.starts_with(MASK)))
}

/// Where the last [`MASK`] in `text` starts.
fn rfind_mask(text: &str) -> Option<usize> {
    text.rmatch_indices('<')
        .map(|(at, _)| at)
        .find(|&at| text.get(at..).is_some_and(|rest| rest.starts_with(MASK)))
}

/// Whether nothing but masks and punctuation is left in `text`.
fn only_masks_and_punctuation(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = find_mask(rest) {
        if rest
            .get(..at)
            .is_some_and(|before| before.chars().any(char::is_alphanumeric))
        {
            return false;
        }
        rest = rest.get(at + MASK.len()..).unwrap_or("");
    }
    !rest.chars().any(char::is_alphanumeric)
}

/// Whether `word`, which holds a [`SPECIAL`] byte if `special`, is kept as it is without a closer
/// look: it holds nothing that starts a piece, a URL, an address, a number, a host or a mask, and
/// it is neither a token nor a hex id. Most words of a reply are like this.
fn is_plain_word(word: &str, special: bool) -> bool {
    if special {
        return false;
    }
    if word.len() < HEX_ID_MIN_LEN {
        return true;
    }
    // Too short for a token, and a letter beyond `f` (or any non-ASCII one, which punctuation
    // never is) rules out a hex id: no need to find the core.
    if word.len() < TOKEN_MIN_LEN
        && word
            .bytes()
            .any(|b| b >= 0x80 || matches!(b, b'g'..=b'z' | b'G'..=b'Z'))
    {
        return true;
    }
    let core = word.trim_start_matches(is_lead_punct).trim_end_matches(is_trail_punct);
    !is_token(core) && !is_hex_id(core)
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
        || find_mask(core).is_some()
        || core.contains('@')
        || core.chars().any(|c| c.is_ascii_digit())
        || is_host(core)
        || is_token(core)
        || is_hex_id(core)
        || is_ipv6(core)
}

/// A hex id without a digit (`deadbeefcafe`): eight or more hex letters of one case.
fn is_hex_id(core: &str) -> bool {
    core.len() >= HEX_ID_MIN_LEN
        && (core.bytes().all(|b| matches!(b, b'a'..=b'f')) || core.bytes().all(|b| matches!(b, b'A'..=b'F')))
}

/// An IPv6 address without a digit (`fe::ab`): hex letters and at least two colons.
fn is_ipv6(core: &str) -> bool {
    core.bytes().filter(|&b| b == b':').count() >= 2
        && core.bytes().any(|b| b.is_ascii_hexdigit())
        && core.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
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
fn push_masked_url(word: &str, out: &mut String) -> bool {
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
        return false;
    }
    out.push_str(lead);
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(MASK);
    let mut tail_core = tail.trim_end_matches(is_trail_punct);
    // A mask ending the URL (a template's own) keeps its `>`.
    if tail_core.ends_with("<*") && tail.get(tail_core.len()..).is_some_and(|t| t.starts_with('>')) {
        tail_core = tail.get(..tail_core.len() + 1).unwrap_or(tail_core);
    }
    let trail = tail.get(tail_core.len()..).unwrap_or("");
    let (path_and_fragment, query) = match tail_core.find('?') {
        Some(at) => tail_core.split_at(at),
        None => (tail_core, ""),
    };
    let (path, fragment) = match path_and_fragment.find('#') {
        Some(at) => path_and_fragment.split_at(at),
        None => (path_and_fragment, ""),
    };
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_plain_path_word(segment) { segment } else { MASK });
    }
    if let Some(anchor) = fragment.strip_prefix('#') {
        out.push('#');
        out.push_str(if is_plain_path_word(anchor) { anchor } else { MASK });
    }
    // The query holds the variable part of a link (`?ip=192.0.2.1`, `?p=NoSuchUser`): all masked.
    if let Some(mark) = query.chars().next() {
        out.push(mark);
        if query.len() > 1 {
            out.push_str(MASK);
        }
    }
    out.push_str(trail);
    true
}

/// Web page extensions, which make a path word look like a host name (`troubleshooting.aspx`).
const PAGE_EXTENSIONS: [&str; 10] = ["html", "htm", "shtml", "aspx", "asp", "php", "jsp", "cgi", "txt", "pdf"];

/// A path segment or anchor kept in a URL: words, or a page name with its extension; no digits,
/// no host-like or token-like names.
fn is_plain_path_word(segment: &str) -> bool {
    let word = match segment.rsplit_once('.') {
        Some((name, extension)) if PAGE_EXTENSIONS.contains(&extension) => name,
        _ => segment,
    };
    word.bytes()
        .all(|b| b.is_ascii_alphabetic() || matches!(b, b'-' | b'_' | b'.'))
        && !is_host(word)
        && !is_token(word)
        && !is_hex_id(word)
}

/// Writes `word` to `out` (empty) with masks that have only punctuation between them
/// (`<*>.<*>`, `<*><*>`) collapsed into one.
fn collapse_in_word(word: &str, out: &mut String) {
    let mut rest = word;
    while let Some(at) = find_mask(rest) {
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
}

fn is_date_name(word: &str) -> bool {
    // A name starts with an ASCII capital: a word without one is out before any Unicode lookup.
    if !word.bytes().any(|b| b.is_ascii_uppercase()) {
        return false;
    }
    let core = word.trim_matches(|c: char| !c.is_alphanumeric());
    // Every name is 3 to 9 letters and starts with a capital: most words are out at once.
    (3..=9).contains(&core.len()) && core.starts_with(|c: char| c.is_ascii_uppercase()) && is_month_or_day(core)
}

/// Month and day names (and the zones a date ends with), which a date puts next to its numbers.
fn is_month_or_day(word: &str) -> bool {
    matches!(
        word,
        "Mon"
            | "Tue"
            | "Wed"
            | "Thu"
            | "Fri"
            | "Sat"
            | "Sun"
            | "Monday"
            | "Tuesday"
            | "Wednesday"
            | "Thursday"
            | "Friday"
            | "Saturday"
            | "Sunday"
            | "Jan"
            | "Feb"
            | "Mar"
            | "Apr"
            | "May"
            | "Jun"
            | "Jul"
            | "Aug"
            | "Sep"
            | "Sept"
            | "Oct"
            | "Nov"
            | "Dec"
            | "January"
            | "February"
            | "March"
            | "April"
            | "June"
            | "July"
            | "August"
            | "September"
            | "October"
            | "November"
            | "December"
            | "UTC"
            | "GMT"
    )
}

/// Masks month and day names joined to a mask through other date names, both ways.
fn mask_date_names(buf: &str, words: &mut [Word]) {
    let mask_at = |words: &mut [Word], i: usize| {
        words[i].date = true;
        words[i].maskish = true;
    };
    for i in 1..words.len() {
        if words[i - 1].maskish && !words[i].maskish && is_date_name(words[i].written(buf)) {
            mask_at(words, i);
        }
    }
    for i in (0..words.len().saturating_sub(1)).rev() {
        if words[i + 1].maskish && !words[i].maskish && is_date_name(words[i].written(buf)) {
            mask_at(words, i);
        }
    }
}

/// Joins the words with single spaces, a run of mask-only words becoming one mask that keeps the
/// run's outer punctuation.
fn join_collapsed(buf: &str, words: &[Word]) -> String {
    let mut out = String::with_capacity(buf.len() + words.len());
    let mut first = String::new();
    let mut last = String::new();
    // Words that stay as they are follow each other in `buf`, one space apart: a run of them is
    // copied at once.
    let mut pending: Option<(usize, usize)> = None;
    let flush = |pending: &mut Option<(usize, usize)>, out: &mut String| {
        if let Some((from, to)) = pending.take() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(buf.get(from..to).unwrap_or(""));
        }
    };
    let mut i = 0;
    while i < words.len() {
        let mut j = i + 1;
        if words[i].maskish {
            while j < words.len() && words[j].maskish {
                j += 1;
            }
        }
        if j - i == 1 && !words[i].date {
            let word = &words[i];
            pending = Some(pending.map_or((word.start, word.end), |(from, _)| (from, word.end)));
            i = j;
            continue;
        }
        flush(&mut pending, &mut out);
        if !out.is_empty() {
            out.push(' ');
        }
        if j - i == 1 {
            words[i].push_to(buf, &mut out);
        } else {
            first.clear();
            words[i].push_to(buf, &mut first);
            last.clear();
            words[j - 1].push_to(buf, &mut last);
            out.push_str(find_mask(&first).and_then(|at| first.get(..at)).unwrap_or(""));
            out.push_str(MASK);
            out.push_str(
                rfind_mask(&last)
                    .and_then(|at| last.get(at + MASK.len()..))
                    .unwrap_or(""),
            );
        }
        i = j;
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A variable part of a reply, as MTAs write them.
    fn variable() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9._+-]{1,12}@[a-z0-9-]{1,12}(\\.[a-z]{2,6}){1,2}",
            "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,2}\\.(com|net|org|de|fr|jp|io|co\\.uk)",
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
            proptest::collection::vec("[0-9a-f]{1,4}", 8).prop_map(|groups| groups.join(":")),
            "[0-9a-f]{1,4}::[0-9a-f]{1,4}",
            "[0-9a-f]{8,32}",
            "[0-9A-F]{8,16}",
            "[A-Za-z0-9+/]{4,30}[0-9][A-Za-z0-9+/]{0,10}={0,2}",
            any::<u32>().prop_map(|n| n.to_string()),
            any::<u16>().prop_map(|n| format!("{}.{}", n / 100, n % 100)),
            (0u8..24, 0u8..60, 0u8..60).prop_map(|(h, m, s)| format!("{h:02}:{m:02}:{s:02}")),
        ]
    }

    /// A variable part or a URL with a query.
    fn variable_or_url() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => variable(),
            1 => "https?://[a-z]{1,8}\\.[a-z]{2,4}/[a-z]{1,8}\\?[a-z]{1,4}=[A-Za-z0-9]{1,12}",
        ]
    }

    /// How a variable part sits in the text.
    fn wrapped() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            Just(("".to_string(), "".to_string())),
            Just(("<".to_string(), ">".to_string())),
            Just(("<".to_string(), ">:".to_string())),
            Just(("[".to_string(), "]".to_string())),
            Just(("(".to_string(), ")".to_string())),
            Just(("\"".to_string(), "\",".to_string())),
            Just(("id=".to_string(), "".to_string())),
            Just(("TO:<".to_string(), ">".to_string())),
            Just(("host".to_string(), "".to_string())),
        ]
    }

    /// A reply's wording with numbered holes for variable parts.
    fn wording() -> impl Strategy<Value = Vec<Option<String>>> {
        proptest::collection::vec(
            prop_oneof![3 => "[A-Za-z']{1,10}[.,:;]?".prop_map(Some), 1 => Just(None)],
            1..16,
        )
    }

    fn fill(wording: &[Option<String>], parts: &[(String, (String, String))]) -> String {
        let mut text = String::from("550 5.1.1");
        for (i, word) in wording.iter().enumerate() {
            text.push(' ');
            match word {
                Some(word) => text.push_str(word),
                None => {
                    let (part, (lead, trail)) = &parts[i % parts.len()];
                    // `host` glues an address on (`mx.example.com[192.0.2.1]`).
                    if lead == "host" {
                        text.push_str(&format!("mx.example.com[{part}]"));
                    } else {
                        text.push_str(&format!("{lead}{part}{trail}"));
                    }
                }
            }
        }
        text
    }

    proptest! {
        // No address, IP, id, token or number survives; only the leading codes keep digits.
        #[test]
        fn no_variable_part_survives(
            wording in wording(),
            parts in proptest::collection::vec((variable_or_url(), wrapped()), 1..6),
        ) {
            let text = fill(&wording, &parts);
            let masked = template(&text);
            let rest = masked.strip_prefix("550 5.1.1");
            prop_assert!(rest.is_some(), "codes kept: {}", masked);
            let rest = rest.unwrap_or_default();
            prop_assert!(!rest.chars().any(|c| c.is_ascii_digit()), "{} -> {}", text, masked);
            prop_assert!(!rest.contains('@'), "{} -> {}", text, masked);
            for (part, _) in &parts {
                if part.len() >= 4 {
                    prop_assert!(!rest.contains(part.as_str()), "{} survives in {}", part, masked);
                }
            }
        }

        // The same wording with other addresses and ids is the same template.
        #[test]
        fn same_wording_same_template(
            wording in wording(),
            first in proptest::collection::vec((variable(), wrapped()), 4),
            second in proptest::collection::vec(variable(), 4),
        ) {
            let other: Vec<(String, (String, String))> =
                first.iter().zip(&second).map(|((_, wrap), part)| (part.clone(), wrap.clone())).collect();
            prop_assert_eq!(template(&fill(&wording, &first)), template(&fill(&wording, &other)));
        }

        // A template is its own template, whatever the text.
        #[test]
        fn idempotent_on_any_text(text in "\\PC{0,80}") {
            let once = template(&text);
            prop_assert_eq!(template(&once), once.clone(), "{:?}", text);
        }

        #[test]
        fn idempotent_on_reply_like_text(
            wording in wording(),
            parts in proptest::collection::vec((variable_or_url(), wrapped()), 1..6),
            noise in "(?:<\\*>|[<>\\[\\]().,:=@ /?-]|Mon|Dec|[0-9]|x){0,12}",
        ) {
            let text = format!("{}{noise}", fill(&wording, &parts));
            let once = template(&text);
            prop_assert_eq!(template(&once), once.clone(), "{:?}", text);
        }
    }

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
    fn microsoft_and_yahoo_replies() {
        assert_eq!(
            template(
                "550 5.7.606 Access denied, banned sending IP [40.107.22.47]. To request removal from this list \
                 please visit https://sender.office.com/ and follow the directions. For more information please \
                 go to http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430) [AM4PEPF00025F99.EURPRD83.prod.\
                 outlook.com 2026-12-06T10:22:33.123Z 08DD12345ABCDEF0]"
            ),
            "550 5.7.606 Access denied, banned sending IP <*>. To request removal from this list please visit \
             https://<*>/ and follow the directions. For more information please go to http://<*>/fwlink/?<*> \
             AS(<*>) [<*>]"
        );
        assert_eq!(
            template("refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors."),
            "refer your provider to http://<*>/mail/troubleshooting.aspx#errors."
        );
        assert_eq!(
            template(
                "421 4.7.0 [TSS04] Messages from 192.0.2.55 temporarily deferred due to unexpected volume or \
                 user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
            ),
            "421 4.7.0 <*> Messages from <*> temporarily deferred due to unexpected volume or user complaints - \
             <*>; see https://<*>/error-codes"
        );
    }

    #[test]
    fn words_stay_and_ids_go() {
        // Dotted words of mixed case are not hosts; CamelCase is not a token.
        assert_eq!(
            template("550 5.1.1 RESOLVER.ADR.RecipNotFound; not found"),
            "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found"
        );
        assert_eq!(
            template("451 Temporary local problem - please try later (queue id 1rABcD-000XyZ-9q)"),
            "451 Temporary local problem - please try later (queue id <*>)"
        );
        assert_eq!(
            template("550 user has moved to bob.smith@newco.example; please update"),
            "550 user has moved to <*>; please update"
        );
        assert_eq!(
            template("queued as deadbeefcafe, token Zm9vYmFyQmF6cXV4UXV1eA=="),
            "queued as <*>, token <*>"
        );
        assert_eq!(
            template("550 Requested action not taken: mailbox unavailable [at Fri Dec 4 10:11:12 2026]"),
            "550 Requested action not taken: mailbox unavailable [at <*>]"
        );
        // Codes are kept only where a reply starts.
        assert_eq!(
            template("5.1.1 user unknown, see 550 5.1.1"),
            "5.1.1 user unknown, see <*>"
        );
        assert_eq!(template(""), "");
    }

    #[test]
    fn a_reply_template_reads_the_first_512_bytes() {
        let head = "550 5.7.1 <bob@example.com>: refused by the frobnicator";
        let common = format!("{head} {}", "and more words ".repeat(40));
        let (long, other) = (format!("{common} alpha"), format!("{common} beta"));
        assert_ne!(template(&long), template(&other));
        assert_eq!(
            reply_template(&long),
            reply_template(&other),
            "the same first 512 bytes"
        );
        assert!(reply_template(&long).len() <= TEMPLATED_BYTES);
        assert_eq!(reply_template(head), template(head));
        let wide = "é".repeat(TEMPLATED_BYTES);
        assert_eq!(reply_template(&wide), "é".repeat(TEMPLATED_BYTES / 2));
    }

    #[test]
    fn addresses_are_masked_and_nothing_else() {
        assert_eq!(
            mask_addresses(
                "550 5.1.1 <bob.smith+x@example.com>: Recipient address rejected (host mx1.example.com[192.0.2.1])"
            ),
            "550 5.1.1 <*>: Recipient address rejected (host mx1.example.com[192.0.2.1])"
        );
        assert_eq!(mask_addresses("to a@b, c@d.e; @ and x@@y"), "to <*>, <*>; <*> and <*>");
        assert_eq!(mask_addresses("nothing here"), "nothing here");
        assert_eq!(mask_addresses("é@é <@>"), "é<*>é <*>");
    }

    proptest! {
        // No `@` survives, and a text without one is left as it is.
        #[test]
        fn no_address_survives_in_an_example(text in "\\PC{0,60}") {
            let masked = mask_addresses(&text);
            prop_assert!(!masked.contains('@'), "{:?} -> {:?}", text, masked);
            if !text.contains('@') {
                prop_assert_eq!(masked, text);
            }
        }
    }

    #[test]
    fn every_white_space_character_starts_with_a_space_byte() {
        // The scanner decodes only bytes marked SPACE or MAYBE_SPACE: no white space is missed.
        for c in (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
        {
            let mut utf8 = [0; 4];
            let first = c.encode_utf8(&mut utf8).as_bytes()[0];
            assert_ne!(BYTE_CLASSES[usize::from(first)] & (SPACE | MAYBE_SPACE), 0, "{:?}", c);
        }
    }

    proptest! {
        // The byte scanner splits exactly as `split_whitespace` does.
        #[test]
        fn words_are_split_as_split_whitespace_splits(
            text in "(?:[a-z.:<@]{1,4}|[ \\t\\r\\x0B\\x0C]|\u{a0}|\u{3000}|\u{2009}|\u{85}|\u{1680}|\u{2028}|é|ä|\u{2013}|न){0,24}",
        ) {
            let scanned: Vec<&str> = words_of(&text).map(|(word, _)| word).collect();
            let split: Vec<&str> = text.split_whitespace().collect();
            prop_assert_eq!(scanned, split);
        }
    }

    #[test]
    fn hostile_input_is_cheap_and_safe() {
        // Long runs of what the scanner splits on or looks back over: each stays linear.
        for unit in ["<", "=a", "(", "a1://", "<*>", "é.", "Mon ", "x/", "@", "ab:", "\n550-"] {
            let text = unit.repeat(200_000);
            let masked = template(&text);
            assert_eq!(template(&masked), masked, "{unit}");
        }
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

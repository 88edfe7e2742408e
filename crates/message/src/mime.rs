//! A read-only view of a parsed message for the readers: its headers, its parts in document
//! order (nested messages included), and the human-readable body text, with the MIME limits
//! enforced while the parts are walked.

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::{Header, HeaderName, HeaderValue, Message, MessageParser, PartType};

use crate::{Limits, MessageError};

/// Parses `raw` with mail-parser after the size check. mail-parser never fails on damaged
/// MIME; it returns what it could read, and `None` only when nothing looked like a message.
pub(crate) fn parse<'m>(raw: &'m [u8], limits: &Limits) -> Result<Message<'m>, MessageError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(MessageError::Empty);
    }
    if raw.len() > limits.max_email_bytes {
        return Err(MessageError::TooLarge {
            size: raw.len(),
            limit: limits.max_email_bytes,
        });
    }
    let message = parser().parse(raw).ok_or_else(|| MessageError::NotAMessage {
        reason: "no header or body could be read".to_string(),
    })?;
    within_depth(message, limits)
}

/// Refuses a message whose parts nest deeper than `max_mime_depth` (a part's depth: the
/// multiparts and attached messages around it) before anything recurses over it. mail-parser
/// nests attached messages inside each other as deep as the input does (a 400 KiB message
/// 10,000 deep), and dropping that value recurses once per level, overflowing the thread's
/// stack: so it is measured here with a work list, and taken apart level by level if refused.
fn within_depth<'m>(message: Message<'m>, limits: &Limits) -> Result<Message<'m>, MessageError> {
    let mut deepest = 0;
    let mut pending = vec![(&message, 0usize)];
    while let Some((message, base)) = pending.pop() {
        // Children follow their multipart in `parts`, so one pass in order sets every depth.
        let mut depths = vec![base; message.parts.len()];
        for (at, part) in message.parts.iter().enumerate() {
            let depth = depths.get(at).copied().unwrap_or(base);
            deepest = deepest.max(depth);
            match &part.body {
                PartType::Multipart(children) => {
                    for &child in children {
                        if let Some(d) = depths.get_mut(child as usize).filter(|_| child as usize > at) {
                            *d = depth + 1;
                        }
                    }
                }
                PartType::Message(inner) => pending.push((inner, depth + 1)),
                _ => {}
            }
        }
        if deepest > limits.max_mime_depth {
            break;
        }
    }
    drop(pending);
    if deepest <= limits.max_mime_depth {
        return Ok(message);
    }
    let mut levels = vec![message];
    while let Some(mut level) = levels.pop() {
        for part in &mut level.parts {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                levels.push(inner);
            }
        }
    }
    Err(MessageError::TooDeep {
        limit: limits.max_mime_depth,
    })
}

/// The headers whose parsed form no reader uses and whose parsing costs: skipped by the parser.
/// `Received` (tokenised, a third of all parsing time) and the address headers other than
/// `From`, `To` and `Cc`. Dates stay parsed although no reader uses them: mail-parser's date
/// parser reads past an obsolete zone's line end (`... 23:34:45 UT`) and swallows the next
/// header, and skipping it would bring that header back and change answers; that is for a
/// change of its own. A skipped header keeps its place and raw text
/// (`Message::header_raw`, which the readers fall back to for any header not parsed as text);
/// each of these was parsed into a value that is no text, so no reader sees a difference.
const SKIPPED: [HeaderName<'static>; 16] = [
    HeaderName::Received,
    HeaderName::Bcc,
    HeaderName::ReplyTo,
    HeaderName::Sender,
    HeaderName::ResentTo,
    HeaderName::ResentFrom,
    HeaderName::ResentBcc,
    HeaderName::ResentCc,
    HeaderName::ResentSender,
    HeaderName::ListArchive,
    HeaderName::ListHelp,
    HeaderName::ListId,
    HeaderName::ListOwner,
    HeaderName::ListPost,
    HeaderName::ListSubscribe,
    HeaderName::ListUnsubscribe,
];

/// The MIME parser every reader uses, built once: mail-parser's own parser for each header it
/// knows, except the [`SKIPPED`] ones.
pub(crate) fn parser() -> &'static MessageParser {
    static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
        // A parser given any header of its own reads every header through its table: the rest of
        // mail-parser's defaults (`MessageStream::parse_headers`) are restated here, unchanged.
        let mut parser = MessageParser::new()
            .header_content_type(HeaderName::ContentType)
            .header_content_type(HeaderName::ContentDisposition)
            .header_comma_separated(HeaderName::Keywords)
            .header_comma_separated(HeaderName::ContentLanguage)
            .header_raw(HeaderName::MimeVersion)
            .header_date(HeaderName::Date)
            .header_date(HeaderName::ResentDate)
            .header_address(HeaderName::From)
            .header_address(HeaderName::To)
            .header_address(HeaderName::Cc)
            .default_header_raw();
        for text in [
            HeaderName::Subject,
            HeaderName::Comments,
            HeaderName::ContentDescription,
            HeaderName::ContentLocation,
            HeaderName::ContentTransferEncoding,
        ] {
            parser = parser.header_text(text);
        }
        for id in [
            HeaderName::MessageId,
            HeaderName::References,
            HeaderName::InReplyTo,
            HeaderName::ReturnPath,
            HeaderName::ContentId,
            HeaderName::ResentMessageId,
        ] {
            parser = parser.header_id(id);
        }
        for skipped in SKIPPED {
            parser = parser.ignore_header(skipped);
        }
        parser
    });
    &PARSER
}

/// One MIME part, in document order.
pub(crate) struct Part<'a> {
    /// `type/subtype`, lower-cased (`text/plain` when the part names none).
    pub content_type: String,
    /// 0 for the top-level message's own parts, +1 inside each attached message.
    pub depth: usize,
    /// The part's own headers.
    pub headers: &'a [Header<'a>],
    /// The decoded body: text as text, a binary part lossily as UTF-8; empty for an attached
    /// message, which is read through `message`.
    pub text: Cow<'a, str>,
    /// The attached message, for `message/rfc822` (and `message/global`) parts.
    pub message: Option<&'a Message<'a>>,
}

/// The message as the readers see it.
pub(crate) struct Mail<'a> {
    /// The top-level message.
    pub message: &'a Message<'a>,
    /// Every leaf part and attached message, in document order.
    pub parts: Vec<Part<'a>>,
    /// The human-readable text of the top-level message: its text/plain parts, or its HTML
    /// turned into text when it has no plain text, outside attached messages; `\n` line ends.
    pub body: String,
}

impl<'a> Mail<'a> {
    /// Walks `message`, enforcing the depth and part-count limits.
    pub fn new(message: &'a Message<'a>, limits: &Limits) -> Result<Mail<'a>, MessageError> {
        let mut parts = Vec::new();
        walk(message, 0, limits, &mut parts, &mut 0)?;
        let mut body = String::new();
        let top_plain = |p: &&Part<'_>| p.depth == 0 && p.content_type == "text/plain" && p.message.is_none();
        let mut plain: Vec<&Part<'_>> = parts.iter().filter(top_plain).filter(|p| !is_attachment(p)).collect();
        let has_html = parts.iter().any(|p| p.depth == 0 && p.content_type == "text/html");
        if plain.is_empty() && !has_html {
            // Some gateways mark their only text as an attachment (`deliveryproblems.txt`):
            // it is still the message's text.
            plain = parts.iter().filter(top_plain).collect();
        }
        if plain.is_empty() {
            for p in parts.iter().filter(|p| p.depth == 0 && p.content_type == "text/html") {
                body.push_str(&html_to_text(&p.text));
                body.push('\n');
            }
        } else {
            for p in plain {
                body.push_str(&p.text);
                body.push('\n');
            }
        }
        Ok(Mail {
            message,
            parts,
            body: normalise_line_ends(body),
        })
    }

    /// The first top-level header named `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        header_text(self.message.root_part().headers.as_slice(), name)
    }

    /// The top-level `Subject`, or empty.
    pub fn subject(&self) -> &'a str {
        self.message.subject().unwrap_or("")
    }

    /// The top-level `From` address, or empty.
    // "from" is the header's name, not a conversion; the MTA readers call it by this name.
    #[allow(clippy::wrong_self_convention)]
    pub fn from_address(&self) -> &'a str {
        self.message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address.as_deref())
            .unwrap_or("")
    }

    /// The parts whose content type is `content_type` (lower-case), in document order.
    pub fn parts_of<'s>(&'s self, content_type: &'s str) -> impl Iterator<Item = &'s Part<'a>> + 's {
        self.parts.iter().filter(move |p| p.content_type == content_type)
    }
}

/// The text of the first header named `name` among `headers`.
pub(crate) fn header_text<'a>(headers: &'a [Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .and_then(|h| match &h.value {
            HeaderValue::Text(t) => Some(t.as_ref()),
            HeaderValue::TextList(l) => l.first().map(|t| t.as_ref()),
            _ => None,
        })
}

fn is_attachment(part: &Part<'_>) -> bool {
    content_type_header(part.headers, "Content-Disposition").is_some_and(|(kind, _)| kind == "attachment")
}

/// A `Content-Type`-like header (`Content-Type`, `Content-Disposition`) as its lower-cased
/// type and subtype.
pub(crate) fn content_type_header(headers: &[Header<'_>], name: &str) -> Option<(String, Option<String>)> {
    headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .and_then(|h| h.value.as_content_type())
        .map(|ct| {
            (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().map(str::to_ascii_lowercase),
            )
        })
}

fn walk<'a>(
    message: &'a Message<'a>,
    depth: usize,
    limits: &Limits,
    out: &mut Vec<Part<'a>>,
    count: &mut usize,
) -> Result<(), MessageError> {
    if depth > limits.max_mime_depth {
        return Err(MessageError::TooDeep {
            limit: limits.max_mime_depth,
        });
    }
    for part in &message.parts {
        *count += 1;
        if *count > limits.max_mime_parts {
            return Err(MessageError::TooManyParts {
                limit: limits.max_mime_parts,
            });
        }
        let content_type = match content_type_header(&part.headers, "Content-Type") {
            Some((kind, Some(sub))) => format!("{kind}/{sub}"),
            Some((kind, None)) => kind,
            None => "text/plain".to_string(),
        };
        // A multipart whose boundaries never appear, or whose `boundary=` was not read (an
        // unindented continuation line), comes back as one text or binary part: its raw text is
        // the message's text (broken MTAs send such reports).
        let content_type = match &part.body {
            PartType::Multipart(_) | PartType::Message(_) => content_type,
            _ if content_type.starts_with("multipart/") => "text/plain".to_string(),
            _ => content_type,
        };
        let (text, nested) = match &part.body {
            PartType::Text(t) | PartType::Html(t) => (Cow::Borrowed(t.as_ref()), None),
            PartType::Binary(b) | PartType::InlineBinary(b) => (String::from_utf8_lossy(b.as_ref()), None),
            // No reader reads an attached message as text (they read `message`): its bytes, most
            // of a bounce, are not checked as UTF-8 for nothing.
            PartType::Message(m) => (Cow::Borrowed(""), Some(m)),
            PartType::Multipart(_) => continue,
        };
        out.push(Part {
            content_type,
            depth,
            headers: part.headers.as_slice(),
            text,
            message: nested,
        });
        if let Some(m) = nested {
            walk(m, depth + 1, limits, out, count)?;
        }
    }
    Ok(())
}

/// `\r\n` and lone `\r` become `\n`.
pub(crate) fn normalise_line_ends(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A plain-text rendering of HTML: tags dropped, block ends as new lines, entities decoded.
pub(crate) fn html_to_text(html: &str) -> String {
    mail_parser::decoders::html::html_to_text(html)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mail_parser::{Message, MessageParser, PartType};

    use super::{SKIPPED, parser};

    /// `ours` is `theirs` but for the values of skipped headers: the same headers at the same
    /// places, the same values otherwise, the same parts and bodies, nested messages included.
    fn same_but_skipped(ours: &Message<'_>, theirs: &Message<'_>, at: &str) {
        assert_eq!(ours.parts.len(), theirs.parts.len(), "{at}: parts");
        for (n, (o, t)) in ours.parts.iter().zip(&theirs.parts).enumerate() {
            let names = |m: &mail_parser::MessagePart<'_>| {
                m.headers
                    .iter()
                    .map(|h| h.name.as_str().to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(o), names(t), "{at}: part {n} headers");
            for (oh, th) in o.headers.iter().zip(&t.headers) {
                let place = |h: &mail_parser::Header<'_>| {
                    (
                        h.name.as_str().to_string(),
                        h.offset_field,
                        h.offset_start,
                        h.offset_end,
                    )
                };
                assert_eq!(place(oh), place(th), "{at}: part {n}");
                if !SKIPPED.contains(&oh.name) {
                    assert_eq!(oh.value, th.value, "{at}: part {n} {}", oh.name.as_str());
                }
            }
            match (&o.body, &t.body) {
                (PartType::Message(om), PartType::Message(tm)) => same_but_skipped(om, tm, &format!("{at}/{n}")),
                (ob, tb) => assert_eq!(ob, tb, "{at}: part {n} body"),
            }
        }
    }

    #[test]
    fn skipping_headers_changes_nothing_else_on_the_corpus() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/sisimai-set-of-emails/maildir");
        let mut read = 0;
        for folder in ["bsd", "dos", "not"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
                continue;
            };
            for entry in entries.flatten() {
                let raw = std::fs::read(entry.path()).unwrap();
                let at = entry.path().display().to_string();
                match (parser().parse(&raw), MessageParser::default().parse(&raw)) {
                    (Some(ours), Some(theirs)) => same_but_skipped(&ours, &theirs, &at),
                    (ours, theirs) => assert_eq!(ours.is_some(), theirs.is_some(), "{at}"),
                }
                read += 1;
            }
        }
        assert!(read > 700, "{read} messages read");
    }

    #[test]
    fn skipped_headers_keep_their_raw_text() {
        let raw = b"Received: from a (b [192.0.2.1])\n  by c; Tue, 1 Dec 2026 10:00:00 +0000\n\
                    Date: Tue, 1 Dec 2026 10:00:00 +0000\nReply-To: <x@example.org>\nSubject: hi\n\nbody\n";
        let message = parser().parse(raw.as_slice()).unwrap();
        assert!(message.header_raw("Received").unwrap().contains("by c;"));
        assert!(message.header_raw("Date").unwrap().contains("2026"));
        assert!(message.header_raw("Reply-To").unwrap().contains("x@example.org"));
        assert_eq!(message.subject(), Some("hi"));
    }
}

//! Hostile input for the message reader: every message is written by a stranger. Over arbitrary
//! bytes, every prefix and random cuts of real bounces, MIME nested far past the limits, huge
//! part counts, giant headers and lines, junk in DSN parts, broken boundaries and bad charsets,
//! `read()` never panics and never escapes a limit: a message over one is refused naming it, a
//! message at or under all of them is read. `classify()` answers one outcome per recipient, a
//! delayed recipient is never suppressed, and every suppression has a basis about the recipient.
//! An mbox splits into messages within the limit, in memory bounded by it.
//!
//! The MIME limits as this file reads them (the contract it assumes): a part's depth is the number
//! of multiparts and attached messages around it (a DSN's `multipart/report` > `message/rfc822` >
//! `multipart/alternative` > `text/plain` is 3 deep); the part count is every MIME entity of the
//! message and of its attached messages, containers included (a multipart of k parts is k + 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mail_parser::{Message, MessageParser, PartType};
use proptest::prelude::*;
use rebound_engine::{Evidence, Outcome, RuleSet, Suppression};
use rebound_message::mbox::{Mbox, MboxItem};
use rebound_message::{
    Action, Kind, Limits, MessageError, ReadOptions, RecipientReport, Report, classify, explain, read,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bsd() -> PathBuf {
    root().join("tests/data/sisimai-set-of-emails/maildir/bsd")
}

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::load_dir(&root().join("rules")).unwrap_or_else(|e| panic!("rules do not load:\n{e}")))
}

/// Every message of `maildir/bsd`, sorted by name.
fn corpus() -> &'static [(String, Vec<u8>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(bsd())
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        out.sort();
        assert!(out.len() > 500, "the corpus is missing: {} messages", out.len());
        out
    })
}

fn with(limits: Limits) -> ReadOptions<'static> {
    ReadOptions {
        limits,
        ..ReadOptions::default()
    }
}

/// How deep and how many MIME parts mail-parser reads in a message, measured without recursion
/// (the contract's depth and count, module documentation).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Shape {
    parts: usize,
    depth: usize,
}

fn shape(raw: &[u8]) -> Shape {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Shape::default();
    };
    let mut shape = Shape::default();
    let mut pending = vec![(&message, 0usize)];
    while let Some((message, base)) = pending.pop() {
        let mut depths = vec![base; message.parts.len()];
        for (at, part) in message.parts.iter().enumerate() {
            let depth = depths[at];
            shape.parts += 1;
            shape.depth = shape.depth.max(depth);
            match &part.body {
                PartType::Multipart(children) => {
                    for &child in children.iter().filter(|&&c| c as usize > at) {
                        if let Some(d) = depths.get_mut(child as usize) {
                            *d = depth + 1;
                        }
                    }
                }
                PartType::Message(inner) => pending.push((inner, depth + 1)),
                _ => {}
            }
        }
    }
    drop(pending);
    dismantle(message);
    shape
}

/// Drops a parsed message level by level: its own `Drop` recurses once per attached message.
fn dismantle(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                pending.push(inner);
            }
        }
    }
}

/// Reads `raw` and checks what holds for any input: a refusal is one the input earns, an
/// answer keeps every promise of the report and of its classification, and comes only for a
/// message within every limit.
fn read_checked(raw: &[u8], options: &ReadOptions<'_>) -> Result<Report, MessageError> {
    let result = read(raw, options);
    let limits = &options.limits;
    let shape = if raw.len() <= limits.max_email_bytes {
        shape(raw)
    } else {
        Shape::default()
    };
    match &result {
        Err(error) => check_refusal(raw, limits, shape, error),
        Ok(report) => {
            assert!(raw.len() <= limits.max_email_bytes);
            assert!(
                shape.depth <= limits.max_mime_depth && shape.parts <= limits.max_mime_parts,
                "read a message of {shape:?} under {limits:?}"
            );
            check_report(report);
        }
    }
    result
}

fn check_refusal(raw: &[u8], limits: &Limits, shape: Shape, error: &MessageError) {
    let expected_field = match error {
        MessageError::Empty => {
            assert!(
                raw.iter().all(u8::is_ascii_whitespace),
                "refused as empty: {:?}",
                lossy(raw)
            );
            "message"
        }
        MessageError::TooLarge { size, limit } => {
            assert_eq!((*size, *limit), (raw.len(), limits.max_email_bytes));
            assert!(size > limit);
            "max_email_bytes"
        }
        MessageError::TooDeep { limit } => {
            assert_eq!(*limit, limits.max_mime_depth);
            assert!(shape.depth > *limit, "refused as too deep: {shape:?}, {limits:?}");
            "max_mime_depth"
        }
        MessageError::TooManyParts { limit } => {
            assert_eq!(*limit, limits.max_mime_parts);
            assert!(shape.parts > *limit, "refused as too many parts: {shape:?}, {limits:?}");
            "max_mime_parts"
        }
        MessageError::NotAMessage { .. } => "message",
    };
    assert_eq!(error.field(), expected_field, "{error}");
    assert!(error.to_string().len() <= 512, "a long error: {error}");
    if raw.len() > limits.max_email_bytes {
        assert!(
            matches!(error, MessageError::TooLarge { .. } | MessageError::Empty),
            "over max_email_bytes, refused for another reason: {error}"
        );
    }
}

fn check_report(report: &Report) {
    if report.kind == Kind::Bounce {
        assert!(
            !report.recipients.is_empty(),
            "a bounce without a recipient: {report:?}"
        );
    }
    for r in &report.recipients {
        assert!(
            !r.diagnostic.contains(['\n', '\r']),
            "a diagnostic on many lines: {r:?}"
        );
    }
    check_outcomes(report);
}

/// One outcome per recipient, the same from `explain`; no delayed recipient suppressed; every
/// suppression with a basis.
fn check_outcomes(report: &Report) {
    let outcomes = classify(rules(), report);
    assert_eq!(outcomes.len(), report.recipients.len(), "not one outcome per recipient");
    let explained = explain(rules(), report);
    assert_eq!(
        explained.len(),
        report.recipients.len(),
        "not one explanation per recipient"
    );
    for ((recipient, outcome), (again, _)) in report.recipients.iter().zip(&outcomes).zip(&explained) {
        if recipient.action == Some(Action::Delayed) {
            assert!(
                !outcome.suppress_recipient,
                "a delayed recipient suppressed by {}: {recipient:?}",
                outcome.rule_id()
            );
        }
        // A complaint is its own basis: the person asked not to be mailed (issue 19).
        if report.kind != Kind::Feedback {
            check_suppression_basis(outcome, recipient);
        }
        assert_eq!(
            (outcome.category.id.as_str(), outcome.suppress_recipient),
            (again.category.id.as_str(), again.suppress_recipient),
            "classify and explain disagree on {recipient:?}"
        );
    }
}

/// What the engine's fuzz oracle requires of a reply's suppression (issue 18).
fn check_suppression_basis(outcome: &Outcome<'_>, recipient: &RecipientReport) {
    if !outcome.suppress_recipient {
        return;
    }
    let recipient_code = outcome
        .enhanced
        .is_some_and(|e| matches!((e.subject, e.detail), (1, 1 | 2 | 3 | 6 | 10) | (2, 1)));
    let basis = match outcome.suppression {
        Suppression::Given => matches!(outcome.evidence, Evidence::Text | Evidence::Provider),
        Suppression::RecipientCode => recipient_code,
        Suppression::Override => outcome.rule.is_some_and(|r| r.suppress_override),
        _ => false,
    };
    assert!(
        basis,
        "suppressed without a basis ({:?}, evidence {}) by {}: {recipient:?}",
        outcome.suppression,
        outcome.evidence.as_str(),
        outcome.rule_id()
    );
}

fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw.get(..200).unwrap_or(raw)).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Shapes, generated here.

/// A DSN (RFC 3464) of one recipient: a human part, the delivery status, the returned headers.
fn dsn(eol: &str, boundary: &str, status: &[u8], returned: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = |s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(eol.as_bytes());
    };
    line("From: MAILER-DAEMON@mx.example.net (Mail Delivery System)");
    line("To: sender@example.org");
    line("Subject: Undelivered Mail Returned to Sender");
    line("MIME-Version: 1.0");
    line(&format!(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\""
    ));
    line("");
    line(&format!("--{boundary}"));
    line("Content-Type: text/plain; charset=us-ascii");
    line("");
    line("I'm sorry to have to inform you that your message could not be delivered.");
    line(&format!("--{boundary}"));
    line("Content-Type: message/delivery-status");
    line("");
    out.extend_from_slice(status);
    out.extend_from_slice(eol.as_bytes());
    let mut line = |s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(eol.as_bytes());
    };
    line(&format!("--{boundary}"));
    line("Content-Type: text/rfc822-headers");
    line("");
    out.extend_from_slice(returned);
    out.extend_from_slice(eol.as_bytes());
    out.extend_from_slice(format!("--{boundary}--{eol}").as_bytes());
    out
}

fn status_fields(eol: &str, action: &str, status: &str, diagnostic: &str) -> Vec<u8> {
    [
        "Reporting-MTA: dns; mx.example.net".to_string(),
        "Arrival-Date: Sun, 6 Dec 2026 10:00:00 +0000".to_string(),
        String::new(),
        "Final-Recipient: rfc822; bob@example.com".to_string(),
        "Original-Recipient: rfc822; bob@example.com".to_string(),
        format!("Action: {action}"),
        format!("Status: {status}"),
        "Remote-MTA: dns; mx.example.com".to_string(),
        format!("Diagnostic-Code: smtp; {diagnostic}"),
    ]
    .join(eol)
    .into_bytes()
}

fn returned_headers(eol: &str) -> Vec<u8> {
    [
        "Message-ID: <1@example.org>",
        "From: sender@example.org",
        "To: bob@example.com",
        "Subject: hi",
    ]
    .join(eol)
    .into_bytes()
}

/// A container around `inner`: a multipart with one part, or an attached message.
#[derive(Debug, Clone, Copy)]
enum Container {
    Multipart,
    Message,
}

/// A message whose text part sits inside `containers` (outermost first): as deep as there are
/// containers. Boundaries are numbered so that no boundary is a prefix of another.
fn nested(containers: &[Container], eol: &str) -> Vec<u8> {
    let mut out = format!("From: a@example.org{eol}Subject: nested{eol}").into_bytes();
    let mut closing = Vec::new();
    for (level, container) in containers.iter().enumerate() {
        match container {
            Container::Multipart => {
                let boundary = format!("b{level:07}x");
                out.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"{eol}{eol}--{boundary}{eol}")
                        .as_bytes(),
                );
                closing.push(format!("{eol}--{boundary}--{eol}"));
            }
            Container::Message => {
                out.extend_from_slice(
                    format!("Content-Type: message/rfc822{eol}{eol}From: b@example.org{eol}").as_bytes(),
                );
            }
        }
    }
    out.extend_from_slice(format!("Content-Type: text/plain{eol}{eol}hello{eol}").as_bytes());
    for close in closing.iter().rev() {
        out.extend_from_slice(close.as_bytes());
    }
    out
}

/// A multipart of `leaves` text parts: `leaves + 1` parts.
fn flat(leaves: usize, eol: &str) -> Vec<u8> {
    let mut out =
        format!("From: a@example.org{eol}Content-Type: multipart/mixed; boundary=\"sep\"{eol}{eol}").into_bytes();
    for n in 0..leaves {
        out.extend_from_slice(format!("--sep{eol}Content-Type: text/plain{eol}{eol}part {n}{eol}").as_bytes());
    }
    out.extend_from_slice(format!("--sep--{eol}").as_bytes());
    out
}

fn container() -> impl Strategy<Value = Container> {
    prop_oneof![Just(Container::Multipart), Just(Container::Message)]
}

/// Line ends: LF, CRLF, and lone CR (old Macs; mail-parser reads no MIME structure in it).
fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
}

/// The line ends mail-parser reads MIME structure in.
fn mime_eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n")]
}

/// Runs `f` on a thread with a 2 MiB stack, the size of a tokio worker's and of a test thread's
/// by default: a recursion per nesting level overflows it well within 10 MiB of input.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Limits.

#[test]
fn a_message_over_max_email_bytes_is_refused_naming_it() {
    let message = dsn(
        "\n",
        "b",
        &status_fields("\n", "failed", "5.1.1", "550 5.1.1 no such user"),
        &returned_headers("\n"),
    );
    let limits = Limits {
        max_email_bytes: message.len(),
        ..Limits::default()
    };
    read_checked(&message, &with(limits)).unwrap();
    let mut longer = message.clone();
    longer.push(b'\n');
    let error = read_checked(&longer, &with(limits)).unwrap_err();
    assert_eq!(
        (error.code(), error.field()),
        ("too_large", "max_email_bytes"),
        "{error}"
    );
    // The default limit, 10 MiB, at and one byte over: a long returned body.
    let mut big = message.clone();
    big.extend(std::iter::repeat_n(b'x', (10 << 20) - big.len()));
    assert_eq!(big.len(), Limits::default().max_email_bytes);
    read_checked(&big, &ReadOptions::default()).unwrap();
    big.push(b'x');
    let error = read_checked(&big, &ReadOptions::default()).unwrap_err();
    assert_eq!(error.field(), "max_email_bytes");
}

#[test]
fn a_real_dsn_is_three_deep_and_read_with_the_default_limits() {
    let limits = Limits {
        max_mime_depth: 3,
        ..Limits::default()
    };
    let path = bsd().join("rfc3464-01.eml");
    let raw = std::fs::read(&path).unwrap();
    read_checked(&raw, &with(limits)).unwrap();
    read_checked(&raw, &ReadOptions::default()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Nesting of multiparts and attached messages in any order: at or under `max_mime_depth`
    /// read, over it refused naming `max_mime_depth`. The depth is what mail-parser reads:
    /// the nesting as written for chains of one kind, one level less or more where 0.11.9
    /// loses its way in a multipart holding attached messages three deep (a parse, not a
    /// limit, defect: what it builds is what is measured and bounded).
    #[test]
    fn depth_over_the_limit_is_refused_and_at_it_read(
        containers in proptest::collection::vec(container(), 0..12),
        max_mime_depth in 0usize..10,
        eol in mime_eol(),
    ) {
        let raw = nested(&containers, eol);
        let depth = shape(&raw).depth;
        let one_kind = containers.windows(2).all(|w| std::mem::discriminant(&w[0]) == std::mem::discriminant(&w[1]));
        if one_kind {
            prop_assert_eq!(depth, containers.len(), "mail-parser reads {:?} otherwise", containers);
        }
        let limits = Limits { max_mime_depth, ..Limits::default() };
        let result = read_checked(&raw, &with(limits));
        if depth <= max_mime_depth {
            prop_assert!(result.is_ok(), "{depth} deep refused under {max_mime_depth}: {result:?}");
        } else {
            let error = result.unwrap_err();
            prop_assert_eq!(error.field(), "max_mime_depth", "{} deep under {}: {}", depth, max_mime_depth, error);
        }
    }

    /// A multipart of k parts is k + 1 parts: at or under `max_mime_parts` read, over it
    /// refused naming `max_mime_parts`.
    #[test]
    fn part_count_over_the_limit_is_refused_and_at_it_read(
        leaves in 0usize..40,
        max_mime_parts in 1usize..40,
        eol in mime_eol(),
    ) {
        let raw = flat(leaves, eol);
        let limits = Limits { max_mime_parts, ..Limits::default() };
        let result = read_checked(&raw, &with(limits));
        if leaves < max_mime_parts {
            prop_assert!(result.is_ok(), "{} parts refused under {max_mime_parts}: {result:?}", leaves + 1);
        } else {
            let error = result.unwrap_err();
            prop_assert_eq!(error.field(), "max_mime_parts", "{} parts under {}: {}", leaves + 1, max_mime_parts, error);
        }
    }
}

/// Attached messages nested 200,000 deep (10 MiB): refused, on a 2 MiB stack. mail-parser
/// builds the nesting without recursion, but dropping it recursed once per level.
#[test]
fn attached_messages_nested_far_past_the_limit_are_refused_without_overflowing_the_stack() {
    for levels in [17, 1_000, 10_000, 200_000] {
        let raw = nested(&vec![Container::Message; levels], "\n");
        assert!(raw.len() <= 10 << 20);
        let error = on_small_stack(move || read(&raw, &ReadOptions::default())).unwrap_err();
        assert_eq!(error.field(), "max_mime_depth", "{levels} deep: {error}");
    }
}

#[test]
fn multiparts_nested_far_past_the_limit_are_refused() {
    for levels in [17, 1_000, 100_000] {
        let raw = nested(&vec![Container::Multipart; levels], "\r\n");
        assert!(raw.len() <= 10 << 20);
        let error = on_small_stack(move || read(&raw, &ReadOptions::default())).unwrap_err();
        assert_eq!(error.field(), "max_mime_depth", "{levels} deep: {error}");
    }
}

/// A multipart of 10 MiB of empty parts (about 900,000): refused naming `max_mime_parts`.
#[test]
fn a_huge_part_count_is_refused() {
    let mut raw = b"From: a@example.org\nContent-Type: multipart/mixed; boundary=\"s\"\n\n".to_vec();
    while raw.len() < (10 << 20) - 16 {
        raw.extend_from_slice(b"--s\n\nx\n");
    }
    let error = read_checked(&raw, &ReadOptions::default()).unwrap_err();
    assert_eq!(error.field(), "max_mime_parts", "{error}");
    // At the limit exactly: 511 leaves and their multipart.
    read_checked(&flat(511, "\n"), &ReadOptions::default()).unwrap();
    let error = read_checked(&flat(512, "\n"), &ReadOptions::default()).unwrap_err();
    assert_eq!(error.field(), "max_mime_parts", "{error}");
}

// ---------------------------------------------------------------------------------------------
// No panic.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_checked(&raw, &ReadOptions::default());
    }

    /// Header-shaped lines, then a body: reaches the parser's header code more often than bytes do.
    #[test]
    fn header_shaped_text_never_panics(
        headers in proptest::collection::vec(
            ("(?i)(from|to|subject|content-type|content-transfer-encoding|x-failed-recipients|auto-submitted|received|[a-z-]{1,12})",
             "[ -~\u{80}-\u{10ffff}]{0,60}"), 0..12),
        body in "[ -~\n\r\u{80}-\u{3000}]{0,400}",
        eol in eol(),
    ) {
        let mut raw = String::new();
        for (name, value) in &headers {
            raw.push_str(&format!("{name}: {value}{eol}"));
        }
        raw.push_str(eol);
        raw.push_str(&body);
        let _ = read_checked(raw.as_bytes(), &ReadOptions::default());
    }
}

/// Every prefix of a few real bounces, one of each format family: a DSN, an auto-reply, a
/// complaint, and Postfix, Exim, qmail, Sendmail and Exchange reports.
#[test]
fn every_prefix_of_real_bounces_is_read_or_refused_without_panic() {
    let names = [
        "rfc3464-01.eml",
        "rfc3834-01.eml",
        "arf-01.eml",
        "lhost-postfix-01.eml",
        "lhost-exim-01.eml",
        "lhost-qmail-01.eml",
        "lhost-sendmail-01.eml",
        "lhost-exchange2007-01.eml",
    ];
    // And CRLF copies, whose prefixes also end between a CR and its LF.
    let dos = bsd().join("../dos");
    let paths = names
        .iter()
        .map(|name| bsd().join(name))
        .chain(["arf-01.eml", "lhost-amazonses-01.eml"].map(|name| dos.join(name)));
    for path in paths {
        let raw = std::fs::read(&path).unwrap();
        for end in 0..=raw.len() {
            let _ = read_checked(&raw[..end], &ReadOptions::default());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A real bounce cut at both ends, with random bytes spliced in: no panic, and within tight limits.
    #[test]
    fn cut_and_damaged_real_bounces_never_panic(
        pick in any::<prop::sample::Index>(),
        start in any::<prop::sample::Index>(),
        end in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
        tight in any::<bool>(),
    ) {
        let (_, raw) = pick.get(corpus());
        let (a, b) = (start.index(raw.len() + 1), end.index(raw.len() + 1));
        let mut cut = raw[a.min(b)..a.max(b)].to_vec();
        let at = at.index(cut.len() + 1);
        cut.splice(at..at, junk);
        let limits = if tight {
            Limits { max_email_bytes: 4096, max_mime_depth: 1, max_mime_parts: 4 }
        } else {
            Limits::default()
        };
        let _ = read_checked(&cut, &with(limits));
    }

    /// Binary junk as the delivery status, the returned headers, or both.
    #[test]
    fn binary_junk_in_dsn_parts_never_panics(
        status in proptest::collection::vec(any::<u8>(), 0..1024),
        returned in proptest::collection::vec(any::<u8>(), 0..512),
        keep_status in any::<bool>(),
        eol in eol(),
    ) {
        let fields = status_fields(eol, "failed", "5.1.1", "550 5.1.1 no such user");
        let status = if keep_status { fields } else { status };
        let _ = read_checked(&dsn(eol, "==b==", &status, &returned), &ReadOptions::default());
    }

    /// DSN fields with hostile values: any action, status and diagnostic text, multi-byte
    /// characters included.
    #[test]
    fn hostile_dsn_field_values_never_panic(
        action in "(failed|delayed|delivered|relayed|expanded|FAILED|[a-z]{0,8}|\u{e9}{0,3})",
        status in "([245]\\.[0-9]{1,3}\\.[0-9]{1,3}|[0-9.]{0,12}|.{0,8})",
        diagnostic in "[ -~\u{e9}\u{65e5}]{0,300}",
        eol in eol(),
    ) {
        let raw = dsn(eol, "b", &status_fields(eol, &action, &status, &diagnostic), &returned_headers(eol));
        let _ = read_checked(&raw, &ReadOptions::default());
    }

    /// Boundaries missing, mismatched, empty, very long, or prefixes of each other.
    #[test]
    fn broken_boundaries_never_panic(
        declared in "(|-|--|b|[ -~]{1,70}|b{1000})",
        used in "(|-|--|b|bb|[ -~]{1,70})",
        drop_final in any::<bool>(),
        eol in eol(),
    ) {
        let mut raw = dsn(eol, &used, &status_fields(eol, "failed", "5.1.1", "550 no such user"), &returned_headers(eol));
        let text = String::from_utf8_lossy(&raw).replacen(&format!("boundary=\"{used}\""), &format!("boundary=\"{declared}\""), 1);
        raw = text.into_bytes();
        if drop_final {
            let end = format!("--{used}--");
            if let Some(at) = raw.windows(end.len()).rposition(|w| w == end.as_bytes()) {
                raw.truncate(at);
            }
        }
        let _ = read_checked(&raw, &ReadOptions::default());
    }

    /// Unknown and mislabelled charsets, bad base64 and quoted-printable, encoded words with junk.
    #[test]
    fn bad_charsets_and_encodings_never_panic(
        charset in "(utf-8|iso-2022-jp|shift_jis|euc-kr|gb2312|windows-1252|utf-7|x-unknown|[a-z0-9-]{0,20})",
        encoding in "(base64|quoted-printable|7bit|8bit|binary|x-uuencode|[a-z]{0,10})",
        body in proptest::collection::vec(any::<u8>(), 0..600),
        word in "[ -~]{0,40}",
        eol in eol(),
    ) {
        let mut raw = format!(
            "From: =?{charset}?B?{word}?= <a@example.org>{eol}Subject: =?{charset}?Q?{word}?={eol}\
             Content-Type: text/plain; charset=\"{charset}\"{eol}Content-Transfer-Encoding: {encoding}{eol}{eol}"
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        let _ = read_checked(&raw, &ReadOptions::default());
        // The same as the delivery status of a DSN.
        let mut part = format!("Content-Transfer-Encoding: {encoding}{eol}{eol}").into_bytes();
        part.extend_from_slice(&body);
        let raw = dsn(eol, "b", &part, &returned_headers(eol));
        let _ = read_checked(&raw, &ReadOptions::default());
    }
}

/// Giant headers and lines, at the default 10 MiB limit: read or refused, no panic.
#[test]
fn giant_headers_and_lines_never_panic() {
    let eight_mib = 8 << 20;
    let mut shapes: Vec<Vec<u8>> = Vec::new();
    // One header line of 8 MiB.
    let mut one = b"Subject: ".to_vec();
    one.extend(std::iter::repeat_n(b'a', eight_mib));
    one.extend_from_slice(b"\n\nbody\n");
    shapes.push(one);
    // 400,000 short headers.
    let mut many = Vec::new();
    while many.len() < eight_mib {
        many.extend_from_slice(b"X-H: v\n");
    }
    many.extend_from_slice(b"\nbody\n");
    shapes.push(many);
    // One header folded 1,000,000 times.
    let mut folded = b"Subject: a".to_vec();
    while folded.len() < eight_mib {
        folded.extend_from_slice(b"\n b");
    }
    folded.extend_from_slice(b"\n\nbody\n");
    shapes.push(folded);
    // A DSN whose delivery status is one 8 MiB line, and one with 8 MiB of recipients.
    let mut line = b"Diagnostic-Code: smtp; 550 ".to_vec();
    line.extend(std::iter::repeat_n(b'x', eight_mib));
    shapes.push(dsn("\n", "b", &line, &returned_headers("\n")));
    let mut recipients = Vec::new();
    let mut n = 0;
    while recipients.len() < eight_mib {
        recipients.extend_from_slice(
            format!("\nFinal-Recipient: rfc822; u{n}@example.com\nAction: failed\nStatus: 5.1.1\n").as_bytes(),
        );
        n += 1;
    }
    shapes.push(dsn("\n", "b", &recipients, &returned_headers("\n")));
    // An 8 MiB body with no line end at all, and one of line ends only.
    let mut body = b"From: a@example.org\n\n".to_vec();
    body.extend(std::iter::repeat_n(b'y', eight_mib));
    shapes.push(body);
    let mut ends = b"From: a@example.org\n\n".to_vec();
    ends.extend(std::iter::repeat_n(b'\r', eight_mib));
    shapes.push(ends);
    for raw in shapes {
        let _ = on_small_stack(move || {
            let result = read(&raw, &ReadOptions::default());
            if let Ok(report) = &result {
                check_report(report);
            }
            result.is_ok()
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Classification of any report.

fn action() -> impl Strategy<Value = Option<Action>> {
    prop_oneof![
        Just(None),
        Just(Some(Action::Failed)),
        Just(Some(Action::Delayed)),
        Just(Some(Action::Delivered)),
        Just(Some(Action::Relayed)),
        Just(Some(Action::Expanded)),
    ]
}

fn recipient() -> impl Strategy<Value = RecipientReport> {
    (
        action(),
        "([245]\\.[0-9]\\.[0-9]{1,2}|5\\.1\\.1|4\\.2\\.2|5\\.7\\.1|[0-9.]{0,6}|)",
        prop_oneof![Just(0u16), 200u16..600, any::<u16>()],
        prop_oneof![
            Just("550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown".to_string()),
            Just("452 4.2.2 Mailbox full".to_string()),
            Just("mailbox unavailable, user does not exist".to_string()),
            Just("The email account that you tried to reach does not exist".to_string()),
            Just("550 5.7.1 Message rejected as spam".to_string()),
            "[ -~\u{e9}]{0,120}",
        ],
        "(|mx\\.example\\.com|gmail-smtp-in\\.l\\.google\\.com|[a-z.]{0,20})",
    )
        .prop_map(|(action, status, reply_code, diagnostic, remote_mta)| RecipientReport {
            recipient: "bob@example.com".to_string(),
            action,
            status,
            reply_code,
            remote_mta,
            diagnostic_type: "smtp".to_string(),
            diagnostic,
            ..RecipientReport::default()
        })
}

fn report(recipients: Vec<RecipientReport>) -> Report {
    Report {
        kind: Kind::Bounce,
        format: "rfc3464",
        reporting_mta: String::new(),
        arrival_date: String::new(),
        original: None,
        feedback: None,
        recipients,
        trace: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any recipients, with any action, status, code and text: one outcome each, every
    /// suppression with a basis, no delayed recipient suppressed.
    #[test]
    fn classify_answers_every_recipient_and_never_suppresses_a_delay(
        recipients in proptest::collection::vec(recipient(), 0..6),
    ) {
        check_outcomes(&report(recipients));
    }
}

/// A delay reported with a permanent-looking status and text (a DSN's `Action: delayed` with
/// `Status: 5.1.1`, as a confused or hostile MTA writes): the engine would suppress the reply
/// alone, the recipient must not be.
#[test]
fn a_delayed_recipient_with_a_permanent_status_is_not_suppressed() {
    let delayed = RecipientReport {
        recipient: "bob@example.com".to_string(),
        action: Some(Action::Delayed),
        status: "5.1.1".to_string(),
        reply_code: 550,
        diagnostic_type: "smtp".to_string(),
        diagnostic: "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown".to_string(),
        ..RecipientReport::default()
    };
    check_outcomes(&report(vec![delayed]));
}

// ---------------------------------------------------------------------------------------------
// mbox files: the CLI splits them as they are read.

fn split_mbox(data: &[u8], max_email_bytes: usize) -> Vec<MboxItem> {
    Mbox::new(data, max_email_bytes).map(|item| item.unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes split as an mbox: no panic; every message within the limit, every skipped one
    /// over it; no more bytes kept than read.
    #[test]
    fn any_mbox_splits_within_the_limit(
        lines in proptest::collection::vec(
            prop_oneof![
                Just(b"From MAILER-DAEMON Thu Sep 18 17:54:04 2008\n".to_vec()),
                Just(b">From x\n".to_vec()),
                Just(b"\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..200),
            ],
            0..40,
        ),
        max_email_bytes in 1usize..600,
    ) {
        let data = lines.concat();
        let mut kept = 0;
        for item in split_mbox(&data, max_email_bytes) {
            match item {
                MboxItem::Message(message) => {
                    prop_assert!(message.len() <= max_email_bytes, "{} bytes kept under {max_email_bytes}", message.len());
                    kept += message.len();
                }
                MboxItem::TooLarge { size } => prop_assert!(size > max_email_bytes),
            }
        }
        prop_assert!(kept <= data.len());
    }
}

/// A separator written inside a line longer than the limit is not one: the long line's
/// message is skipped whole, the next message read.
#[test]
fn a_separator_inside_a_long_line_is_not_one() {
    let mut data = b"From a Thu Sep 18 17:54:04 2008\nSubject: one\n\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 100));
    data.extend_from_slice(b"From b Thu Sep 18 17:54:04 2008 inside the line\n");
    data.extend_from_slice(b"From c Thu Sep 18 17:54:04 2008\nSubject: two\n\nbody\n");
    let items = split_mbox(&data, 64);
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(matches!(items[0], MboxItem::TooLarge { .. }), "{items:?}");
    assert!(
        matches!(&items[1], MboxItem::Message(m) if m.starts_with(b"Subject: two")),
        "{items:?}"
    );
}

/// A line that never ends, 256 MiB of it, in an mbox read with a 1 MiB limit: skipped in
/// memory bounded by the limit, not by the line. Measured in a child process of this test
/// binary, alone, by its peak resident memory.
#[test]
fn an_endless_line_in_an_mbox_costs_memory_bounded_by_the_limit() {
    const CHILD: &str = "REBOUND_MBOX_ENDLESS_LINE_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "an_endless_line_in_an_mbox_costs_memory_bounded_by_the_limit",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let before = peak_rss_kib();
    let endless = std::io::BufReader::new(std::io::repeat(b'x').take(256 << 20));
    let mut data = b"From a Thu Sep 18 17:54:04 2008\n".chain(endless);
    let items: Vec<MboxItem> = Mbox::new(std::io::BufReader::new(&mut data), 1 << 20)
        .map(|i| i.unwrap())
        .collect();
    assert!(
        matches!(items[..], [MboxItem::TooLarge { size }] if size == 256 << 20),
        "{items:?}"
    );
    let grown = peak_rss_kib() - before;
    assert!(grown < 64 << 10, "an endless line cost {} MiB of memory", grown >> 10);
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An attached message that is no message (mail-parser issue 120: a `message/rfc822` part of
/// plain words, where the parsed message has no parts and its accessors index the first).
#[test]
fn an_attached_message_that_is_no_message_is_read() {
    for eol in ["\n", "\r\n"] {
        for encoding in ["8bit", "7bit", "base64", "quoted-printable"] {
            let raw = [
                "From: Test <test@example.org>",
                "Subject: test",
                "Content-Type: multipart/mixed; boundary=\"000000000000e07f5706407d1689\"",
                "",
                "--000000000000e07f5706407d1689",
                "Content-Type: text/plain; charset=\"UTF-8\"",
                "",
                "bla bla bla",
                "",
                "--000000000000e07f5706407d1689",
                "Content-Type: message/rfc822",
                "Content-Disposition: attachment; filename=\"corrupted.eml\"",
                &format!("Content-Transfer-Encoding: {encoding}"),
                "",
                "this attachment is not a valid eml, sorry!",
                "--000000000000e07f5706407d1689--",
                "",
            ]
            .join(eol);
            read_checked(raw.as_bytes(), &ReadOptions::default()).unwrap();
        }
    }
}

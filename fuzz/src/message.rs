//! Target `message`: one raw email through `rebound_message::read`, then `classify` and
//! `explain` on the shipped rules.
//!
//! Input: the raw message, as a `ClassifyMessageRequest.message` or a CLI file carries it. Each
//! input is read twice: with the server's default limits, and with tight ones (2 KiB, depth 2,
//! 6 parts) so that libFuzzer reaches the refusals as often as the answers. The MIME limits are
//! checked against mail-parser's own view of the message, measured here without recursion: an
//! answer means the message is within them, a refusal names one it is over.
//!
//! `read` runs on a thread with a 256 KiB stack: a recursion once per nesting level, which
//! needs a message of megabytes to overflow a server thread's 2 MiB, overflows it within the
//! 128 KiB inputs fuzzed here.

use mail_parser::{Message, MessageParser, PartType};
use rebound_message::{Action, Kind, Limits, MessageError, ReadOptions, Report, classify, explain, read};

use crate::classify::check_suppression_basis;
use crate::{MAX_ERROR_BYTES, prefix, shipped_rules};

/// Limits small enough that short inputs cross them.
pub const TIGHT: Limits = Limits {
    max_email_bytes: 2048,
    max_mime_depth: 2,
    max_mime_parts: 6,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let shape = Shape::of(data);
    for limits in [Limits::default(), TIGHT] {
        let options = ReadOptions {
            limits,
            ..ReadOptions::default()
        };
        match read_on_a_small_stack(data, &options) {
            Ok(report) => {
                check_within_limits(data, &limits, &shape);
                check_report(data, &report);
            }
            Err(error) => check_refusal(data, &limits, &shape, &error),
        }
    }
}

/// Stack for `read`: an eighth of a server thread's.
const READ_STACK: usize = 256 << 10;

fn read_on_a_small_stack(data: &[u8], options: &ReadOptions<'_>) -> Result<Report, MessageError> {
    std::thread::scope(|scope| {
        let reading = std::thread::Builder::new()
            .stack_size(READ_STACK)
            .spawn_scoped(scope, || read(data, options))
            .unwrap_or_else(|e| panic!("no thread for read: {e}"));
        reading.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// How deep and how many MIME parts mail-parser reads in a message: every part of every
/// attached message is counted; a part's depth is the number of multiparts and attached
/// messages around it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Shape {
    pub parts: usize,
    pub depth: usize,
}

impl Shape {
    pub fn of(data: &[u8]) -> Shape {
        let Some(message) = MessageParser::default().parse(data) else {
            return Shape::default();
        };
        let shape = Shape::measure(&message);
        dismantle(message);
        shape
    }

    /// Without recursion: mail-parser nests attached messages as deep as the input does.
    pub fn measure(message: &Message<'_>) -> Shape {
        let mut shape = Shape::default();
        let mut pending = vec![(message, 0usize)];
        while let Some((message, base)) = pending.pop() {
            let mut depths = vec![base; message.parts.len()];
            for (at, part) in message.parts.iter().enumerate() {
                let depth = depths.get(at).copied().unwrap_or(base);
                shape.parts += 1;
                shape.depth = shape.depth.max(depth);
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
        }
        shape
    }
}

/// Drops a parsed message level by level: its own `Drop` recurses once per attached message.
pub fn dismantle(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                pending.push(inner);
            }
        }
    }
}

/// An answered message is within every limit.
fn check_within_limits(data: &[u8], limits: &Limits, shape: &Shape) {
    assert!(
        data.len() <= limits.max_email_bytes,
        "a message over max_email_bytes was read"
    );
    assert!(
        shape.depth <= limits.max_mime_depth,
        "a message {} deep was read under max_mime_depth {}",
        shape.depth,
        limits.max_mime_depth
    );
    assert!(
        shape.parts <= limits.max_mime_parts,
        "a message of {} parts was read under max_mime_parts {}",
        shape.parts,
        limits.max_mime_parts
    );
}

/// A refusal names the limit the message is over, or says why it is no message.
fn check_refusal(data: &[u8], limits: &Limits, shape: &Shape, error: &MessageError) {
    let field = error.field();
    match error {
        MessageError::Empty => assert!(
            data.iter().all(u8::is_ascii_whitespace),
            "a message with text refused as empty"
        ),
        MessageError::TooLarge { size, limit } => {
            assert!(
                *size == data.len() && *limit == limits.max_email_bytes && *size > *limit,
                "{error}"
            );
            assert_eq!(field, "max_email_bytes");
        }
        MessageError::TooDeep { limit } => {
            assert!(
                *limit == limits.max_mime_depth && shape.depth > *limit,
                "{error}, but the message is {shape:?}"
            );
            assert_eq!(field, "max_mime_depth");
        }
        MessageError::TooManyParts { limit } => {
            assert!(
                *limit == limits.max_mime_parts && shape.parts > *limit,
                "{error}, but the message is {shape:?}"
            );
            assert_eq!(field, "max_mime_parts");
        }
        MessageError::NotAMessage { .. } => assert_eq!(field, "message"),
    }
    if data.len() > limits.max_email_bytes {
        assert!(
            matches!(error, MessageError::TooLarge { .. } | MessageError::Empty),
            "a message over max_email_bytes refused for another reason: {error}"
        );
    }
    let message = error.to_string();
    assert!(
        message.len() <= MAX_ERROR_BYTES,
        "an error of {} bytes: {:?}...",
        message.len(),
        prefix(&message, 80)
    );
}

/// What every answer honours: one outcome per recipient, the same from `explain`; a delayed
/// recipient never suppressed; every suppression with a basis; a bounce names a recipient;
/// a diagnostic on one line; the answer no larger than a constant times the message.
fn check_report(data: &[u8], report: &Report) {
    if report.kind == Kind::Bounce {
        assert!(!report.recipients.is_empty(), "a bounce without a recipient");
    }
    let mut bytes = report.reporting_mta.len() + report.arrival_date.len();
    for r in &report.recipients {
        assert!(
            !r.diagnostic.contains(['\n', '\r']),
            "a diagnostic spans lines: {:?}",
            prefix(&r.diagnostic, 200)
        );
        bytes += r.recipient.len() + r.original_recipient.len() + r.status.len() + r.remote_mta.len();
        bytes += r.diagnostic_type.len() + r.diagnostic.len() + r.command.len();
        bytes += r.last_attempt.len() + r.will_retry_until.len();
    }
    assert!(
        bytes <= 16 * data.len() + 4096,
        "an answer of {bytes} bytes from a message of {}: its fields are copied per recipient",
        data.len()
    );
    let rules = shipped_rules();
    let outcomes = classify(rules, report);
    assert_eq!(outcomes.len(), report.recipients.len(), "not one outcome per recipient");
    let explained = explain(rules, report);
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
        if outcome.script_errors == 0 && again.script_errors == 0 {
            assert_eq!(outcome.category.id, again.category.id, "classify and explain disagree");
            assert_eq!(
                outcome.suppress_recipient, again.suppress_recipient,
                "classify and explain disagree"
            );
        }
    }
}

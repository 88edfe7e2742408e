//! Reading one message: limits, MIME, then the DSN, ARF, auto-reply and MTA readers in turn.

use crate::mime::{self, Mail};
use crate::report::{Kind, Report};
use crate::{Limits, MessageError, VerpPattern, mta};

/// How to read a message.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions<'a> {
    /// Size and MIME limits.
    pub limits: Limits,
    /// Headers of the returned original to report (`X-Campaign-Id`), besides the standard ones.
    pub headers: &'a [String],
    /// How to read the recipient from a VERP return path when the bounce names none.
    pub verp: Option<&'a VerpPattern>,
}

/// Reads one raw RFC 5322 message.
pub fn read(raw: &[u8], options: &ReadOptions<'_>) -> Result<Report, MessageError> {
    let message = mime::parse(raw, &options.limits)?;
    let mail = Mail::new(&message, &options.limits)?;
    let mut report = Report {
        kind: Kind::NotBounce,
        format: "",
        reporting_mta: String::new(),
        arrival_date: String::new(),
        original: None,
        feedback: None,
        recipients: Vec::new(),
        trace: Vec::new(),
    };
    if let Some(reader) = mta::candidates(&mail).next() {
        report.recipients = (reader.read)(&mail);
        report.format = reader.name;
        if !report.recipients.is_empty() {
            report.kind = Kind::Bounce;
        }
    }
    Ok(report)
}

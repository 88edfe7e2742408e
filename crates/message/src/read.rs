//! Reading one message: limits, MIME, then the complaint, DSN, MTA, auto-reply, challenge and
//! VERP readers in turn, each fact recorded in the report's trace.

use crate::dsn::{self, Dsn};
use crate::mime::{self, Mail};
use crate::report::{Action, Kind, Original, RecipientReport, Report, Trace};
use crate::{Limits, MessageError, VerpPattern, arf, autoreply, mta, original};

/// How to read a message.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions<'a> {
    /// Size and MIME limits.
    pub limits: Limits,
    /// Headers of the returned original to report (`X-Campaign-Id`), besides the standard ones.
    /// Each is reported once, in the order asked, with "" when the original lacks it.
    pub headers: &'a [String],
    /// How to read the recipient from a VERP return path when the bounce names none.
    pub verp: Option<&'a VerpPattern>,
}

/// The content types of a DSN's status part (RFC 3464, RFC 6533, and the `text/` form some
/// MTAs write).
const STATUS_TYPES: [&str; 3] = [
    "message/delivery-status",
    "message/global-delivery-status",
    "text/delivery-status",
];

/// Reads one raw RFC 5322 message.
pub fn read(raw: &[u8], options: &ReadOptions<'_>) -> Result<Report, MessageError> {
    // Old Mac line ends (lone CR) are unknown to the MIME parser: made LF, so every line-end
    // convention gives the same report. The size limit applies to the message as given.
    let lf: Vec<u8>;
    let raw = if raw.contains(&b'\r') && !raw.contains(&b'\n') && raw.len() <= options.limits.max_email_bytes {
        lf = raw.iter().map(|&b| if b == b'\r' { b'\n' } else { b }).collect();
        lf.as_slice()
    } else {
        raw
    };
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
    let original = original::find(&mail, options.headers);
    if let Some((o, from)) = &original {
        trace(&mut report, format!("original message_id {}", o.message_id), from);
    }
    let original_ref = original.as_ref().map(|(o, _)| o);

    if let Some(c) = arf::read(&mail, original_ref) {
        report.kind = Kind::Feedback;
        report.format = "arf";
        report.arrival_date = c.arrival_date;
        trace(&mut report, "kind feedback".to_string(), c.from);
        for r in c.recipients {
            trace(&mut report, format!("recipient {r}"), c.from);
            report.recipients.push(RecipientReport {
                recipient: r,
                ..RecipientReport::default()
            });
        }
        report.feedback = Some(c.feedback);
        report.original = original.map(|(o, _)| o);
        return Ok(report);
    }

    let (dsn, dsn_from) = delivery_status(&mail);
    // A DSN whose recipients are no addresses (a mailbox path, a pipe) names them badly: the
    // MTA's own text, when a reader knows it, names them better.
    let mta_first = !dsn.recipients.is_empty() && !dsn.recipients.iter().any(|r| dsn::names_a_mailbox(&r.recipient));
    let from_mta = if dsn.recipients.is_empty() || mta_first {
        mta::candidates(&mail)
            .map(|reader| (reader.name, (reader.read)(&mail)))
            .find(|(_, recipients)| !recipients.is_empty())
    } else {
        None
    };
    if let Some((name, recipients)) = from_mta {
        report.format = name;
        for r in &recipients {
            trace(
                &mut report,
                format!("recipient {}", r.recipient),
                &format!("{name} report"),
            );
        }
        report.recipients = recipients;
    } else if !dsn.recipients.is_empty() {
        report.format = "rfc3464";
        if !dsn.reporting_mta.is_empty() {
            trace(&mut report, format!("reporting_mta {}", dsn.reporting_mta), dsn_from);
        }
        report.reporting_mta = dsn.reporting_mta;
        report.arrival_date = dsn.arrival_date;
        for r in &dsn.recipients {
            trace(&mut report, format!("recipient {}", r.recipient), dsn_from);
        }
        report.recipients = dsn.recipients;
        fill_from_mta(&mail, &mut report);
    }
    for r in &mut report.recipients {
        // A report that names a recipient without saying what happened reports a failure.
        r.action.get_or_insert(Action::Failed);
    }

    // Bounces often carry auto-reply cues too (Exim writes `Auto-Submitted: auto-replied`): a
    // message that reports a delivery failure is never read as an auto-reply or a challenge.
    if report.recipients.is_empty() && !reports_a_failure(&mail) {
        if let Some(cue) = autoreply::auto_reply(&mail) {
            report.kind = Kind::AutoReply;
            report.format = "rfc3834";
            trace(&mut report, "kind auto_reply".to_string(), &cue);
            replier(&mail, None, &mut report, &cue);
            report.original = original.map(|(o, _)| o);
            return Ok(report);
        }
        if let Some(cue) = autoreply::challenge(&mail) {
            report.kind = Kind::Challenge;
            report.format = "challenge";
            trace(&mut report, "kind challenge".to_string(), &cue);
            let on_behalf = autoreply::sent_by_service(mail.from_address());
            replier(&mail, on_behalf.then_some(original_ref).flatten(), &mut report, &cue);
            report.original = original.map(|(o, _)| o);
            return Ok(report);
        }
    }
    if report.recipients.is_empty()
        && let Some(pattern) = options.verp
    {
        verp(&mail, pattern, &mut report);
    }

    let failed = report
        .recipients
        .iter()
        .any(|r| matches!(r.action, Some(Action::Failed | Action::Delayed)));
    report.kind = if failed { Kind::Bounce } else { Kind::NotBounce };
    let why = if failed {
        "a recipient failed or was delayed"
    } else if report.recipients.is_empty() {
        "no recipient is reported"
    } else {
        "every recipient was delivered, relayed or expanded"
    };
    let what = format!("kind {}", report.kind.as_str());
    trace(&mut report, what, why);
    report.original = original.map(|(o, _)| o);
    Ok(report)
}

fn trace(report: &mut Report, what: String, from: &str) {
    report.trace.push(Trace {
        what,
        from: from.to_string(),
    });
}

/// The DSN fields of `mail`: its status parts (the shallowest that name recipients), else DSN
/// field groups written into a top-level text part.
fn delivery_status(mail: &Mail<'_>) -> (Dsn, &'static str) {
    // Each status part read once; the report's own (the shallowest with recipients) wins over
    // one inside an attached message (a forwarded bounce), whatever their order.
    let read: Vec<(usize, Dsn)> = mail
        .parts
        .iter()
        .filter(|p| STATUS_TYPES.contains(&p.content_type.as_str()))
        .map(|p| (p.depth, dsn::parse(&p.text)))
        .collect();
    let shallowest = read
        .iter()
        .filter(|(_, d)| !d.recipients.is_empty())
        .map(|(depth, _)| *depth)
        .min();
    if let Some(depth) = shallowest {
        let mut found = Dsn::default();
        for (_, d) in read.into_iter().filter(|(at, _)| *at == depth) {
            found.recipients.extend(d.recipients);
            if found.reporting_mta.is_empty() {
                found.reporting_mta = d.reporting_mta;
            }
            if found.arrival_date.is_empty() {
                found.arrival_date = d.arrival_date;
            }
        }
        return (found, "message/delivery-status part");
    }
    for p in mail
        .parts
        .iter()
        .filter(|p| p.depth == 0 && p.message.is_none() && p.content_type.starts_with("text/"))
    {
        let text = if p.content_type == "text/html" {
            mime::html_to_text(&p.text)
        } else {
            p.text.to_string()
        };
        let d = dsn::parse(&text);
        if !d.recipients.is_empty() {
            return (d, "DSN fields in a text part");
        }
    }
    (Dsn::default(), "")
}

/// Fills what the DSN left out (diagnostic, status, reply code, remote MTA) from the MTA
/// reader's entry for the same recipient, when the DSN lacks some of it.
fn fill_from_mta(mail: &Mail<'_>, report: &mut Report) {
    let lacking = |r: &RecipientReport| {
        r.diagnostic.is_empty() || r.status.is_empty() || r.remote_mta.is_empty() || r.reply_code == 0
    };
    if !report.recipients.iter().any(lacking) {
        return;
    }
    let Some((name, entries)) = mta::candidates(mail)
        .map(|reader| (reader.name, (reader.read)(mail)))
        .find(|(_, entries)| !entries.is_empty())
    else {
        return;
    };
    let mut notes = Vec::new();
    for r in report.recipients.iter_mut().filter(|r| lacking(r)) {
        let Some(e) = entries.iter().find(|e| e.recipient.eq_ignore_ascii_case(&r.recipient)) else {
            continue;
        };
        if r.diagnostic.is_empty() && !e.diagnostic.is_empty() {
            r.diagnostic.clone_from(&e.diagnostic);
            r.diagnostic_type.clone_from(&e.diagnostic_type);
            if r.reply_code == 0 {
                r.reply_code = e.reply_code;
            }
            notes.push(format!("diagnostic of {}", r.recipient));
        }
        if r.reply_code == 0 && e.reply_code != 0 && r.status.get(..1) == e.reply_code.to_string().get(..1) {
            r.reply_code = e.reply_code;
            notes.push(format!("reply code of {}", r.recipient));
        }
        if r.status.is_empty() && !e.status.is_empty() {
            r.status.clone_from(&e.status);
            notes.push(format!("status of {}", r.recipient));
        }
        if r.remote_mta.is_empty() && !e.remote_mta.is_empty() {
            r.remote_mta.clone_from(&e.remote_mta);
            notes.push(format!("remote_mta of {}", r.recipient));
        }
        if r.command.is_empty() {
            r.command.clone_from(&e.command);
        }
    }
    let from = format!("{name} report");
    for what in notes {
        trace(report, what, &from);
    }
}

/// The replying party of an auto-reply or challenge: its `From` (or, for a service answering
/// on the recipient's behalf, the original's `To`).
fn replier(mail: &Mail<'_>, original: Option<&Original>, report: &mut Report, cue: &str) {
    let address = match original {
        Some(o) => o.to.split(',').next().unwrap_or("").trim().to_string(),
        None => mail.from_address().to_string(),
    };
    if address.is_empty() {
        return;
    }
    trace(
        report,
        format!("recipient {address}"),
        &format!("the sender of the reply ({cue})"),
    );
    report.recipients.push(RecipientReport {
        recipient: address,
        ..RecipientReport::default()
    });
}

/// A bounce naming no recipient: the recipient encoded in the address it was sent to.
fn verp(mail: &Mail<'_>, pattern: &VerpPattern, report: &mut Report) {
    if !looks_like_a_bounce(mail) {
        return;
    }
    let to = mail
        .message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address.as_deref());
    let candidates = [
        ("To", to),
        ("Delivered-To", mail.header("Delivered-To")),
        ("X-Original-To", mail.header("X-Original-To")),
        ("Return-Path", mail.header("Return-Path")),
    ];
    for (header, value) in candidates {
        if let Some(recipient) = value.and_then(|v| pattern.decode(v)) {
            trace(
                report,
                format!("recipient {recipient}"),
                &format!("VERP address in header {header} ({})", pattern.as_str()),
            );
            report.format = "verp";
            report.recipients.push(RecipientReport {
                recipient,
                action: Some(Action::Failed),
                ..RecipientReport::default()
            });
            return;
        }
    }
}

/// Signs that `mail` reports a delivery failure even though no reader found the recipient: a
/// delivery-status report, a mailer daemon's sender or a failure subject. An MTA's cues alone
/// are not enough here: some are loose enough to match an auto-reply.
fn reports_a_failure(mail: &Mail<'_>) -> bool {
    const SUBJECTS: [&str; 15] = [
        "undeliver",
        "nondeliver",
        "non-deliver",
        "delivery status notification",
        "delivery notification",
        "delivery failure",
        "failed delivery",
        "delivery problem",
        "failure notice",
        "returned mail",
        "returned to sender",
        "mail delivery failed",
        "delivery has failed",
        "error sending your",
        "could not be delivered",
    ];
    // The sender's address, or its bare name when it has no domain (`From: mailer-daemon`).
    let sender = mail.message.from().and_then(|a| a.first());
    let from = sender
        .and_then(|a| a.address.as_deref().or(a.name.as_deref()))
        .unwrap_or("")
        .to_ascii_lowercase();
    let local = from.split('@').next().unwrap_or("").trim();
    let subject = mail.subject().to_lowercase();
    arf::report_type_is(mail, "delivery-status")
        || mail
            .parts
            .iter()
            .any(|p| STATUS_TYPES.contains(&p.content_type.as_str()))
        || matches!(local, "mailer-daemon" | "postmaster" | "mail-daemon")
        || SUBJECTS.iter().any(|s| subject.contains(s))
}

/// Whether a bounce naming no recipient may be read through VERP: it reports a failure, or an
/// MTA's report cues show.
fn looks_like_a_bounce(mail: &Mail<'_>) -> bool {
    reports_a_failure(mail) || mta::candidates(mail).next().is_some()
}

#[cfg(test)]
mod tests;

//! Reading one message: limits, MIME, then the complaint, DSN, MTA, auto-reply, challenge and
//! VERP readers in turn, each fact recorded in the report's trace.

use std::borrow::Cow;
use std::collections::HashMap;

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
    let (original, original_recipients) = match original::find(&mail, options.headers) {
        Some(found) => {
            trace(
                &mut report,
                format!("original message_id {}", found.original.message_id),
                found.from,
            );
            (Some(found.original), found.recipients)
        }
        None => (None, Vec::new()),
    };
    let original_ref = original.as_ref();

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
        report.original = original;
        return Ok(report);
    }

    let (dsn, dsn_from) = delivery_status(&mail);
    // A DSN whose recipients are no addresses (a mailbox path, a pipe) names them badly: the
    // MTA's own text, when a reader knows it, names them better.
    let mta_first = !dsn.recipients.is_empty() && !dsn.recipients.iter().any(|r| dsn::names_a_mailbox(&r.recipient));
    let from_mta = if dsn.recipients.is_empty() || mta_first {
        first_mta_reading(&mail)
    } else {
        None
    };
    if let Some((name, mut recipients)) = from_mta {
        report.format = name;
        for r in &recipients {
            trace(
                &mut report,
                format!("recipient {}", r.recipient),
                &format!("{name} report"),
            );
        }
        // The MTA's text named better the one recipient the DSN named by its mailbox path: the
        // DSN's status and remote MTA are still that recipient's.
        if let ([r], [d]) = (recipients.as_mut_slice(), dsn.recipients.as_slice())
            && mta_first
        {
            if r.status.is_empty() && !d.status.is_empty() {
                r.status.clone_from(&d.status);
                let what = format!("status of {}", r.recipient);
                trace(&mut report, what, dsn_from);
            }
            if r.remote_mta.is_empty() && !d.remote_mta.is_empty() {
                r.remote_mta.clone_from(&d.remote_mta);
                let what = format!("remote_mta of {}", r.recipient);
                trace(&mut report, what, dsn_from);
            }
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
        fill_from_transcript(&mail, &mut report);
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
            report.original = original;
            return Ok(report);
        }
        if let Some(cue) = autoreply::challenge(&mail) {
            report.kind = Kind::Challenge;
            report.format = "challenge";
            trace(&mut report, "kind challenge".to_string(), &cue);
            let on_behalf = autoreply::sent_by_service(mail.from_address());
            replier(&mail, on_behalf.then_some(original_ref).flatten(), &mut report, &cue);
            report.original = original;
            return Ok(report);
        }
    }
    if report.recipients.is_empty()
        && let Some(pattern) = options.verp
    {
        verp(&mail, pattern, &mut report);
    }

    // A failure report that names no recipient (`Delivery report unavailable`, a transcript
    // naming only the host) returns the message that failed: when that message was addressed
    // to one recipient alone, that recipient is the one whose delivery failed. With several
    // recipients the report does not say which, so none is guessed. The caller's VERP address,
    // when it decodes, names the recipient exactly and is read first.
    if report.recipients.is_empty()
        && let [sole] = original_recipients.as_slice()
        && reports_a_failure(&mail)
    {
        report.format = "returned_original";
        trace(
            &mut report,
            format!("recipient {sole}"),
            "the sole recipient of the returned original, in a failure report naming none",
        );
        report.recipients.push(RecipientReport {
            recipient: sole.clone(),
            action: Some(Action::Failed),
            ..RecipientReport::default()
        });
        fill_from_transcript(&mail, &mut report);
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
    report.original = original;
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
            Cow::Owned(mime::html_to_text(&p.text))
        } else {
            Cow::Borrowed(p.text.as_ref())
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
        r.diagnostic.is_empty()
            || r.status.is_empty()
            || generic(&r.status)
            || r.remote_mta.is_empty()
            || r.reply_code == 0
    };
    if !report.recipients.iter().any(lacking) {
        return;
    }
    let Some((name, entries)) = first_mta_reading(mail) else {
        return;
    };
    // Each recipient's entry by address, looked up once per recipient: a report can list
    // tens of thousands of recipients, and a search per recipient would be quadratic.
    let mut by_address: HashMap<String, &RecipientReport> = HashMap::with_capacity(entries.len());
    for e in &entries {
        by_address.entry(e.recipient.to_ascii_lowercase()).or_insert(e);
    }
    let mut notes = Vec::new();
    for r in report.recipients.iter_mut().filter(|r| lacking(r)) {
        let Some(e) = by_address.get(&r.recipient.to_ascii_lowercase()).copied() else {
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
        // `5.0.0` says only "failed": the server's own reply in the text names the cause.
        let specific = !e.status.is_empty() && !generic(&e.status);
        let same_class = r.status.get(..1) == e.status.get(..1);
        if r.status.is_empty() && !e.status.is_empty() || generic(&r.status) && specific && same_class {
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

/// The recipients of the first MTA reader whose cues the message shows and that reads any, with
/// the reader's name.
fn first_mta_reading(mail: &Mail<'_>) -> Option<(&'static str, Vec<RecipientReport>)> {
    mta::candidates(mail)
        .map(|reader| (reader.name, (reader.read)(mail)))
        .find(|(_, recipients)| !recipients.is_empty())
}

/// Whether `status` is a class's catch-all (`4.0.0`, `5.0.0`), naming no cause.
fn generic(status: &str) -> bool {
    status.ends_with(".0.0")
}

/// Fills the reply code of a report's only recipient from the report's text when the rest of
/// the report gives none (no `Diagnostic-Code`, a program's exit code, no recipient named): the
/// one reply the transcript quotes (`554 "|/usr/bin/x"... Service unavailable`) is that
/// recipient's. Only when every reply line of the text carries the same failure code, of the
/// status's class when there is a status.
fn fill_from_transcript(mail: &Mail<'_>, report: &mut Report) {
    let [r] = report.recipients.as_mut_slice() else {
        return;
    };
    // No status: any failure class (a report naming no recipient gives none).
    let class = r.status.get(..1).unwrap_or("");
    if r.reply_code != 0 || !matches!(class, "" | "4" | "5") {
        return;
    }
    let mut found: Option<(u16, &str)> = None;
    for line in mail.body.lines().map(str::trim) {
        let Some(code) = reply_line_code(line) else { continue };
        match found {
            Some((seen, _)) if seen != code => return,
            Some(_) => {}
            None => found = Some((code, line)),
        }
    }
    let Some((code, line)) = found.filter(|(code, _)| class.is_empty() || code.to_string().get(..1) == Some(class))
    else {
        return;
    };
    r.reply_code = code;
    let quoted = mta::text::failed(&r.recipient, line);
    if (r.status.is_empty() || generic(&r.status)) && quoted.status.get(..1) == code.to_string().get(..1) {
        r.status = quoted.status;
    }
    if r.diagnostic.is_empty() {
        r.diagnostic = quoted.diagnostic;
        r.diagnostic_type = quoted.diagnostic_type;
    }
    let what = format!("reply code of {}", r.recipient);
    trace(report, what, "the one reply the report's text quotes");
}

/// The failure reply code opening `line` (`550 ...`, `550-...`).
fn reply_line_code(line: &str) -> Option<u16> {
    let code: u16 = line.get(..3)?.parse().ok()?;
    let after = line.get(3..4)?;
    ((400..600).contains(&code) && (after == " " || after == "-")).then_some(code)
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

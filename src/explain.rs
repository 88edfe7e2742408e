//! `rebound explain`: one reply, every candidate rule, and why the winner won; or with
//! `--message`, what was read from a bounce email and where, then the same for each recipient.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use rebound_engine::{Explanation, Outcome, Reply, ReplyInput};
use rebound_message::{ReadOptions, Report};

use crate::classify_messages::{self, ReaderArgs};

pub fn run(rules_dir: Option<&Path>, input: &ReplyInput<'_>, json: bool) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let rules = rebound::rules::load(rules_dir)?;
    let reply = Reply::parse(input)?;
    let (outcome, explanation) = rules.explain(&reply);
    if json {
        let doc = serde_json::json!({ "outcome": outcome, "explanation": explanation });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_explanation(&mut out, &outcome, &explanation)?;
    Ok(ExitCode::SUCCESS)
}

/// `explain --message FILE`: the message's kind and format, its per-message fields, the
/// returned original, where each fact was read, then each recipient's explanation.
pub fn run_message(rules_dir: Option<&Path>, path: &Path, args: &ReaderArgs, json: bool) -> anyhow::Result<ExitCode> {
    let limits = args.limits();
    let verp = args.verp()?;
    let raw = classify_messages::first_message(path, limits.max_email_bytes)?;
    let rules = rebound::rules::load(rules_dir)?;
    let options = ReadOptions {
        limits,
        headers: &args.headers,
        verp: verp.as_ref(),
    };
    let report = rebound_message::read(&raw, &options)
        .map_err(|e| anyhow::anyhow!("{}: {e} ({}: {})", path.display(), e.code(), e.field()))?;
    let explained = rebound_message::explain(&rules, &report);
    let outcomes: Vec<_> = explained.iter().map(|(o, _)| *o).collect();
    let id = path.display().to_string();
    let mut out = std::io::stdout().lock();
    if json {
        let recipients: Vec<_> = report
            .recipients
            .iter()
            .zip(&explained)
            .map(|(r, (outcome, explanation))| {
                serde_json::json!({ "recipient": r.recipient, "outcome": outcome, "explanation": explanation })
            })
            .collect();
        let doc = serde_json::json!({
            "message": classify_messages::message_answer(&id, &report, &outcomes),
            "trace": report.trace,
            "recipients": recipients,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&mut out, &id, &report)?;
    for (i, (r, (outcome, explanation))) in report.recipients.iter().zip(&explained).enumerate() {
        writeln!(out)?;
        writeln!(out, "recipient {}  {}", i + 1, show(&r.recipient))?;
        let facts = [
            ("original recipient", r.original_recipient.clone()),
            ("action", r.action.map(|a| a.as_str().to_string()).unwrap_or_default()),
            ("status", r.status.clone()),
            (
                "reply code",
                if r.reply_code == 0 {
                    String::new()
                } else {
                    r.reply_code.to_string()
                },
            ),
            ("remote mta", r.remote_mta.clone()),
            ("command", r.command.clone()),
            ("diagnostic", diagnostic(&r.diagnostic_type, &r.diagnostic)),
            ("last attempt", r.last_attempt.clone()),
            ("will retry until", r.will_retry_until.clone()),
        ];
        for (name, value) in facts.iter().filter(|(_, v)| !v.is_empty()) {
            writeln!(out, "  {name:<18} {value}")?;
        }
        // The reply printer's lines, indented under their recipient.
        let mut printed = Vec::new();
        print_explanation(&mut printed, outcome, explanation)?;
        for line in String::from_utf8_lossy(&printed).lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The message-level part of `explain --message`.
fn print_report(out: &mut impl Write, id: &str, report: &Report) -> std::io::Result<()> {
    writeln!(out, "message     {id}")?;
    let format = if report.format.is_empty() {
        "no reader recognised it"
    } else {
        report.format
    };
    writeln!(out, "kind        {} (format: {format})", report.kind.as_str())?;
    if !report.reporting_mta.is_empty() {
        writeln!(out, "reporting   {}", report.reporting_mta)?;
    }
    if !report.arrival_date.is_empty() {
        writeln!(out, "arrived     {}", report.arrival_date)?;
    }
    match &report.original {
        Some(o) => {
            writeln!(out, "original    message_id {}", show(&o.message_id))?;
            for (name, value) in [
                ("from", &o.from),
                ("to", &o.to),
                ("subject", &o.subject),
                ("date", &o.date),
            ] {
                writeln!(out, "            {name:<10} {}", show(value))?;
            }
            for (name, value) in &o.headers {
                writeln!(out, "            {name}: {}", show(value))?;
            }
        }
        None => writeln!(out, "original    none returned")?,
    }
    if let Some(f) = &report.feedback {
        writeln!(
            out,
            "feedback    type {} user_agent {} source_ip {}",
            show(&f.feedback_type),
            show(&f.user_agent),
            show(&f.source_ip)
        )?;
    }
    writeln!(out, "read        {} fact(s), each from:", report.trace.len())?;
    let width = report
        .trace
        .iter()
        .map(|t| t.what.chars().count())
        .max()
        .unwrap_or(0)
        .min(72);
    for t in &report.trace {
        writeln!(out, "  {:<width$}  <- {}", t.what, t.from)?;
    }
    writeln!(out, "recipients  {}", report.recipients.len())?;
    Ok(())
}

/// A value as read, or `-` when the message did not give it.
fn show(value: &str) -> &str {
    if value.is_empty() { "-" } else { value }
}

/// `(smtp) "550 5.1.1 ..."`, or nothing.
fn diagnostic(kind: &str, text: &str) -> String {
    match (kind.is_empty(), text.is_empty()) {
        (_, true) => String::new(),
        (true, false) => format!("{text:?}"),
        (false, false) => format!("({kind}) {text:?}"),
    }
}

/// How one reply was decided: its normalised form, provider, answer, outcome and every
/// candidate rule. The same printer serves `explain REPLY` and each recipient of a message.
fn print_explanation(out: &mut impl Write, outcome: &Outcome<'_>, explanation: &Explanation) -> std::io::Result<()> {
    let n = &explanation.normalised;
    writeln!(
        out,
        "reply       code {} enhanced {} text {:?}",
        n.code,
        n.enhanced.as_deref().unwrap_or("none"),
        n.text
    )?;
    if !n.replies.is_empty() {
        let chosen = n.chosen.unwrap_or_default();
        writeln!(
            out,
            "transcript  {} replies; decided on reply {}: {}",
            n.replies.len(),
            chosen + 1,
            n.chosen_because
        )?;
        for (i, r) in n.replies.iter().enumerate() {
            let mark = if i == chosen { ">" } else { " " };
            let after = r.command.map(|c| format!(" (to {c})")).unwrap_or_default();
            writeln!(
                out,
                "  {mark} {:>2}. {} {}{after} {:?}",
                i + 1,
                r.code,
                r.enhanced.as_deref().unwrap_or("-"),
                r.text
            )?;
        }
    }
    match &explanation.provider {
        Some(p) => writeln!(out, "provider    {} (from {})", p.id, p.from)?,
        None => writeln!(out, "provider    none detected")?,
    }
    writeln!(
        out,
        "answer      {} ({}) by rule {}",
        outcome.category.id,
        outcome.category.name,
        outcome.rule.map_or_else(
            || if outcome.positive {
                "none (the engine answers a positive reply)"
            } else {
                "none"
            }
            .to_string(),
            |r| format!("`{}` at {}", r.id, r.location())
        )
    )?;
    writeln!(
        out,
        "outcome     bounce_type={} suppress_recipient={} retryable={} responsible={}",
        outcome.bounce_type.as_str(),
        outcome.suppress_recipient,
        outcome.retryable,
        outcome.responsible.as_str()
    )?;
    writeln!(out, "evidence    {}", outcome.evidence.as_str())?;
    writeln!(out, "suppression {}", explanation.suppression)?;
    if let Some(d) = outcome.definition() {
        writeln!(out, "definition  {d}")?;
    }
    writeln!(out, "why         {}", explanation.reason)?;
    writeln!(out, "candidates  {} (best first)", explanation.candidates.len())?;
    for c in &explanation.candidates {
        let mark = if c.matched { "match" } else { "no   " };
        writeln!(
            out,
            "  {mark} {} -> {} [{}; priority {}] {}",
            c.rule, c.category, c.specificity, c.priority, c.location
        )?;
        for cond in &c.conditions {
            writeln!(
                out,
                "          {:<8} {:<5} {}",
                cond.condition,
                if cond.held { "held" } else { "fails" },
                cond.detail
            )?;
        }
    }
    Ok(())
}

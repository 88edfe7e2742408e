//! `rebound explain`: one reply, every candidate rule, and why the winner won.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use rebound_engine::{Reply, ReplyInput};

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
    Ok(ExitCode::SUCCESS)
}

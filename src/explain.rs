//! `rebound explain`: one reply, every candidate rule, and why the winner won.

use std::path::Path;
use std::process::ExitCode;

use rebound_engine::{Reply, ReplyInput};

pub fn run(rules_dir: Option<&Path>, input: &ReplyInput<'_>, json: bool) -> anyhow::Result<ExitCode> {
    let rules = rebound::rules::load(rules_dir)?;
    let reply = Reply::parse(input)?;
    let (outcome, explanation) = rules.explain(&reply);
    if json {
        let doc = serde_json::json!({ "outcome": outcome, "explanation": explanation });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let n = &explanation.normalised;
    println!(
        "reply       code {} enhanced {} text {:?}",
        n.code,
        n.enhanced.as_deref().unwrap_or("none"),
        n.text
    );
    if !n.replies.is_empty() {
        let chosen = n.chosen.unwrap_or_default();
        println!(
            "transcript  {} replies; decided on reply {}: {}",
            n.replies.len(),
            chosen + 1,
            n.chosen_because
        );
        for (i, r) in n.replies.iter().enumerate() {
            let mark = if i == chosen { ">" } else { " " };
            let after = r.command.map(|c| format!(" (to {c})")).unwrap_or_default();
            println!(
                "  {mark} {:>2}. {} {}{after} {:?}",
                i + 1,
                r.code,
                r.enhanced.as_deref().unwrap_or("-"),
                r.text
            );
        }
    }
    match &explanation.provider {
        Some(p) => println!("provider    {} (from {})", p.id, p.from),
        None => println!("provider    none detected"),
    }
    println!(
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
    );
    println!(
        "outcome     bounce_type={} suppress_recipient={} retryable={} responsible={}",
        outcome.bounce_type.as_str(),
        outcome.suppress_recipient,
        outcome.retryable,
        outcome.responsible.as_str()
    );
    println!("evidence    {}", outcome.evidence.as_str());
    println!("suppression {}", explanation.suppression);
    if let Some(d) = outcome.definition() {
        println!("definition  {d}");
    }
    println!("why         {}", explanation.reason);
    println!("candidates  {} (best first)", explanation.candidates.len());
    for c in &explanation.candidates {
        let mark = if c.matched { "match" } else { "no   " };
        println!(
            "  {mark} {} -> {} [{}; priority {}] {}",
            c.rule, c.category, c.specificity, c.priority, c.location
        );
        for cond in &c.conditions {
            println!(
                "          {:<8} {:<5} {}",
                cond.condition,
                if cond.held { "held" } else { "fails" },
                cond.detail
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! How the shipped rules do on real replies from major receivers (`tests/data/provider_replies.jsonl`).
//! The seed's code table alone is measured here; the text and provider rules raise it later.

use rebound_engine::{Reply, ReplyInput};
use serde::Deserialize;

use crate::util::{root, shipped_rules};

#[derive(Deserialize)]
pub struct ProviderReply {
    pub id: String,
    pub code: Option<u32>,
    pub enhanced: Option<String>,
    pub text: String,
    pub expected_category: String,
}

pub fn provider_replies() -> Vec<ProviderReply> {
    let text = std::fs::read_to_string(root().join("tests/data/provider_replies.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn measure_expected_categories() {
    let rules = shipped_rules();
    let replies = provider_replies();
    assert_eq!(replies.len(), 121);
    let mut right = 0;
    let mut misses = Vec::new();
    for r in &replies {
        let input = ReplyInput {
            code: r.code.unwrap_or(0),
            enhanced: r.enhanced.as_deref().unwrap_or(""),
            text: &r.text,
            ..Default::default()
        };
        let outcome = rules.classify(&Reply::parse(&input).unwrap());
        if outcome.category.id == r.expected_category {
            right += 1;
        } else {
            misses.push(format!(
                "  {} expected {} got {} by {}",
                r.id,
                r.expected_category,
                outcome.category.id,
                outcome.rule_id()
            ));
        }
    }
    let pct = 100.0 * f64::from(right) / replies.len() as f64;
    println!(
        "provider replies: {right}/{} ({pct:.1}%) get their expected category\nmisses:\n{}",
        replies.len(),
        misses.join("\n")
    );
    // Only measured for now; the floor guards against a regression below today's figure.
    assert!(pct >= 43.0, "{pct:.1}% is below the floor");
}

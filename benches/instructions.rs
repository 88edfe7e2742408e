//! Instructions per classification, for callgrind: repeatable where timings are not (a shared
//! host's neighbours change time, not instruction counts). Classifies the 121 provider replies
//! with the shipped rules as many rounds as the first argument says, inside `classify_rounds`,
//! the one function `benches/instructions.sh` has callgrind count.

mod replies;

use rebound_engine::{Reply, RuleSet};

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let rules = RuleSet::compile(&replies::shipped_source()).unwrap_or_else(|e| panic!("{e}"));
    let samples = replies::load("provider_replies.jsonl");
    assert_eq!(samples.len(), 121, "tests/data/provider_replies.jsonl");
    println!("{}", classify_rounds(&rules, &samples, rounds));
}

#[inline(never)]
fn classify_rounds(rules: &RuleSet, samples: &[replies::Sample], rounds: usize) -> usize {
    let mut checksum = 0;
    for _ in 0..rounds {
        for s in samples {
            let reply = Reply::parse(&s.input()).unwrap_or_default();
            checksum += rules.classify(&reply).category.id.len();
        }
    }
    checksum
}

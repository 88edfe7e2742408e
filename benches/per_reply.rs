//! Time per reply, reply by reply: how the shipped rules' cost spreads over the real replies of
//! `tests/data/provider_replies.jsonl`, `second_replies.jsonl` and the diagnostic texts of real
//! bounces in `sisimai_answers.jsonl` (longer: DSN fields, transcripts). The criterion benchmark
//! (`benches/engine.rs`) cycles through the first set and reports the mean over it; this one
//! times each reply on its own, many times over, and prints the median, percentiles and mean of
//! the per-reply times. Run with `cargo bench --bench per_reply`.

mod replies;

use std::time::Instant;

use rebound_engine::{Reply, RuleSet};

use replies::Sample;

/// Classifications per reply: enough for a stable mean at well under a microsecond each.
const ROUNDS: u32 = 20_000;

fn main() {
    let rules = RuleSet::compile(&replies::shipped_source()).unwrap_or_else(|e| panic!("{e}"));
    for file in [
        "provider_replies.jsonl",
        "second_replies.jsonl",
        "sisimai_answers.jsonl",
    ] {
        let samples = replies::load(file);
        let mut timed: Vec<(f64, usize)> = samples
            .iter()
            .map(|s| (per_classification_ns(&rules, s), s.text_len()))
            .collect();
        timed.sort_by(|a, b| a.0.total_cmp(&b.0));
        let times: Vec<f64> = timed.iter().map(|t| t.0).collect();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "{file}: {} replies, {} rules: per reply median {:.0} ns, p90 {:.0} ns, p99 {:.0} ns, max {:.0} ns; mean {:.0} ns",
            times.len(),
            rules.rules().len(),
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0),
            mean
        );
        // The longest texts: what a reply costs as its text grows (per byte, to compare them).
        timed.sort_by_key(|t| std::cmp::Reverse(t.1));
        let longest: Vec<String> = timed
            .iter()
            .take(5)
            .map(|(ns, len)| format!("{len} B {ns:.0} ns"))
            .collect();
        println!("  longest texts: {}", longest.join(", "));
    }
}

/// Mean time of one classification of `s`, normalisation included, after a warm-up.
fn per_classification_ns(rules: &RuleSet, s: &Sample) -> f64 {
    let input = s.input();
    let run = |n: u32| {
        let mut sink = 0;
        for _ in 0..n {
            let reply = Reply::parse(std::hint::black_box(&input)).unwrap_or_default();
            sink += rules.classify(&reply).category.id.len();
        }
        std::hint::black_box(sink)
    };
    run(ROUNDS / 10);
    let start = Instant::now();
    run(ROUNDS);
    start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

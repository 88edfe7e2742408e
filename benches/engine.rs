//! Engine benchmarks: classifying real provider replies with the shipped rules, and with
//! thousands of extra synthetic rules, one reply per iteration (normalisation included).

mod replies;
mod synthetic;

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use rebound_engine::{Reply, RuleSet, RuleSource};

use replies::{Sample, shipped_source};

/// The shipped rules plus `extra` synthetic ones.
fn rules_with(extra: usize) -> RuleSet {
    let mut files = shipped_source().files().to_vec();
    if extra > 0 {
        files.push((
            Path::new("synthetic.yaml").to_path_buf(),
            synthetic::rules_yaml(extra, 42),
        ));
    }
    RuleSet::compile(&RuleSource::from_files(files)).unwrap_or_else(|e| panic!("{e}"))
}

/// Classifies the sample replies one per iteration. The rule set is built on the first call of
/// the bench closure, which criterion only makes for selected benchmarks: `cargo bench --
/// classify/shipped` does not pay for compiling the larger sets (and the closure runs once per
/// sample, so the set is kept).
fn classify_each(c: &mut Criterion, name: &str, extra: usize, samples: &[Sample]) {
    let mut built: Option<RuleSet> = None;
    c.bench_function(name, |b| {
        let rules = built.get_or_insert_with(|| rules_with(extra));
        let mut i = 0;
        b.iter(|| {
            let s = &samples[i % samples.len()];
            i += 1;
            let reply = Reply::parse(&s.input()).unwrap_or_default();
            rules.classify(&reply).category.id.len()
        })
    });
}

fn classify(c: &mut Criterion) {
    let samples = replies::load("provider_replies.jsonl");
    assert_eq!(samples.len(), 121, "tests/data/provider_replies.jsonl");
    classify_each(c, "classify/shipped", 0, &samples);
    classify_each(c, "classify/shipped+10k", 10_000, &samples);
}

/// What a reload costs: compiling and verifying (every example and test) the shipped rules
/// plus 10,000 synthetic ones, each with an example.
fn load(c: &mut Criterion) {
    let mut files = shipped_source().files().to_vec();
    files.push((
        Path::new("synthetic.yaml").to_path_buf(),
        synthetic::rules_yaml_with_examples(10_000, 42),
    ));
    let source = RuleSource::from_files(files);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("shipped+10k", |b| {
        b.iter(|| {
            RuleSet::load(&source)
                .map(|r| r.rules().len())
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    group.finish();
}

criterion_group!(benches, classify, load);
criterion_main!(benches);

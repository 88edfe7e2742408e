//! Engine benchmarks: classifying real provider replies with the shipped rules and with 100 to
//! 100,000 extra synthetic rules (one reply per iteration, normalisation included); normalisation
//! alone; a rhai hook call; compiling rule sets of those sizes; a full reload; and templating the
//! real replies the shipped rules decide weakly (their first 512 bytes, as the server's unmatched
//! tally does), beside classifying those same replies.

mod replies;
mod synthetic;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rebound_engine::{Reply, RuleSet, RuleSource, reply_template};

use replies::{Sample, shipped_source};

/// Synthetic rule counts the scaling benchmarks use.
const SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];

/// The shipped rule files plus `extra` synthetic rules.
fn source_with(extra: usize) -> RuleSource {
    let mut files = shipped_source().files().to_vec();
    files.extend(synthetic::rule_files(extra, 42));
    RuleSource::from_files(files)
}

fn rules_with(extra: usize) -> RuleSet {
    RuleSet::compile(&source_with(extra)).unwrap_or_else(|e| panic!("{e}"))
}

/// The next of `items` at each call, cycling through them.
fn cycling<'a, T>(items: &'a [T]) -> impl FnMut() -> &'a T {
    let mut at = 0;
    move || {
        let item = &items[at % items.len()];
        at += 1;
        item
    }
}

/// Normalises and classifies one reply: what each classification iteration does.
fn classify_one(rules: &RuleSet, sample: &Sample) -> usize {
    let reply = Reply::parse(&sample.input()).unwrap_or_default();
    rules.classify(&reply).category.id.len()
}

fn first_set() -> Vec<Sample> {
    let samples = replies::load("provider_replies.jsonl");
    assert_eq!(samples.len(), 121, "tests/data/provider_replies.jsonl");
    samples
}

/// Classifies the sample replies one per iteration, cycling through them. The rule set is built
/// on the first call of the bench closure, which criterion only makes for selected benchmarks:
/// `cargo bench -- classify/shipped` does not pay for compiling the larger sets (and the closure
/// runs once per sample, so the set is kept).
fn classify(c: &mut Criterion) {
    let samples = first_set();
    let mut group = c.benchmark_group("classify");
    let sizes = std::iter::once(0).chain(SIZES);
    for extra in sizes {
        let id = if extra == 0 {
            BenchmarkId::from_parameter("shipped")
        } else {
            BenchmarkId::new("rules", extra)
        };
        let mut built: Option<RuleSet> = None;
        group.bench_function(id, |b| {
            let rules = built.get_or_insert_with(|| rules_with(extra));
            let mut next = cycling(&samples);
            b.iter(|| classify_one(rules, next()))
        });
    }
    group.finish();
}

/// Normalisation alone: codes, continuation lines, white space and lower-casing.
fn normalise(c: &mut Criterion) {
    let samples = first_set();
    c.bench_function("normalise/real_replies", |b| {
        let mut next = cycling(&samples);
        b.iter(|| Reply::parse(&next().input()).map(|r| r.lower.len()).unwrap_or_default())
    });
}

/// What a rhai hook adds: the same one-rule set decided by a script, and by a pattern.
fn hook(c: &mut Criterion) {
    const CATEGORIES: &str = r#"
categories:
  - id: blocked
    name: Blocked
    summary: The sending IP is blocked.
    outcome: { bounce_type: block, suppress_recipient: false, retryable: false, responsible: sender }
  - id: unclassified
    name: Unclassified
    summary: No rule matched.
    outcome: { bounce_type: undetermined, suppress_recipient: false, retryable: false, responsible: unknown }
"#;
    const SCRIPT: &str = r#"
fn banned(reply) {
    let parts = reply.enhanced.split(".");
    if parts.len() != 3 { return false; }
    let n = parse_int(parts[2]);
    n >= 606 && n <= 649
}
"#;
    const REPLY: &str = "550 5.7.606 Access denied, banned sending IP [192.0.2.1].";
    let rule = |when: &str| {
        format!("rules:\n  - id: banned\n    category: blocked\n    when: {when}\n    examples: [\"{REPLY}\"]\n")
    };
    let script = RuleSource::from_files([
        ("categories.yaml".into(), CATEGORIES.to_string()),
        ("rules.yaml".into(), rule("{ code: 550, script: banned.rhai::banned }")),
        ("banned.rhai".into(), SCRIPT.to_string()),
    ]);
    let pattern = RuleSource::from_files([
        ("categories.yaml".into(), CATEGORIES.to_string()),
        ("rules.yaml".into(), rule("{ code: 550, enhanced: 5.7.606 }")),
    ]);
    let reply = Reply::from_text(REPLY);
    for (name, source) in [("hook/script", script), ("hook/pattern", pattern)] {
        let rules = RuleSet::load(&source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.classify(&reply).category.id, "blocked", "{name}");
        c.bench_function(name, |b| b.iter(|| rules.classify(&reply).category.id.len()));
    }
}

/// Compiling (no verification) the shipped rules plus N synthetic ones.
fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for extra in SIZES {
        let mut source: Option<RuleSource> = None;
        if extra >= 10_000 {
            group.measurement_time(Duration::from_secs(20));
        }
        group.bench_function(BenchmarkId::new("rules", extra), |b| {
            let source = source.get_or_insert_with(|| source_with(extra));
            b.iter(|| {
                RuleSet::compile(source)
                    .map(|r| r.rules().len())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        });
    }
    group.finish();
}

/// What a reload costs: compiling and verifying (every example and test) the shipped rules
/// plus 10,000 synthetic ones, each with an example.
fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let mut source: Option<RuleSource> = None;
    group.bench_function("shipped+10k", |b| {
        let source = source.get_or_insert_with(|| {
            let mut files = shipped_source().files().to_vec();
            files.extend(synthetic::rule_files_with_examples(10_000, 42));
            RuleSource::from_files(files)
        });
        b.iter(|| {
            RuleSet::load(source)
                .map(|r| r.rules().len())
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    group.finish();
}

/// The diagnostic texts of the sisimai set that the shipped rules decide on weak evidence: the
/// replies the server templates. Templating each, then classifying each, one per iteration.
fn unmatched(c: &mut Criterion) {
    let rules = rules_with(0);
    let weak: Vec<Sample> = replies::load("sisimai_answers.jsonl")
        .into_iter()
        .filter(|s| {
            rules
                .classify(&Reply::parse(&s.input()).unwrap_or_default())
                .evidence
                .is_weak()
        })
        .collect();
    assert!(weak.len() >= 50, "weakly decided sisimai replies: {}", weak.len());
    let mut group = c.benchmark_group("weak_real_replies");
    group.bench_function("template", |b| {
        let mut next = cycling(&weak);
        b.iter(|| reply_template(next().text()).len())
    });
    group.bench_function("classify", |b| {
        let mut next = cycling(&weak);
        b.iter(|| classify_one(&rules, next()))
    });
    group.finish();
}

criterion_group!(benches, classify, normalise, hook, compile, load, unmatched);
criterion_main!(benches);

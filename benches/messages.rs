//! Bounce-message benchmarks, one message per iteration cycling through the real bounces of
//! `tests/data/sisimai-set-of-emails/maildir/bsd`: reading alone (MIME, then the DSN, ARF,
//! auto-reply and MTA readers), and reading then classifying every recipient with the shipped
//! rules. The whole CLI (files, threads, JSON out) is measured by timing `rebound classify
//! --messages` (BENCHMARKS.md). Run with `cargo bench --bench messages`.

// Only the root and the shipped rules are used here, not the sample replies.
#[allow(dead_code)]
mod replies;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rebound_engine::RuleSet;
use rebound_message::{ReadOptions, read};

/// The corpus's messages, in name order, read into memory once.
fn corpus() -> Vec<Vec<u8>> {
    let dir = replies::root().join("tests/data/sisimai-set-of-emails/maildir/bsd");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let messages: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    assert!(messages.len() > 600, "{}: {} messages", dir.display(), messages.len());
    messages
}

fn messages(c: &mut Criterion) {
    let corpus = corpus();
    let rules = RuleSet::compile(&replies::shipped_source()).unwrap_or_else(|e| panic!("{e}"));
    let options = ReadOptions::default();
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    eprintln!(
        "{} messages, {} bytes ({} bytes each on average)",
        corpus.len(),
        bytes,
        bytes / corpus.len()
    );
    let mut group = c.benchmark_group("messages");
    // Per iteration: one message.
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("read", |b| {
        b.iter(|| {
            let raw = &corpus[i % corpus.len()];
            i += 1;
            read(raw, &options).map_or(0, |r| r.recipients.len())
        })
    });
    let mut i = 0;
    group.bench_function("read_classify", |b| {
        b.iter(|| {
            let raw = &corpus[i % corpus.len()];
            i += 1;
            read(raw, &options).map_or(0, |r| {
                rebound_message::classify(&rules, &r)
                    .iter()
                    .map(|o| o.category.id.len())
                    .sum::<usize>()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, messages);
criterion_main!(benches);

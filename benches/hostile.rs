//! Hostile replies (issue 17): texts that repeat what the shipped rules' text prefilter looks for.
//!
//! First a sweep: every literal of `RuleSet::prefilter_literals` (every pattern's and every
//! provider marker's, not a hand-picked list), repeated alone and with `é ` after each
//! repetition, with the codes of its rules' examples (a 4xx and a 5xx when it has none) and
//! without and with the MX host of each provider its rules are scoped to; each shape at 1 KiB
//! and at 64 KiB, normalisation included. It prints the slowest replies and the largest ratio
//! of 64 KiB to 1 KiB, and fails (exit status 1, naming the literal) when a 64 KiB text costs
//! more than `LINEAR_FACTOR` times its 1 KiB text plus `SLACK`: the cost of a reply must grow
//! linearly with its length. Then criterion times the three replies and the sweep's
//! slowest shape at both sizes. Run with `cargo bench --bench hostile` (about a minute and a
//! half on a 2-core machine).

// Only the shipped rules are used here, not the sample replies.
#[allow(dead_code)]
mod replies;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use rebound_engine::{Reply, ReplyInput, RuleSet};

const SMALL: usize = 1 << 10;
const LARGE: usize = 64 << 10;
/// The 1 KiB text is timed this many times in a row: as long as one 64 KiB run.
const IN_A_ROW: u32 = (LARGE / SMALL) as u32;

/// A 64 KiB text may cost this many times its 1 KiB text: 64 if each byte cost the same, but
/// the caches hold a 1 KiB reply's text and regex state and not a 64 KiB one's, which makes
/// each byte about 1.5 times dearer (measured at 1 to 256 KiB: flat up to 16 KiB, then 1.5x)...
const LINEAR_FACTOR: f64 = 128.0;
/// ...plus this: enough for a preempted run on a loaded machine, or for a regex search that
/// the lazy DFA gives up on (after its cache has been cleared too often in this process) and
/// the PikeVM runs, at up to 70 ns a byte, 4.5 ms at 64 KiB; far below what a quadratic cost
/// adds (210 ms for an ASCII text, 4 to 12 s with `é`, before the fix).
const SLACK: Duration = Duration::from_millis(10);

/// One hostile reply, at any size.
#[derive(Clone)]
struct Shape {
    literal: String,
    /// Said once, before the repetitions.
    prefix: String,
    unit: String,
    code: u32,
    enhanced: String,
    host: String,
}

impl Shape {
    fn text(&self, size: usize) -> String {
        let mut text = String::with_capacity(size + self.unit.len());
        text.push_str(&self.prefix);
        while text.len() < size {
            text.push_str(&self.unit);
        }
        text
    }

    fn describe(&self) -> String {
        format!(
            "{:?}{:?} repeated, code {} {}, host {:?}",
            self.prefix, self.unit, self.code, self.enhanced, self.host
        )
    }
}

/// Normalises and classifies one reply.
fn classify(rules: &RuleSet, shape: &Shape, text: &str) -> usize {
    let input = ReplyInput {
        code: shape.code,
        enhanced: &shape.enhanced,
        text,
        remote_host: &shape.host,
        ..ReplyInput::default()
    };
    let reply = Reply::parse(&input).unwrap_or_default();
    rules.classify(&reply).category.id.len()
}

/// The shortest of `runs` timings of `repeat` classifications of `text` in a row, divided by
/// `repeat`: the least disturbed by other processes.
fn fastest(rules: &RuleSet, shape: &Shape, text: &str, repeat: u32, runs: usize) -> Duration {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..repeat {
                black_box(classify(rules, shape, black_box(text)));
            }
            started.elapsed() / repeat
        })
        .min()
        .unwrap_or_default()
}

/// Every hostile shape the shipped rules' literals give.
fn shapes(rules: &RuleSet) -> Vec<Shape> {
    let mut shapes = Vec::new();
    for literal in rules.prefilter_literals() {
        // A 4xx and a 5xx reply as the rules' examples have them (their enhanced codes too),
        // so that rules which need a code are asked; both when there are no examples.
        let mut codes: Vec<(u32, String)> = Vec::new();
        for class in [4, 5] {
            if let Some(example) = literal.examples.iter().find(|e| e.class() == class) {
                let code = if example.code == 0 {
                    u32::from(class) * 100 + 50
                } else {
                    u32::from(example.code)
                };
                codes.push((code, example.enhanced.map(|e| e.to_string()).unwrap_or_default()));
            }
        }
        if codes.is_empty() {
            codes = vec![(450, String::new()), (550, String::new())];
        }
        let hosts = std::iter::once(String::new()).chain(
            literal
                .providers
                .iter()
                .filter_map(|p| p.hosts.first().map(|glob| glob.replace('*', "mx"))),
        );
        for host in hosts {
            for (code, enhanced) in &codes {
                for unit in [format!("{} ", literal.literal), format!("{} é ", literal.literal)] {
                    shapes.push(Shape {
                        literal: literal.literal.clone(),
                        prefix: String::new(),
                        unit,
                        code: *code,
                        enhanced: enhanced.clone(),
                        host: host.clone(),
                    });
                }
            }
        }
    }
    shapes
}

/// One shape's times at both sizes.
struct Measured {
    shape: Shape,
    small: Duration,
    large: Duration,
    timed_again: bool,
}

impl Measured {
    fn limit(&self) -> Duration {
        self.small.mul_f64(LINEAR_FACTOR) + SLACK
    }

    /// Keeps the fastest of more runs at both sizes.
    fn time_again(&mut self, rules: &RuleSet) {
        self.timed_again = true;
        let (small, large) = (self.shape.text(SMALL), self.shape.text(LARGE));
        self.small = self.small.min(fastest(rules, &self.shape, &small, IN_A_ROW, 3));
        self.large = self.large.min(fastest(rules, &self.shape, &large, 1, 5));
    }
}

/// Times every shape at both sizes; a shape over the limit is timed again, more carefully,
/// and if still over it ends the run (exit status 1) naming its literal: a quadratic cost
/// would otherwise take hours to sweep. The 1 KiB text is timed 64 times in a row, as long as
/// one 64 KiB run, so that both see the same share of a machine other processes load: a lone
/// 1 KiB run fits in a time slice, a 64 KiB one is preempted.
fn sweep(rules: &RuleSet, shapes: &[Shape]) -> Vec<Measured> {
    shapes
        .iter()
        .map(|shape| {
            let (small, large) = (shape.text(SMALL), shape.text(LARGE));
            let mut m = Measured {
                shape: shape.clone(),
                small: fastest(rules, shape, &small, IN_A_ROW, 1),
                large: fastest(rules, shape, &large, 1, 1),
                timed_again: false,
            };
            for _ in 0..3 {
                if m.large <= m.limit() {
                    break;
                }
                m.time_again(rules);
            }
            if m.large > m.limit() {
                println!(
                    "NOT LINEAR: literal {:?}: 64 KiB took {:.3?}, over {:.3?} ({LINEAR_FACTOR} x {:.3?} at 1 KiB + {SLACK:?}); {}",
                    m.shape.literal,
                    m.large,
                    m.limit(),
                    m.small,
                    m.shape.describe()
                );
                std::process::exit(1);
            }
            m
        })
        .collect()
}

fn main() {
    let rules = RuleSet::compile(&replies::shipped_source()).unwrap_or_else(|e| panic!("{e}"));
    let shapes = shapes(&rules);
    let started = Instant::now();
    let mut measured = sweep(&rules, &shapes);
    println!(
        "hostile sweep: {} shapes from {} literals in {:.1?}; limit {LINEAR_FACTOR} x the 1 KiB time + {SLACK:?}",
        measured.len(),
        rules.prefilter_literals().len(),
        started.elapsed()
    );

    // One run each is enough to find the slow shapes and the large ratios, not to rank them on
    // a loaded machine: the five slowest and the largest ratio are timed again until they are
    // shapes that were timed again.
    let ratio = |m: &Measured| m.large.as_secs_f64() / m.small.as_secs_f64().max(1e-9);
    for _ in 0..200 {
        measured.sort_by_key(|m| std::cmp::Reverse(m.large));
        let slow = measured.iter().take(5).position(|m| !m.timed_again);
        let largest_ratio = (0..measured.len()).max_by(|&a, &b| ratio(&measured[a]).total_cmp(&ratio(&measured[b])));
        let Some(at) = slow.or(largest_ratio.filter(|&at| !measured[at].timed_again)) else {
            break;
        };
        measured[at].time_again(&rules);
    }
    measured.sort_by_key(|m| std::cmp::Reverse(m.large));
    println!("slowest at 64 KiB (per reply, normalisation included):");
    for m in measured.iter().take(5) {
        println!("  {:>10.3?} (1 KiB {:>9.3?}) {}", m.large, m.small, m.shape.describe());
    }
    if let Some(m) = measured.iter().max_by(|a, b| ratio(a).total_cmp(&ratio(b))) {
        println!(
            "largest ratio 64 KiB / 1 KiB: {:.1} ({:.3?} / {:.3?}) {}",
            ratio(m),
            m.large,
            m.small,
            m.shape.describe()
        );
    }
    let mut ratios: Vec<f64> = measured.iter().map(ratio).collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ratios
            .get((q * (ratios.len().max(1) - 1) as f64).round() as usize)
            .copied()
    };
    if let (Some(median), Some(p99)) = (at(0.5), at(0.99)) {
        // The largest ratios are of replies a few hundred microseconds long, whose 64 KiB runs
        // a loaded machine preempted every time: SLACK is for them.
        println!("ratio 64 KiB / 1 KiB: median {median:.1}, 99th percentile {p99:.1}");
    }
    let mut timed: Vec<(String, Shape)> = [
        ("name service error", "451 ", "", "name_service_error"),
        (
            "unusual rate of unsolicited",
            "",
            "gmail-smtp-in.l.google.com",
            "gmail_unusual_rate",
        ),
        ("no smtp service", "", "mx00.gmx.net", "gmx_no_smtp_service"),
    ]
    .into_iter()
    .map(|(literal, prefix, host, name)| {
        let shape = Shape {
            literal: literal.to_string(),
            prefix: prefix.to_string(),
            unit: format!("{literal} é "),
            code: 0,
            enhanced: String::new(),
            host: host.to_string(),
        };
        (name.to_string(), shape)
    })
    .collect();
    if let Some(worst) = measured.first() {
        timed.push(("sweep_slowest".to_string(), worst.shape.clone()));
    }
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = criterion.benchmark_group("hostile");
    for (name, shape) in &timed {
        for size in [SMALL, LARGE] {
            let text = shape.text(size);
            group.bench_function(BenchmarkId::new(name.as_str(), size), |b| {
                b.iter(|| classify(&rules, shape, black_box(&text)))
            });
        }
    }
    group.finish();
    criterion.final_summary();
}

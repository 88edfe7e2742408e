//! Hostile replies (issue 17): texts that repeat what the shipped rules' text prefilter looks for.
//!
//! First a sweep: every literal of `RuleSet::prefilter_literals` (every pattern's and every
//! provider marker's, not a hand-picked list), repeated alone and with `é ` after each
//! repetition, with the codes of its rules' examples (a 4xx and a 5xx when it has none) and
//! without and with the MX host of each provider its rules are scoped to; each shape at 1 KiB
//! and at 64 KiB, normalisation included. It prints the slowest replies and the largest ratio
//! of 64 KiB to 1 KiB, and fails (exit status 1, naming the literal) when a 64 KiB text costs
//! more than `LINEAR_FACTOR` times its 1 KiB text plus `SLACK`: the cost of a reply must grow
//! linearly with its length. Then criterion times the issue's three replies and the sweep's
//! slowest shape at both sizes. Run with `cargo bench --bench hostile` (about a minute and a
//! half on a 2-core machine).
//!
//! Then hostile messages (issue 19, `messages` below): raw emails of each hostile shape (huge
//! part counts, MIME nested past the limit, giant and folded headers, long DSN fields, many
//! recipients, junk encodings, lone CRs, HTML, MTA reports repeating their cues) grown from
//! 1 KiB to 10 MiB, each read and classified. It prints each shape's cost per byte, the slowest
//! shape and the largest growth of the cost per byte, and the peak memory, and fails (exit
//! status 1) when a 10 MiB message costs more than `MESSAGE_LINEAR_FACTOR` times its 256 KiB
//! message per byte plus `MESSAGE_SLACK`; criterion then times the three slowest at 256 KiB.
//! `REBOUND_HOSTILE=messages` runs only the messages' sweep.

// Only the shipped rules are used here, not the sample replies.
#[allow(dead_code)]
mod replies;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use rebound_engine::{Reply, ReplyInput, RuleSet};
use rebound_message::ReadOptions;

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
    let message_shapes = messages::sweep(&rules);
    if std::env::var("REBOUND_HOSTILE").is_ok_and(|only| only == "messages") {
        return;
    }
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
    let mut group = criterion.benchmark_group("hostile_message");
    // The three slowest message shapes of the sweep, at 256 KiB.
    for (name, shape) in message_shapes.into_iter().take(3) {
        let raw = shape(messages::CRITERION_SIZE);
        group.bench_function(BenchmarkId::new(name, messages::CRITERION_SIZE), |b| {
            b.iter(|| messages::read_and_classify(&rules, black_box(&raw)))
        });
    }
    group.finish();
    criterion.final_summary();
}

/// Hostile raw emails, grown from 1 KiB to 10 MiB (the default `max_email_bytes`).
mod messages {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use rebound_engine::RuleSet;

    use super::ReadOptions;

    /// The sizes each shape is grown to; the largest is the default `max_email_bytes`.
    const SIZES: [usize; 5] = [1 << 10, 16 << 10, 256 << 10, 4 << 20, 10 << 20];
    /// The size whose cost per byte the largest is held to: past the caches' reach already, and
    /// long enough that a message's fixed cost (its headers, the MIME walk) is noise.
    const BASE: usize = 256 << 10;
    /// A 10 MiB message may cost this many times its 256 KiB message per byte: a few times for
    /// memory that no cache holds, far below the 40 a cost quadratic in the size would give.
    const MESSAGE_LINEAR_FACTOR: f64 = 4.0;
    /// ...plus this, for a run preempted on a loaded machine.
    const MESSAGE_SLACK: Duration = Duration::from_millis(50);
    /// The size criterion times each shape at.
    pub const CRITERION_SIZE: usize = 256 << 10;

    /// A shape: its raw message at about `size` bytes, never more.
    pub type Shape = fn(usize) -> Vec<u8>;

    /// `head`, then `unit` as often as fits with `tail` in `size` bytes, then `tail`.
    fn grow(head: &str, unit: &[u8], tail: &str, size: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(head.as_bytes());
        while out.len() + unit.len() + tail.len() <= size {
            out.extend_from_slice(unit);
        }
        out.extend_from_slice(tail.as_bytes());
        out
    }

    /// Like `grow`, with units that differ: `unit(n)` is the n-th.
    fn grow_with(head: &str, unit: impl Fn(usize) -> String, size: usize) -> Vec<u8> {
        let mut out = head.as_bytes().to_vec();
        for n in 0.. {
            let next = unit(n);
            if out.len() + next.len() > size {
                break;
            }
            out.extend_from_slice(next.as_bytes());
        }
        out
    }

    const FROM: &str = "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\n";
    const DSN_HEAD: &str = "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\n\
        Subject: Delivery Status Notification (Failure)\nMIME-Version: 1.0\n\
        Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\n\n\
        --r\nContent-Type: text/plain\n\nYour message could not be delivered.\n\
        --r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n\
        Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n";
    const DSN_TAIL: &str = "\n--r\nContent-Type: text/rfc822-headers\n\nMessage-ID: <1@example.org>\n--r--\n";

    /// Every shape, by name.
    pub fn shapes() -> Vec<(&'static str, Shape)> {
        vec![
            ("empty_parts", |size| {
                let head = format!("{FROM}Content-Type: multipart/mixed; boundary=\"s\"\n\n");
                grow(&head, b"--s\n\nx\n", "--s--\n", size)
            }),
            ("attached_messages_side_by_side", |size| {
                let head = format!("{FROM}Content-Type: multipart/mixed; boundary=\"s\"\n\n");
                let mut unit = b"--s\nContent-Type: message/rfc822\n\nFrom: x@example.org\n\n".to_vec();
                unit.extend(std::iter::repeat_n(b'a', 2000));
                unit.extend_from_slice(b"\xff\n");
                grow(&head, &unit, "--s--\n", size)
            }),
            ("nested_attached_messages", |size| {
                grow(
                    FROM,
                    b"Content-Type: message/rfc822\n\nFrom: b@example.org\n",
                    "\nhello\n",
                    size,
                )
            }),
            ("nested_multiparts", |size| {
                grow_with(
                    FROM,
                    |n| format!("Content-Type: multipart/mixed; boundary=\"b{n}x\"\n\n--b{n}x\n"),
                    size,
                )
            }),
            ("one_header_line", |size| grow("Subject: ", b"a", "\n\nbody\n", size)),
            ("many_headers", |size| grow("", b"X-H: v\n", "\nbody\n", size)),
            ("folded_header", |size| grow("Subject: a", b"\n b", "\n\nbody\n", size)),
            ("encoded_words", |size| {
                grow(
                    "Subject: ",
                    b"=?utf-8?B?w6k=?= =?iso-2022-jp?Q?=1B$B?= ",
                    "\n\nbody\n",
                    size,
                )
            }),
            ("dsn_many_recipients", |size| {
                grow_with(
                    DSN_HEAD,
                    |n| format!("\nFinal-Recipient: rfc822; u{n}@example.com\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n"),
                    size - DSN_TAIL.len(),
                )
                .into_iter()
                .chain(DSN_TAIL.bytes())
                .collect()
            }),
            ("dsn_long_diagnostic", |size| {
                let head = format!("{DSN_HEAD}Diagnostic-Code: smtp; 550 ");
                grow(&head, "user unknown é ".as_bytes(), DSN_TAIL, size)
            }),
            ("dsn_folded_diagnostic", |size| {
                let head = format!("{DSN_HEAD}Diagnostic-Code: smtp; 550");
                grow(&head, b"\n    5.1.1 user unknown", DSN_TAIL, size)
            }),
            ("dsn_status_lines", |size| {
                grow(DSN_HEAD, b"Status: 5.1.1\n", DSN_TAIL, size)
            }),
            ("body_one_line", |size| grow(&format!("{FROM}\n"), b"x", "\n", size)),
            ("lone_crs", |size| grow(&format!("{FROM}\n"), b"\r", "", size)),
            ("base64_junk", |size| {
                grow(
                    &format!("{FROM}Content-Transfer-Encoding: base64\n\n"),
                    b"!@#$%^&*()=\n",
                    "",
                    size,
                )
            }),
            ("quoted_printable_soft_breaks", |size| {
                grow(
                    &format!("{FROM}Content-Transfer-Encoding: quoted-printable\n\n"),
                    b"a=\n=3D=\n",
                    "",
                    size,
                )
            }),
            ("iso_2022_jp_escapes", |size| {
                let head = format!("{FROM}Content-Type: text/plain; charset=iso-2022-jp\n\n");
                grow(&head, b"\x1b$B%F%9%H\x1b(B \x1b$", "\n", size)
            }),
            ("html_tags", |size| {
                let head = format!("{FROM}Content-Type: text/html\n\n<html><body>");
                grow(
                    &head,
                    b"<p>550 5.1.1 <b>bob@example.com</b>&amp;<br></p><div>",
                    "</body></html>\n",
                    size,
                )
            }),
            ("exim_report_recipients", |size| {
                let head = format!(
                    "{FROM}Subject: Mail delivery failed: returning message to sender\n\n\
                     This message was created automatically by mail delivery software.\n\n\
                     A message that you sent could not be delivered to one or more of its\n\
                     recipients. This is a permanent error. The following address(es) failed:\n\n"
                );
                grow(&head, b"  bob@example.com\n    SMTP error from remote mail server after RCPT TO:<bob@example.com>:\n    550 5.1.1 user unknown\n", "", size)
            }),
            ("postfix_report_recipients", |size| {
                let head = format!(
                    "{FROM}Subject: Undelivered Mail Returned to Sender\n\n\
                     This is the mail system at host mx.example.net.\n\n\
                     I'm sorry to have to inform you that your message could not\n\
                     be delivered to one or more recipients.\n\n"
                );
                grow(&head, b"<bob@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1\n    user unknown (in reply to RCPT TO command)\n", "", size)
            }),
            ("qmail_report_cues", |size| {
                let head = format!("{FROM}\nHi. This is the qmail-send program at mx.example.net.\n");
                grow(
                    &head,
                    b"<bob@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\nRemote host said: 550\n",
                    "",
                    size,
                )
            }),
            ("addresses_only", |size| {
                grow(&format!("{FROM}\n"), b"<a@b> ", "\n", size)
            }),
            ("at_signs_and_brackets", |size| {
                grow(&format!("{FROM}\n"), b"@<@>@:", "\n", size)
            }),
        ]
    }

    /// Reads and classifies one message: the work a `ClassifyMessage` call does.
    pub fn read_and_classify(rules: &RuleSet, raw: &[u8]) -> usize {
        match rebound_message::read(raw, &ReadOptions::default()) {
            Ok(report) => rebound_message::classify(rules, &report).len() + 1,
            Err(error) => error.code().len(),
        }
    }

    /// The fastest of three runs of the message, each as many times in a row as make 4 MiB,
    /// per message.
    fn time(rules: &RuleSet, raw: &[u8]) -> Duration {
        let repeat = ((4 << 20) / raw.len().max(1)).max(1) as u32;
        (0..3)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..repeat {
                    black_box(read_and_classify(rules, black_box(raw)));
                }
                started.elapsed() / repeat
            })
            .min()
            .unwrap_or_default()
    }

    /// The process's peak resident memory so far (Linux), in KiB.
    fn peak_rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn size_name(size: usize) -> String {
        if size >= 1 << 20 {
            format!("{} MiB", size >> 20)
        } else {
            format!("{} KiB", size >> 10)
        }
    }

    /// Times every shape at every size, prints the table and the worst, and ends the run
    /// (exit status 1) on a shape whose cost grows faster than its size. Returns the shapes,
    /// slowest at 10 MiB first.
    pub fn sweep(rules: &RuleSet) -> Vec<(&'static str, Shape)> {
        let started = Instant::now();
        let rss_before = peak_rss_kib();
        let mut peak = rss_before;
        let mut rows = Vec::new();
        println!(
            "hostile messages: read and classified, per message (ns per byte at 10 MiB; growth = per-byte cost at 10 MiB / at 256 KiB)"
        );
        for (name, shape) in shapes() {
            let mut times = Vec::new();
            let mut answer = String::new();
            for size in SIZES {
                let raw = shape(size);
                assert!(raw.len() <= size, "{name} at {size} is {} bytes", raw.len());
                let elapsed = time(rules, &raw);
                if size == SIZES[SIZES.len() - 1] {
                    answer = match rebound_message::read(&raw, &ReadOptions::default()) {
                        Ok(report) => format!("{} recipients", report.recipients.len()),
                        Err(error) => error.field().to_string(),
                    };
                }
                times.push((raw.len(), elapsed));
            }
            let per_byte = |(len, t): (usize, Duration)| t.as_secs_f64() * 1e9 / len.max(1) as f64;
            let base = times
                .iter()
                .copied()
                .find(|&(len, _)| len <= BASE && len > BASE / 2)
                .unwrap_or(times[0]);
            let (largest_len, largest) = times[times.len() - 1];
            let growth = per_byte((largest_len, largest)) / per_byte(base).max(1e-9);
            let cells: Vec<String> = times
                .iter()
                .zip(SIZES)
                .map(|(&(_, t), size)| format!("{}: {t:.2?}", size_name(size)))
                .collect();
            // The peak resident memory only grows: a rise is this shape's, at 10 MiB.
            let now = peak_rss_kib();
            let rise = match (peak, now) {
                (Some(before), Some(after)) if after > before => {
                    format!(", peak memory +{} MiB", (after - before) >> 10)
                }
                _ => String::new(),
            };
            peak = now;
            println!(
                "  {name:<32} {:>6.1} ns/B  growth {growth:>5.2}  ({answer}{rise}) {}",
                per_byte((largest_len, largest)),
                cells.join(", ")
            );
            let limit = base
                .1
                .mul_f64(largest_len as f64 / base.0.max(1) as f64 * MESSAGE_LINEAR_FACTOR)
                + MESSAGE_SLACK;
            if largest > limit {
                println!(
                    "NOT LINEAR: message shape {name}: 10 MiB took {largest:.3?}, over {limit:.3?} ({MESSAGE_LINEAR_FACTOR} x per byte at 256 KiB {:.3?} + {MESSAGE_SLACK:?})",
                    base.1
                );
                std::process::exit(1);
            }
            rows.push((name, shape, largest, growth));
        }
        rows.sort_by_key(|row| std::cmp::Reverse(row.2));
        if let Some((name, _, largest, _)) = rows.first() {
            println!("slowest message shape at 10 MiB: {name} ({largest:.2?})");
        }
        if let Some((name, _, _, growth)) = rows.iter().max_by(|a, b| a.3.total_cmp(&b.3)) {
            println!("largest growth of the cost per byte, 256 KiB to 10 MiB: {growth:.2} ({name})");
        }
        if let (Some(before), Some(after)) = (rss_before, peak_rss_kib()) {
            println!(
                "peak resident memory: {} MiB before the messages, {} MiB after",
                before >> 10,
                after >> 10
            );
        }
        println!("hostile messages: {} shapes in {:.1?}", rows.len(), started.elapsed());
        rows.into_iter().map(|(name, shape, _, _)| (name, shape)).collect()
    }
}

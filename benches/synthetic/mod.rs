//! Synthetic rule sets for benchmarks: realistic mixes of what operators add on top of the
//! shipped rules. Deterministic (a fixed xorshift seed), so runs compare.

use std::path::PathBuf;

/// Words bounce texts are made of; phrases start with one, as operators' patterns do.
const BOUNCE_WORDS: &[&str] = &[
    "mailbox",
    "quota",
    "rejected",
    "blocked",
    "unknown",
    "user",
    "recipient",
    "denied",
    "policy",
    "spam",
    "relay",
    "domain",
    "sender",
    "address",
    "refused",
    "deferred",
    "limit",
    "rate",
    "listed",
    "reputation",
    "authentication",
    "message",
    "delivery",
    "temporarily",
    "permanently",
    "access",
    "service",
    "account",
];

/// A deterministic pseudo-random stream.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A provider-style token (`kqzvbrtx`), like `TSS04` or `OFR_506` but never in a real reply.
fn token(rng: &mut Rng) -> String {
    (0..8).map(|_| char::from(b'a' + rng.below(26) as u8)).collect()
}

const CATEGORIES: &[&str] = &[
    "invalid_address",
    "mailbox",
    "mailbox_full",
    "rate_limit",
    "dmarc",
    "blocked",
    "rejection",
    "recipient_error",
    "sender_reputation",
];
const CODES: &[u16] = &[421, 450, 451, 452, 550, 551, 552, 553, 554];

/// Rules per file: one rule file's YAML parse budget (250,000 nodes) holds about 20,000 of these,
/// and operators split large sets anyway.
const RULES_PER_FILE: usize = 10_000;

/// `count` rules as YAML files under `synthetic/`. The mix: 40% text rules (literal phrases,
/// word-bounded tokens, alternations, gapped regexes; half also pinned to a code), 30% exact code
/// and enhanced code, 15% enhanced wildcards, 15% codes only. Each has its own priority so no two
/// are equal, and all rank above the shipped generic wording, as operators' additions are meant to.
pub fn rule_files(count: usize, seed: u64) -> Vec<(PathBuf, String)> {
    generate(count, seed, false)
}

/// The same mix as operators would ship it for a reload: every rule pinned to a token of its own
/// (so none takes over another rule's replies) and carrying an example that `check` verifies.
pub fn rule_files_with_examples(count: usize, seed: u64) -> Vec<(PathBuf, String)> {
    generate(count, seed, true)
}

fn generate(count: usize, seed: u64, pinned: bool) -> Vec<(PathBuf, String)> {
    let mut rng = Rng::new(seed);
    let mut files = Vec::new();
    let mut out = String::new();
    for i in 0..count {
        if i % RULES_PER_FILE == 0 {
            if !out.is_empty() {
                files.push(std::mem::take(&mut out));
            }
            out.push_str("rules:\n");
        }
        let category = rng.pick(CATEGORIES);
        let code = CODES[rng.below(CODES.len() as u64) as usize];
        let class = code / 100;
        let subject = rng.below(8);
        let (t1, t2) = (token(&mut rng), token(&mut rng));
        let pin = if pinned {
            format!(", text: \"\\\\b{t1}\\\\b\"")
        } else {
            String::new()
        };
        let (when, example) = match i % 20 {
            0..=7 => {
                let word = rng.pick(BOUNCE_WORDS);
                let (text, sample) = match i % 10 {
                    0..=4 => (format!("{word} {t1}"), format!("{word} {t1}")),
                    5 | 6 => (format!("\\\\b{t1}\\\\b"), format!("ref {t1} here")),
                    7 | 8 => (format!("{word} (?:{t1}|{t2})"), format!("{word} {t2}")),
                    _ => (format!("{word}\\\\s+\\\\S*{t1}"), format!("{word}  x{t1}")),
                };
                if i % 2 == 0 {
                    (
                        format!("{{ code: {code}, text: \"{text}\" }}"),
                        format!("{code} {sample}"),
                    )
                } else {
                    (format!("{{ text: \"{text}\" }}"), format!("{code} {sample}"))
                }
            }
            8..=13 => {
                let detail = rng.below(1000);
                (
                    format!("{{ code: {code}, enhanced: {class}.{subject}.{detail}{pin} }}"),
                    format!("{code} {class}.{subject}.{detail} {t1}"),
                )
            }
            14..=16 => (
                format!("{{ code: {class}xx, enhanced: \"{class}.{subject}.*\"{pin} }}"),
                format!("{code} {class}.{subject}.1 {t1}"),
            ),
            _ => (format!("{{ code: {code}{pin} }}"), format!("{code} {t1}")),
        };
        out.push_str(&format!(
            "  - id: synthetic/{i}\n    category: {category}\n    priority: {}\n    when: {when}\n",
            // Above every shipped generic rule (at most 92), as an operator's override would be.
            100 + (count - i) as i64
        ));
        if pinned {
            out.push_str(&format!("    examples: [\"{example}\"]\n"));
        }
    }
    if !out.is_empty() {
        files.push(out);
    }
    files
        .into_iter()
        .enumerate()
        .map(|(n, yaml)| (PathBuf::from(format!("synthetic/part-{n:03}.yaml")), yaml))
        .collect()
}

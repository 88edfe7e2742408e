//! How the message reader agrees with Sisimai 5.1.0 on the real bounces of Sisimai's set of
//! emails (`tests/data/sisimai-set-of-emails/`, BSD-2). Sisimai is one mature system, not the
//! truth: its reasons map to our categories through the shared crosswalk, and the rows where we
//! disagree on purpose are listed with why. The test prints every disagreement and enforces the
//! floors: the bounce decision, the failed-recipient set, status and reply code, the category,
//! and every complaint and auto-reply read as such.
//!
//! A Maildir file is one message. Sisimai reads a file with an unescaped `From ` line in its
//! body as an mbox of two (`lhost-postfix-49`, `-50`); its answers for such a file are taken
//! together as the answer for the one message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/sisimai_crosswalk.rs"]
#[allow(dead_code)]
mod sisimai_crosswalk;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rebound_engine::RuleSet;
use rebound_message::mbox::{Mbox, MboxItem};
use rebound_message::{Kind, ReadOptions, Report};
use serde::Deserialize;
use sisimai_crosswalk::{CROSSWALK, Crosswalk, DISAGREEMENTS};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> PathBuf {
    root().join("tests/data/sisimai-set-of-emails")
}

/// One line of Sisimai's answers: one recipient of one message.
#[derive(Deserialize)]
struct Answer {
    file: String,
    message: usize,
    parsed: bool,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    reply_code: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
}

/// Every message of the corpus, keyed by (file, 1-based number within the file).
fn messages() -> BTreeMap<(String, usize), Vec<u8>> {
    let dir = corpus();
    let mut out = BTreeMap::new();
    for sub in ["maildir/bsd", "maildir/dos", "maildir/not"] {
        let mut names: Vec<_> = fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            out.insert((name, 1), fs::read(&path).unwrap());
        }
    }
    let mut boxes: Vec<_> = fs::read_dir(dir.join("mailbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    boxes.sort();
    for path in boxes {
        let name = format!("mailbox/{}", path.file_name().unwrap().to_string_lossy());
        let file = BufReader::new(fs::File::open(&path).unwrap());
        for (i, item) in Mbox::new(file, 10 << 20).enumerate() {
            match item.unwrap() {
                MboxItem::Message(bytes) => out.insert((name.clone(), i + 1), bytes),
                MboxItem::TooLarge { size } => panic!("{name} message {} is {size} bytes", i + 1),
            };
        }
    }
    out
}

/// Sisimai's answers grouped by message.
fn answers() -> BTreeMap<(String, usize), Vec<Answer>> {
    let text = fs::read_to_string(corpus().join("sisimai-5.1.0-answers.jsonl")).unwrap();
    let mut out: BTreeMap<_, Vec<Answer>> = BTreeMap::new();
    for line in text.lines() {
        let a: Answer = serde_json::from_str(line).unwrap();
        let message = if a.file.starts_with("maildir/") { 1 } else { a.message };
        out.entry((a.file.clone(), message)).or_default().push(a);
    }
    out
}

/// Messages Sisimai 5.1.0 finds no bounce in that are bounces, each with why: here we disagree
/// on purpose, and the decision counts them as bounces.
const SISIMAI_MISSED_BOUNCES: &[(&str, &str)] = &[
    (
        "lhost-mimecast-01",
        "a Mimecast alert: 'could not be delivered' to an address, with the receiver's 5.4.1 refusal",
    ),
    (
        "lhost-x1-03",
        "'The following addresses had delivery errors', then the address and [User unknown]",
    ),
    (
        "lhost-x1-04",
        "'The following addresses had delivery errors', then the address and [Connection timed out]",
    ),
    (
        "lhost-mfilter-05",
        "m-FILTER in Japanese: sending to the address failed, with the server's 452 4.3.1 after DATA",
    ),
];

/// Sisimai's kind for a message, from its reasons.
fn sisimai_kind(rows: &[Answer]) -> Kind {
    let reasons: Vec<&str> = rows
        .iter()
        .filter(|r| r.parsed)
        .filter_map(|r| r.reason.as_deref())
        .collect();
    if reasons.is_empty() {
        Kind::NotBounce
    } else if reasons.contains(&"feedback") {
        Kind::Feedback
    } else if reasons.contains(&"vacation") {
        Kind::AutoReply
    } else if reasons.iter().all(|r| *r == "delivered") {
        Kind::NotBounce
    } else {
        Kind::Bounce
    }
}

/// Sisimai's own pseudo-statuses (`5.0.9xx`, `4.0.9xx`) are not in the message: not compared.
fn pseudo_status(status: &str) -> bool {
    status
        .rsplit('.')
        .next()
        .is_some_and(|d| d.len() == 3 && d.starts_with('9'))
}

fn accepted(file: &str, reason: &str) -> Option<&'static [&'static str]> {
    if let Some((_, _, ours, _)) = DISAGREEMENTS
        .iter()
        .find(|(f, r, _, _)| file.contains(f) && *r == reason)
    {
        return Some(ours);
    }
    match &CROSSWALK.iter().find(|(r, _)| *r == reason)?.1 {
        Crosswalk::Agree(categories) => Some(categories),
        Crosswalk::NotAReply => None,
    }
}

/// Whether `code` opens a reply in `diagnostic`: at its start, or after a `said:`-style wrapper,
/// as a word followed by a space, a hyphen or the end.
fn starts_reply(diagnostic: &str, code: u16) -> bool {
    let code = code.to_string();
    diagnostic.match_indices(&code).any(|(at, _)| {
        let before = diagnostic[..at].chars().next_back();
        let after = diagnostic[at + code.len()..].chars().next();
        before.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '.') && after.is_none_or(|c| c == ' ' || c == '-')
    })
}

/// A count of agreements out of a total, with the misses to print.
#[derive(Default)]
struct Tally {
    agree: usize,
    total: usize,
    misses: Vec<String>,
}

impl Tally {
    fn add(&mut self, agrees: bool, miss: impl FnOnce() -> String) {
        self.total += 1;
        if agrees {
            self.agree += 1;
        } else {
            self.misses.push(miss());
        }
    }

    fn share(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.agree as f64 / self.total as f64
        }
    }

    fn print(&self, what: &str) {
        println!("\n{what}: {}/{} ({:.1}%)", self.agree, self.total, 100.0 * self.share());
        for m in &self.misses {
            println!("  {m}");
        }
    }
}

#[test]
fn sisimai_s_missed_bounces_are_in_the_corpus_and_found_no_bounce_in() {
    let answers = answers();
    for (fragment, _) in SISIMAI_MISSED_BOUNCES {
        let rows: Vec<_> = answers.iter().filter(|(k, _)| k.0.contains(fragment)).collect();
        assert!(!rows.is_empty(), "{fragment} is not in the corpus");
        for (_, rows) in rows {
            assert_eq!(sisimai_kind(rows), Kind::NotBounce, "{fragment}: Sisimai reads it now");
        }
    }
}

#[test]
fn the_reader_agrees_with_sisimai_on_its_set_of_emails() {
    let rules = RuleSet::load_dir(&root().join("rules")).unwrap_or_else(|e| panic!("rules do not load:\n{e}"));
    let messages = messages();
    let answers = answers();
    let mut decision = Tally::default();
    let mut special = Tally::default();
    let mut recipients = Tally::default();
    let mut codes = Tally::default();
    let mut codes_sisimai_lacks = 0;
    let mut categories = Tally::default();
    let mut errors = Vec::new();
    for (key, raw) in &messages {
        let Some(rows) = answers.get(key) else { continue };
        let name = format!("{}#{}", key.0, key.1);
        let report: Report = match rebound_message::read(raw, &ReadOptions::default()) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        let theirs = sisimai_kind(rows);
        let ours = report.kind;
        if theirs == Kind::NotBounce {
            let missed = SISIMAI_MISSED_BOUNCES.iter().find(|(f, _)| key.0.contains(f));
            let agrees = match missed {
                Some(_) => ours == Kind::Bounce,
                None => ours != Kind::Bounce,
            };
            decision.add(agrees, || {
                format!("{name}: Sisimai not a bounce, ours {ours:?} ({})", report.format)
            });
            continue;
        }
        decision.add((ours == Kind::Bounce) == (theirs == Kind::Bounce), || {
            format!("{name}: Sisimai {theirs:?}, ours {ours:?} ({})", report.format)
        });
        if matches!(theirs, Kind::Feedback | Kind::AutoReply) {
            special.add(ours == theirs, || format!("{name}: Sisimai {theirs:?}, ours {ours:?}"));
        }
        let their_set: BTreeSet<String> = rows
            .iter()
            .filter_map(|r| r.recipient.as_deref())
            .map(str::to_ascii_lowercase)
            .collect();
        let our_set: BTreeSet<String> = report
            .recipients
            .iter()
            .map(|r| r.recipient.to_ascii_lowercase())
            .collect();
        recipients.add(their_set == our_set, || {
            format!("{name}: Sisimai {their_set:?}, ours {our_set:?} ({})", report.format)
        });
        if theirs != Kind::Bounce {
            continue;
        }
        let outcomes = rebound_message::classify(&rules, &report);
        for row in rows {
            let Some(recipient) = row.recipient.as_deref() else {
                continue;
            };
            let found = report
                .recipients
                .iter()
                .position(|r| r.recipient.eq_ignore_ascii_case(recipient));
            let their_status = row.status.as_deref().unwrap_or("");
            let their_code = row.reply_code.unwrap_or(0);
            match found {
                Some(i) => {
                    let r = &report.recipients[i];
                    let status_agrees = pseudo_status(their_status) || r.status == their_status;
                    // Where Sisimai gives no reply code and ours is the one the diagnostic itself
                    // carries, ours is the message's: counted as agreeing, and counted apart.
                    let code_read = their_code == 0 && r.reply_code != 0 && starts_reply(&r.diagnostic, r.reply_code);
                    codes_sisimai_lacks += usize::from(code_read);
                    codes.add(status_agrees && (r.reply_code == their_code || code_read), || {
                        format!(
                            "{name} {recipient}: Sisimai {their_status} {their_code}, ours {} {}",
                            r.status, r.reply_code
                        )
                    });
                }
                None => codes.add(false, || format!("{name} {recipient}: not read")),
            }
            let Some(reason) = row.reason.as_deref() else { continue };
            let Some(accept) = accepted(&key.0, reason) else {
                continue;
            };
            let category = found.map_or("(not read)", |i| outcomes[i].category.id.as_str());
            categories.add(accept.contains(&category), || {
                format!(
                    "{name} {recipient}: Sisimai {reason} ({}), ours {category}",
                    accept.join("|")
                )
            });
        }
    }
    decision.print("bounce decision (every message; SISIMAI_MISSED_BOUNCES held as bounces)");
    special.print("complaints and auto-replies");
    recipients.print("recipient set");
    codes.print("status and reply code (recipients)");
    println!("  of which reply codes the diagnostic carries and Sisimai gives none: {codes_sisimai_lacks}");
    categories.print("category through the crosswalk (recipients)");
    println!("\nunreadable: {}", errors.len());
    for e in &errors {
        println!("  {e}");
    }
    let floors = [
        ("bounce decision", decision.share(), 0.99),
        ("complaints and auto-replies", special.share(), 1.0),
        ("recipient set", recipients.share(), 0.97),
        ("status and reply code", codes.share(), 0.95),
        ("category", categories.share(), 0.90),
    ];
    let failed: Vec<String> = floors
        .iter()
        .filter(|(_, share, floor)| share < floor)
        .map(|(what, share, floor)| format!("{what}: {:.1}% < {:.0}%", share * 100.0, floor * 100.0))
        .collect();
    assert!(failed.is_empty(), "floors not met: {}", failed.join("; "));
}

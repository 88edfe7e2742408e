//! `rebound classify --report` and `rebound rule new`: the summary's counts add up, the top
//! unmatched template is the repeated one, and a scaffolded rule for a weakly decided real reply
//! passes `check` and then decides that reply on its text.

use std::collections::HashSet;
use std::path::Path;

use rebound_engine::{Reply, ReplyInput};
use serde_json::Value;

use crate::util::{rebound, root, run_with_stdin, shipped_rules};

/// Replies with one repeated weak wording (to different recipients), a few others, and a bad line.
fn crafted_input() -> (String, usize) {
    let mut lines = Vec::new();
    for n in 0..7 {
        lines.push(format!(
            "550 5.7.1 <user{n}@example{n}.com>: frobnicated by the quux policy engine"
        ));
    }
    lines.push("550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown".to_string());
    lines.push("452 4.2.2 Mailbox full".to_string());
    lines.push("554 totally distinct wording here".to_string());
    lines.push(r#"{"code": 550, "enhanced": "5.1.1", "text": ""}"#.to_string());
    lines.push(r#"{"code": 700}"#.to_string());
    let n = lines.len();
    (lines.join("\n") + "\n", n)
}

fn sum(object: &Value) -> u64 {
    object.as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum()
}

#[test]
fn report_counts_add_up_and_the_repeated_template_tops_the_list() {
    let (input, lines) = crafted_input();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let out = run_with_stdin(
        rebound()
            .args(["classify", "--report", "--report-json"])
            .arg(&json_path),
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers = String::from_utf8(out.stdout).unwrap();
    assert_eq!(answers.lines().count(), lines, "the answers are still written");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unmatched templates"), "{stderr}");
    assert!(stderr.contains("quux policy engine"), "{stderr}");
    assert!(
        stderr.contains("(no text)"),
        "a reply of codes alone is listed as such: {stderr}"
    );

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let answered = report["answers"].as_u64().unwrap();
    let errors = report["errors"].as_u64().unwrap();
    assert_eq!(errors, 1);
    assert_eq!(answered + errors, lines as u64);
    for table in ["by_category", "by_evidence", "by_rule", "by_provider"] {
        assert_eq!(sum(&report[table]), answered, "{table}");
    }
    let top = &report["unmatched"][0];
    // The raw line's template, as the server would list it (codes kept).
    let first_line = input.lines().next().unwrap();
    assert_eq!(
        top["template"].as_str().unwrap(),
        rebound_engine::reply_template(first_line),
        "{top}"
    );
    assert!(
        top["template"]
            .as_str()
            .unwrap()
            .contains("frobnicated by the quux policy engine"),
        "{top}"
    );
    assert!(top["count"].as_u64().unwrap() >= 7, "{top}");
    let listed: u64 = report["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    // Under capacity, every weak answer is in exactly one listed template.
    assert_eq!(listed, report["weak"].as_u64().unwrap(), "{report}");

    // At capacity 1 the tally holds one template, and its count says how much may be others'.
    let out = run_with_stdin(
        rebound()
            .args([
                "classify",
                "--report-only",
                "--unmatched-capacity",
                "1",
                "--report-json",
            ])
            .arg(&json_path),
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["unmatched_templates"], 1, "{report}");
    let only = &report["unmatched"][0];
    assert_eq!(only["count"].as_u64(), report["weak"].as_u64(), "{report}");
    assert!(only["error_bound"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn report_only_writes_the_summary_to_stdout_and_no_answers() {
    let (input, lines) = crafted_input();
    let out = run_with_stdin(
        rebound().args(["classify", "--report-only", "--report-top", "1"]),
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.lines().any(|l| l.starts_with('{')), "no answers: {stdout}");
    let first = stdout.lines().next().unwrap();
    assert!(
        first.contains(&format!("{} answer(s), 1 error(s)", lines - 1)),
        "{stdout}"
    );
    assert!(stdout.contains("top 1 of"), "{stdout}");
    assert!(stdout.contains("quux policy engine"), "{stdout}");
}

#[test]
fn report_counts_each_recipient_of_messages() {
    let folder = root().join("tests/data/sisimai-set-of-emails/maildir/dos");
    let json_dir = tempfile::tempdir().unwrap();
    let json_path = json_dir.path().join("r.json");
    let out = rebound()
        .args(["classify", "--messages", "--report-only", "--report-json"])
        .arg(&json_path)
        .arg(&folder)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.starts_with(b"{"), "--report-only writes no answers");
    let answers = rebound()
        .args(["classify", "--messages"])
        .arg(&folder)
        .output()
        .unwrap();
    let (mut recipients, mut errors) = (0u64, 0u64);
    for line in String::from_utf8(answers.stdout).unwrap().lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        match line["recipients"].as_array() {
            Some(r) => recipients += r.len() as u64,
            None => errors += 1,
        }
    }
    assert!(recipients > 0);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["answers"].as_u64().unwrap(), recipients, "{report}");
    assert_eq!(report["errors"].as_u64().unwrap(), errors, "{report}");
    for table in ["by_category", "by_evidence", "by_rule", "by_provider"] {
        assert_eq!(sum(&report[table]), recipients, "{table}");
    }
    let weak: u64 = ["reply_code", "enhanced_code", "none"]
        .iter()
        .filter_map(|e| report["by_evidence"][e].as_u64())
        .sum();
    assert_eq!(report["weak"].as_u64().unwrap(), weak);
}

/// Real replies' texts that the shipped rules decide on weak evidence when given as a plain line.
fn weak_real_replies(wanted: usize) -> Vec<String> {
    let rules = shipped_rules();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for file in ["tests/data/sisimai_answers.jsonl", "tests/data/second_replies.jsonl"] {
        for line in std::fs::read_to_string(root().join(file)).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let Some(text) = v["text"].as_str() else { continue };
            if text.contains(['\n', '\r']) || !has_a_word(text) || !seen.insert(text.to_string()) {
                continue;
            }
            let input = ReplyInput {
                code: 0,
                enhanced: "",
                text,
                recipient: "",
                remote_host: "",
            };
            let Ok(reply) = Reply::parse(&input) else { continue };
            let outcome = rules.classify(&reply);
            // A positive reply is the engine's own answer, not a missing rule.
            if outcome.evidence.is_weak() && !outcome.positive {
                out.push(text.to_string());
                if out.len() == wanted {
                    return out;
                }
            }
        }
    }
    out
}

/// Whether `text` has a word of letters standing alone (between spaces, with punctuation around
/// at most): something a text rule can name. A reply of codes, numbers and addresses has none.
fn has_a_word(text: &str) -> bool {
    text.split_whitespace().any(|chunk| {
        let core = chunk.trim_matches(|c: char| !c.is_alphanumeric());
        core.chars().count() >= 2 && core.chars().all(char::is_alphabetic)
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn rule_new_round_trips_twenty_weakly_decided_real_replies() {
    let replies = weak_real_replies(20);
    assert_eq!(replies.len(), 20, "20 weakly decided replies in the corpora");
    let mut failures = Vec::new();
    for reply in &replies {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        copy_dir(&root().join("rules"), &rules);
        let local = rules.join("local.yaml");
        let out = rebound()
            .args(["rule", "new", "--category", "rejection", "--into"])
            .arg(&local)
            .arg(reply)
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{reply:?}: check failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let written = std::fs::read_to_string(&local).unwrap();
        let id = written
            .lines()
            .find_map(|l| l.trim().strip_prefix("- id: "))
            .map(|id| id.trim_matches('"').to_string())
            .unwrap();
        let answer = run_with_stdin(
            rebound().arg("classify").arg("--rules").arg(&rules),
            format!("{reply}\n").as_bytes(),
        );
        let answer: Value = serde_json::from_slice(&answer.stdout).unwrap();
        if answer["rule"] != id.as_str() || answer["evidence"] != "text" {
            failures.push(format!(
                "{reply:?}: decided by {} ({})",
                answer["rule"], answer["evidence"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 20 failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_placeholder_category_is_refused_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    copy_dir(&root().join("rules"), &rules);
    let local = rules.join("local.yaml");
    let out = rebound()
        .args(["rule", "new", "--into"])
        .arg(&local)
        .arg("550 5.7.1 frobnicated by the quux policy engine")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown category `SET-A-CATEGORY-HERE`"), "{stderr}");
    assert!(!local.exists(), "the file is left as it was (absent)");
    // Printed alone, the scaffold says what to fill in.
    let printed = rebound()
        .args(["rule", "new", "550 5.7.1 frobnicated by the quux policy engine"])
        .output()
        .unwrap();
    let printed = String::from_utf8(printed.stdout).unwrap();
    assert!(
        printed.starts_with("rules:\n  - id: \"local/uncategorised/550-5.7.1-frobnicated-by-the-quux\""),
        "{printed}"
    );
    assert!(printed.contains("category: SET-A-CATEGORY-HERE"), "{printed}");
    // A reply with nothing but codes, masks and numbers gets no rule: codes alone decided it.
    let bare = rebound()
        .args(["rule", "new", "550 5.1.1 <bob@example.com> 12345"])
        .output()
        .unwrap();
    assert!(!bare.status.success());
    assert!(String::from_utf8_lossy(&bare.stderr).contains("no stable words"));
    assert!(
        printed.contains(r#"text: "\\bfrobnicated\\s+by\\s+the\\s+quux\\s+policy\\s+engine\\b""#),
        "{printed}"
    );
}

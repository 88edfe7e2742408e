//! Outcomes that must never suppress, and scripts whose cost the operation budget missed.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use rebound_engine::{Reply, ReplyInput, RuleSet, RuleSource};
use serde_json::Value;

use crate::util::{rebound, rule_dir, run_guarded, shipped_rules};

fn reply(code: u32, text: &str) -> Reply {
    Reply::parse(&ReplyInput {
        code,
        text,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_positive_reply_is_not_a_bounce_whatever_its_wording() {
    let rules = shipped_rules();
    for code in [250, 199, 354, 100, 220, 251, 399] {
        let outcome = rules.classify(&reply(code, "5.1.1 <bob@example.com>: user unknown"));
        assert_eq!(outcome.category.id, "not_bounce", "{code}: {outcome:?}");
        assert!(
            !outcome.suppress_recipient && outcome.rule.is_none(),
            "{code}: {outcome:?}"
        );
        assert_eq!(outcome.bounce_type.as_str(), "undetermined", "{code}");
        assert!(
            outcome.definition().is_some_and(|d| d.contains("Not a failure")),
            "{code}"
        );
    }
    // Without a reply code, an RFC 3463 success status says the same.
    let outcome = rules.classify(&Reply::from_text("2.1.5 user unknown"));
    assert_eq!(outcome.category.id, "not_bounce");
    // The explanation says why no rule was tried.
    let (_, explanation) = rules.explain(&reply(250, "user unknown"));
    assert!(explanation.reason.contains("positive reply"), "{}", explanation.reason);
    assert!(explanation.candidates.iter().all(|c| !c.rule.starts_with("generic/")));
}

#[test]
fn no_positive_code_suppresses_and_only_a_rule_naming_it_decides() {
    let rules = shipped_rules();
    let wordings = ["user unknown", "mailbox unavailable", "", "550 5.1.1 no such user"];
    for code in 100..400 {
        for text in wordings {
            let outcome = rules.classify(&reply(code, text));
            assert!(!outcome.suppress_recipient, "{code} {text:?}: {outcome:?}");
            assert_ne!(outcome.bounce_type.as_str(), "hard", "{code} {text:?}");
            // The guide lists a bare 221 as a rate limit; the seed rule names the code.
            let expected = if outcome.rule.is_some() {
                "rate_limit"
            } else {
                "not_bounce"
            };
            assert_eq!(outcome.category.id, expected, "{code} {text:?}");
            if let Some(rule) = outcome.rule {
                assert_eq!((code, rule.id.as_str()), (221, "seed/rate_limit/221-none"));
            }
        }
    }
}

#[test]
fn a_positive_reply_is_not_a_bounce_in_the_clis_json() {
    let input = [250, 199, 354]
        .map(|code| format!(r#"{{"id":"c{code}","code":{code},"text":"user unknown"}}"#))
        .join("\n");
    let mut child = rebound()
        .arg("classify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 3);
    for answer in &answers {
        assert_eq!(answer["category"], "not_bounce", "{answer}");
        assert_eq!(answer["suppress_recipient"], false, "{answer}");
        assert_eq!(answer["category_name"], "Not a Bounce", "{answer}");
        assert!(!answer["remediation"].as_array().unwrap().is_empty(), "{answer}");
    }
}

#[test]
fn check_refuses_a_rule_that_would_make_a_positive_reply_suppress() {
    let dir = rule_dir(&[(
        "custom.yaml",
        "rules:\n  - id: custom/accepted-unknown\n    category: invalid_address\n    when: { code: [250, 550], text: 'user unknown' }\n    examples: ['550 user unknown']\n",
    )]);
    let err = RuleSet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("custom.yaml:2: rule `custom/accepted-unknown`: outcome:") && err.contains("250"),
        "{err}"
    );
    assert!(err.contains("positive reply"), "{err}");
}

#[test]
fn not_bounce_is_built_in_and_its_outcome_is_fixed() {
    // A rule directory without `not_bounce` still answers positive replies with it.
    let categories = "categories:\n  - id: unclassified\n    name: Unclassified\n    summary: No rule matched.\n    outcome: { bounce_type: undetermined, suppress_recipient: false, retryable: false, responsible: unknown }\n";
    let source = RuleSource::from_files([("categories.yaml".into(), categories.to_string())]);
    let rules = RuleSet::load(&source).unwrap();
    assert_eq!(rules.classify(&reply(250, "ok")).category.id, "not_bounce");
    // A directory that words it its own way cannot make it suppress.
    let suppressing = format!(
        "{categories}  - id: not_bounce\n    name: Accepted\n    summary: Fine.\n    outcome: {{ bounce_type: hard, suppress_recipient: true, retryable: false, responsible: recipient }}\n"
    );
    let source = RuleSource::from_files([("categories.yaml".into(), suppressing)]);
    let err = RuleSet::load(&source).unwrap_err().to_string();
    assert!(err.contains("category `not_bounce`: outcome:"), "{err}");
}

/// The hook of issue 17: well inside the operation budget (about 40,000), but each `contains`
/// scans 40-64 KiB.
const SLOW_SCRIPT: &str = r#"
fn slow(reply) {
    let s = reply.text;
    while s.len() < 40000 { s += s; }
    let hits = 0;
    for i in 0..4000 {
        if s.contains("needle") { hits += 1; }
    }
    hits > 0
}
"#;

const SLOW_RULES: &str = r#"
rules:
  - id: t/slow
    category: blocked
    when: { code: 550, script: slow.rhai::slow }
    priority: 1
    examples: ["550 5.7.1 blocked, needle"]
  - id: t/any-550
    category: rejection
    when: { code: 550 }
    examples: ["550 5.7.1 refused"]
"#;

#[test]
fn a_slow_script_is_stopped_counted_and_no_match() {
    let dir = rule_dir(&[("slow.yaml", SLOW_RULES), ("slow.rhai", SLOW_SCRIPT)]);
    // Compiled without the checks that would refuse it, as a server never would: this is what
    // one long reply costs if such a script got through.
    let rules = RuleSet::compile(&RuleSource::from_dir(dir.path()).unwrap()).unwrap();
    let text = format!("550 5.7.1 {}", "blocked by policy ".repeat(64 * 1024 / 18));
    let before = rules.script_errors();
    let outcome = rules.classify(&Reply::from_text(&text));
    assert_eq!(outcome.rule_id(), "t/any-550");
    assert_eq!(outcome.script_errors, 1);
    assert_eq!(rules.script_errors(), before + 1);
    let (_, explanation) = rules.explain(&Reply::from_text(&text));
    let slow = explanation.candidates.iter().find(|c| c.rule == "t/slow").unwrap();
    let script = slow.conditions.iter().find(|c| c.condition == "script").unwrap();
    assert!(script.detail.contains("ran out of time"), "{script:?}");
}

#[test]
fn check_refuses_a_script_that_runs_out_of_time_naming_it() {
    let dir = rule_dir(&[("slow.yaml", SLOW_RULES), ("slow.rhai", SLOW_SCRIPT)]);
    let (out, _) = run_guarded(rebound().arg("check").arg(dir.path()), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("slow.yaml:3: rule `t/slow`: script: `slow.rhai::slow` ran out of time"),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_script_that_is_only_slow_on_a_long_reply() {
    // Quick on every known reply (a few dozen characters); on a reply of 4 KiB, 4,096 copies of it.
    let script = r#"
fn slow(reply) {
    let n = 0;
    for c in reply.lower { n += reply.lower.to_upper().len(); }
    n > 0 && reply.lower.contains("needle")
}
"#;
    let dir = rule_dir(&[("slow.yaml", SLOW_RULES), ("slow.rhai", script)]);
    let rules = RuleSet::compile(&RuleSource::from_dir(dir.path()).unwrap()).unwrap();
    assert_eq!(rules.classify(&Reply::from_text("550 5.7.1 refused")).script_errors, 0);
    let err = rules.verify().unwrap_err().to_string();
    assert!(
        err.contains("slow.yaml:3: rule `t/slow`: script: `slow.rhai::slow` ran out of time")
            && err.contains("on example 1 repeated to 4096 bytes"),
        "{err}"
    );
}

//! `rebound check`: the shipped rules pass, and each kind of broken rule file fails with the
//! file, line and rule id in the message, quickly and without a panic.

use std::time::Duration;

use crate::util::{rebound, root, rule_dir, run_guarded};

#[test]
fn shipped_rules_pass() {
    let (out, _) = run_guarded(
        rebound().arg("check").arg(root().join("rules")),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
}

#[test]
fn embedded_rules_pass() {
    let (out, _) = run_guarded(rebound().arg("check"), Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("embedded rules"));
}

/// Runs `check` on a directory with one broken file and returns its stderr.
fn check_fails(file: &str, text: &str, extra: &[(&str, &str)]) -> String {
    let mut files = vec![(file, text)];
    files.extend_from_slice(extra);
    let dir = rule_dir(&files);
    let (out, took) = run_guarded(rebound().arg("check").arg(dir.path()), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a failed check, got {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    eprintln!("check failed in {took:?} as expected:\n{stderr}");
    stderr
}

/// The message names the file (as the operator gave it), the line and the rule.
fn assert_located(stderr: &str, file: &str, line: u32, rule: &str) {
    let at = format!("{file}:{line}: ");
    let found = stderr.lines().any(|l| l.contains(&at) && l.contains(rule));
    assert!(found, "no line naming {at} and {rule} in:\n{stderr}");
}

const CATEGORY_OK: &str = "category: invalid_address";

#[test]
fn bad_regex() {
    let text = format!(
        "rules:\n  - id: t/bad-regex\n    {CATEGORY_OK}\n    when: {{ text: 'user (unknown' }}\n    examples: ['550 user unknown']\n"
    );
    let err = check_fails("bad.yaml", &text, &[]);
    assert_located(&err, "bad.yaml", 2, "`t/bad-regex`");
    assert!(err.contains("bad regex"), "{err}");
}

#[test]
fn unknown_key() {
    let text = format!("rules:\n  - id: t/typo\n    {CATEGORY_OK}\n    priorty: 3\n");
    let err = check_fails("typo.yaml", &text, &[]);
    assert_located(&err, "typo.yaml", 4, "entry `t/typo`");
    assert!(err.contains("priorty"), "{err}");
}

#[test]
fn duplicate_key() {
    let text = format!("rules:\n  - id: t/dup-key\n    {CATEGORY_OK}\n    when:\n      code: 550\n      code: 551\n");
    let err = check_fails("dupkey.yaml", &text, &[]);
    assert_located(&err, "dupkey.yaml", 6, "entry `t/dup-key`");
    assert!(err.to_lowercase().contains("duplicate"), "{err}");
}

#[test]
fn duplicate_rule_id() {
    let rule = format!("  - id: t/same\n    {CATEGORY_OK}\n    when: {{ code: 550, enhanced: 5.1.1 }}\n");
    let second = format!("  - id: t/same\n    {CATEGORY_OK}\n    when: {{ code: 551, enhanced: 5.1.1 }}\n");
    let err = check_fails("a.yaml", &format!("rules:\n{rule}{second}"), &[]);
    assert_located(&err, "a.yaml", 5, "`t/same`");
    assert!(err.contains("duplicate rule id, first defined at a.yaml:2"), "{err}");
}

#[test]
fn unknown_category() {
    let text = "rules:\n  - id: t/unknown-cat\n    category: bounced_hard\n    when: { code: 550 }\n";
    let err = check_fails("cat.yaml", text, &[]);
    assert_located(&err, "cat.yaml", 2, "`t/unknown-cat`");
    assert!(err.contains("unknown category `bounced_hard`"), "{err}");
}

#[test]
fn example_decided_by_another_rule() {
    let text = "rules:\n  - id: t/code-only\n    category: invalid_address\n    when: { code: 550 }\n    examples: ['550 User unknown']\n  - id: t/quota\n    category: mailbox_full\n    when: { text: 'quota' }\n    examples: ['550 quota exceeded', '550 User unknown']\n";
    let err = check_fails("ex.yaml", text, &[]);
    assert_located(&err, "ex.yaml", 6, "`t/quota`");
    assert!(
        err.contains("example 2") && err.contains("decided by rule `t/code-only`"),
        "{err}"
    );
}

#[test]
fn rhai_syntax_error() {
    let text = format!(
        "rules:\n  - id: t/script-syntax\n    {CATEGORY_OK}\n    when: {{ script: hooks.rhai::matches }}\n    examples: ['550 x']\n"
    );
    let err = check_fails(
        "s.yaml",
        &text,
        &[("hooks.rhai", "fn matches(reply) { reply.code == }\n")],
    );
    assert_located(&err, "s.yaml", 2, "`t/script-syntax`");
    assert!(err.contains("hooks.rhai"), "{err}");
}

#[test]
fn script_that_loops_forever() {
    let text = format!(
        "rules:\n  - id: t/loop\n    {CATEGORY_OK}\n    when: {{ code: 550, script: hooks.rhai::spin }}\n    examples: ['550 5.1.1 user unknown']\n"
    );
    let err = check_fails(
        "loop.yaml",
        &text,
        &[("hooks.rhai", "fn spin(reply) { let n = 0; loop { n += 1; } }\n")],
    );
    assert_located(&err, "loop.yaml", 2, "`t/loop`");
    // Stopped by its operation budget, or by its time budget first where operations are slow (debug builds).
    assert!(
        err.contains("Too many operations") || err.contains("ran out of time"),
        "{err}"
    );
}

#[test]
fn script_that_calls_eval_or_reads_files_does_not_compile() {
    let text = format!(
        "rules:\n  - id: t/eval\n    {CATEGORY_OK}\n    when: {{ script: hooks.rhai::sneaky }}\n    examples: ['550 x']\n"
    );
    let err = check_fails(
        "e.yaml",
        &text,
        &[("hooks.rhai", "fn sneaky(reply) { eval(\"1\") == 1 }\n")],
    );
    assert_located(&err, "e.yaml", 2, "`t/eval`");
    let err = check_fails(
        "e.yaml",
        &text,
        &[(
            "hooks.rhai",
            "import \"/etc/passwd\" as m;\nfn sneaky(reply) { true }\n",
        )],
    );
    assert_located(&err, "e.yaml", 2, "`t/eval`");
}

#[test]
fn alias_bomb() {
    // Nine levels of nine aliases: 9^9 strings if expanded. It sits inside a rule's example, a
    // place the schema reads as a whole value, so only the parser's budget can stop it.
    let mut levels = vec![format!("&a0 [{}]", ["\"lol\""; 9].join(", "))];
    for level in 1..9 {
        levels.push(format!(
            "&a{level} [{}]",
            vec![format!("*a{}", level - 1); 9].join(", ")
        ));
    }
    let text = format!(
        "rules:\n  - id: t/bomb\n    category: invalid_address\n    examples:\n      - [{}]\n",
        levels.join(", ")
    );
    let err = check_fails("bomb.yaml", &text, &[]);
    assert_located(&err, "bomb.yaml", 5, "`t/bomb`");
    assert!(err.to_lowercase().contains("budget"), "{err}");
}

#[test]
fn equally_specific_rules_with_the_same_conditions() {
    let text = "rules:\n  - id: t/first\n    category: invalid_address\n    when: { code: 550, enhanced: 5.1.1 }\n  - id: t/second\n    category: mailbox\n    when: { code: [550, 551], enhanced: 5.1.1 }\n";
    let err = check_fails("same.yaml", text, &[]);
    assert_located(&err, "same.yaml", 5, "`t/second`");
    assert!(err.contains("as specific as rule `t/first` (same.yaml:2)"), "{err}");
}

#[test]
fn equally_specific_text_rules_that_both_match_an_example() {
    let text = "rules:\n  - id: t/full\n    category: mailbox_full\n    when: { text: 'mailbox full' }\n    examples: ['552 mailbox full, quota exceeded']\n  - id: t/quota\n    category: mailbox_full\n    when: { text: 'quota exceeded' }\n    examples: ['552 quota exceeded']\n";
    let err = check_fails("tie.yaml", text, &[]);
    assert_located(&err, "tie.yaml", 6, "`t/quota`");
    assert!(err.contains("as specific as rule `t/full`"), "{err}");
}

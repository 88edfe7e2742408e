//! The CLI contract: `classify` streams JSONL or plain lines with one output line per input line,
//! errors in place, never stopping; `explain` says which rule won and why.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::{rebound, root, run_guarded, run_with_stdin, write};

fn classify_stdin(input: &str, args: &[&str]) -> (Vec<Value>, String) {
    let out = run_with_stdin(rebound().arg("classify").args(args), input.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn classify_answers_every_line_in_order_with_errors_in_place() {
    let input = [
        r#"{"id":"a","code":550,"enhanced":"5.1.1","text":"User unknown","recipient":"bob@example.com"}"#,
        r#"{"id":"b","code":700,"text":"bad code"}"#,
        "not json {",
        r#"{"id":"c","enhanced":"5.1","text":"bad enhanced"}"#,
        "",
        r#"{"id":7,"code":"452","enhanced":"4.2.2","text":"Mailbox full","extra":"ignored"}"#,
        r#"{"id":"d","text":"#,
        "550-5.1.1 The email account that you tried to reach does not exist.",
        r#"{"id":"e","code":"-","enhanced":"NA","text":"554 Transaction failed"}"#,
    ]
    .join("\n");
    let (out, stderr) = classify_stdin(&input, &[]);
    assert_eq!(out.len(), 9, "one output per input line");
    assert_eq!(out[0]["id"], "a");
    assert_eq!(out[0]["category"], "invalid_address");
    assert_eq!(out[0]["suppress_recipient"], true);
    assert_eq!(out[0]["rule"], "generic/invalid_address/unknown-user");
    assert_eq!(out[0]["ruleset"]["generation"], 1);
    assert_eq!(out[0]["ruleset"]["digest"].as_str().map(str::len), Some(64));
    for field in [
        "category_name",
        "bounce_type",
        "retryable",
        "responsible",
        "definition",
        "summary",
        "remediation",
        "provider",
        "code",
        "enhanced",
    ] {
        assert!(out[0].get(field).is_some(), "missing {field}");
    }
    assert_eq!(out[1]["id"], "b");
    assert!(out[1]["error"].as_str().unwrap().starts_with("code: 700"), "{}", out[1]);
    assert_eq!(out[1]["line"], 2);
    // Not starting with `{`, so it is a plain reply line, not broken JSON.
    assert_eq!(out[2]["category"], "unclassified");
    assert!(out[3]["error"].as_str().unwrap().starts_with("enhanced:"), "{}", out[3]);
    assert_eq!(out[4]["error"], "empty line");
    assert_eq!(out[5]["id"], 7);
    assert_eq!(out[5]["category"], "mailbox_full");
    assert_eq!(out[5]["retryable"], true);
    assert!(
        out[6]["error"].as_str().unwrap().starts_with("invalid JSON"),
        "{}",
        out[6]
    );
    assert_eq!(out[7]["code"], 550);
    assert_eq!(out[7]["enhanced"], "5.1.1");
    assert_eq!(out[7]["category"], "invalid_address");
    assert_eq!(out[8]["category"], "rejection");
    assert_eq!(out[8]["suppress_recipient"], false);
    assert!(stderr.contains("classified 9 line(s), 4 error(s)"), "{stderr}");
}

#[test]
fn classify_reads_files_and_a_rule_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rules/categories.yaml",
        &std::fs::read_to_string(root().join("rules/categories.yaml")).unwrap(),
    );
    write(
        dir.path(),
        "rules/custom.yaml",
        "rules:\n  - id: custom/quota\n    category: mailbox_full\n    when: { text: 'quota' }\n    examples: ['550 over quota']\n",
    );
    write(dir.path(), "one.txt", "550 5.1.1 user over quota\n");
    write(dir.path(), "two.jsonl", "{\"id\":1,\"text\":\"hello\"}\n");
    let (out, _) = run_guarded(
        rebound()
            .args(["classify", "--rules"])
            .arg(dir.path().join("rules"))
            .arg(dir.path().join("one.txt"))
            .arg(dir.path().join("two.jsonl")),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["rule"], "custom/quota");
    assert_eq!(lines[1]["category"], "unclassified");
    assert_eq!(lines[1]["rule"], Value::Null);
}

#[test]
fn classify_refuses_an_invalid_rule_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.yaml", "rules: [");
    let (out, _) = run_guarded(
        rebound().args(["classify", "--rules"]).arg(dir.path()),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));
}

#[test]
fn classify_streams_many_lines() {
    let line = r#"{"id":1,"code":550,"enhanced":"5.2.2","text":"mailbox full"}"#;
    let input = format!("{line}\n").repeat(20_000);
    let (out, _) = classify_stdin(&input, &[]);
    assert_eq!(out.len(), 20_000);
    assert!(out.iter().all(|o| o["category"] == "mailbox_full"));
}

#[test]
fn explain_names_the_winner_and_the_losers() {
    let (out, _) = run_guarded(
        rebound().args([
            "explain",
            "550 5.2.2 This domain has no mailbox and does not accept mail",
        ]),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("answer      mailbox (Mailbox) by rule `seed/mailbox/550-5.2.2-no-mailbox`"),
        "{text}"
    );
    assert!(text.contains("is more specific"), "{text}");
    assert!(text.contains("seed/mailbox_full/550-5.2.2"), "{text}");

    let (out, _) = run_guarded(
        rebound().args(["explain", "--json", "--code", "550", "--enhanced", "5.1.1", "nope"]),
        Duration::from_secs(60),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outcome"]["rule"], "seed/invalid_address/550-5.1.1");
    assert_eq!(doc["explanation"]["winner"], "seed/invalid_address/550-5.1.1");
    assert!(doc["explanation"]["candidates"].as_array().unwrap().len() > 1);
}

/// A Maildir folder of real bounce emails, relative to the repository root.
const BOUNCES: &str = "tests/data/sisimai-set-of-emails/maildir/bsd";

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `rebound check rules/ | head -1`: the reader closes the pipe before the command writes.
    // Rust ignores SIGPIPE, so a `println!` would panic ("failed printing to stdout").
    let rules = root().join("rules");
    let rules = rules.to_str().unwrap();
    for args in [
        vec!["check", rules],
        vec!["explain", "--rules", rules, "550 5.1.1 User unknown"],
        vec!["classify", "--rules", rules, "tests/data/second_replies.jsonl"],
        // Bounce emails, read on the main thread and on worker threads.
        vec!["classify", "--messages", "--jobs", "1", BOUNCES],
        vec!["classify", "--messages", "--jobs", "2", BOUNCES],
    ] {
        let mut child = rebound()
            .args(&args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Loading the rules takes far longer than this: the pipe is closed before any write.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(output.status.success(), "{args:?}: {:?} {stderr}", output.status);
    }
}

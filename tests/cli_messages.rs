//! The CLI's bounce-message contract: `classify --messages` answers every message of `.eml`
//! files, Maildir folders, mbox files and standard input with one JSON line, in input order
//! whatever `--jobs` is, an unreadable message with its error in place; `--header` and `--verp`
//! reach the answer; `explain --message` shows what was read from where.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{rebound, root, run_guarded, run_with_stdin, write};

/// Every outcome field of a reply, which each recipient of a message answer carries too.
const OUTCOME_FIELDS: [&str; 15] = [
    "category",
    "category_name",
    "bounce_type",
    "suppress_recipient",
    "retryable",
    "responsible",
    "definition",
    "summary",
    "remediation",
    "rule",
    "evidence",
    "provider",
    "code",
    "enhanced",
    "ruleset",
];

/// The recipient's fields as the message reports them.
const RECIPIENT_FIELDS: [&str; 9] = [
    "recipient",
    "original_recipient",
    "action",
    "status",
    "remote_mta",
    "diagnostic_type",
    "diagnostic",
    "last_attempt",
    "will_retry_until",
];

fn corpus(name: &str) -> PathBuf {
    root().join("tests/data/sisimai-set-of-emails").join(name)
}

/// A standard DSN (RFC 3464) returning the original whole, with a campaign header in it.
const DSN: &str = "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n\
To: sender@example.org\n\
Subject: Undelivered Mail Returned to Sender\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\
\n\
--b1\n\
Content-Type: text/plain\n\
\n\
I'm sorry to have to inform you that your message could not be delivered.\n\
\n\
--b1\n\
Content-Type: message/delivery-status\n\
\n\
Reporting-MTA: dns; mx.example.net\n\
Arrival-Date: Sun, 6 Dec 2026 10:00:00 +0000\n\
\n\
Final-Recipient: rfc822; bob@example.com\n\
Action: failed\n\
Status: 5.1.1\n\
Remote-MTA: dns; mx.example.com\n\
Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown\n\
\n\
--b1\n\
Content-Type: message/rfc822\n\
\n\
From: sender@example.org\n\
To: bob@example.com\n\
Subject: Spring sale\n\
Message-ID: <sale-1@example.org>\n\
X-Campaign-Id: spring-42\n\
\n\
Hello Bob.\n\
\n\
--b1--\n";

/// Runs `rebound ARGS` with `stdin` as standard input.
fn run_args_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    run_with_stdin(rebound().args(args).current_dir(root()), stdin)
}

/// `rebound classify --messages ARGS...`, which must succeed: its JSON lines and its stderr.
fn classify(args: &[&str], paths: &[&Path]) -> (Vec<Value>, String) {
    let (out, _) = run_guarded(
        rebound()
            .args(["classify", "--messages"])
            .args(args)
            .args(paths)
            .current_dir(root()),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (lines(&out), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn lines(out: &Output) -> Vec<Value> {
    parse_lines(&out.stdout)
}

fn parse_lines(stdout: &[u8]) -> Vec<Value> {
    std::str::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A message answer has DESIGN.md's fields, and each recipient every outcome field.
fn assert_answer(answer: &Value) {
    assert!(answer.get("error").is_none(), "{answer}");
    let kind = answer["kind"].as_str().unwrap_or_default();
    assert!(
        ["bounce", "auto_reply", "feedback", "challenge", "not_bounce"].contains(&kind),
        "{answer}"
    );
    for field in ["reporting_mta", "arrival_date", "original", "feedback", "recipients"] {
        assert!(answer.get(field).is_some(), "missing {field}: {answer}");
    }
    for recipient in answer["recipients"].as_array().unwrap() {
        for field in RECIPIENT_FIELDS.iter().chain(&OUTCOME_FIELDS) {
            assert!(recipient.get(*field).is_some(), "missing {field}: {recipient}");
        }
    }
}

/// An answer without its recipients' outcome fields: what the reader made of the message.
fn reading(answer: &Value) -> Value {
    let mut answer = answer.clone();
    if let Some(recipients) = answer["recipients"].as_array_mut() {
        for r in recipients {
            if let Some(r) = r.as_object_mut() {
                r.retain(|field, _| RECIPIENT_FIELDS.contains(&field.as_str()));
            }
        }
    }
    answer
}

fn ids(answers: &[Value]) -> Vec<String> {
    answers.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn classify_messages_reads_a_maildir_cur_then_new_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let copy = |from: &str, to: &str| {
        let to = maildir.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(corpus(from), to).unwrap();
    };
    copy("maildir/bsd/lhost-postfix-01.eml", "cur/2:2,S");
    copy("maildir/bsd/rfc3464-01.eml", "cur/1:2,S");
    copy("maildir/bsd/lhost-exim-01.eml", "new/3");
    // A Maildir file is one message, even with a delivery agent's `From ` envelope line first
    // and another `From ` line inside (unescaped, as Maildir needs no escaping).
    write(
        &maildir,
        "new/4",
        &format!("From MAILER-DAEMON Sun Dec  6 10:00:00 2026\n{DSN}\nFrom the team: hello\n"),
    );
    // Deliveries in progress and hidden state files are not messages.
    copy("maildir/bsd/lhost-qmail-01.eml", "tmp/5");
    write(&maildir, "cur/.dovecot-uidlist", "3 V1 N4\n");
    let (answers, stderr) = classify(&[], &[&maildir]);
    let expected: Vec<String> = ["cur/1:2,S", "cur/2:2,S", "new/3", "new/4"]
        .iter()
        .map(|name| maildir.join(name).display().to_string())
        .collect();
    assert_eq!(ids(&answers), expected);
    answers.iter().for_each(assert_answer);
    assert!(stderr.contains("classified 4 message(s)"), "{stderr}");
    assert_eq!(
        answers[3]["recipients"][0]["recipient"], "bob@example.com",
        "{}",
        answers[3]
    );

    // A plain folder of message files: its files, by name.
    let plain = dir.path().join("plain");
    write(&plain, "b.eml", DSN);
    write(&plain, "a.eml", DSN);
    std::fs::create_dir_all(plain.join("sub")).unwrap();
    let (answers, _) = classify(&[], &[&plain]);
    assert_eq!(
        ids(&answers),
        [plain.join("a.eml"), plain.join("b.eml")].map(|p| p.display().to_string())
    );
}

/// An mbox of three messages whose middle one is over `--max-email-bytes`.
fn mbox_with_a_large_message() -> String {
    let body = format!("{}\n", "x".repeat(70)).repeat(100);
    format!(
        "From MAILER-DAEMON Sun Dec  6 10:00:00 2026\n{DSN}\n\
         From someone@example.org Sun Dec  6 10:00:01 2026\nFrom: someone@example.org\nSubject: large\n\n{body}\n\
         From MAILER-DAEMON Sun Dec  6 10:00:02 2026\n{DSN}\n"
    )
}

#[test]
fn classify_messages_answers_an_mbox_in_order_with_a_message_over_the_limit_in_place() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bounces.mbox", &mbox_with_a_large_message());
    let mbox = dir.path().join("bounces.mbox");
    for jobs in ["1", "2"] {
        let (answers, stderr) = classify(&["--jobs", jobs, "--max-email-bytes", "4000"], &[&mbox]);
        let id = mbox.display().to_string();
        assert_eq!(ids(&answers), [1, 2, 3].map(|n| format!("{id}#{n}")), "--jobs {jobs}");
        assert_answer(&answers[0]);
        assert_answer(&answers[2]);
        let error = &answers[1]["error"];
        assert_eq!(error["code"], "too_large", "{}", answers[1]);
        assert_eq!(error["field"], "max_email_bytes");
        assert!(error["message"].as_str().unwrap().contains("limit of 4000"), "{error}");
        assert!(answers[1].get("kind").is_none(), "{}", answers[1]);
        assert!(
            stderr.contains("classified 3 message(s)") && stderr.contains("1 error(s)"),
            "{stderr}"
        );
    }
}

#[test]
fn classify_messages_reads_standard_input_as_one_message_or_an_mbox() {
    let out = run_args_with_stdin(&["classify", "--messages", "-"], DSN.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers = lines(&out);
    assert_eq!(ids(&answers), ["-"]);
    assert_answer(&answers[0]);

    // No path at all is standard input too; a `From ` first line makes it an mbox.
    let out = run_args_with_stdin(
        &["classify", "--messages", "--max-email-bytes", "4000"],
        mbox_with_a_large_message().as_bytes(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers = lines(&out);
    assert_eq!(ids(&answers), ["-#1", "-#2", "-#3"]);
    assert_eq!(answers[1]["error"]["code"], "too_large");

    // An empty message is answered with its error, not a failed run.
    let out = run_args_with_stdin(&["classify", "--messages", "-"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.stdout.starts_with(br#"{"id":"-","error":{"code""#),
        "the id first, as in an answer"
    );
    let answers = lines(&out);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["error"]["code"], "empty");
    assert_eq!(answers[0]["error"]["field"], "message");
}

#[test]
fn classify_messages_gives_the_same_lines_with_one_job_or_two() {
    let folder = corpus("maildir/bsd");
    let mbox = corpus("mailbox/mbox-1");
    let run = |jobs: &str| {
        // Far more output than a pipe holds: `output()` reads it while the command runs.
        let out = rebound()
            .args(["classify", "--messages", "--jobs", jobs])
            .arg(&folder)
            .arg(&mbox)
            .current_dir(root())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let one = run("1");
    let two = run("2");
    let answers = parse_lines(&one);
    assert!(answers.len() > 600, "{}", answers.len());
    answers.iter().for_each(assert_answer);
    // Every message's answer in the same place, with the same reading. The outcome fields are
    // left out of the comparison: a rule's rhai hook that runs out of its wall-clock budget on a
    // busy machine (a debug build beside other tests) is "no match", which can change a category
    // between any two runs, whatever --jobs is.
    let two = parse_lines(&two);
    assert_eq!(answers.len(), two.len());
    for (a, b) in answers.iter().zip(&two) {
        assert_eq!(reading(a), reading(b), "--jobs 1 and --jobs 2 answered differently");
    }

    let (out, _) = run_guarded(
        rebound().args(["classify", "--messages", "--jobs", "0", "-"]),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--jobs"));
}

#[test]
fn classify_messages_refuses_a_missing_path_and_reader_flags_without_messages() {
    let (out, _) = run_guarded(
        rebound().args(["classify", "--messages", "no/such/Maildir"]),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/Maildir"));

    let (out, _) = run_guarded(
        rebound().args(["classify", "--header", "X-Campaign-Id", "replies.txt"]),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--header reads bounce emails: it needs --messages"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The email limits come from the environment too, as `rebound serve`'s do: there they apply
    // to messages and leave the reply path alone.
    let out = run_args_with_stdin(&["classify"], b"550 5.1.1 User unknown\n");
    let env_run = |args: &[&str], input: &[u8]| {
        let mut child = rebound()
            .args(args)
            .env("REBOUND_MAX_EMAIL_BYTES", "100")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let replies = env_run(&["classify"], b"550 5.1.1 User unknown\n");
    assert!(replies.status.success(), "{}", String::from_utf8_lossy(&replies.stderr));
    assert_eq!(replies.stdout, out.stdout);
    let messages = env_run(&["classify", "--messages"], DSN.as_bytes());
    assert!(
        messages.status.success(),
        "{}",
        String::from_utf8_lossy(&messages.stderr)
    );
    assert_eq!(lines(&messages)[0]["error"]["field"], "max_email_bytes");
}

#[test]
fn classify_messages_returns_the_headers_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "dsn.eml", DSN);
    let (answers, _) = classify(
        &["--header", "X-Campaign-Id", "--header", "X-Absent"],
        &[&dir.path().join("dsn.eml")],
    );
    let answer = &answers[0];
    assert_answer(answer);
    assert_eq!(answer["kind"], "bounce", "{answer}");
    assert_eq!(answer["reporting_mta"], "mx.example.net", "{answer}");
    let original = &answer["original"];
    assert_eq!(original["message_id"], "sale-1@example.org", "{answer}");
    assert_eq!(original["subject"], "Spring sale", "{answer}");
    assert_eq!(original["headers"]["X-Campaign-Id"], "spring-42", "{answer}");
    let recipient = &answer["recipients"][0];
    assert_eq!(recipient["recipient"], "bob@example.com", "{answer}");
    assert_eq!(recipient["action"], "failed");
    assert_eq!(recipient["status"], "5.1.1");
    assert_eq!(recipient["category"], "invalid_address", "{answer}");
    assert_eq!(recipient["suppress_recipient"], true);
}

#[test]
fn classify_messages_reads_the_recipient_from_a_verp_address() {
    // A DSN whose recipient group names no recipient: the VERP address it was sent back to does.
    let dsn = DSN
        .replace("To: sender@example.org", "To: bounces+bob=example.com@example.org")
        .replace("Final-Recipient: rfc822; bob@example.com\n", "");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "dsn.eml", &dsn);
    let (answers, _) = classify(
        &["--verp", "bounces+{local}={domain}@example.org"],
        &[&dir.path().join("dsn.eml")],
    );
    assert_answer(&answers[0]);
    assert_eq!(
        answers[0]["recipients"][0]["recipient"], "bob@example.com",
        "{}",
        answers[0]
    );

    let (out, _) = run_guarded(
        rebound().args(["classify", "--messages", "--verp", "bounces@example.org", "-"]),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--verp:") && stderr.contains("{local}"), "{stderr}");
}

#[test]
fn explain_message_shows_what_was_read_from_where_and_each_recipient() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "dsn.eml", DSN);
    let path = dir.path().join("dsn.eml");
    let (out, _) = run_guarded(
        rebound()
            .args(["explain", "--header", "X-Campaign-Id", "--message"])
            .arg(&path),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("message     {}", path.display())), "{text}");
    assert!(text.contains("kind        bounce"), "{text}");
    assert!(text.contains("X-Campaign-Id: spring-42"), "{text}");
    // The trace: each fact with where it was read.
    assert!(text.contains("<- "), "{text}");
    assert!(text.contains("recipient 1  bob@example.com"), "{text}");
    assert!(text.contains("  status             5.1.1"), "{text}");
    // The reply printer's lines, under the recipient.
    assert!(text.contains("  answer      invalid_address"), "{text}");
    assert!(text.contains("  candidates  "), "{text}");

    let (out, _) = run_guarded(
        rebound().args(["explain", "--json", "--message"]).arg(&path),
        Duration::from_secs(60),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["message"]["kind"], "bounce", "{doc}");
    assert!(!doc["trace"].as_array().unwrap().is_empty(), "{doc}");
    assert_eq!(doc["recipients"][0]["recipient"], "bob@example.com");
    assert!(doc["recipients"][0]["explanation"]["candidates"].is_array());

    // Standard input, here an mbox: its first message is explained.
    let out = run_args_with_stdin(&["explain", "--message", "-"], mbox_with_a_large_message().as_bytes());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("recipient 1  bob@example.com"), "{text}");

    // An unreadable message is an error naming its code and limit.
    let (out, _) = run_guarded(
        rebound()
            .args(["explain", "--max-email-bytes", "100", "--message"])
            .arg(&path),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("too_large: max_email_bytes"), "{stderr}");
}

//! Rule directories holding what is not a regular file: FIFOs, symlink loops, devices, huge files;
//! reloads that cannot finish; and signals that must not end the server.

use std::io::Read as _;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use rebound::pb::rule_admin_client::RuleAdminClient;

use crate::reload::{REPLY, answer, wait_for_generation};
use crate::service::{Process, start};
use crate::util::{rebound, root, run_guarded, write};

/// Generous: every case here ends in milliseconds once fixed; the bound only stops a hang.
const HANG_GUARD: Duration = Duration::from_secs(20);

fn rule_file(id: &str) -> String {
    format!(
        "rules:\n  - id: {id}\n    category: mailbox_full\n    when: {{ text: 'over quota' }}\n    examples: ['{REPLY}']\n"
    )
}

/// A valid rule directory whose one rule is `id`.
fn valid_dir(id: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("rules/categories.yaml"), dir.path().join("categories.yaml")).unwrap();
    write(dir.path(), "custom.yaml", &rule_file(id));
    dir
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// `rebound check DIR`, under a 4 GiB address-space limit so that a regression that reads a
/// device or a huge file whole fails here instead of exhausting the machine.
fn check(dir: &Path) -> (Output, String) {
    let bin = rebound().get_program().to_owned();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -v 4194304 && exec \"$0\" check \"$1\""])
        .arg(bin)
        .arg(dir);
    let (out, _) = run_guarded(&mut cmd, HANG_GUARD);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

fn serve_dir(dir: &Path, extra: &[&str]) -> Process {
    let mut args = vec!["--rules", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(&args)
}

async fn admin(process: &Process) -> RuleAdminClient<tonic::transport::Channel> {
    RuleAdminClient::connect(format!("http://{}", process.admin))
        .await
        .unwrap()
}

async fn last_attempt(process: &Process) -> pb::ReloadAttempt {
    let status = admin(process).await.get_status(pb::GetStatusRequest {}).await.unwrap();
    status.into_inner().last_attempt.unwrap()
}

/// Polls GetStatus until the last attempt is a failure; the time limit only stops a hang.
async fn wait_for_failure(process: &Process) -> pb::ReloadAttempt {
    let started = Instant::now();
    loop {
        let attempt = last_attempt(process).await;
        if !attempt.success {
            return attempt;
        }
        assert!(started.elapsed() < HANG_GUARD, "no failed reload reported: {attempt:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM and waits for a clean exit, returning how long it took and the JSON log lines.
async fn terminate(mut process: Process) -> (Duration, Vec<String>) {
    let sent = Instant::now();
    let pid = process.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < HANG_GUARD,
            "still running {:?} after SIGTERM",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}");
    let mut logs = String::new();
    process.child.stdout.take().unwrap().read_to_string(&mut logs).unwrap();
    let messages = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l["message"].as_str().map(str::to_string))
        .collect();
    (took, messages)
}

#[test]
fn check_names_a_fifo_and_ends() {
    let dir = valid_dir("f1");
    mkfifo(&dir.path().join("x.yaml"));
    let (out, stderr) = check(dir.path());
    assert!(!out.status.success());
    assert!(
        stderr.contains("x.yaml") && stderr.contains("FIFO, not a regular file"),
        "{stderr}"
    );
}

#[test]
fn check_gives_a_short_error_for_symlinks_to_the_directory_itself() {
    let dir = valid_dir("l1");
    symlink(".", dir.path().join("a")).unwrap();
    symlink(".", dir.path().join("b")).unwrap();
    let (out, stderr) = check(dir.path());
    assert!(!out.status.success());
    assert!(stderr.len() < 2_000, "{} bytes of errors", stderr.len());
    assert!(stderr.contains("symlink loop"), "{stderr}");
}

#[test]
fn check_refuses_a_symlink_to_dev_zero_by_name_and_cap() {
    let dir = valid_dir("z1");
    symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
    let (out, stderr) = check(dir.path());
    assert!(!out.status.success());
    assert!(
        stderr.contains("zero.yaml") && stderr.contains("character device") && stderr.contains("4 MiB"),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_huge_sparse_file_by_name_and_cap() {
    let dir = valid_dir("s1");
    let file = std::fs::File::create(dir.path().join("big.yaml")).unwrap();
    file.set_len(64 << 30).unwrap();
    let (out, stderr) = check(dir.path());
    assert!(!out.status.success());
    assert!(
        stderr.contains("big.yaml") && stderr.contains("68719476736 bytes") && stderr.contains("4 MiB"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_fails_the_reload_and_removing_it_recovers() {
    let dir = valid_dir("f1");
    let process = serve_dir(dir.path(), &["--poll-interval", "60s", "--drain-timeout", "2s"]);
    mkfifo(&dir.path().join("x.yaml"));

    // Reload answers, naming the FIFO; the old rules keep answering.
    let reload = tokio::time::timeout(HANG_GUARD, admin(&process).await.reload(pb::ReloadRequest {}))
        .await
        .expect("Reload did not answer")
        .unwrap()
        .into_inner();
    assert!(!reload.changed);
    let error = reload.status.unwrap().last_attempt.unwrap().error;
    assert!(error.contains("x.yaml: is a FIFO, not a regular file"), "{error}");
    let attempt = wait_for_failure(&process).await;
    assert!(attempt.error.contains("x.yaml"), "{attempt:?}");
    assert_eq!(answer(&process).await, ("f1".to_string(), 1));

    // Removing it and editing a rule: the watch reloads again.
    std::fs::remove_file(dir.path().join("x.yaml")).unwrap();
    write(dir.path(), "custom.yaml", &rule_file("f2"));
    assert_eq!(wait_for_generation(&process, 2, HANG_GUARD).await, "f2");
    assert!(last_attempt(&process).await.success);

    let (took, _) = terminate(process).await;
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_to_the_directory_itself_fail_the_reload_with_a_short_error() {
    let dir = valid_dir("l1");
    let process = serve_dir(dir.path(), &["--poll-interval", "60s"]);
    symlink(".", dir.path().join("a")).unwrap();
    symlink(".", dir.path().join("b")).unwrap();
    let attempt = wait_for_failure(&process).await;
    assert!(attempt.error.len() < 1_000, "{} bytes of errors", attempt.error.len());
    assert!(attempt.error.contains("symlink loop"), "{}", attempt.error);
    assert_eq!(answer(&process).await, ("l1".to_string(), 1));

    std::fs::remove_file(dir.path().join("a")).unwrap();
    std::fs::remove_file(dir.path().join("b")).unwrap();
    write(dir.path(), "custom.yaml", &rule_file("l2"));
    assert_eq!(wait_for_generation(&process, 2, HANG_GUARD).await, "l2");
}

/// A rule set that takes many seconds to verify: each example runs a script to its operation limit.
fn slow_rules(dir: &Path) {
    let script = "fn spin(reply) {\n    let n = 0;\n    while n < 100000 { n += 1; }\n    true\n}\n";
    let examples: String = (0..400).map(|i| format!("      - '550 over quota {i}'\n")).collect();
    let rules = format!(
        "rules:\n  - id: slow/spin\n    category: mailbox_full\n    when: {{ text: 'over quota', script: slow.rhai::spin }}\n    examples:\n{examples}"
    );
    write(dir, "slow.rhai", script);
    write(dir, "slow.yaml", &rules);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_past_its_timeout_is_reported_and_does_not_hold_shutdown() {
    let dir = valid_dir("t1");
    let process = serve_dir(
        dir.path(),
        &[
            "--watch",
            "false",
            "--poll-interval",
            "0s",
            "--reload-timeout",
            "1s",
            "--drain-timeout",
            "2s",
        ],
    );
    slow_rules(dir.path());

    // Reload answers at its timeout, not when the verification ends.
    let reload = tokio::time::timeout(HANG_GUARD, admin(&process).await.reload(pb::ReloadRequest {}))
        .await
        .expect("Reload did not answer")
        .unwrap()
        .into_inner();
    assert!(!reload.changed);
    let attempt = reload.status.unwrap().last_attempt.unwrap();
    assert!(!attempt.success);
    assert!(attempt.error.contains("did not finish within 1s"), "{attempt:?}");
    assert_eq!(last_attempt(&process).await.error, attempt.error);
    assert_eq!(answer(&process).await, ("t1".to_string(), 1));

    // A second Reload while the first still runs answers too, saying so.
    let again = tokio::time::timeout(HANG_GUARD, admin(&process).await.reload(pb::ReloadRequest {}))
        .await
        .expect("Reload did not answer")
        .unwrap()
        .into_inner();
    let error = again.status.unwrap().last_attempt.unwrap().error;
    assert!(error.contains("still running"), "{error}");

    let (took, _) = terminate(process).await;
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_on_embedded_rules_is_logged_and_ignored() {
    let process = start(&["--drain-timeout", "2s"]);
    let pid = process.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    let request = pb::ClassifyRequest {
        text: REPLY.into(),
        ..Default::default()
    };
    assert_eq!(
        client.classify(request).await.unwrap().into_inner().category,
        "mailbox_full"
    );
    // Had SIGHUP ended the process, SIGTERM would find it gone and the exit would not be clean.
    let (_, messages) = terminate(process).await;
    assert!(
        messages.iter().any(|m| m.starts_with("SIGHUP received")),
        "{messages:?}"
    );
}

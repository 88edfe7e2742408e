//! Live rule editing against the running binary: file edits, ConfigMap swaps, editor renames,
//! SIGHUP, deletions and invalid edits; and a load test of reloads under traffic.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use rebound::pb::rule_admin_client::RuleAdminClient;
use tokio::sync::Mutex;
use tokio_stream::StreamExt as _;

use crate::grpc::TestServer;
use crate::service::{Process, sample, scrape, start};
use crate::util::{root, write};

/// A reply every rule directory of these tests decides; its rule id tells which version did.
pub(crate) const REPLY: &str = "550 5.2.2 the mailbox of bob is over quota";

/// A rule that answers REPLY, with `id` so that each version is told apart.
fn rule_file(id: &str) -> String {
    format!(
        "rules:\n  - id: {id}\n    category: mailbox_full\n    when: {{ text: 'over quota' }}\n    examples: ['{REPLY}']\n"
    )
}

fn categories() -> String {
    std::fs::read_to_string(root().join("rules/categories.yaml")).unwrap()
}

/// The rule that decides [`REPLY`] on `process`, and the generation of its rule set.
pub(crate) async fn answer(process: &Process) -> (String, u64) {
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    let request = pb::ClassifyRequest {
        text: REPLY.into(),
        ..Default::default()
    };
    let a = client.classify(request).await.unwrap().into_inner();
    (a.rule_id, a.ruleset.unwrap().generation)
}

/// Polls the answer until it comes from `generation`; the time limit is the assertion.
pub(crate) async fn wait_for_generation(process: &Process, generation: u64, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let (rule, g) = answer(process).await;
        if g == generation {
            return rule;
        }
        assert!(
            started.elapsed() < within,
            "generation {generation} not answering after {within:?} (still {g})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn status(process: &Process) -> pb::RuleSetStatus {
    let mut admin = RuleAdminClient::connect(format!("http://{}", process.admin))
        .await
        .unwrap();
    admin.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner()
}

fn serve_dir(dir: &Path, extra: &[&str]) -> Process {
    let mut args = vec!["--rules", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_invalid_edits_fixes_renames_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "categories.yaml", &categories());
    write(dir.path(), "custom.yaml", &rule_file("v1"));
    let process = serve_dir(dir.path(), &["--poll-interval", "60s"]);
    assert_eq!(answer(&process).await, ("v1".to_string(), 1));

    // An edit in place.
    write(dir.path(), "custom.yaml", &rule_file("v2"));
    assert_eq!(wait_for_generation(&process, 2, Duration::from_secs(2)).await, "v2");

    // An invalid edit: the old rules keep answering and the status names file and error.
    write(
        dir.path(),
        "custom.yaml",
        "rules:\n  - id: v3\n    category: no_such_category\n",
    );
    let started = Instant::now();
    let failed = loop {
        let s = status(&process).await;
        let attempt = s.last_attempt.clone().unwrap();
        if !attempt.success {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the invalid edit was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let error = failed.last_attempt.unwrap().error;
    assert!(
        error.contains("custom.yaml:2") && error.contains("unknown category `no_such_category`"),
        "{error}"
    );
    assert_eq!(failed.active.unwrap().generation, 2);
    assert_eq!(answer(&process).await, ("v2".to_string(), 2));

    // Fixing it loads the new version.
    write(dir.path(), "custom.yaml", &rule_file("v4"));
    assert_eq!(wait_for_generation(&process, 3, Duration::from_secs(2)).await, "v4");

    // An editor's write: a temporary file renamed over the original.
    write(dir.path(), ".custom.yaml.swp", &rule_file("v5"));
    std::fs::rename(dir.path().join(".custom.yaml.swp"), dir.path().join("custom.yaml")).unwrap();
    assert_eq!(wait_for_generation(&process, 4, Duration::from_secs(2)).await, "v5");

    // A new file, then deleting it: the rules reload without it.
    write(
        dir.path(),
        "extra.yaml",
        "rules:\n  - id: extra/exceeded\n    category: mailbox_full\n    when: { text: 'quota exceeded' }\n    examples: ['552 quota exceeded']\n",
    );
    wait_for_generation(&process, 5, Duration::from_secs(2)).await;
    std::fs::remove_file(dir.path().join("extra.yaml")).unwrap();
    assert_eq!(wait_for_generation(&process, 6, Duration::from_secs(2)).await, "v5");
    assert!(status(&process).await.last_attempt.unwrap().success);

    let metrics = scrape(process.metrics);
    assert_eq!(
        sample(&metrics, "rebound_rules_last_reload_successful "),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, r#"rebound_rules_reloads_total{result="failure"}"#),
        1.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, r#"rebound_rules_reloads_total{result="success"}"#) >= 6.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "rebound_rules_last_reload_success_timestamp_seconds ") > 1.7e9,
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "rebound_rules_generation "), 6.0, "{metrics}");
}

/// What kubelet does to a ConfigMap volume: a new timestamped directory, `..data` re-pointed by
/// renaming a fresh symlink over it, then the old directory removed.
fn configmap_swap(dir: &Path, stamp: &str, rules: &str) {
    let data = dir.join(stamp);
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("categories.yaml"), categories()).unwrap();
    std::fs::write(data.join("custom.yaml"), rules).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::os::unix::fs::symlink(stamp, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for name in ["categories.yaml", "custom.yaml"] {
        if std::fs::symlink_metadata(dir.join(name)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_swaps_are_picked_up_every_time() {
    let dir = tempfile::tempdir().unwrap();
    configmap_swap(dir.path(), "..2026_11_27_10_00_00.000000001", &rule_file("cm1"));
    let process = serve_dir(dir.path(), &["--poll-interval", "60s"]);
    assert_eq!(answer(&process).await, ("cm1".to_string(), 1));
    configmap_swap(dir.path(), "..2026_11_27_10_01_00.000000002", &rule_file("cm2"));
    assert_eq!(wait_for_generation(&process, 2, Duration::from_secs(2)).await, "cm2");
    configmap_swap(dir.path(), "..2026_11_27_10_02_00.000000003", &rule_file("cm3"));
    assert_eq!(wait_for_generation(&process, 3, Duration::from_secs(2)).await, "cm3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_a_watch() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "categories.yaml", &categories());
    write(dir.path(), "custom.yaml", &rule_file("h1"));
    let process = serve_dir(dir.path(), &["--watch", "false", "--poll-interval", "0s"]);
    write(dir.path(), "custom.yaml", &rule_file("h2"));
    // Nothing watches or polls: the old rules still answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(answer(&process).await, ("h1".to_string(), 1));
    let pid = process.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    assert_eq!(wait_for_generation(&process, 2, Duration::from_secs(2)).await, "h2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_check_catches_a_replaced_directory() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("rules");
    write(&dir, "categories.yaml", &categories());
    write(&dir, "custom.yaml", &rule_file("p1"));
    let process = serve_dir(&dir, &["--poll-interval", "1s"]);
    // The directory is removed and made anew: its watch is gone with it.
    std::fs::remove_dir_all(&dir).unwrap();
    write(&dir, "categories.yaml", &categories());
    write(&dir, "custom.yaml", &rule_file("p2"));
    assert_eq!(wait_for_generation(&process, 2, Duration::from_secs(4)).await, "p2");
    // And the watch is back: a plain edit is seen again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    write(&dir, "custom.yaml", &rule_file("p3"));
    assert_eq!(wait_for_generation(&process, 3, Duration::from_secs(2)).await, "p3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_rule_directory_at_start_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "categories.yaml", &categories());
    write(
        dir.path(),
        "custom.yaml",
        "rules:\n  - id: broken\n    category: nope\n",
    );
    let out = crate::util::rebound()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--rules",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("custom.yaml:2: rule `broken`: unknown category `nope`"),
        "{stderr}"
    );
}

/// 20 clients classify without pause (unary, batch and stream) while 50 reloads alternate
/// between valid and invalid rules: no call fails, every answer comes from a generation that
/// loaded, and no batch mixes generations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "categories.yaml", &categories());
    write(dir.path(), "custom.yaml", &rule_file("load0"));
    let server = TestServer::reloaded_by_admin_only(dir.path()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let mut clients = Vec::new();
    for c in 0..20 {
        let mut client = server.client().await;
        let (stop, answered, seen) = (Arc::clone(&stop), Arc::clone(&answered), Arc::clone(&seen));
        clients.push(tokio::spawn(async move {
            let request = || pb::ClassifyRequest {
                text: REPLY.into(),
                ..Default::default()
            };
            while !stop.load(Ordering::Relaxed) {
                let generations: Vec<u64> = match c % 3 {
                    0 => vec![
                        client
                            .classify(request())
                            .await
                            .unwrap()
                            .into_inner()
                            .ruleset
                            .unwrap()
                            .generation,
                    ],
                    1 => {
                        let batch = pb::ClassifyBatchRequest {
                            items: (0..50).map(|_| request()).collect(),
                        };
                        let answer = client.classify_batch(batch).await.unwrap().into_inner();
                        let g = answer.ruleset.unwrap().generation;
                        assert!(
                            answer.items.iter().all(|i| i.ruleset.as_ref().unwrap().generation == g),
                            "a batch mixed generations"
                        );
                        vec![g]
                    }
                    _ => {
                        let items = tokio_stream::iter((0..20).map(move |_| request()));
                        let mut answers = client.classify_stream(items).await.unwrap().into_inner();
                        let mut gs = Vec::new();
                        while let Some(a) = answers.next().await {
                            gs.push(a.unwrap().ruleset.unwrap().generation);
                        }
                        assert_eq!(gs.len(), 20);
                        gs
                    }
                };
                answered.fetch_add(generations.len() as u64, Ordering::Relaxed);
                seen.lock().await.extend(generations);
            }
        }));
    }
    let mut admin = server.admin().await;
    let mut loaded = BTreeSet::from([1u64]);
    for i in 1..=50 {
        let text = if i % 2 == 0 {
            rule_file(&format!("load{i}"))
        } else {
            "rules: [ broken".to_string()
        };
        write(dir.path(), "custom.yaml", &text);
        let reply = admin.reload(pb::ReloadRequest {}).await.unwrap().into_inner();
        assert_eq!(reply.changed, i % 2 == 0, "reload {i}");
        loaded.insert(reply.status.unwrap().active.unwrap().generation);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let seen = seen.lock().await.clone();
    assert_eq!(loaded.len(), 26, "{loaded:?}");
    assert!(
        seen.is_subset(&loaded),
        "answers from generations that never loaded: {:?}",
        seen.difference(&loaded)
    );
    assert!(seen.len() > 10, "traffic saw only {seen:?}");
    println!(
        "{} answers across generations {seen:?}",
        answered.load(Ordering::Relaxed)
    );
    server.stop().await;
}

/// A site rule on codes alone, in the guide's Invalid Address; with `override_line`, its outcome.
fn code_only_rule(override_line: &str) -> String {
    format!(
        "rules:\n  - id: site/550-5.7.1\n    category: invalid_address\n    when: {{ code: 550, enhanced: 5.7.1 }}\n    \
         definition: Our relay answers 550 5.7.1 for addresses that left.\n{override_line}    examples: ['550 5.7.1']\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_suppress_override_on_a_code_only_rule_takes_effect_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "categories.yaml", &categories());
    write(dir.path(), "site.yaml", &code_only_rule(""));
    let process = serve_dir(dir.path(), &["--watch", "false", "--poll-interval", "0s"]);
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    let request = pb::ClassifyRequest {
        code: 550,
        enhanced: "5.7.1".into(),
        explain: true,
        ..Default::default()
    };
    let before = client.classify(request.clone()).await.unwrap().into_inner();
    assert_eq!(before.rule_id, "site/550-5.7.1");
    assert_eq!(before.evidence(), pb::Evidence::EnhancedCode);
    assert!(!before.suppress_recipient, "a policy code alone must not suppress");
    let why = before.explanation.unwrap().suppression;
    assert!(why.starts_with("suppression withheld"), "{why}");

    write(
        dir.path(),
        "site.yaml",
        &code_only_rule("    outcome: { suppress_recipient: true }\n"),
    );
    let mut admin = RuleAdminClient::connect(format!("http://{}", process.admin))
        .await
        .unwrap();
    let reloaded = admin.reload(pb::ReloadRequest {}).await.unwrap().into_inner();
    assert!(reloaded.changed, "{reloaded:?}");

    let after = client.classify(request).await.unwrap().into_inner();
    assert_eq!(after.ruleset.as_ref().unwrap().generation, 2);
    assert_eq!(after.evidence(), pb::Evidence::EnhancedCode);
    assert!(after.suppress_recipient, "the operator's override must take effect");
    assert_eq!(after.bounce_type(), pb::BounceType::Hard);
    let why = after.explanation.unwrap().suppression;
    assert!(why.contains("override"), "{why}");
}

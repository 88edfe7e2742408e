//! The unmatched-reply tally through the server: weakly decided replies counted by template
//! (Classify, ClassifyBatch, ClassifyStream, ClassifyMessage), listed by RuleAdmin.ListUnmatched
//! within Space-Saving's error bounds, kept across reloads less what new text rules decide, and
//! emptied by ResetUnmatched.

use std::collections::{HashMap, HashSet};

use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use rebound::pb::rule_admin_client::RuleAdminClient;
use rebound::server::UnmatchedOptions;
use rebound_engine::template;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use crate::grpc::TestServer;
use crate::util::{root, write};

/// A rule directory with the shipped categories and the code fallbacks only: no text rule, so
/// every reply is decided on its codes (or on nothing).
fn code_rules_only() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["categories.yaml", "fallback/code.yaml", "fallback/enhanced.yaml"] {
        let text = std::fs::read_to_string(root().join("rules").join(file)).unwrap();
        write(dir.path(), file, &text);
    }
    dir
}

/// A made-up word per index (three syllables of twenty: 8,000 of them), so that each reply has
/// wording of its own that no shipped rule knows.
fn word(i: usize) -> String {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze", "ba", "do", "fe", "gi", "ho", "ju", "ki", "lu",
        "mo", "ne",
    ];
    [i % 20, i / 20 % 20, i / 400 % 20]
        .iter()
        .map(|&s| SYLLABLES[s])
        .collect()
}

/// Reply number `i`: one of three weak shapes (enhanced code, reply code alone, no code).
fn reply(i: usize) -> String {
    let w = word(i);
    match i % 3 {
        0 => format!("550 5.2.1 {w} gateway turned the message away"),
        1 => format!("451 {w} gateway turned the message away"),
        _ => format!("{w} gateway turned the message away"),
    }
}

fn request(id: usize, text: &str) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        id: id.to_string(),
        text: text.into(),
        ..Default::default()
    }
}

/// Zipf-like counts (rank r seen about C/r times, at least once) over `distinct` replies,
/// adding up to `total`.
fn zipf(distinct: usize, total: u64) -> Vec<u64> {
    let harmonic: f64 = (1..=distinct).map(|r| 1.0 / r as f64).sum();
    let scale = total as f64 / harmonic;
    let mut counts: Vec<u64> = (1..=distinct).map(|r| ((scale / r as f64) as u64).max(1)).collect();
    let sum: u64 = counts.iter().sum();
    counts[0] += total.saturating_sub(sum);
    counts
}

/// A fixed shuffle (xorshift), so that runs are alike and the order is not by rank.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for at in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(at, (state % (at as u64 + 1)) as usize);
    }
}

async fn list(
    admin: &mut RuleAdminClient<tonic::transport::Channel>,
    request: pb::ListUnmatchedRequest,
) -> pb::ListUnmatchedResponse {
    admin.list_unmatched(request).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tally_lists_the_true_top_templates_within_bounds_and_survives_a_reload() {
    const DISTINCT: usize = 5_000;
    const TOTAL: u64 = 100_000;
    const CAPACITY: usize = 2_000;
    let dir = code_rules_only();
    let server = TestServer::tallying(
        dir.path(),
        UnmatchedOptions {
            capacity: CAPACITY,
            examples: false,
        },
    )
    .await;
    let (mut client, mut admin) = (server.client().await, server.admin().await);

    let texts: Vec<String> = (0..DISTINCT).map(reply).collect();
    let templates: Vec<String> = texts.iter().map(|t| template(t)).collect();
    assert_eq!(
        templates.iter().collect::<HashSet<_>>().len(),
        DISTINCT,
        "the replies must make distinct templates"
    );
    let counts = zipf(DISTINCT, TOTAL);
    assert_eq!(counts.iter().sum::<u64>(), TOTAL);
    let mut sequence: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(rank, &n)| std::iter::repeat_n(rank, n as usize))
        .collect();
    shuffle(&mut sequence);
    for chunk in sequence.chunks(2_000) {
        let items = chunk.iter().map(|&rank| request(rank, &texts[rank])).collect();
        let answer = client
            .classify_batch(pb::ClassifyBatchRequest { items })
            .await
            .unwrap()
            .into_inner();
        // Weak answers only: what the tally is for.
        assert!(answer.items.iter().all(|a| {
            matches!(
                a.evidence(),
                pb::Evidence::EnhancedCode | pb::Evidence::ReplyCode | pb::Evidence::None
            )
        }));
    }

    // Bounded memory: the capacity, not the 5,000 templates seen.
    let everything = list(
        &mut admin,
        pb::ListUnmatchedRequest {
            limit: u32::MAX,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(everything.capacity, CAPACITY as u64);
    assert_eq!(everything.tracked, CAPACITY as u64, "every shard is full");
    assert_eq!(
        everything.templates.len(),
        CAPACITY,
        "the limit is at most the capacity"
    );

    // The default limit is 50, and the true top ten come first, each count within its bound.
    let top = list(&mut admin, pb::ListUnmatchedRequest::default()).await;
    assert_eq!(top.templates.len(), 50);
    let true_count: HashMap<&str, u64> = templates
        .iter()
        .map(String::as_str)
        .zip(counts.iter().copied())
        .collect();
    let listed: Vec<&str> = top.templates.iter().take(10).map(|t| t.template.as_str()).collect();
    let expected: Vec<&str> = templates.iter().take(10).map(String::as_str).collect();
    assert_eq!(
        listed.iter().collect::<HashSet<_>>(),
        expected.iter().collect::<HashSet<_>>(),
        "the true top ten"
    );
    for t in &everything.templates {
        let truth = true_count[t.template.as_str()];
        assert!(
            truth <= t.count && t.count <= truth + t.error_bound,
            "{}: true {truth}, listed {} ± {}",
            t.template,
            t.count,
            t.error_bound
        );
        assert!(t.first_seen_unix_ms <= t.last_seen_unix_ms && t.first_seen_unix_ms > 0);
        assert!(t.example.is_empty(), "examples are off");
    }
    assert!(
        top.templates.windows(2).all(|w| w[0].count >= w[1].count),
        "most seen first"
    );
    // The top template is rank 0: an enhanced-code reply, decided by a fallback on 5.2.*.
    let first = &top.templates[0];
    assert_eq!(first.template, templates[0]);
    assert_eq!(first.evidence(), pb::Evidence::EnhancedCode);
    assert!(first.rule_id.starts_with("fallback/enhanced/"), "{first:?}");

    // Filters: by evidence, category and provider.
    let by_code = list(
        &mut admin,
        pb::ListUnmatchedRequest {
            limit: 100,
            evidence: pb::Evidence::ReplyCode.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_code.templates.len(), 100);
    assert!(
        by_code
            .templates
            .iter()
            .all(|t| t.evidence() == pb::Evidence::ReplyCode)
    );
    assert_eq!(
        by_code.templates[0].template, templates[1],
        "rank 1 is the top reply-code template"
    );
    let by_category = list(
        &mut admin,
        pb::ListUnmatchedRequest {
            limit: 100,
            category: "unclassified".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(!by_category.templates.is_empty());
    assert!(by_category.templates.iter().all(|t| t.category == "unclassified"));
    assert_eq!(by_category.templates[0].template, templates[2]);
    let by_text = list(
        &mut admin,
        pb::ListUnmatchedRequest {
            evidence: pb::Evidence::Text.into(),
            ..Default::default()
        },
    )
    .await;
    assert!(by_text.templates.is_empty(), "text decisions are never tallied");
    let by_provider = list(
        &mut admin,
        pb::ListUnmatchedRequest {
            provider: "gmail".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(by_provider.templates.is_empty());
    let bad = admin
        .list_unmatched(pb::ListUnmatchedRequest {
            evidence: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // A reload with a text rule for the top template keeps the tally and drops that template.
    let rule = format!(
        "rules:\n  - id: local/gateway-{w}\n    category: rejection\n    when: {{ text: '{w} gateway' }}\n    examples: ['{example}']\n",
        w = word(0),
        example = texts[0]
    );
    write(dir.path(), "local.yaml", &rule);
    let reloaded = admin.reload(pb::ReloadRequest {}).await.unwrap().into_inner();
    assert!(reloaded.changed, "{:?}", reloaded.status);
    let after = list(&mut admin, pb::ListUnmatchedRequest::default()).await;
    assert_eq!(after.tracked, CAPACITY as u64 - 1);
    assert!(after.templates.iter().all(|t| t.template != templates[0]));
    assert_eq!(after.templates[..9], top.templates[1..10], "the rest keep their counts");
    // It is now decided on its wording, and no longer tallied.
    let answer = client.classify(request(0, &texts[0])).await.unwrap().into_inner();
    assert_eq!(answer.evidence(), pb::Evidence::Text);
    let again = list(&mut admin, pb::ListUnmatchedRequest::default()).await;
    assert!(again.templates.iter().all(|t| t.template != templates[0]));

    // ResetUnmatched empties it.
    let reset = admin
        .reset_unmatched(pb::ResetUnmatchedRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.forgotten, CAPACITY as u64 - 1);
    let empty = list(&mut admin, pb::ListUnmatchedRequest::default()).await;
    assert_eq!((empty.tracked, empty.templates.len()), (0, 0));
    server.stop().await;
}

/// A one-recipient delivery status notification whose diagnostic is `diagnostic`.
fn dsn(diagnostic: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\nSubject: Undelivered Mail\n\
         MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
         --B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n\
         --B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n\
         Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.2.1\n\
         Diagnostic-Code: smtp; {diagnostic}\n\n--B--\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_classifying_is_tallied_with_examples_when_asked() {
    let dir = code_rules_only();
    let server = TestServer::tallying(
        dir.path(),
        UnmatchedOptions {
            capacity: 100,
            examples: true,
        },
    )
    .await;
    let (mut client, mut admin) = (server.client().await, server.admin().await);
    let text = format!("{} for <bob@example.com>", reply(0));
    client.classify(request(1, &text)).await.unwrap();
    client
        .classify_batch(pb::ClassifyBatchRequest {
            items: vec![request(2, &text), request(3, &text)],
        })
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let mut answers = client
        .classify_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request(4, &text)).await.unwrap();
    answers.next().await.unwrap().unwrap();
    drop(tx);
    let message = client
        .classify_message(pb::ClassifyMessageRequest {
            id: "m".into(),
            message: dsn(&text).into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message.recipients.len(), 1, "{message:?}");

    let listed = list(&mut admin, pb::ListUnmatchedRequest::default()).await;
    assert_eq!(listed.tracked, 1, "{listed:?}");
    let entry = &listed.templates[0];
    assert_eq!((entry.template.as_str(), entry.count), (template(&text).as_str(), 5));
    assert_eq!(
        entry.example,
        format!("{} for <*>", reply(0)),
        "the latest reply, its address masked, as --unmatched-examples asks"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_of_zero_turns_the_tally_off() {
    let dir = code_rules_only();
    let server = TestServer::tallying(
        dir.path(),
        UnmatchedOptions {
            capacity: 0,
            examples: false,
        },
    )
    .await;
    let (mut client, mut admin) = (server.client().await, server.admin().await);
    client.classify(request(1, &reply(1))).await.unwrap();
    let listed = list(&mut admin, pb::ListUnmatchedRequest::default()).await;
    assert_eq!((listed.capacity, listed.tracked, listed.templates.len()), (0, 0, 0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gauge_follows_the_templates_held() {
    let dir = code_rules_only();
    let rules = dir.path().to_str().unwrap();
    let process = crate::service::start(&["--rules", rules, "--unmatched-capacity", "3"]);
    let gauge = || crate::service::sample(&crate::service::scrape(process.metrics), "rebound_unmatched_templates ");
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    for i in 0..2 {
        client.classify(request(i, &reply(i))).await.unwrap();
    }
    let mut admin = RuleAdminClient::connect(format!("http://{}", process.admin))
        .await
        .unwrap();
    let listed = list(&mut admin, pb::ListUnmatchedRequest::default()).await;
    assert_eq!(gauge(), 2.0, "{listed:?}");
    // Five wordings into three places: the gauge stops at the capacity.
    for i in 2..5 {
        client.classify(request(i, &reply(i))).await.unwrap();
    }
    assert_eq!(gauge(), 3.0);
    let mut admin = RuleAdminClient::connect(format!("http://{}", process.admin))
        .await
        .unwrap();
    let reset = admin
        .reset_unmatched(pb::ResetUnmatchedRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.forgotten, 3);
    assert_eq!(gauge(), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_listing_fits_a_default_grpc_client() {
    let dir = code_rules_only();
    let server = TestServer::tallying(
        dir.path(),
        UnmatchedOptions {
            capacity: 3_000,
            examples: true,
        },
    )
    .await;
    let mut client = server.client().await;
    // 3,000 wordings of about 1.5 KiB, each its own template and example: 9 MB to list whole.
    let filler = "gateway turned the message away ".repeat(48);
    for start in (0..3_000).step_by(500) {
        let items = (start..start + 500)
            .map(|i| request(i, &format!("{} {filler}", reply(i))))
            .collect();
        client.classify_batch(pb::ClassifyBatchRequest { items }).await.unwrap();
    }
    // A client with gRPC's default 4 MiB receive limit.
    let mut admin = server.admin().await;
    let listed = list(
        &mut admin,
        pb::ListUnmatchedRequest {
            limit: u32::MAX,
            ..Default::default()
        },
    )
    .await;
    // Shards fill unevenly, so not quite all 3,000 are held; far more than fit in 4 MiB.
    assert!(listed.tracked > 2_500, "{}", listed.tracked);
    assert!(!listed.templates.is_empty() && (listed.templates.len() as u64) < listed.tracked);
    assert!(prost::Message::encoded_len(&listed) < 4 << 20);
    server.stop().await;
}

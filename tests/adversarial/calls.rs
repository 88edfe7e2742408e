//! Unary and batch calls: deadlines, cancellation, field limits, bounded answers, status codes.
//!
//! Slow work comes from a rule set whose scripts spin on one remote host until the scripts'
//! time budget stops them (about 10 ms a reply), so it stays slow whatever the text matcher
//! costs. One reply is bounded, so slow calls are batches of many; how slow depends on the build
//! and the machine: each test times one slow reply first and sizes its work from that, so that a
//! server that did not stop would still be busy long after the test's generous bounds.

use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message as _;
use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use rebound::server::{Limits, RuleOrigin, ServerConfig};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::grpc::TestServer;
use crate::service::start;
use crate::util::rule_dir;

/// Rules that each name a marker and run a script that spins when the reply comes from
/// `slow.test`: a reply naming every marker runs every script.
const SLOW_RULES: usize = 40;

/// The slow rules and their script.
fn slow_rules() -> tempfile::TempDir {
    let mut yaml = String::from("rules:\n");
    for i in 0..SLOW_RULES {
        yaml.push_str(&format!(
            "  - id: slow/{i}\n    category: rejection\n    when: {{ code: 550, text: 'slowmark{i}x', script: slow.rhai::spin }}\n    priority: {i}\n    examples: ['550 slowmark{i}x accept']\n"
        ));
    }
    let script = "fn spin(r) {\n  if r.remote_host == \"slow.test\" {\n    let n = 0;\n    while n < 3000 { n += 1; }\n  }\n  r.text.contains(\"accept\")\n}\n";
    rule_dir(&[("slow.yaml", &yaml), ("slow.rhai", script)])
}

/// A reply that runs every slow rule's script, padded past what the server classifies inline.
fn slow_item(id: usize) -> pb::ClassifyRequest {
    let mut item = slow_batch_item(id);
    item.text.push_str(&" pad".repeat(2_500));
    item
}

/// A reply that runs every slow rule's script, short enough for thousands in one batch.
fn slow_batch_item(id: usize) -> pb::ClassifyRequest {
    let markers: Vec<String> = (0..SLOW_RULES).map(|i| format!("slowmark{i}x")).collect();
    pb::ClassifyRequest {
        id: id.to_string(),
        code: 550,
        text: format!("550 {}", markers.join(" ")),
        remote_host: "slow.test".into(),
        ..Default::default()
    }
}

fn request(id: &str, text: &str) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        id: id.into(),
        text: text.into(),
        ..Default::default()
    }
}

/// How long the server takes for one slow reply here.
async fn time_one_slow_reply(client: &mut ClassifierClient<Channel>) -> Duration {
    let started = Instant::now();
    let answer = client.classify(slow_item(0)).await.unwrap().into_inner();
    assert_eq!(answer.category, "unclassified", "{answer:?}");
    started.elapsed()
}

/// How long a server of its own takes for one slow reply here.
async fn time_one_slow_reply_alone() -> Duration {
    let (server, _dir) = slow_server(Limits::default()).await;
    let one = time_one_slow_reply(&mut server.client().await).await;
    server.stop().await;
    one
}

/// Enough slow replies to keep a server that does not stop busy for a minute (at most a full
/// batch).
fn slow_batch(one: Duration) -> Vec<pb::ClassifyRequest> {
    slow_batch_of(one, Duration::from_secs(60))
}

/// Enough slow replies to keep a server busy for `work`.
fn slow_batch_of(one: Duration, work: Duration) -> Vec<pb::ClassifyRequest> {
    let n = (work.as_secs_f64() / one.as_secs_f64().max(0.001)).ceil() as usize;
    (0..n.clamp(100, Limits::default().max_batch_items))
        .map(slow_batch_item)
        .collect()
}

async fn slow_server(limits: Limits) -> (TestServer, tempfile::TempDir) {
    let dir = slow_rules();
    let config = ServerConfig {
        limits,
        ..ServerConfig::default()
    };
    (
        TestServer::start(config, RuleOrigin::Dir(dir.path().to_path_buf())).await,
        dir,
    )
}

/// Calls `Classify` on a new connection until it is admitted; how long that took.
async fn admitted_within(server: &TestServer, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut client = server.client().await;
    loop {
        match client.classify(request("next", "550 5.1.1 user unknown")).await {
            Ok(_) => return started.elapsed(),
            Err(s) if s.code() == Code::ResourceExhausted && started.elapsed() < bound => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("not admitted within {bound:?}: {s:?}"),
        }
    }
}

/// A batch of slow replies past the deadline `client_deadline` (or, without one, the server's
/// 300 ms): its answer, and how long until the server admits another call. The server takes one
/// call at a time, so the batch's permit shows whether its work goes on.
async fn slow_batch_past_its_deadline(client_deadline: Option<Duration>) -> tonic::Status {
    let one = time_one_slow_reply_alone().await;
    let limits = Limits {
        max_concurrent_requests: 1,
        request_timeout: client_deadline.map_or(Duration::from_millis(300), |_| Duration::from_secs(600)),
        ..Limits::default()
    };
    let (server, _dir) = slow_server(limits).await;
    let mut client = server.client().await;
    let items = slow_batch(one);
    let n = items.len();

    let mut call = Request::new(pb::ClassifyBatchRequest { items });
    if let Some(deadline) = client_deadline {
        call.set_timeout(deadline);
    }
    let answer = tokio::time::timeout(Duration::from_secs(30), client.classify_batch(call))
        .await
        .expect("no answer 30 s after a deadline of 300 ms");
    let status = answer.unwrap_err();

    // All n replies would take n * one; a server that stopped admits the next call after about one.
    let bound = one * 10 + Duration::from_secs(5);
    assert!(one * n as u32 > bound * 4, "one slow reply took {one:?}");
    admitted_within(&server, bound).await;
    server.stop().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_the_server_timeout_gets_deadline_exceeded_and_its_work_stops() {
    let status = slow_batch_past_its_deadline(None).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_the_client_deadline_stops_its_work() {
    // tonic's client gives up at its own deadline and reports CANCELLED; other clients say
    // DEADLINE_EXCEEDED, which the server sends too (the test above).
    let status = slow_batch_past_its_deadline(Some(Duration::from_millis(300))).await;
    assert!(
        [Code::DeadlineExceeded, Code::Cancelled].contains(&status.code()),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_call_past_the_server_timeout_gets_deadline_exceeded() {
    let one = time_one_slow_reply_alone().await;
    assert!(one > Duration::from_millis(4), "one slow reply took {one:?}");

    let limits = Limits {
        request_timeout: (one / 4).max(Duration::from_millis(1)),
        ..Limits::default()
    };
    let (server, _dir) = slow_server(limits).await;
    let mut client = server.client().await;
    let status = client.classify(slow_item(1)).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The fast path checks the deadline too: a reply answered inline is still answered.
    let answer = client.classify(request("fast", "550 5.1.1 x")).await.unwrap();
    assert_eq!(answer.into_inner().id, "fast");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_do_not_hold_up_other_connections() {
    let (server, _dir) = slow_server(Limits::default()).await;
    let mut probe = server.client().await;
    let one = time_one_slow_reply(&mut probe).await;

    // More slow batches than the test runtime has workers (and the server has cores), each on
    // its own connection, each of about 10 s of work.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut client = server.client().await;
        let items = slow_batch_of(one, Duration::from_secs(10));
        slow.push(tokio::spawn(async move {
            client.classify_batch(pb::ClassifyBatchRequest { items }).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut other = server.client().await;
    let answer = tokio::time::timeout(Duration::from_secs(3), other.classify(request("fast", "550 5.1.1 x")))
        .await
        .expect("no answer")
        .unwrap();
    assert_eq!(answer.into_inner().id, "fast");
    let finished = slow.iter().filter(|call| call.is_finished()).count();
    assert_eq!(finished, 0, "the fast call waited for {finished} slow calls");
    // Dropping the calls cancels them; their work stops.
    for call in slow {
        call.abort();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_batch_exits_within_the_drain_timeout() {
    let dir = slow_rules();
    let mut process = start(&[
        "--rules",
        dir.path().to_str().unwrap(),
        "--drain-timeout",
        "1s",
        "--request-timeout",
        "10m",
    ]);
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);
    let one = time_one_slow_reply(&mut client).await;
    let items = slow_batch(one);
    let n = items.len();
    let batch = tokio::spawn(async move { client.classify_batch(pb::ClassifyBatchRequest { items }).await });
    tokio::time::sleep(one * 2).await;
    assert!(!batch.is_finished());

    let sent = Instant::now();
    let pid = process.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // The drain's second, the grace after it and one reply; all n replies would take n * one.
    let bound = Duration::from_secs(1) + one * 4 + Duration::from_secs(5);
    assert!(one * n as u32 > bound * 4, "one slow reply took {one:?}");
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < bound,
            "still running {:?} after SIGTERM",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(batch.await.unwrap().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_id_recipient_and_remote_host_are_invalid_argument_naming_the_field() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let text = "550 5.1.1 <bob@example.com>: user unknown";
    let at_limit = pb::ClassifyRequest {
        id: "i".repeat(1024),
        text: text.into(),
        recipient: format!("{}@example.com", "b".repeat(254 - 12)),
        remote_host: format!("{}.example.net", "m".repeat(255 - 12)),
        ..Default::default()
    };
    let answer = client.classify(at_limit.clone()).await.unwrap().into_inner();
    assert_eq!(answer.category, "invalid_address");
    let over = [
        (
            "id",
            pb::ClassifyRequest {
                id: "i".repeat(1025),
                ..at_limit.clone()
            },
        ),
        (
            "recipient",
            pb::ClassifyRequest {
                recipient: format!("b{}", at_limit.recipient),
                ..at_limit.clone()
            },
        ),
        (
            "remote_host",
            pb::ClassifyRequest {
                remote_host: format!("m{}", at_limit.remote_host),
                ..at_limit.clone()
            },
        ),
        (
            "recipient",
            pb::ClassifyRequest {
                recipient: "b".repeat(512 * 1024),
                ..at_limit.clone()
            },
        ),
    ];
    for (field, item) in &over {
        let status = client.classify(item.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "{}",
            status.message()
        );
        assert!(status.message().contains("over the limit"), "{}", status.message());
    }

    // In a batch, each is an error of its own and the others are answered.
    let mut items = vec![at_limit.clone()];
    items.extend(over.iter().map(|(_, item)| item.clone()));
    let answers = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(answers.len(), 5);
    assert_eq!(answers[0].category, "invalid_address");
    for ((field, _), answer) in over.iter().zip(&answers[1..]) {
        let error = answer.error.as_ref().unwrap();
        assert_eq!(
            (error.code.as_str(), error.field.as_str()),
            ("INVALID_ARGUMENT", *field)
        );
        // An id over its limit is not echoed back.
        assert!(answer.id.len() <= 1024);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_invalid_enhanced_code_is_invalid_argument_with_a_short_message() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    for value in [
        "5".repeat(6 * 1024),
        "é".repeat(3 * 1024),
        format!("5.1.1{}", " ".repeat(6000)),
    ] {
        let item = pb::ClassifyRequest {
            enhanced: value.clone(),
            text: "550 user unknown".into(),
            ..Default::default()
        };
        let status = client.classify(item.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with("enhanced: "), "{}", status.message());
        assert!(status.message().len() < 200, "{} bytes", status.message().len());

        let answers = client
            .classify_batch(pb::ClassifyBatchRequest { items: vec![item] })
            .await
            .unwrap()
            .into_inner()
            .items;
        let error = answers[0].error.as_ref().unwrap();
        assert_eq!(error.field, "enhanced");
        assert!(error.message.len() < 200, "{} bytes", error.message.len());
    }
    server.stop().await;
}

/// A client that asks for gzip answers and takes messages of any size.
async fn gzip_client(server: &TestServer) -> ClassifierClient<Channel> {
    server
        .client()
        .await
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explain_batch_answer_never_passes_the_message_limit() {
    const LIMIT: usize = 256 * 1024;
    let server = TestServer::embedded(ServerConfig {
        max_message_bytes: LIMIT,
        ..ServerConfig::default()
    })
    .await;
    let mut client = gzip_client(&server).await;
    let explained = |id: usize, text: &str| pb::ClassifyRequest {
        explain: true,
        ..request(&id.to_string(), text)
    };

    // Within the limit: answered, with every explanation.
    let items: Vec<_> = (0..20).map(|i| explained(i, "552 5.2.2 mailbox full")).collect();
    let answers = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap()
        .into_inner();
    assert!(answers.items.iter().all(|a| a.explanation.is_some()));
    assert!(answers.encoded_len() <= LIMIT);

    // Explanations that add up past the limit, though gzip would shrink them below it: refused,
    // never sent larger than the limit.
    let text = "550 5.1.1 the mailbox is unknown here ".repeat(80);
    let items: Vec<_> = (0..80).map(|i| explained(i, &text)).collect();
    assert!(pb::ClassifyBatchRequest { items: items.clone() }.encoded_len() < LIMIT);
    match client.classify_batch(pb::ClassifyBatchRequest { items }).await {
        Ok(answer) => panic!("{} bytes answered", answer.into_inner().encoded_len()),
        Err(status) => {
            assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
            assert!(status.message().contains("message limit"), "{}", status.message());
        }
    }

    // More explanations than a batch may ask for.
    let items: Vec<_> = (0..101).map(|i| explained(i, "552 5.2.2 mailbox full")).collect();
    let status = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("items: "), "{}", status.message());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_request_that_inflates_past_the_limit_is_out_of_range() {
    let server = TestServer::embedded(ServerConfig {
        max_message_bytes: 64 * 1024,
        ..ServerConfig::default()
    })
    .await;
    let mut client = gzip_client(&server).await;
    // A megabyte of text compresses to about a kilobyte.
    let bomb = request("bomb", &"a".repeat(1 << 20));
    let status = client.classify(bomb.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let status = client
        .classify_batch(pb::ClassifyBatchRequest { items: vec![bomb] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // Compressed requests within the limit are read as before.
    let answer = client.classify(request("ok", "552 5.2.2 mailbox full")).await.unwrap();
    assert_eq!(answer.into_inner().category, "mailbox_full");
    server.stop().await;
}

//! The gRPC service against a real loopback listener, with the generated Rust clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use rebound::pb::rule_admin_client::RuleAdminClient;
use rebound::server::{
    BoundServer, Limits, ReloadOptions, RuleOrigin, RuleState, ServerConfig, TlsFiles, UnmatchedOptions,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::util::{root, rule_dir, write};

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub admin_addr: std::net::SocketAddr,
    stop: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig, origin: RuleOrigin) -> TestServer {
        TestServer::serve(config, RuleState::load(origin).unwrap()).await
    }

    async fn serve(config: ServerConfig, state: RuleState) -> TestServer {
        let state = Arc::new(state);
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let bound = BoundServer::bind(config, state).unwrap();
        let (addr, admin_addr) = (bound.addr, bound.admin_addr);
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let handle = tokio::spawn(bound.serve(async move { signal.cancelled().await }));
        TestServer {
            addr,
            admin_addr,
            stop,
            handle,
        }
    }

    pub async fn embedded(config: ServerConfig) -> TestServer {
        TestServer::start(config, RuleOrigin::Embedded).await
    }

    pub async fn with_limits(limits: Limits) -> TestServer {
        TestServer::embedded(ServerConfig {
            limits,
            ..ServerConfig::default()
        })
        .await
    }

    /// Serves `dir` with no watch and no periodic check: only `RuleAdmin.Reload` reloads, so
    /// each call's result is known.
    pub async fn reloaded_by_admin_only(dir: &std::path::Path) -> TestServer {
        TestServer::tallying(dir, UnmatchedOptions::default()).await
    }

    /// As [`TestServer::reloaded_by_admin_only`], with the unmatched-reply tally set up as
    /// `unmatched`.
    pub async fn tallying(dir: &std::path::Path, unmatched: UnmatchedOptions) -> TestServer {
        let reload = ReloadOptions {
            watch: false,
            poll_interval: Duration::ZERO,
            ..ReloadOptions::default()
        };
        let config = ServerConfig {
            reload,
            ..ServerConfig::default()
        };
        let state = RuleState::load_with(RuleOrigin::Dir(dir.to_path_buf()), unmatched).unwrap();
        TestServer::serve(config, state).await
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> ClassifierClient<Channel> {
        ClassifierClient::new(self.channel().await)
    }

    pub async fn admin(&self) -> RuleAdminClient<Channel> {
        RuleAdminClient::connect(format!("http://{}", self.admin_addr))
            .await
            .unwrap()
    }

    /// Stops the server and waits for it, returning how long the shutdown took.
    pub async fn stop(self) -> Duration {
        let started = Instant::now();
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
        started.elapsed()
    }
}

fn request(id: &str, text: &str) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        id: id.into(),
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_answers_with_every_outcome_field() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let answer = client
        .classify(pb::ClassifyRequest {
            id: "m-1".into(),
            code: 550,
            enhanced: "5.1.1".into(),
            text: "<bob@example.com>: Recipient address rejected: User unknown".into(),
            recipient: "bob@example.com".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.id, "m-1");
    assert_eq!(answer.category, "invalid_address");
    assert_eq!(answer.category_name, "Invalid Address");
    assert_eq!(answer.bounce_type(), pb::BounceType::Hard);
    assert!(answer.suppress_recipient);
    assert!(!answer.retryable);
    assert_eq!(answer.responsible(), pb::Responsible::Recipient);
    assert_eq!(answer.rule_id, "generic/invalid_address/unknown-user");
    assert!(!answer.definition.is_empty() && !answer.summary.is_empty() && !answer.remediation.is_empty());
    assert_eq!((answer.code, answer.enhanced.as_str()), (550, "5.1.1"));
    let version = answer.ruleset.unwrap();
    assert_eq!((version.generation, version.digest.len()), (1, 64));
    assert!(answer.explanation.is_none() && answer.error.is_none());

    // Text alone, and an explanation on request.
    let mut only_text = request("t", "452 4.2.2 The recipient's inbox is out of storage space.");
    only_text.explain = true;
    let answer = client.classify(only_text).await.unwrap().into_inner();
    assert_eq!(
        (answer.category.as_str(), answer.code, answer.retryable),
        ("mailbox_full", 452, true)
    );
    let explanation = answer.explanation.unwrap();
    assert_eq!(explanation.winner, answer.rule_id);
    assert!(
        explanation
            .candidates
            .iter()
            .any(|c| c.matched && c.rule_id == answer.rule_id)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omit_advice_leaves_out_only_the_category_advice() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let text = "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown";
    let full = client.classify(request("f", text)).await.unwrap().into_inner();
    let mut brief_request = request("f", text);
    brief_request.omit_advice = true;
    let brief = client.classify(brief_request.clone()).await.unwrap().into_inner();
    assert!(!full.summary.is_empty() && !full.remediation.is_empty());
    assert!(brief.summary.is_empty() && brief.remediation.is_empty());
    // Everything else is the same answer.
    let without_advice = pb::ClassifyResponse {
        summary: String::new(),
        remediation: Vec::new(),
        ..full.clone()
    };
    assert_eq!(brief, without_advice);
    assert_eq!(brief.category, "invalid_address");

    // The advice left out is what ListCategories gives once.
    let categories = server
        .admin()
        .await
        .list_categories(pb::ListCategoriesRequest {})
        .await
        .unwrap()
        .into_inner();
    let category = categories
        .categories
        .iter()
        .find(|c| c.id == "invalid_address")
        .unwrap();
    assert_eq!(
        (&category.summary, &category.remediation),
        (&full.summary, &full.remediation)
    );

    // Per item in a batch.
    let items = vec![brief_request, request("g", text)];
    let answer = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.items[0].summary.is_empty() && answer.items[0].remediation.is_empty());
    assert_eq!(answer.items[1].remediation, full.remediation);
    server.stop().await;
}

/// Every provider reply of both sets, some asking for no advice and some for an explanation.
fn provider_requests() -> Vec<pb::ClassifyRequest> {
    #[derive(serde::Deserialize)]
    struct Line {
        id: String,
        code: Option<u32>,
        enhanced: Option<String>,
        text: String,
    }
    let mut requests = Vec::new();
    for file in ["provider_replies.jsonl", "second_replies.jsonl"] {
        let text = std::fs::read_to_string(root().join("tests/data").join(file)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let line: Line = serde_json::from_str(line).unwrap();
            let n = requests.len();
            requests.push(pb::ClassifyRequest {
                id: line.id,
                code: line.code.unwrap_or(0),
                enhanced: line.enhanced.unwrap_or_default(),
                text: line.text,
                omit_advice: n % 3 == 1,
                explain: n % 7 == 0,
                ..Default::default()
            });
        }
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_item_as_classify_answers_it_alone() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let items = provider_requests();
    let batch = client
        .classify_batch(pb::ClassifyBatchRequest { items: items.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.items.len(), items.len());
    for (item, answer) in items.into_iter().zip(&batch.items) {
        let id = item.id.clone();
        let alone = client.classify(item).await.unwrap().into_inner();
        assert_eq!(answer, &alone, "{id}");
        assert!(!answer.category.is_empty(), "{id}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_invalid_argument_naming_the_field() {
    let limits = Limits {
        max_text_bytes: 100,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits).await;
    let mut client = server.client().await;
    let cases = [
        (
            pb::ClassifyRequest {
                code: 600,
                ..Default::default()
            },
            "code:",
        ),
        (
            pb::ClassifyRequest {
                code: 42,
                ..Default::default()
            },
            "code:",
        ),
        (
            pb::ClassifyRequest {
                enhanced: "5.1".into(),
                ..Default::default()
            },
            "enhanced:",
        ),
        (
            pb::ClassifyRequest {
                enhanced: "9.9.9".into(),
                ..Default::default()
            },
            "enhanced:",
        ),
        (request("long", &"x".repeat(101)), "text:"),
    ];
    for (req, field) in cases {
        let status = client.classify(req.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{req:?}");
        assert!(status.message().starts_with(field), "{req:?}: {}", status.message());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_keeps_order_uses_one_version_and_answers_bad_items_in_place() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let items = vec![
        request("0", "550 5.1.1 User unknown"),
        pb::ClassifyRequest {
            id: "1".into(),
            code: 700,
            ..Default::default()
        },
        request("2", "552 5.2.2 Mailbox full"),
        pb::ClassifyRequest {
            id: "3".into(),
            enhanced: "x".into(),
            ..Default::default()
        },
        request("4", "554 Transaction failed"),
    ];
    let answer = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = answer.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["0", "1", "2", "3", "4"]);
    assert_eq!(answer.items[0].category, "invalid_address");
    let err = answer.items[1].error.as_ref().unwrap();
    assert_eq!((err.code.as_str(), err.field.as_str()), ("INVALID_ARGUMENT", "code"));
    assert_eq!(answer.items[2].category, "mailbox_full");
    assert_eq!(answer.items[3].error.as_ref().unwrap().field, "enhanced");
    assert_eq!(answer.items[4].category, "rejection");
    let version = answer.ruleset.unwrap();
    for item in answer.items.iter().filter(|i| i.error.is_none()) {
        assert_eq!(item.ruleset.as_ref(), Some(&version));
    }

    // A large batch goes to the blocking pool and still keeps its order.
    let items: Vec<_> = (0..5_000)
        .map(|i| request(&i.to_string(), "550 5.1.1 User unknown"))
        .collect();
    let answer = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.items.iter().enumerate().all(|(i, a)| a.id == i.to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_limits_message_size_and_deadline() {
    let config = ServerConfig {
        limits: Limits {
            max_batch_items: 10,
            request_timeout: Duration::from_millis(1),
            ..Limits::default()
        },
        max_message_bytes: 64 * 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::embedded(config).await;
    let mut client = server.client().await;
    let items: Vec<_> = (0..11).map(|i| request(&i.to_string(), "550 x")).collect();
    let status = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("items:"), "{}", status.message());

    let status = client
        .classify(request("big", &"y".repeat(70 * 1024)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    server.stop().await;

    // A batch that cannot finish within the server's deadline.
    let config = ServerConfig {
        limits: Limits {
            request_timeout: Duration::from_millis(1),
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::embedded(config).await;
    let mut client = server.client().await;
    let text = "550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org ".repeat(4);
    let items: Vec<_> = (0..10_000).map(|i| request(&i.to_string(), &text)).collect();
    let status = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    server.stop().await;
}

/// A batch too large to classify inline runs on the blocking pool where the runtime cannot hand
/// its thread over (a current-thread runtime), and still answers every item in order.
#[tokio::test(flavor = "current_thread")]
async fn a_large_batch_on_a_current_thread_runtime_answers_every_item() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let items: Vec<_> = (0..500)
        .map(|i| {
            request(
                &i.to_string(),
                if i % 2 == 0 {
                    "552 5.2.2 Mailbox full"
                } else {
                    "550 5.1.1 User unknown"
                },
            )
        })
        .collect();
    let answers = client
        .classify_batch(pb::ClassifyBatchRequest { items })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(answers.len(), 500);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.id, i.to_string());
        let expected = if i % 2 == 0 { "mailbox_full" } else { "invalid_address" };
        assert_eq!(answer.category, expected, "{answer:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_10000_answers_every_item_in_order() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let (tx, rx) = mpsc::channel(128);
    let sender = tokio::spawn(async move {
        for i in 0..10_000u32 {
            let item = match i % 10 {
                3 => pb::ClassifyRequest {
                    id: i.to_string(),
                    code: 999,
                    ..Default::default()
                },
                7 => pb::ClassifyRequest {
                    id: i.to_string(),
                    enhanced: "5.x.1".into(),
                    ..Default::default()
                },
                _ => request(&i.to_string(), "552 5.2.2 Mailbox full"),
            };
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let mut answers = client
        .classify_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0u32;
    while let Some(answer) = answers.next().await {
        let answer = answer.unwrap();
        assert_eq!(answer.id, n.to_string());
        match n % 10 {
            3 => assert_eq!(answer.error.unwrap().field, "code"),
            7 => assert_eq!(answer.error.unwrap().field, "enhanced"),
            _ => assert_eq!(answer.category, "mailbox_full"),
        }
        n += 1;
    }
    sender.await.unwrap();
    assert_eq!(n, 10_000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_shed_and_a_cancelled_stream_frees_its_slot() {
    let limits = Limits {
        max_concurrent_requests: 1,
        max_concurrent_streams: 1,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits).await;
    let mut client = server.client().await;
    let (tx, rx) = mpsc::channel(4);
    let mut stream_client = server.client().await;
    let mut answers = stream_client
        .classify_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request("s", "550 5.1.1 x")).await.unwrap();
    assert!(answers.next().await.unwrap().is_ok());

    // Streams have a pool of their own: a second stream is refused, a unary call is not.
    let (_idle, nothing) = mpsc::channel::<pb::ClassifyRequest>(1);
    let status = client.classify_stream(ReceiverStream::new(nothing)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    client.classify(request("u", "550 5.1.1 x")).await.unwrap();

    // The client goes away without finishing its stream.
    drop(answers);
    drop(tx);
    drop(stream_client);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_tx, rx) = mpsc::channel::<pb::ClassifyRequest>(1);
        match client.classify_stream(ReceiverStream::new(rx)).await {
            Ok(_) => break,
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("the stream's slot was not freed: {s:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_draining() {
    let config = ServerConfig {
        shutdown_delay: Duration::from_millis(600),
        drain_timeout: Duration::from_secs(3),
        ..ServerConfig::default()
    };
    let server = TestServer::embedded(config).await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "rebound.v1.Classifier"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service:?}");
    }
    let services = reflected_services(&server).await;
    for s in [
        "rebound.v1.Classifier",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(services.contains(&s.to_string()), "{s} not in {services:?}");
    }

    // An open stream when shutdown starts.
    let (tx, rx) = mpsc::channel(4);
    let mut client = ClassifierClient::new(channel.clone());
    let mut answers = client
        .classify_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request("a", "550 5.1.1 x")).await.unwrap();
    assert!(answers.next().await.unwrap().is_ok());

    server.stop.cancel();
    // During the shutdown delay the server still answers, and says NOT_SERVING.
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let status = health
            .check(HealthCheckRequest { service: String::new() })
            .await
            .unwrap()
            .into_inner();
        if status.status() == ServingStatus::NotServing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?} after shutdown began",
            status.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Then the stream ends with UNAVAILABLE.
    let ended = tokio::time::timeout(Duration::from_secs(5), answers.next())
        .await
        .unwrap();
    assert_eq!(ended.unwrap().unwrap_err().code(), Code::Unavailable);
    let started = Instant::now();
    server.handle.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "drain took {:?}",
        started.elapsed()
    );
}

async fn reflected_services(server: &TestServer) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let services: Vec<String> = match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    };

    // The older v1alpha protocol (grpcurl 1.8 speaks only that) lists the same services.
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let mut alpha = AlphaClient::new(server.channel().await);
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match responses.next().await.unwrap().unwrap().message_response {
        Some(AlphaResponse::ListServicesResponse(list)) => {
            let alpha_services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            assert_eq!(
                alpha_services.len(),
                services.len(),
                "{alpha_services:?} vs {services:?}"
            );
        }
        other => panic!("unexpected v1alpha reflection answer {other:?}"),
    }
    services
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_admin_reports_lists_and_reloads() {
    let dir = rule_dir(&[(
        "custom.yaml",
        "rules:\n  - id: custom/quota\n    category: mailbox_full\n    when: { text: 'quota' }\n    examples: ['550 over quota']\n",
    )]);
    let server = TestServer::reloaded_by_admin_only(dir.path()).await;
    let mut admin = server.admin().await;
    let status = admin.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active.as_ref().unwrap().generation, 1);
    assert_eq!((status.rules, status.categories), (1, 11));
    assert_eq!(status.source, dir.path().display().to_string());
    assert!(status.last_attempt.as_ref().unwrap().success);

    let categories = admin
        .list_categories(pb::ListCategoriesRequest {})
        .await
        .unwrap()
        .into_inner()
        .categories;
    assert_eq!(categories.len(), 11);
    let rules = admin
        .list_rules(pb::ListRulesRequest {
            category: "mailbox_full".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rules.rules.len(), 1);
    assert_eq!(rules.rules[0].location, "custom.yaml:2");
    // Operators look for the rules that decide on codes alone: each rule names its evidence.
    assert_eq!(rules.rules[0].evidence(), pb::Evidence::Text);
    assert!(!rules.rules[0].suppress_override);

    // Unchanged content: nothing to do.
    let reload = admin.reload(pb::ReloadRequest {}).await.unwrap().into_inner();
    assert!(!reload.changed);
    // A valid edit: a new generation answers.
    write(
        dir.path(),
        "custom.yaml",
        "rules:\n  - id: custom/quota2\n    category: mailbox_full\n    when: { text: 'quota' }\n    examples: ['550 over quota']\n",
    );
    let reload = admin.reload(pb::ReloadRequest {}).await.unwrap().into_inner();
    assert!(reload.changed);
    let answer = server
        .client()
        .await
        .classify(request("q", "550 over quota"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.rule_id.as_str(), answer.ruleset.unwrap().generation),
        ("custom/quota2", 2)
    );
    // An invalid edit: the old rules keep serving and the status names the file.
    write(
        dir.path(),
        "custom.yaml",
        "rules:\n  - id: custom/broken\n    category: nope\n",
    );
    let reload = admin.reload(pb::ReloadRequest {}).await.unwrap().into_inner();
    assert!(!reload.changed);
    let attempt = reload.status.unwrap().last_attempt.unwrap();
    assert!(
        !attempt.success && attempt.error.contains("custom.yaml:2"),
        "{attempt:?}"
    );
    let answer = server
        .client()
        .await
        .classify(request("q", "550 over quota"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.ruleset.unwrap().generation, 2);
    server.stop().await;
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

async fn tls_classify(addr: std::net::SocketAddr, pki: &Pki, with_cert: bool) -> Result<pb::ClassifyResponse, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    if with_cert {
        tls = tls.identity(Identity::from_pem(&pki.client_cert, &pki.client_key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    let mut client = ClassifierClient::new(channel);
    client
        .classify(request("tls", "550 5.1.1 User unknown"))
        .await
        .map(|r| r.into_inner())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    for (name, pem) in [
        ("ca.pem", &pki.ca),
        ("server.pem", &pki.server_cert),
        ("server.key", &pki.server_key),
    ] {
        write(dir.path(), name, pem);
    }
    let files = |client_ca: bool| TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: client_ca.then(|| dir.path().join("ca.pem")),
    };
    let server = TestServer::embedded(ServerConfig {
        tls: Some(files(false)),
        ..ServerConfig::default()
    })
    .await;
    let answer = tls_classify(server.addr, &pki, false).await.unwrap();
    assert_eq!(answer.category, "invalid_address");
    server.stop().await;

    let server = TestServer::embedded(ServerConfig {
        tls: Some(files(true)),
        ..ServerConfig::default()
    })
    .await;
    assert_eq!(
        tls_classify(server.addr, &pki, true).await.unwrap().category,
        "invalid_address"
    );
    let refused = tls_classify(server.addr, &pki, false).await;
    assert!(refused.is_err(), "a client without a certificate was served under mTLS");
    server.stop().await;
}

#[test]
fn proto_descriptor_documents_every_field() {
    let proto = std::fs::read_to_string(root().join("proto/rebound/v1/rebound.proto")).unwrap();
    let mut undocumented = Vec::new();
    let mut previous = "";
    for line in proto.lines().map(str::trim) {
        let is_field =
            line.ends_with(';') && line.contains(" = ") && !line.starts_with("//") && !line.starts_with("option");
        if is_field && !previous.starts_with("//") && !line.contains("UNSPECIFIED") {
            undocumented.push(line.to_string());
        }
        previous = line;
    }
    assert!(
        undocumented.is_empty(),
        "fields without a comment:\n{}",
        undocumented.join("\n")
    );
}

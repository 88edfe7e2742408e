//! `rebound serve` as a process: health subcommand, metrics endpoint, JSON logs, and SIGTERM
//! while a stream is open.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::util::rebound;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn health(addr: SocketAddr) -> std::process::Output {
    rebound()
        .args(["health", "--timeout", "2s", "--addr", &addr.to_string()])
        .output()
        .unwrap()
}

/// Starts `rebound serve` on free loopback ports and waits until it reports SERVING.
pub fn start(extra: &[&str]) -> Process {
    let port = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().unwrap() };
    let (addr, admin, metrics) = (port(free_port()), port(free_port()), port(free_port()));
    let child = rebound()
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--admin-listen",
            &admin.to_string(),
        ])
        .args(["--metrics-listen", &metrics.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let process = Process {
        child,
        addr,
        admin,
        metrics,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !health(addr).status.success() {
        assert!(Instant::now() < deadline, "the server did not report SERVING");
        std::thread::sleep(Duration::from_millis(100));
    }
    process
}

pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

/// The value of the first sample line that starts with `prefix`.
pub fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn health_subcommand_fails_when_nothing_listens() {
    let out = health(format!("127.0.0.1:{}", free_port()).parse().unwrap());
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_and_logs_are_json() {
    let process = start(&[]);
    let before = scrape(process.metrics);
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    for _ in 0..3 {
        let request = pb::ClassifyRequest {
            text: "552 5.2.2 Mailbox full".into(),
            ..Default::default()
        };
        client.classify(request).await.unwrap();
    }
    let bad = pb::ClassifyRequest {
        code: 700,
        ..Default::default()
    };
    assert_eq!(client.classify(bad).await.unwrap_err().code(), Code::InvalidArgument);
    let after = scrape(process.metrics);
    assert!(after.starts_with("HTTP/1.1 200"), "{after}");
    let ok = r#"rebound_requests_total{method="Classify",code="Ok"}"#;
    assert_eq!(sample(&after, ok) - sample(&before, ok), 3.0, "{after}");
    assert_eq!(
        sample(
            &after,
            r#"rebound_requests_total{method="Classify",code="InvalidArgument"}"#
        ),
        1.0
    );
    assert!(
        sample(&after, r#"rebound_classifications_total{category="mailbox_full""#) >= 3.0,
        "{after}"
    );
    assert!(
        after.lines().any(
            |l| l.starts_with(r#"rebound_classifications_total{category="mailbox_full""#)
                && l.contains(r#"evidence="text""#)
        ),
        "{after}"
    );
    assert!(
        after.contains("rebound_request_duration_seconds_bucket{method=\"Classify\",le=\""),
        "{after}"
    );
    let shipped = crate::util::shipped_rules().rules().len() as f64;
    assert_eq!(sample(&after, "rebound_rules "), shipped, "{after}");

    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classifications_are_counted_by_category_alone_without_the_rule_label() {
    let process = start(&["--metrics-rule-label", "false"]);
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    for text in [
        "552 5.2.2 Mailbox full",
        "552 5.2.2 Mailbox full",
        "550 5.1.1 User unknown",
        "550 5.7.1",
    ] {
        let request = pb::ClassifyRequest {
            text: text.into(),
            ..Default::default()
        };
        client.classify(request).await.unwrap();
    }
    let after = scrape(process.metrics);
    assert_eq!(
        sample(
            &after,
            r#"rebound_classifications_total{category="mailbox_full",evidence="text"} "#
        ),
        2.0,
        "{after}"
    );
    // One category, two kinds of evidence: the wording, and the guide's codes alone.
    assert_eq!(
        sample(
            &after,
            r#"rebound_classifications_total{category="invalid_address",evidence="text"} "#
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"rebound_classifications_total{category="invalid_address",evidence="enhanced_code"} "#
        ),
        1.0,
        "{after}"
    );
    assert!(!after.contains("rule=\""), "{after}");
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_an_open_stream_ends_within_the_drain_deadline() {
    let mut process = start(&["--drain-timeout", "2s"]);
    let mut client = ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let mut answers = client
        .classify_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(pb::ClassifyRequest {
        text: "550 5.1.1 x".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(answers.next().await.unwrap().is_ok());

    let sent = Instant::now();
    let pid = process.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let ended = tokio::time::timeout(Duration::from_secs(5), answers.next())
        .await
        .unwrap();
    assert_eq!(ended.unwrap().unwrap_err().code(), Code::Unavailable);
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running {:?} after SIGTERM",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_millis(2_500),
        "took {:?}",
        sent.elapsed()
    );

    let mut logs = String::new();
    process.child.stdout.take().unwrap().read_to_string(&mut logs).unwrap();
    let lines: Vec<serde_json::Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for expected in ["serving", "SIGTERM received", "drained; stopped"] {
        assert!(messages.contains(&expected), "no {expected:?} in {messages:?}");
    }
}

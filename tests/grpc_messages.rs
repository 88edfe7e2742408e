//! ClassifyMessage and ClassifyMessageStream against a real loopback listener: raw bounce emails
//! read and each recipient classified, limits named in errors, a bad email answered in place on
//! a stream, metrics and reflection.

use std::time::Duration;

use rebound::pb;
use rebound::server::{Limits, ServerConfig};
use tokio_stream::StreamExt as _;
use tonic::Code;

use crate::grpc::TestServer;
use crate::service::{sample, scrape, start};

/// A plain RFC 3464 delivery report (as Postfix writes one) for `recipients`, each
/// `(address, action, status, diagnostic)`, padded with `padding` bytes of human-readable text.
fn dsn(recipients: &[(&str, &str, &str, &str)], padding: usize) -> Vec<u8> {
    let mut per_recipient = String::new();
    for (address, action, status, diagnostic) in recipients {
        per_recipient.push_str(&format!(
            "\nFinal-Recipient: rfc822; {address}\nOriginal-Recipient: rfc822;{address}\nAction: {action}\n\
             Status: {status}\nRemote-MTA: dns; mx.example.com\nDiagnostic-Code: smtp; {diagnostic}\n\
             Last-Attempt-Date: Sun, 6 Dec 2026 10:00:01 +0000\n"
        ));
    }
    let filler = "The mail system tried to deliver your message and gave up.\n".repeat(padding / 50 + 1);
    format!(
        "Return-Path: <>\n\
         From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n\
         To: bounces+bob=example.com@sender.example.org\n\
         Subject: Undelivered Mail Returned to Sender\n\
         Date: Sun, 6 Dec 2026 10:00:02 +0000\n\
         Message-ID: <dsn-1@mx.example.net>\n\
         Auto-Submitted: auto-replied\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"BOUNDARY\"\n\
         \n\
         This is a MIME-encapsulated message.\n\
         \n\
         --BOUNDARY\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         This is the mail system at host mx.example.net.\n\
         I'm sorry to have to inform you that your message could not be delivered.\n\
         {}\n\
         --BOUNDARY\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; mx.example.net\n\
         Arrival-Date: Sun, 6 Dec 2026 09:59:58 +0000\n\
         {per_recipient}\n\
         --BOUNDARY\n\
         Content-Type: text/rfc822-headers\n\
         \n\
         Message-ID: <orig-1@sender.example.org>\n\
         From: News <news@sender.example.org>\n\
         To: bob@example.com\n\
         Subject: December news\n\
         Date: Sun, 6 Dec 2026 09:59:00 +0000\n\
         X-Campaign-Id: winter-26\n\
         \n\
         --BOUNDARY--\n",
        filler.get(..padding).unwrap_or("")
    )
    .into_bytes()
}

const UNKNOWN: (&str, &str, &str, &str) = (
    "bob@example.com",
    "failed",
    "5.1.1",
    "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in local recipient table",
);
const FULL: (&str, &str, &str, &str) = (
    "carol@example.com",
    "delayed",
    "4.2.2",
    "452 4.2.2 <carol@example.com>: Mailbox full, over quota",
);

fn message(id: &str, email: Vec<u8>) -> pb::ClassifyMessageRequest {
    pb::ClassifyMessageRequest {
        id: id.into(),
        message: email.into(),
        ..Default::default()
    }
}

/// What a bounce of `UNKNOWN` must answer.
fn assert_unknown_user(answer: &pb::ClassifyMessageResponse) {
    assert!(answer.error.is_none(), "{:?}", answer.error);
    assert_eq!(answer.kind(), pb::MessageKind::Bounce, "{answer:?}");
    let bob = answer
        .recipients
        .iter()
        .find(|r| r.recipient == "bob@example.com")
        .unwrap_or_else(|| panic!("no recipient bob@example.com in {answer:?}"));
    assert_eq!(bob.action(), pb::RecipientAction::Failed);
    assert_eq!(bob.status, "5.1.1");
    assert_eq!(bob.category, "invalid_address", "{bob:?}");
    assert!(bob.suppress_recipient);
    assert_eq!(bob.bounce_type(), pb::BounceType::Hard);
    assert!(bob.diagnostic.contains("User unknown"), "{}", bob.diagnostic);
    assert!(bob.remote_mta.contains("mx.example.com"), "{}", bob.remote_mta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_message_reads_a_dsn_and_classifies_its_recipients() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let request = pb::ClassifyMessageRequest {
        headers: vec!["X-Campaign-Id".into(), "List-Id".into()],
        ..message("m-1", dsn(&[UNKNOWN, FULL], 0))
    };
    let answer = client.classify_message(request).await.unwrap().into_inner();
    assert_eq!(answer.id, "m-1");
    let version = answer.ruleset.clone().unwrap();
    assert_eq!((version.generation, version.digest.len()), (1, 64));
    // Every recipient answer is classified on that one version: its outcome fields are a
    // reply's, advice included.
    assert!(
        answer
            .recipients
            .iter()
            .all(|r| !r.category.is_empty() && !r.summary.is_empty())
    );

    // What the reader makes of the report (asserted here on a plain RFC 3464 report; on the
    // skeleton reader, before the DSN reader lands, these fail).
    assert_unknown_user(&answer);
    assert_eq!(answer.recipients.len(), 2, "{answer:?}");
    let carol = &answer.recipients[1];
    assert_eq!(carol.recipient, "carol@example.com");
    assert_eq!(carol.action(), pb::RecipientAction::Delayed);
    assert_eq!(carol.category, "mailbox_full");
    assert!(carol.retryable && !carol.suppress_recipient);
    assert!(
        answer.reporting_mta.contains("mx.example.net"),
        "{}",
        answer.reporting_mta
    );
    assert!(answer.arrival_date.contains("2026"), "{}", answer.arrival_date);
    let original = answer.original.unwrap();
    assert_eq!(original.message_id, "orig-1@sender.example.org");
    assert_eq!(original.subject, "December news");
    let headers: Vec<(&str, &str)> = original
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(headers, [("X-Campaign-Id", "winter-26"), ("List-Id", "")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_omit_advice_apply_to_every_recipient() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let request = pb::ClassifyMessageRequest {
        explain: true,
        omit_advice: true,
        ..message("m-2", dsn(&[UNKNOWN], 0))
    };
    let answer = client.classify_message(request).await.unwrap().into_inner();
    assert!(answer.error.is_none());
    for recipient in &answer.recipients {
        assert!(
            recipient.summary.is_empty() && recipient.remediation.is_empty(),
            "{recipient:?}"
        );
        let explanation = recipient.explanation.as_ref().expect("explain was asked for");
        assert_eq!(explanation.winner, recipient.rule_id);
        assert!(!explanation.candidates.is_empty());
    }
    assert_unknown_user(&answer);
    let plain = client
        .classify_message(message("m-3", dsn(&[UNKNOWN], 0)))
        .await
        .unwrap()
        .into_inner();
    assert!(plain.recipients.iter().all(|r| r.explanation.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verp_is_compiled_and_a_bad_pattern_names_the_field() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let request = pb::ClassifyMessageRequest {
        verp: "bounces+{local}={domain}@sender.example.org".into(),
        ..message("v-1", dsn(&[UNKNOWN], 0))
    };
    let answer = client.classify_message(request).await.unwrap().into_inner();
    assert!(answer.error.is_none(), "{:?}", answer.error);
    assert_eq!(answer.id, "v-1");
    // A failure notice naming no recipient, sent back to a VERP address: the pattern gives the
    // recipient; without it there is none.
    let notice = b"From: MAILER-DAEMON@mx.example.net\n\
        To: bounces+dave=example.com@sender.example.org\n\
        Subject: failure notice\n\
        Date: Sun, 6 Dec 2026 10:00:02 +0000\n\
        \n\
        Sorry, your message could not be delivered.\n"
        .to_vec();
    let request = pb::ClassifyMessageRequest {
        verp: "bounces+{local}={domain}@sender.example.org".into(),
        ..message("v-3", notice.clone())
    };
    let answer = client.classify_message(request).await.unwrap().into_inner();
    let recipients: Vec<&str> = answer.recipients.iter().map(|r| r.recipient.as_str()).collect();
    assert_eq!(recipients, ["dave@example.com"], "{answer:?}");
    assert_eq!(answer.format, "verp");
    let answer = client
        .classify_message(message("v-4", notice))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.recipients.is_empty(), "{answer:?}");
    let request = pb::ClassifyMessageRequest {
        verp: "bounces@sender.example.org".into(),
        ..message("v-2", dsn(&[UNKNOWN], 0))
    };
    let status = client.classify_message(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("verp: "), "{}", status.message());
}

/// An email that attaches an email that attaches one ... `depth` times, the innermost holding
/// `parts` text parts.
fn nested(depth: usize, parts: usize) -> Vec<u8> {
    let mut body = String::new();
    for leaf in 0..parts {
        body.push_str(&format!("--L\nContent-Type: text/plain\n\npart {leaf}\n"));
    }
    body.push_str("--L--\n");
    let mut email = format!(
        "From: a@example.org\nSubject: innermost\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"L\"\n\n{body}"
    );
    for level in 0..depth {
        email = format!(
            "From: a@example.org\nSubject: level {level}\nMIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=\"B{level}\"\n\n\
             --B{level}\nContent-Type: message/rfc822\n\n{email}\n--B{level}--\n"
        );
    }
    email.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_a_limit_fails_naming_the_flag() {
    let limits = Limits {
        max_email_bytes: 4096,
        max_mime_depth: 4,
        max_mime_parts: 12,
        max_returned_headers: 2,
        max_header_name_bytes: 16,
        max_verp_bytes: 64,
        max_id_bytes: 8,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits).await;
    let mut client = server.client().await;
    let cases = [
        (
            message("big", dsn(&[UNKNOWN], 5000)),
            Code::OutOfRange,
            "--max-email-bytes",
        ),
        (message("deep", nested(8, 1)), Code::OutOfRange, "--max-mime-depth"),
        (message("parts", nested(1, 40)), Code::OutOfRange, "--max-mime-parts"),
        (
            pb::ClassifyMessageRequest {
                headers: vec!["A".into(), "B".into(), "C".into()],
                ..message("h", dsn(&[UNKNOWN], 0))
            },
            Code::InvalidArgument,
            "--max-returned-headers",
        ),
        (
            pb::ClassifyMessageRequest {
                headers: vec!["X-A-Very-Long-Header-Name".into()],
                ..message("h", dsn(&[UNKNOWN], 0))
            },
            Code::InvalidArgument,
            "--max-header-name-bytes",
        ),
        (
            pb::ClassifyMessageRequest {
                verp: format!("{}+{{local}}={{domain}}@example.org", "b".repeat(80)),
                ..message("v", dsn(&[UNKNOWN], 0))
            },
            Code::InvalidArgument,
            "--max-verp-bytes",
        ),
        (
            message("an-id-too-long", dsn(&[UNKNOWN], 0)),
            Code::InvalidArgument,
            "--max-id-bytes",
        ),
        (message("empty", Vec::new()), Code::InvalidArgument, "message: "),
    ];
    for (request, code, named) in cases {
        let id = request.id.clone();
        let status = client.classify_message(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{id}: {status:?}");
        assert!(status.message().contains(named), "{id}: {}", status.message());
    }
    // Within every limit, the same server answers.
    let answer = client
        .classify_message(message("ok", dsn(&[UNKNOWN], 0)))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_answers_in_order_and_a_bad_email_gets_its_own_error() {
    let limits = Limits {
        max_email_bytes: 64 * 1024,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits).await;
    let mut client = server.client().await;
    let requests = vec![
        message("a", dsn(&[UNKNOWN], 0)),
        // Over --max-email-bytes.
        message("too-big", dsn(&[UNKNOWN], 70 * 1024)),
        // Larger than what is read on the async worker: read on the blocking pool.
        message("long", dsn(&[UNKNOWN, FULL], 20 * 1024)),
        message("empty", Vec::new()),
        pb::ClassifyMessageRequest {
            verp: "no placeholders".into(),
            ..message("bad-verp", dsn(&[UNKNOWN], 0))
        },
        message("z", dsn(&[FULL, UNKNOWN], 0)),
    ];
    let answers: Vec<pb::ClassifyMessageResponse> = client
        .classify_message_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner()
        .map(|answer| answer.unwrap())
        .collect()
        .await;
    let ids: Vec<&str> = answers.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["a", "too-big", "long", "empty", "bad-verp", "z"]);
    let errors: Vec<Option<(&str, &str)>> = answers
        .iter()
        .map(|a| a.error.as_ref().map(|e| (e.code.as_str(), e.field.as_str())))
        .collect();
    assert_eq!(
        errors,
        [
            None,
            Some(("OUT_OF_RANGE", "message")),
            None,
            Some(("INVALID_ARGUMENT", "message")),
            Some(("INVALID_ARGUMENT", "verp")),
            None
        ]
    );
    let too_big = answers[1].error.as_ref().unwrap();
    assert!(too_big.message.contains("--max-email-bytes"), "{}", too_big.message);
    // An error answer carries nothing else; every other answer has its rule-set version.
    assert!(answers[1].ruleset.is_none() && answers[1].recipients.is_empty());
    for answer in [&answers[0], &answers[2], &answers[5]] {
        assert!(answer.ruleset.is_some(), "{answer:?}");
    }
    for answer in [&answers[0], &answers[2], &answers[5]] {
        assert_unknown_user(answer);
    }
    assert_eq!(answers[2].recipients.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_message_methods() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol("rebound.v1.Classifier".into())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let files = match responses.next().await.unwrap().unwrap().message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto,
        other => panic!("unexpected reflection answer {other:?}"),
    };
    // A descriptor holds its names as plain strings: each method, and its request type.
    let found = |name: &str| {
        files
            .iter()
            .any(|file| file.windows(name.len()).any(|w| w == name.as_bytes()))
    };
    for name in [
        "ClassifyMessageStream",
        "ClassifyMessageRequest",
        "ClassifyMessageResponse",
        "RecipientAnswer",
    ] {
        assert!(found(name), "{name} not in the reflected descriptor");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_emails_by_kind_their_recipients_and_errors() {
    let process = start(&["--max-email-bytes", "8192"]);
    let mut client = pb::classifier_client::ClassifierClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    let before = scrape(process.metrics);
    for id in ["m-1", "m-2"] {
        client.classify_message(message(id, dsn(&[UNKNOWN], 0))).await.unwrap();
    }
    let status = client
        .classify_message(message("big", dsn(&[UNKNOWN], 9000)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    let stream: Vec<_> = client
        .classify_message_stream(tokio_stream::iter([
            message("s-1", dsn(&[UNKNOWN], 0)),
            message("s-2", Vec::new()),
        ]))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(stream.len(), 2);
    // The stream's end is counted once it has ended.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = scrape(process.metrics);
    let delta = |prefix: &str| sample(&after, prefix) - sample(&before, prefix);
    assert_eq!(
        delta(r#"rebound_requests_total{method="ClassifyMessage",code="Ok"}"#),
        2.0,
        "{after}"
    );
    assert_eq!(
        delta(r#"rebound_requests_total{method="ClassifyMessage",code="OutOfRange"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta(r#"rebound_requests_total{method="ClassifyMessageStream",code="Ok"}"#),
        1.0,
        "{after}"
    );
    assert!(
        after
            .lines()
            .any(|l| l.starts_with(r#"rebound_request_duration_seconds_count{method="ClassifyMessage"}"#)),
        "{after}"
    );
    assert_eq!(
        delta(r#"rebound_message_errors_total{reason="too_large"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(delta(r#"rebound_message_errors_total{reason="empty"}"#), 1.0, "{after}");
    // Three emails read; with the DSN reader, each a bounce whose recipient is an invalid address.
    let read: f64 = after
        .lines()
        .filter(|l| l.starts_with("rebound_messages_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(read, 3.0, "{after}");
    assert_eq!(delta(r#"rebound_messages_total{kind="bounce"}"#), 3.0, "{after}");
    assert!(
        sample(&after, r#"rebound_classifications_total{category="invalid_address""#) >= 3.0,
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_not_read_by_the_deadline_is_deadline_exceeded() {
    let limits = Limits {
        request_timeout: Duration::ZERO,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits).await;
    let mut client = server.client().await;
    // Read on the async worker, and on the blocking pool.
    for padding in [0, 20 * 1024] {
        let status = client
            .classify_message(message("late", dsn(&[UNKNOWN], padding)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{padding}: {status:?}");
    }
    // On a stream, an email read on the blocking pool past --request-timeout gets its own error.
    let answers: Vec<pb::ClassifyMessageResponse> = client
        .classify_message_stream(tokio_stream::iter([message("late", dsn(&[UNKNOWN], 20 * 1024))]))
        .await
        .unwrap()
        .into_inner()
        .map(|answer| answer.unwrap())
        .collect()
        .await;
    let error = answers[0].error.as_ref().expect("past its deadline");
    assert_eq!(
        (answers[0].id.as_str(), error.code.as_str()),
        ("late", "DEADLINE_EXCEEDED")
    );
}

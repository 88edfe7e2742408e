//! Unary and batch calls: deadlines, cancellation, field limits, bounded answers, status codes.

use rebound::pb;
use rebound::server::ServerConfig;
use tonic::Code;

use crate::grpc::TestServer;

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

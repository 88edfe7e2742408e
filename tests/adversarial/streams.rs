//! Streams: malformed items, idle and never-reading clients.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use prost::Message as _;
use rebound::codec::SliceDecoder;
use rebound::pb;
use rebound::server::{Limits, ServerConfig};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{Bytes, Service as _, http};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::grpc::TestServer;
use crate::service::{sample, scrape, start};

const STREAM: &str = "/rebound.v1.Classifier/ClassifyStream";
const UNARY: &str = "/rebound.v1.Classifier/Classify";

fn request(id: &str, text: &str) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        id: id.into(),
        text: text.into(),
        ..Default::default()
    }
}

fn bytes_of(id: &str, text: &str) -> Vec<u8> {
    request(id, text).encode_to_vec()
}

/// The request `id` followed by a `text` (field 4) that is not UTF-8.
fn not_utf8(id: &str) -> Vec<u8> {
    let mut bytes = bytes_of(id, "");
    bytes.extend([0x22, 0x02, 0xc3, 0x28]);
    bytes
}

/// The request `id` whose `text` comes as a varint.
fn wrong_wire_type(id: &str) -> Vec<u8> {
    let mut bytes = bytes_of(id, "");
    bytes.extend([0x20, 0x01]);
    bytes
}

/// The request `id` with a text cut short: its length says more than follows.
fn truncated(id: &str) -> Vec<u8> {
    let mut bytes = bytes_of(id, "550 5.1.1 <bob@example.com>: user unknown");
    bytes.truncate(bytes.len() - 5);
    bytes
}

/// Makes the bytes of a bad request with the given id.
type Damage = fn(&str) -> Vec<u8>;

/// Sends each message's bytes as they are, framed by tonic: the protobuf inside may be anything.
#[derive(Default)]
struct RawCodec;

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        prost::bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::ClassifyResponse;
    type Encoder = RawEncoder;
    type Decoder = SliceDecoder<pb::ClassifyResponse>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        SliceDecoder::default()
    }
}

/// A stream of the given messages; every answer, then how the stream ended.
async fn raw_stream(channel: Channel, messages: Vec<Vec<u8>>) -> (Vec<pb::ClassifyResponse>, Result<(), Status>) {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = tonic::Request::new(tokio_stream::iter(messages));
    let mut answers = grpc
        .streaming(request, PathAndQuery::from_static(STREAM), RawCodec)
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), answers.message()).await {
            Ok(Ok(Some(answer))) => got.push(answer),
            Ok(Ok(None)) => return (got, Ok(())),
            Ok(Err(status)) => return (got, Err(status)),
            Err(_) => panic!("the stream neither answered nor ended within 10s; so far {got:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_item_gets_its_own_error_and_the_stream_goes_on() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let cases: [(&str, Damage, &str); 3] = [
        ("not UTF-8", not_utf8, "not UTF-8"),
        ("wrong wire type", wrong_wire_type, "varint"),
        ("truncated", truncated, "past the end"),
    ];
    for (case, bad, says) in cases {
        let messages = vec![
            bytes_of("a", "550 5.1.1 <bob@example.com>: User unknown"),
            bad("b"),
            bytes_of("c", "552 5.2.2 Mailbox full"),
        ];
        let (answers, end) = raw_stream(server.channel().await, messages).await;
        assert_eq!(end.map_err(|s| s.code()), Ok(()), "{case}: the stream must end OK");
        let ids: Vec<&str> = answers.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "{case}: one answer per item, in order");
        assert_eq!(answers[0].category, "invalid_address", "{case}");
        assert_eq!(answers[2].category, "mailbox_full", "{case}");
        let error = answers[1]
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{case}: {:?}", answers[1]));
        assert_eq!(error.code, "INVALID_ARGUMENT", "{case}");
        assert_eq!(error.field, "text", "{case}");
        assert!(
            error.message.starts_with("text: ") && error.message.contains(says),
            "{case}: {error:?}"
        );
        assert!(answers[1].category.is_empty(), "{case}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bad_bytes_in_a_unary_call_are_invalid_argument() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    for bad in [not_utf8("u"), wrong_wire_type("u"), truncated("u"), vec![0x00, 0x01]] {
        let mut grpc = tonic::client::Grpc::new(server.channel().await);
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                tonic::Request::new(bad.clone()),
                PathAndQuery::from_static(UNARY),
                RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
    }
    server.stop().await;
}

/// One gRPC message frame: uncompressed, the length, the bytes.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = vec![0];
    framed.extend(u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend(message);
    framed
}

/// A `ClassifyStream` whose request body is `body`, sent as it is: the answers' frames and the
/// grpc-status it ended with.
async fn raw_body(channel: &mut Channel, body: Vec<u8>) -> (Vec<pb::ClassifyResponse>, String) {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://rebound{STREAM}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(Bytes::from(body))))
        .unwrap();
    std::future::poll_fn(|cx| channel.poll_ready(cx)).await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), channel.call(request))
        .await
        .unwrap()
        .unwrap();
    let (parts, body) = response.into_parts();
    let collected = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .unwrap()
        .unwrap();
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| parts.headers.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let mut data: &[u8] = &collected.to_bytes();
    let mut answers = Vec::new();
    while data.len() >= 5 {
        let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
        answers.push(pb::ClassifyResponse::decode(&data[5..5 + len]).unwrap());
        data = &data[5 + len..];
    }
    (answers, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_framing_ends_the_stream_with_an_error_never_ok() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut channel = server.channel().await;
    let first = frame(&bytes_of("a", "550 5.1.1 <bob@example.com>: User unknown"));

    // A frame whose length says 100 bytes, and the body ends after 10.
    let mut cut = first.clone();
    cut.extend([0, 0, 0, 0, 100]);
    cut.extend([0x0a; 10]);
    // A frame flagged compressed, with no grpc-encoding.
    let mut compressed = first.clone();
    compressed.extend([1, 0, 0, 0, 2, 0x0a, 0x00]);
    // A header cut short.
    let mut short_header = first.clone();
    short_header.extend([0, 0, 0]);

    for (case, body) in [
        ("cut", cut),
        ("compressed flag", compressed),
        ("short header", short_header),
    ] {
        let (answers, status) = raw_body(&mut channel, body).await;
        let ids: Vec<&str> = answers.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["a"], "{case}: the whole first message is answered");
        assert!(
            !status.is_empty() && status != "0",
            "{case}: ended with grpc-status {status:?}"
        );
    }
    // The same first frame alone ends OK.
    let (answers, status) = raw_body(&mut channel, first).await;
    assert_eq!((answers.len(), status.as_str()), (1, "0"));
    server.stop().await;
}

/// Opens a stream that sends nothing: admitted, or refused with the status.
async fn open_idle_stream(
    server: &TestServer,
) -> Result<
    (
        mpsc::Sender<pb::ClassifyRequest>,
        tonic::Streaming<pb::ClassifyResponse>,
    ),
    Status,
> {
    let (tx, rx) = mpsc::channel(1);
    let answers = server.client().await.classify_stream(ReceiverStream::new(rx)).await?;
    Ok((tx, answers.into_inner()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_past_their_limit_leave_unary_calls_room() {
    let limits = Limits {
        max_concurrent_requests: 4,
        max_concurrent_streams: 3,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits).await;
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        match open_idle_stream(&server).await {
            Ok(stream) => open.push(stream),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(status.message().contains("streams"), "{status:?}");
                refused += 1;
            }
        }
    }
    assert_eq!((open.len(), refused), (3, 7));
    let mut client = server.client().await;
    for n in 0..20 {
        let answer = client.classify(request(&n.to_string(), "552 5.2.2 Mailbox full")).await;
        assert_eq!(answer.unwrap().into_inner().category, "mailbox_full", "call {n}");
    }
    let batch = pb::ClassifyBatchRequest {
        items: vec![request("b", "552 5.2.2 Mailbox full")],
    };
    assert_eq!(client.classify_batch(batch).await.unwrap().into_inner().items.len(), 1);

    // A stream that ends gives its place back.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(status) = open_idle_stream(&server).await {
        assert!(
            Instant::now() < deadline,
            "no stream admitted after one closed: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(open);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_ends_after_the_idle_limit_and_a_busy_one_does_not() {
    let limits = Limits {
        max_concurrent_streams: 1,
        stream_idle_timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits).await;

    // Busy: a request every 50 ms for twice the limit, every one answered.
    let (tx, mut answers) = open_idle_stream(&server).await.unwrap();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_millis(1_600) {
        tx.send(request(&n.to_string(), "552 5.2.2 Mailbox full"))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), answers.next())
            .await
            .unwrap();
        assert_eq!(answer.unwrap().unwrap().id, n.to_string());
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Then idle: the stream ends with DEADLINE_EXCEEDED, saying why.
    let ended = tokio::time::timeout(Duration::from_secs(10), answers.next())
        .await
        .expect("an idle stream was kept open")
        .unwrap()
        .unwrap_err();
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert!(ended.message().contains("idle"), "{ended:?}");
    drop(tx);
    // Its place in the pool is free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(status) = open_idle_stream(&server).await {
        assert!(
            Instant::now() < deadline,
            "the idle stream's place was not freed: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_deadline_stops_being_answered() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let (tx, rx) = mpsc::channel(4);
    let mut request_stream = tonic::Request::new(ReceiverStream::new(rx));
    request_stream.set_timeout(Duration::from_millis(500));
    let mut answers = server
        .client()
        .await
        .classify_stream(request_stream)
        .await
        .unwrap()
        .into_inner();
    tx.send(request("a", "552 5.2.2 Mailbox full")).await.unwrap();
    assert_eq!(answers.next().await.unwrap().unwrap().id, "a");
    let ended = tokio::time::timeout(Duration::from_secs(10), answers.next())
        .await
        .expect("a stream past its deadline was kept open")
        .unwrap()
        .unwrap_err();
    // tonic's client does not end a stream's body at its deadline: the server must.
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert!(ended.message().contains("deadline"), "{ended:?}");
    server.stop().await;
}

/// Reads `answers` until the stream ends, within `wait`: how many answers, and the end.
async fn drain_answers(
    answers: &mut tonic::Streaming<pb::ClassifyResponse>,
    wait: Duration,
) -> (usize, Option<Status>) {
    let until = tokio::time::Instant::now() + wait;
    let mut n = 0;
    loop {
        match tokio::time::timeout_at(until, answers.next()).await {
            Err(_) => panic!("the stream went on for {wait:?} ({n} answers)"),
            Ok(None) => return (n, None),
            Ok(Some(Ok(_))) => n += 1,
            Ok(Some(Err(status))) => return (n, Some(status)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_never_pauses_still_ends_at_its_deadline_and_at_shutdown() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let endless = || tokio_stream::iter((0u64..).map(|n| request(&n.to_string(), "552 5.2.2 Mailbox full")));

    let mut call = tonic::Request::new(endless());
    call.set_timeout(Duration::from_millis(500));
    let mut answers = server.client().await.classify_stream(call).await.unwrap().into_inner();
    let (n, end) = drain_answers(&mut answers, Duration::from_secs(10)).await;
    let end = end.expect("an endless stream ended OK");
    assert_eq!(end.code(), Code::DeadlineExceeded, "after {n} answers: {end:?}");
    assert!(n > 0);

    let mut answers = server
        .client()
        .await
        .classify_stream(tonic::Request::new(endless()))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.next().await.unwrap().is_ok());
    let stopping = tokio::spawn(server.stop());
    // UNAVAILABLE, or the connection's end when the server closes it under a client that is
    // still sending; never OK.
    let (n, end) = drain_answers(&mut answers, Duration::from_secs(10)).await;
    let end = end.expect("an endless stream ended OK");
    assert_ne!(end.code(), Code::Ok, "after {n} answers");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the server did not stop under an endless stream")
        .unwrap();
}

/// The sum of `rebound_classifications_total` over its series.
fn classified(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("rebound_classifications_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_reading_client_stops_the_reading_until_it_reads() {
    // The count bound far away: only the bytes bound can stop the server.
    let process = start(&[
        "--stream-buffer",
        "100000",
        "--stream-buffer-bytes",
        "16384",
        "--metrics-rule-label",
        "false",
    ]);
    // Small windows, so that little of what the server writes can wait in the client.
    let channel = Endpoint::from_shared(format!("http://{}", process.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let sent = 2_000;
    let (tx, rx) = mpsc::unbounded_channel();
    for n in 0..sent {
        let mut item = request(&n.to_string(), "550 5.1.1 <bob@example.com>: User unknown");
        item.explain = true;
        tx.send(item).unwrap();
    }
    let mut answers = pb::classifier_client::ClassifierClient::new(channel)
        .classify_stream(UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();

    // Not reading: the server classifies until its buffer is full, then waits.
    let mut last = -1.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let stalled = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = classified(&scrape(process.metrics));
        if now == last && now > 0.0 {
            break now;
        }
        assert!(Instant::now() < deadline, "still classifying after 20s: {now}");
        last = now;
    };
    assert!(
        stalled < f64::from(sent) / 4.0,
        "{stalled} of {sent} explained answers classified for a client that reads none"
    );

    // Reading resumes: every answer, in order.
    drop(tx);
    let mut n = 0;
    while let Some(answer) = tokio::time::timeout(Duration::from_secs(20), answers.next())
        .await
        .unwrap()
    {
        let answer = answer.unwrap();
        assert_eq!(answer.id, n.to_string());
        assert!(answer.explanation.is_some());
        n += 1;
    }
    assert_eq!(n, sent);
    let done = scrape(process.metrics);
    assert_eq!(classified(&done), f64::from(sent));
    assert_eq!(
        sample(&done, r#"rebound_requests_total{method="ClassifyStream",code="Ok"}"#),
        1.0,
        "{done}"
    );
    println!("classified while not reading: {stalled} of {sent}");
}

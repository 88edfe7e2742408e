//! Target `requests`: request bodies through the Classifier server's codec
//! (`rebound::codec::ServerCodec`) as tonic reads them, and a batch's items through
//! `rebound::server::wire::read_item`, with prost's own decoding as the oracle.
//!
//! Input: a mode byte, then bytes. The mode's low two bits say what the bytes are:
//! - 0: one `ClassifyRequest` (a unary call, or one stream item), framed here;
//! - 1: one `ClassifyBatchRequest`, framed here;
//! - 2: a whole request body of `ClassifyRequest` frames (a stream), framing included;
//! - 3: a whole request body of `ClassifyBatchRequest` frames.
//!
//! Bit 2 sends the body as gzip (the server accepts it): frames made here are flagged compressed
//! and carry the bytes as they are, which libFuzzer then mutates as a gzip stream.

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http_body_util::Full;
use prost::Message;
use prost::bytes::Bytes;
use rebound::codec::{ClassifyItem, ServerCodec, ServerRequest};
use rebound::pb;
use rebound::server::wire::{BatchRequest, EncodedAnswer, EncodedBatch, read_item};
use tonic::codec::{Codec, CompressionEncoding, Streaming};
use tonic::{Code, Status};

use crate::{MAX_ERROR_BYTES, prefix};

/// The largest message `rebound serve` accepts by default (`--max-message-bytes`).
fn max_message_bytes() -> usize {
    rebound::server::ServerConfig::default().max_message_bytes
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let gzip = mode & 4 != 0;
    match mode & 3 {
        0 => {
            let decoded = decode_body::<ClassifyItem, EncodedAnswer>(frame(bytes, gzip), gzip);
            if !gzip {
                check_single(bytes, &decoded);
            }
        }
        1 => {
            let decoded = decode_body::<BatchRequest, EncodedBatch>(frame(bytes, gzip), gzip);
            if !gzip {
                check_batch(bytes, &decoded);
            }
        }
        2 => {
            let decoded = decode_body::<ClassifyItem, EncodedAnswer>(bytes.to_vec(), gzip);
            check_frames(bytes, &decoded, check_item);
        }
        _ => {
            let decoded = decode_body::<BatchRequest, EncodedBatch>(bytes.to_vec(), gzip);
            check_frames(bytes, &decoded, check_batch_items);
        }
    }
}

/// `payload` as one gRPC frame: compressed flag, big-endian length, bytes.
fn frame(payload: &[u8], compressed: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + 5);
    body.push(u8::from(compressed));
    // A fuzz input is far below 4 GiB.
    body.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
    body.extend_from_slice(payload);
    body
}

/// Every message of a request body, as the server's codec hands them to the service: decoding
/// stops at the first error, as the server's stream loop does.
fn decode_body<Req, Resp>(body: Vec<u8>, gzip: bool) -> Vec<Result<Req, Status>>
where
    Req: ServerRequest + Send + 'static,
    Resp: Message + Send + 'static,
{
    let decoder = ServerCodec::<Resp, Req>::default().decoder();
    let encoding = gzip.then_some(CompressionEncoding::Gzip);
    let mut stream = Streaming::new_request(
        decoder,
        Full::new(Bytes::from(body)),
        encoding,
        Some(max_message_bytes()),
    );
    let mut messages = Vec::new();
    loop {
        match ready(stream.message()) {
            Ok(Some(message)) => messages.push(Ok(message)),
            Ok(None) => return messages,
            Err(status) => {
                check_status(&status);
                messages.push(Err(status));
                return messages;
            }
        }
    }
}

/// A decoding error is a status a client can act on, with a short message.
fn check_status(status: &Status) {
    assert!(
        // RESOURCE_EXHAUSTED: a gzip body that inflates past the message limit.
        matches!(
            status.code(),
            Code::Internal | Code::OutOfRange | Code::ResourceExhausted | Code::Unimplemented | Code::InvalidArgument
        ),
        "decoding failed with {status:?}"
    );
    assert!(
        status.message().len() <= MAX_ERROR_BYTES,
        "an error of {} bytes: {:?}...",
        status.message().len(),
        prefix(status.message(), 80)
    );
}

/// Polls a future over an in-memory body to its end: nothing in it waits for I/O.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("decoding an in-memory body kept waiting");
}

/// A unary request reads as one item, whatever its bytes.
fn check_single(payload: &[u8], decoded: &[Result<ClassifyItem, Status>]) {
    match decoded {
        [Ok(item)] => check_item(payload, item),
        other => panic!("one frame decoded to {other:?}"),
    }
}

/// A request reads exactly as prost decodes its bytes; where prost fails, it is a fault of its
/// own with a short message, to be answered in place.
fn check_item(payload: &[u8], item: &ClassifyItem) {
    match (item, pb::ClassifyRequest::decode(payload)) {
        (ClassifyItem::Request(request), Ok(expected)) => assert_eq!(request, &expected),
        (ClassifyItem::Malformed(bad), Err(_)) => assert!(
            bad.message.len() <= MAX_ERROR_BYTES,
            "an error of {} bytes: {:?}...",
            bad.message.len(),
            prefix(&bad.message, 80)
        ),
        (item, expected) => panic!("read {item:?}, prost reads {expected:?}"),
    }
}

/// A batch decodes wherever prost decodes it (it may decode where prost fails on an item: that item
/// gets its own error), and each item reads as prost decodes it.
fn check_batch(payload: &[u8], decoded: &[Result<BatchRequest, Status>]) {
    match decoded {
        [Ok(batch)] => check_batch_items(payload, batch),
        [Err(status)] => assert!(
            pb::ClassifyBatchRequest::decode(payload).is_err(),
            "a batch prost decodes was refused: {status:?}"
        ),
        other => panic!("one frame decoded to {} messages", other.len()),
    }
}

fn check_batch_items(payload: &[u8], batch: &BatchRequest) {
    if let Ok(expected) = pb::ClassifyBatchRequest::decode(payload) {
        assert_eq!(batch.items().len(), expected.items.len(), "items lost or made up");
    }
    for bytes in batch.items() {
        match (read_item(bytes), pb::ClassifyRequest::decode(bytes.as_ref())) {
            (Ok(read), Ok(expected)) => {
                let read = (
                    read.id,
                    read.code,
                    read.enhanced,
                    read.text,
                    read.recipient,
                    read.remote_host,
                    read.explain,
                    read.omit_advice,
                );
                let expected = (
                    expected.id.as_str(),
                    expected.code,
                    expected.enhanced.as_str(),
                    expected.text.as_str(),
                    expected.recipient.as_str(),
                    expected.remote_host.as_str(),
                    expected.explain,
                    expected.omit_advice,
                );
                assert_eq!(read, expected, "an item read otherwise than prost decodes it");
            }
            (Err(fault), Err(_)) => {
                assert_eq!(fault.field, "items");
                assert!(fault.message.len() <= MAX_ERROR_BYTES, "{}", prefix(&fault.message, 80));
            }
            (read, expected) => panic!("item {bytes:?}: read {read:?}, prost {expected:?}"),
        }
    }
}

/// A body of frames: each whole, uncompressed frame decodes as `check` says; a body that ends
/// inside a frame, or a frame that cannot be read, ends the request with an error, never quietly.
fn check_frames<M>(body: &[u8], decoded: &[Result<M, Status>], check: impl Fn(&[u8], &M)) {
    let mut rest = body;
    for result in decoded {
        let frame = split_frame(rest);
        match (result, frame) {
            (Ok(message), Some((flag, payload, after))) => {
                if flag == 0 {
                    check(payload, message);
                }
                rest = after;
            }
            (Ok(_), None) => panic!("a message decoded where no whole frame is left"),
            (Err(_), _) => return,
        }
    }
    // The stream ended without an error: every byte was a whole frame. Except one case tonic
    // 0.14 lets through (upstream; see fuzz/known/requests/): a body that stops right after a
    // frame's 5-byte header ends the stream as if that frame had never been sent.
    let header_only = rest.len() == HEADER_BYTES;
    assert!(
        rest.is_empty() || header_only,
        "{} bytes at the end of the body were dropped without an error",
        rest.len()
    );
}

/// A gRPC frame's header: the compressed flag and the payload's length.
const HEADER_BYTES: usize = 5;

/// The first frame of `body`: its compressed flag, its payload and what follows; `None` when the
/// body ends inside the frame.
fn split_frame(body: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&flag, rest) = body.split_first()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let (payload, after) = rest.split_at_checked(len)?;
    Some((flag, payload, after))
}

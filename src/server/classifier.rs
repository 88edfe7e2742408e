//! The `Classifier` service: one reply, a batch, or a stream, each on a snapshot of the rules.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::classifier_api::classifier_server::Classifier;
use super::convert::{self, FieldLimits, ItemFault};
use super::metrics;
use super::state::RuleState;
use super::wire::{self, BatchRequest, EncodedAnswer, EncodedBatch};
use crate::pb;

/// Request limits; each is a flag of `rebound serve`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest `text` of one item, in bytes.
    pub max_text_bytes: usize,
    /// Longest `id`, in bytes.
    pub max_id_bytes: usize,
    /// Longest `recipient`, in bytes (RFC 5321 allows 254 for an address).
    pub max_recipient_bytes: usize,
    /// Longest `remote_host`, in bytes (RFC 1035 allows 255 for a host name; the `[address]`
    /// some MTAs append fits too).
    pub max_remote_host_bytes: usize,
    /// Most items in one batch.
    pub max_batch_items: usize,
    /// Deadline for a batch (a shorter `grpc-timeout` from the client wins); one reply takes
    /// microseconds, so unary calls rely on the client's deadline.
    pub request_timeout: Duration,
    /// Calls in progress across the process; past it calls fail with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Answers buffered per stream before reading waits for the client (backpressure).
    pub stream_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_bytes: 64 * 1024,
            max_id_bytes: 1024,
            max_recipient_bytes: 254,
            max_remote_host_bytes: 255,
            max_batch_items: 10_000,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            stream_buffer: 64,
        }
    }
}

impl Limits {
    fn fields(&self) -> FieldLimits {
        FieldLimits {
            id: self.max_id_bytes,
            text: self.max_text_bytes,
            recipient: self.max_recipient_bytes,
            remote_host: self.max_remote_host_bytes,
        }
    }
}

/// Batches up to this size are classified inline; larger ones with the worker handed over to the
/// runtime first (or on the blocking pool), so one big batch cannot stall an async worker (the
/// machine may have only two).
const INLINE_BATCH: usize = 64;

/// A large batch checks its deadline between chunks of this many items: a batch past its
/// deadline stops being classified, within about half a millisecond.
const DEADLINE_CHUNK: usize = 256;

/// Turns one request into its answer, for the unary and stream calls; batches read its limits
/// and baseline and write their answers themselves (`classify_items`).
#[derive(Clone)]
struct Answerer {
    fields: FieldLimits,
    /// Set for `--baseline` benchmarks: every item gets this answer without classifying, which
    /// measures what the transport alone costs. With and without the advice, as asked.
    baseline: Option<Arc<[pb::ClassifyResponse; 2]>>,
}

impl Answerer {
    /// The answer, written as protobuf straight from the rule set's strings (as a batch's are).
    fn answer(&self, rules: &rebound_engine::RuleSet, item: pb::ClassifyRequest) -> Result<EncodedAnswer, ItemFault> {
        if let Some(fixed) = &self.baseline {
            return Ok(EncodedAnswer::from_response(&fixed_answer(
                fixed,
                item.id,
                item.omit_advice,
            )));
        }
        let decision = convert::decide(rules, (&item).into(), &self.fields)?;
        metrics::classification(&decision.outcome);
        Ok(EncodedAnswer::from_decision(&item.id, &decision, item.omit_advice))
    }

    /// For stream items: a bad item gets its own error.
    fn answer_item(&self, rules: &rebound_engine::RuleSet, item: pb::ClassifyRequest) -> EncodedAnswer {
        let id = item.id.clone();
        self.answer(rules, item)
            .unwrap_or_else(|fault| EncodedAnswer::from_response(&fault.response(id)))
    }
}

/// The baseline's answer to the item `id`: the fixed one, with or without the advice.
fn fixed_answer(fixed: &[pb::ClassifyResponse; 2], id: String, omit_advice: bool) -> pb::ClassifyResponse {
    pb::ClassifyResponse {
        id,
        ..fixed[usize::from(omit_advice)].clone()
    }
}

#[derive(Clone)]
pub struct ClassifierService {
    state: Arc<RuleState>,
    limits: Limits,
    answerer: Answerer,
    permits: Arc<Semaphore>,
    /// Cancelled when the server drains: open streams end with UNAVAILABLE.
    draining: CancellationToken,
}

type AnswerStream = Pin<Box<dyn Stream<Item = Result<EncodedAnswer, Status>> + Send + 'static>>;

impl ClassifierService {
    /// With `baseline`, every request is answered with one fixed response instead of classified.
    pub fn new(state: Arc<RuleState>, limits: Limits, draining: CancellationToken, baseline: bool) -> Self {
        let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1)));
        let baseline = baseline.then(|| {
            let rules = state.current();
            let fixed = |omit_advice| {
                let sample = pb::ClassifyRequest {
                    text: "550 5.1.1 <bob@example.com>: User unknown".into(),
                    omit_advice,
                    ..Default::default()
                };
                convert::decide(&rules, (&sample).into(), &FieldLimits::UNBOUNDED)
                    .map(|decision| convert::respond(sample.clone(), decision))
                    .unwrap_or_default()
            };
            Arc::new([fixed(false), fixed(true)])
        });
        let answerer = Answerer {
            fields: limits.fields(),
            baseline,
        };
        ClassifierService {
            state,
            limits,
            answerer,
            permits,
            draining,
        }
    }

    /// Admission: a permit or RESOURCE_EXHAUSTED at once (shed load rather than queue it).
    fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "over {} calls in progress; retry with backoff",
                self.limits.max_concurrent_requests
            ))
        })
    }

    /// The server's timeout, or the client's `grpc-timeout` when it is shorter.
    fn deadline<T>(&self, req: &Request<T>) -> Duration {
        let client = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        client.map_or(self.limits.request_timeout, |c| c.min(self.limits.request_timeout))
    }
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn finish<T>(method: &'static str, started: Instant, result: Result<T, Status>) -> Result<T, Status> {
    let code = result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok);
    metrics::request(method, code, started.elapsed());
    result
}

/// Classifies every item on one snapshot, in order; a bad item gets its own error.
///
/// Every item is classified before any answer is written. Answers are most of a batch's memory
/// (a kilobyte each with the advice), and writing each right after its reply pushed the
/// engine's tables out of the cache before the next reply.
///
/// Past `deadline` (checked between chunks of items) it stops with DEADLINE_EXCEEDED.
fn classify_items(
    state: &RuleState,
    answerer: &Answerer,
    request: &BatchRequest,
    deadline: Option<(Instant, Duration)>,
) -> Result<EncodedBatch, Status> {
    let rules = state.current();
    let items = request.items();
    let mut batch = EncodedBatch::new(convert::version(&rules), items.len());
    if let Some(fixed) = &answerer.baseline {
        for bytes in items {
            batch.push_response(&match wire::read_item(bytes) {
                Ok(item) => fixed_answer(fixed, item.id.to_string(), item.omit_advice),
                Err(fault) => fault.response(String::new()),
            });
        }
        return Ok(batch);
    }
    let mut decided = Vec::with_capacity(items.len());
    for chunk in items.chunks(DEADLINE_CHUNK) {
        if let Some((at, timeout)) = deadline
            && Instant::now() > at
        {
            return Err(batch_late(timeout));
        }
        decided.extend(chunk.iter().map(|bytes| {
            let item = wire::read_item(bytes).map_err(|fault| ("", fault))?;
            // Only what writing the answer needs: the decisions of a whole batch are held here.
            convert::decide(&rules, item, &answerer.fields)
                .map(|decision| (item.id, item.omit_advice, decision))
                .map_err(|fault| (item.id, fault))
        }));
    }
    for decision in decided {
        match decision {
            Ok((id, omit_advice, decision)) => {
                metrics::classification(&decision.outcome);
                batch.push_decision(id, &decision, omit_advice);
            }
            Err((id, fault)) => batch.push_response(&fault.response(id.to_string())),
        }
    }
    Ok(batch)
}

/// A batch's answer when it was not classified within its deadline.
fn batch_late(deadline: Duration) -> Status {
    Status::deadline_exceeded(format!("batch not classified within {deadline:?}"))
}

#[tonic::async_trait]
impl Classifier for ClassifierService {
    async fn classify(&self, request: Request<pb::ClassifyRequest>) -> Result<Response<EncodedAnswer>, Status> {
        let started = Instant::now();
        let result = self.admit().and_then(|_permit| {
            let rules = self.state.current();
            let response = self
                .answerer
                .answer(&rules, request.into_inner())
                .map_err(|f| f.status())?;
            Ok(Response::new(response))
        });
        finish("Classify", started, result)
    }

    async fn classify_batch(&self, request: Request<BatchRequest>) -> Result<Response<EncodedBatch>, Status> {
        let started = Instant::now();
        let deadline = self.deadline(&request);
        let result = async {
            let _permit = self.admit()?;
            let batch = request.into_inner();
            let items = batch.items().len();
            if items > self.limits.max_batch_items {
                return Err(Status::invalid_argument(format!(
                    "items: {} items is over the limit of {} per batch",
                    items, self.limits.max_batch_items
                )));
            }
            if items <= INLINE_BATCH {
                return classify_items(&self.state, &self.answerer, &batch, None).map(Response::new);
            }
            let until = Some((started + deadline, deadline));
            // On this thread, its async work handed to another first: no hand-over to the
            // blocking pool and back is paid, and the answers are built on a runtime thread. In
            // measured pairs, 13-18% more classifications per second in batches of 1,000. A
            // current-thread runtime (tests) cannot hand over: the blocking pool it is.
            if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                return tokio::task::block_in_place(|| classify_items(&self.state, &self.answerer, &batch, until))
                    .map(Response::new);
            }
            let state = Arc::clone(&self.state);
            let answerer = self.answerer.clone();
            let work = tokio::task::spawn_blocking(move || classify_items(&state, &answerer, &batch, until));
            match tokio::time::timeout(deadline, work).await {
                Ok(Ok(answers)) => answers.map(Response::new),
                Ok(Err(e)) => Err(Status::internal(format!("batch worker failed: {e}"))),
                Err(_) => Err(batch_late(deadline)),
            }
        }
        .await;
        finish("ClassifyBatch", started, result)
    }

    type ClassifyStreamStream = AnswerStream;

    async fn classify_stream(
        &self,
        request: Request<Streaming<pb::ClassifyRequest>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        let permit = match self.admit() {
            Ok(p) => p,
            Err(status) => return finish("ClassifyStream", Instant::now(), Err(status)),
        };
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(self.limits.stream_buffer.max(1));
        let state = Arc::clone(&self.state);
        let draining = self.draining.clone();
        let answerer = self.answerer.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            metrics::open_streams(1.0);
            let code = loop {
                let next = tokio::select! {
                    _ = draining.cancelled() => {
                        let _ = tx.send(Err(Status::unavailable("server is shutting down; reconnect"))).await;
                        break tonic::Code::Unavailable;
                    }
                    // The client went away: stop reading at once.
                    _ = tx.closed() => break tonic::Code::Cancelled,
                    next = inbound.message() => next,
                };
                let item = match next {
                    Ok(Some(item)) => item,
                    Ok(None) => break tonic::Code::Ok,
                    Err(status) => break status.code(),
                };
                // Each item reads the rules current when it arrives.
                let answer = answerer.answer_item(&state.current(), item);
                // A full buffer waits here: backpressure instead of unbounded memory.
                if tx.send(Ok(answer)).await.is_err() {
                    break tonic::Code::Cancelled;
                }
            };
            metrics::open_streams(-1.0);
            metrics::request("ClassifyStream", code, started.elapsed());
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_item_that_is_not_a_request_is_answered_in_place() {
        use prost::Message as _;
        let state = RuleState::load(super::super::state::RuleOrigin::Embedded).unwrap();
        let answerer = Answerer {
            fields: Limits::default().fields(),
            baseline: None,
        };
        let item = |id: &str, text: &str| pb::ClassifyRequest {
            id: id.into(),
            text: text.into(),
            ..Default::default()
        };
        let mut wire = pb::ClassifyBatchRequest {
            items: vec![item("a", "550 5.1.1 User unknown")],
        }
        .encode_to_vec();
        // Item 2: a string that is not UTF-8 (field 4, two bytes).
        wire.extend([0x0a, 0x04, 0x22, 0x02, 0xc3, 0x28]);
        wire.extend(
            pb::ClassifyBatchRequest {
                items: vec![item("c", "552 5.2.2 Mailbox full")],
            }
            .encode_to_vec(),
        );
        let request = BatchRequest::decode(wire.as_slice()).unwrap();
        let answer = classify_items(&state, &answerer, &request, None).unwrap();
        let answer = pb::ClassifyBatchResponse::decode(answer.encode_to_vec().as_slice()).unwrap();
        let categories: Vec<&str> = answer.items.iter().map(|a| a.category.as_str()).collect();
        assert_eq!(categories, ["invalid_address", "", "mailbox_full"]);
        let error = answer.items[1].error.as_ref().unwrap();
        assert_eq!(
            (error.code.as_str(), error.field.as_str()),
            ("INVALID_ARGUMENT", "items")
        );
        assert!(error.message.contains("not UTF-8"), "{}", error.message);
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}

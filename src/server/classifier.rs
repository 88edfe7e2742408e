//! The `Classifier` service: one reply, a batch, or a stream, each on a snapshot of the rules.
//!
//! A call's work stops when nobody waits for its answer any more. Each unary and batch call has a
//! deadline (the client's `grpc-timeout` or `--request-timeout`, whichever is shorter) and a
//! [`CallBudget`] that the work checks between items; the handler's future holds the
//! [`CallGuard`] that cancels the budget when tonic drops the future (the client cancelled, its
//! deadline passed, the connection went, or the runtime shut down). Work that may be long (a
//! large batch, long texts) runs on the blocking pool, one call per core at a time
//! ([`ClassifierService::run_heavy`]), so the async workers stay free for other connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Request, Response, Status, Streaming};

use super::classifier_api::classifier_server::Classifier;
use super::convert::{self, FieldLimits, ItemFault};
use super::messages::{self, MessageFault, MessageItem, MessageLimits};
use super::metrics;
use super::state::RuleState;
use super::stream::{self, StreamBounds};
use super::unmatched::UnmatchedTally;
use super::wire::{self, BatchRequest, EncodedAnswer, EncodedBatch};
use crate::codec::{ClassifyItem, MalformedRequest};
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
    /// Most items of one batch that ask for `explain`: an explanation is 2-15 KB for a common
    /// reply and more than the text for a long one, and a batch holds its explanations until it
    /// writes its answer.
    pub max_batch_explanations: usize,
    /// Deadline of a unary or batch call (a shorter `grpc-timeout` from the client wins), and of
    /// each email of a ClassifyMessageStream.
    pub request_timeout: Duration,
    /// Calls in progress across the process; past it calls fail with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// ClassifyStream calls open at once, in a pool of their own: past it a stream is refused with
    /// RESOURCE_EXHAUSTED, and open streams, idle or not, never take the room of other calls.
    pub max_concurrent_streams: usize,
    /// A stream that neither sends a request nor reads an answer for this long ends with
    /// DEADLINE_EXCEEDED.
    pub stream_idle_timeout: Duration,
    /// Answers buffered per stream before reading waits for the client (backpressure).
    pub stream_buffer: usize,
    /// Bytes of answers buffered per stream before reading waits for the client: an explained
    /// answer is several kilobytes.
    pub stream_buffer_bytes: usize,
    /// Longest email of ClassifyMessage, in bytes (apart from the gRPC message limit).
    pub max_email_bytes: usize,
    /// Deepest nesting of MIME parts in an email.
    pub max_mime_depth: usize,
    /// Most MIME parts in an email, nested ones included.
    pub max_mime_parts: usize,
    /// Most header names one ClassifyMessageRequest may ask to have returned.
    pub max_returned_headers: usize,
    /// Longest header name asked for, in bytes.
    pub max_header_name_bytes: usize,
    /// Longest VERP pattern, in bytes.
    pub max_verp_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let email = rebound_message::Limits::default();
        Limits {
            max_text_bytes: 64 * 1024,
            max_id_bytes: 1024,
            max_recipient_bytes: 254,
            max_remote_host_bytes: 255,
            max_batch_items: 10_000,
            max_batch_explanations: 100,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            max_concurrent_streams: 256,
            stream_idle_timeout: Duration::from_secs(60),
            stream_buffer: 64,
            stream_buffer_bytes: 64 * 1024,
            max_email_bytes: email.max_email_bytes,
            max_mime_depth: email.max_mime_depth,
            max_mime_parts: email.max_mime_parts,
            max_returned_headers: 32,
            max_header_name_bytes: 128,
            max_verp_bytes: 512,
        }
    }
}

impl Limits {
    fn messages(&self, max_message_bytes: usize) -> MessageLimits {
        MessageLimits {
            id_bytes: self.max_id_bytes,
            email: rebound_message::Limits {
                max_email_bytes: self.max_email_bytes,
                max_mime_depth: self.max_mime_depth,
                max_mime_parts: self.max_mime_parts,
            },
            returned_headers: self.max_returned_headers,
            header_name_bytes: self.max_header_name_bytes,
            verp_bytes: self.max_verp_bytes,
            answer_bytes: max_message_bytes,
        }
    }

    fn fields(&self) -> FieldLimits {
        FieldLimits {
            id: self.max_id_bytes,
            text: self.max_text_bytes,
            recipient: self.max_recipient_bytes,
            remote_host: self.max_remote_host_bytes,
        }
    }
}

/// A call is classified on the async worker that received it when it has at most this many
/// items and this many bytes: tens of microseconds at most, less than handing it to another
/// thread costs. Anything larger runs on the blocking pool ([`ClassifierService::run_heavy`]):
/// a classification's cost grows with its text, and one worker of two blocked on a long one
/// stalls every connection whose tasks it holds.
const INLINE_ITEMS: usize = 64;
const INLINE_BYTES: usize = 8 * 1024;

/// Work checks its budget after every this many items, and after any item whose bytes count as
/// that many (one per [`CHECK_BYTES`]): a clock read every few microseconds of work, so a call
/// past its deadline stops within about one item.
const CHECK_EVERY: usize = 8;
const CHECK_BYTES: usize = 512;

/// Turns requests into answers, for every call: the limits on what a request may hold and on
/// what an answer may become.
#[derive(Clone)]
struct Answerer {
    fields: FieldLimits,
    /// Largest answer (uncompressed), in bytes: the server's message limit.
    max_answer_bytes: usize,
    /// Most items of a batch that may ask for `explain`.
    max_batch_explanations: usize,
    /// Set for `--baseline` benchmarks: every item gets this answer without classifying, which
    /// measures what the transport alone costs. With and without the advice, as asked.
    baseline: Option<Arc<[pb::ClassifyResponse; 2]>>,
    /// Where weakly decided replies are tallied by template.
    unmatched: Arc<UnmatchedTally>,
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
        self.unmatched.record(&item.text, &decision.outcome);
        Ok(EncodedAnswer::from_decision(&item.id, &decision, item.omit_advice))
    }

    /// For stream items: a bad item, its bytes included, gets its own error.
    fn answer_item(&self, rules: &rebound_engine::RuleSet, item: ClassifyItem) -> EncodedAnswer {
        let item = match item {
            ClassifyItem::Request(item) => item,
            ClassifyItem::Malformed(bad) => {
                let (id, fault) = malformed(bad);
                return EncodedAnswer::from_response(&fault.response(id));
            }
        };
        let id = item.id.clone();
        self.answer(rules, item)
            .unwrap_or_else(|fault| EncodedAnswer::from_response(&fault.response(id)))
    }

    /// A unary call's answer, unless it is over the message limit (an explanation of a long
    /// text can be).
    fn answer_call(&self, rules: &rebound_engine::RuleSet, item: pb::ClassifyRequest) -> Result<EncodedAnswer, Status> {
        let answer = self.answer(rules, item).map_err(|fault| fault.status())?;
        let len = prost::Message::encoded_len(&answer);
        if len > self.max_answer_bytes {
            return Err(Status::out_of_range(format!(
                "the answer is {len} bytes, over the message limit of {}; ask without explain",
                self.max_answer_bytes
            )));
        }
        Ok(answer)
    }
}

/// A request whose bytes are not a `ClassifyRequest`: its id (when it could be read) and its fault.
fn malformed(bad: MalformedRequest) -> (String, ItemFault) {
    let fault = ItemFault {
        field: bad.field,
        message: bad.message,
    };
    (bad.id, fault)
}

/// The baseline's answer to the item `id`: the fixed one, with or without the advice.
fn fixed_answer(fixed: &[pb::ClassifyResponse; 2], id: String, omit_advice: bool) -> pb::ClassifyResponse {
    pb::ClassifyResponse {
        id,
        ..fixed[usize::from(omit_advice)].clone()
    }
}

/// What a call may still spend: until its deadline, and only while someone waits for its
/// answer. Work checks it between items ([`CallBudget::check`]) and stops at the first failed
/// check. Clones share the cancellation.
#[derive(Debug, Clone)]
pub(crate) struct CallBudget {
    /// When the call must have its answer, and the timeout that set it (for the message).
    deadline: Option<(Instant, Duration)>,
    /// Set when nobody waits for the answer any more (see [`CallGuard`]).
    cancelled: Arc<AtomicBool>,
}

impl CallBudget {
    /// A budget that lasts until `deadline` (none: until cancelled), and the guard whose drop
    /// cancels it. A stream item or any other work not tied to a [`CallGuard`] can use this.
    pub(crate) fn new(deadline: Option<(Instant, Duration)>) -> (CallBudget, CancelOnDrop) {
        let cancelled = Arc::new(AtomicBool::new(false));
        let budget = CallBudget {
            deadline,
            cancelled: Arc::clone(&cancelled),
        };
        (budget, CancelOnDrop(cancelled))
    }

    /// Whether the work may go on: DEADLINE_EXCEEDED past the deadline, CANCELLED when nobody
    /// waits for the answer. A clock read and an atomic load.
    pub(crate) fn check(&self) -> Result<(), Status> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Status::cancelled("the call was cancelled; its work stopped"));
        }
        match self.deadline {
            Some((at, _)) if Instant::now() >= at => Err(self.expired()),
            _ => Ok(()),
        }
    }

    /// When the call must have its answer.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|(at, _)| at)
    }

    /// The status of a call past its deadline.
    pub(crate) fn expired(&self) -> Status {
        deadline_exceeded(self.deadline.map_or(Duration::ZERO, |(_, timeout)| timeout))
    }
}

/// The status of a call not answered within `timeout`.
fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!("not answered within the call's deadline of {timeout:?}"))
}

/// Cancels a [`CallBudget`] when dropped.
#[derive(Debug)]
pub(crate) struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One unary or batch call in progress, owned by the handler's future. tonic drops that future
/// when the client cancels, its deadline passes or the connection goes, and the runtime drops it
/// when the server stops: then the guard cancels the call's budget, so its work stops at its
/// next check, and counts the call as cancelled.
struct CallGuard {
    method: &'static str,
    started: Instant,
    deadline: Instant,
    /// The budget's cancellation, made when the call's work first needs one.
    cancel: Option<CancelOnDrop>,
    finished: bool,
}

impl CallGuard {
    fn new(method: &'static str, deadline: Instant) -> CallGuard {
        CallGuard {
            method,
            started: Instant::now(),
            deadline,
            cancel: None,
            finished: false,
        }
    }

    /// The budget of the call's work until `deadline`, cancelled when the guard is dropped.
    fn budget(&mut self, deadline: (Instant, Duration)) -> CallBudget {
        let (budget, cancel) = CallBudget::new(Some(deadline));
        self.cancel = Some(cancel);
        budget
    }

    /// Counts the call with its result.
    fn finish<T>(mut self, result: Result<T, Status>) -> Result<T, Status> {
        self.finished = true;
        finish(self.method, self.started, result)
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.finished {
            // tonic's own timer ends a call at the client's deadline.
            let code = if Instant::now() >= self.deadline {
                tonic::Code::DeadlineExceeded
            } else {
                tonic::Code::Cancelled
            };
            metrics::request(self.method, code, self.started.elapsed());
        }
    }
}

/// The client's deadline of a call, read by [`ClassifierEdge`] when the request arrived (a
/// request extension): the call's deadline counts from then, as tonic's own timer for it does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientDeadline {
    pub(crate) arrived: Instant,
    pub(crate) timeout: Duration,
}

const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// The Classifier server as the listener serves it: it notes when each request arrived, and
/// answers a compressed request that inflates past the message limit with OUT_OF_RANGE, as any
/// request over the limit (tonic says RESOURCE_EXHAUSTED; see `codec::request_status`).
#[derive(Debug, Clone)]
pub struct ClassifierEdge<S>(S);

impl<S> ClassifierEdge<S> {
    pub fn new(server: S) -> Self {
        ClassifierEdge(server)
    }
}

impl<S: NamedService> NamedService for ClassifierEdge<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<http::Request<B>> for ClassifierEdge<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Unpin,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = EdgeResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let timeout = request.headers().get(GRPC_TIMEOUT).and_then(|v| v.to_str().ok());
        if let Some(timeout) = timeout.and_then(parse_grpc_timeout) {
            let arrived = Instant::now();
            request.extensions_mut().insert(ClientDeadline { arrived, timeout });
        }
        EdgeResponse(self.0.call(request))
    }
}

/// The Classifier server's response, its status rewritten by [`ClassifierEdge`].
pub struct EdgeResponse<F>(F);

impl<F, R, E> Future for EdgeResponse<F>
where
    F: Future<Output = Result<http::Response<R>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = std::task::ready!(Pin::new(&mut self.0).poll(cx))?;
        // A call that fails before its handler runs (its request could not be read) is answered
        // with the status in the headers.
        if let Some(status) = tonic::Status::from_header_map(response.headers())
            && status.code() != tonic::Code::Ok
        {
            let mapped = crate::codec::request_status(status);
            if mapped.code() == tonic::Code::OutOfRange {
                let _ = mapped.add_header(response.headers_mut());
            }
        }
        Poll::Ready(Ok(response))
    }
}

#[derive(Clone)]
pub struct ClassifierService {
    state: Arc<RuleState>,
    limits: Limits,
    answerer: Answerer,
    /// What an email request may hold.
    messages: MessageLimits,
    permits: Arc<Semaphore>,
    /// Open streams' own pool, so that they cannot take the room of unary and batch calls.
    stream_permits: Arc<Semaphore>,
    /// Calls whose work runs on the blocking pool at once: one per core, so that long work
    /// neither crowds out the async workers nor holds more answers in memory than it can build.
    heavy_slots: Arc<Semaphore>,
    /// Cancelled when the server drains: open streams end with UNAVAILABLE.
    draining: CancellationToken,
}

type AnswerStream = Pin<Box<dyn Stream<Item = Result<EncodedAnswer, Status>> + Send + 'static>>;
type MessageAnswerStream = Pin<Box<dyn Stream<Item = Result<pb::ClassifyMessageResponse, Status>> + Send + 'static>>;

impl ClassifierService {
    /// With `baseline`, every request is answered with one fixed response instead of classified.
    /// No answer grows past `max_message_bytes`.
    pub fn new(
        state: Arc<RuleState>,
        limits: Limits,
        max_message_bytes: usize,
        draining: CancellationToken,
        baseline: bool,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1)));
        let stream_permits = Arc::new(Semaphore::new(limits.max_concurrent_streams.max(1)));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
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
            max_answer_bytes: max_message_bytes,
            max_batch_explanations: limits.max_batch_explanations,
            baseline,
            unmatched: Arc::clone(state.unmatched()),
        };
        ClassifierService {
            state,
            messages: limits.messages(max_message_bytes),
            limits,
            answerer,
            permits,
            stream_permits,
            heavy_slots: Arc::new(Semaphore::new(cores)),
            draining,
        }
    }

    /// A stream's admission, from the streams' own pool: a permit or RESOURCE_EXHAUSTED at once.
    /// A stream's deadline (the client's own: --request-timeout is for single calls, and a
    /// stream may be long) and its buffering bounds.
    fn stream_terms<T>(&self, request: &Request<T>) -> (Option<Duration>, StreamBounds) {
        let deadline = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let bounds = StreamBounds {
            idle_timeout: self.limits.stream_idle_timeout,
            buffer_answers: self.limits.stream_buffer,
            buffer_bytes: self.limits.stream_buffer_bytes,
        };
        (deadline, bounds)
    }

    fn admit_stream(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.stream_permits).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "over {} streams open; retry with backoff",
                self.limits.max_concurrent_streams
            ))
        })
    }

    /// The answer to one email of a stream: read on the blocking pool unless it is small, within
    /// `--request-timeout`; a bad one answered with its own error.
    async fn answer_stream_message(&self, item: MessageItem) -> pb::ClassifyMessageResponse {
        let item = match item {
            MessageItem::Request(item) => item,
            MessageItem::Malformed(bad) => {
                let (id, fault) = MessageFault::malformed(bad);
                return fault.response(id);
            }
        };
        let id = item.id.clone();
        let limits = self.messages;
        let answer = if item.message.len() <= INLINE_BYTES {
            messages::answer(&self.state, &item, &limits)
        } else {
            let timeout = self.limits.request_timeout;
            let (budget, _cancel) = CallBudget::new(Instant::now().checked_add(timeout).map(|at| (at, timeout)));
            let state = Arc::clone(&self.state);
            let work = self.run_heavy(budget, (), move |_| Ok(messages::answer(&state, &item, &limits)));
            Box::pin(work)
                .await
                .unwrap_or_else(|status| Err(MessageFault::from_status(&status)))
        };
        answer.unwrap_or_else(|fault| fault.response(id))
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

    /// When the call must be answered, and its timeout: the server's, or the client's
    /// `grpc-timeout` when it is shorter, counted from when the request arrived (without a client
    /// deadline, from now: the call has just started).
    fn deadline<T>(&self, req: &Request<T>) -> (Instant, Duration) {
        let server = self.limits.request_timeout;
        let (from, timeout) = match req.extensions().get::<ClientDeadline>() {
            Some(client) => (client.arrived, client.timeout.min(server)),
            None => (Instant::now(), server),
        };
        // A deadline too far to represent is no deadline: a century will do.
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        let at = from
            .checked_add(timeout)
            .or_else(|| from.checked_add(CENTURY))
            .unwrap_or(from);
        (at, timeout)
    }

    /// Runs `work` on the blocking pool, at most one call per core at a time, and waits for it
    /// until the budget's deadline. `held` (the call's permit) goes with the work and is
    /// released when the work ends, so a call whose client has gone counts against
    /// `--max-concurrent-requests` until its work has really stopped; the work stops at its next
    /// check once the deadline passes or the budget is cancelled.
    pub(crate) async fn run_heavy<T: Send + 'static>(
        &self,
        budget: CallBudget,
        held: impl Send + 'static,
        work: impl FnOnce(&CallBudget) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let deadline = budget.deadline();
        let slot = match until(deadline, Arc::clone(&self.heavy_slots).acquire_owned()).await {
            Some(Ok(slot)) => slot,
            Some(Err(_)) => return Err(Status::unavailable("server is shutting down; retry")),
            None => return Err(budget.expired()),
        };
        let expired = budget.expired();
        let work = tokio::task::spawn_blocking(move || {
            let _held = (held, slot);
            budget.check()?;
            work(&budget)
        });
        match until(deadline, work).await {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(Status::internal(format!("classification worker failed: {e}"))),
            None => Err(expired),
        }
    }
}

/// The bytes of a unary request's fields: what its classification costs grows with them.
fn item_bytes(item: &pb::ClassifyRequest) -> usize {
    [&item.id, &item.enhanced, &item.text, &item.recipient, &item.remote_host]
        .iter()
        .map(|field| field.len())
        .sum()
}

/// `future`'s output, or None when `deadline` comes first.
async fn until<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at.into(), future).await.ok(),
        None => Some(future.await),
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
/// It stops at the first failed check of `budget` (between items), when more items than the
/// limit ask for `explain`, and as soon as the answer would pass the message limit: an answer is
/// never built larger than it may be sent.
fn classify_items(
    state: &RuleState,
    answerer: &Answerer,
    request: &BatchRequest,
    budget: &CallBudget,
) -> Result<EncodedBatch, Status> {
    let rules = state.current();
    let items = request.items();
    let max_answer = answerer.max_answer_bytes;
    let mut batch = EncodedBatch::new(convert::version(&rules), items.len(), max_answer);
    let too_large = |at: usize| answer_too_large(max_answer, at, items.len());
    // What the answers may take: the limit less the batch's version.
    let room = max_answer.saturating_sub(prost::Message::encoded_len(&batch));
    if let Some(fixed) = &answerer.baseline {
        for (at, bytes) in items.iter().enumerate() {
            batch.push_response(&match wire::read_item(bytes) {
                Ok(item) => fixed_answer(fixed, item.id.to_string(), item.omit_advice),
                Err(fault) => fault.response(String::new()),
            });
            if batch.answers_len() > room {
                return Err(too_large(at));
            }
        }
        return Ok(batch);
    }
    let mut decided = Vec::with_capacity(items.len());
    let mut since_check = 0;
    let (mut explained, mut explanation_bytes) = (0, 0);
    for (at, bytes) in items.iter().enumerate() {
        let decision = match wire::read_item(bytes) {
            Err(fault) => Err(("", fault)),
            Ok(item) => {
                if item.explain {
                    explained += 1;
                    if explained > answerer.max_batch_explanations {
                        return Err(Status::invalid_argument(format!(
                            "items: more than {} items ask for explain; that is the limit per batch",
                            answerer.max_batch_explanations
                        )));
                    }
                }
                // Only what writing the answer needs: the decisions of a whole batch are held here.
                convert::decide(&rules, item, &answerer.fields)
                    .map(|decision| (item.id, item.text, item.omit_advice, decision))
                    .map_err(|fault| (item.id, fault))
            }
        };
        if let Ok((_, _, _, decision)) = &decision
            && let Some(explanation) = &decision.explanation
        {
            // The explanations alone already make the answer too large: stop now.
            explanation_bytes += prost::Message::encoded_len(explanation.as_ref());
            if explanation_bytes > room {
                return Err(too_large(at));
            }
        }
        decided.push(decision);
        since_check += 1 + bytes.len() / CHECK_BYTES;
        if since_check >= CHECK_EVERY {
            budget.check()?;
            since_check = 0;
        }
    }
    for (at, decision) in decided.into_iter().enumerate() {
        match decision {
            Ok((id, text, omit_advice, decision)) => {
                metrics::classification(&decision.outcome);
                answerer.unmatched.record(text, &decision.outcome);
                batch.push_decision(id, &decision, omit_advice);
            }
            Err((id, fault)) => batch.push_response(&fault.response(id.to_string())),
        }
        if batch.answers_len() > room {
            return Err(too_large(at));
        }
    }
    Ok(batch)
}

/// A batch's status when its answer would pass the message limit at item `at`.
fn answer_too_large(max_answer: usize, at: usize, items: usize) -> Status {
    Status::out_of_range(format!(
        "the answer would be over the message limit of {max_answer} bytes at item {} of {items}; \
         send fewer items, fewer with explain, or set omit_advice",
        at + 1
    ))
}

#[tonic::async_trait]
impl Classifier for ClassifierService {
    async fn classify(&self, request: Request<ClassifyItem>) -> Result<Response<EncodedAnswer>, Status> {
        let deadline = self.deadline(&request);
        let mut call = CallGuard::new("Classify", deadline.0);
        let result = async {
            let permit = self.admit()?;
            let item = match request.into_inner() {
                ClassifyItem::Request(request) => request,
                ClassifyItem::Malformed(bad) => return Err(malformed(bad).1.status()),
            };
            if item_bytes(&item) <= INLINE_BYTES {
                if Instant::now() >= deadline.0 {
                    return Err(deadline_exceeded(deadline.1));
                }
                let answer = self.answerer.answer_call(&self.state.current(), item);
                drop(permit);
                return answer.map(Response::new);
            }
            let budget = call.budget(deadline);
            let (state, answerer) = (Arc::clone(&self.state), self.answerer.clone());
            // Boxed: its timers would make every call's future (and its copies) larger.
            Box::pin(self.run_heavy(budget, permit, move |_| answerer.answer_call(&state.current(), item)))
                .await
                .map(Response::new)
        }
        .await;
        call.finish(result)
    }

    async fn classify_batch(&self, request: Request<BatchRequest>) -> Result<Response<EncodedBatch>, Status> {
        let deadline = self.deadline(&request);
        let mut call = CallGuard::new("ClassifyBatch", deadline.0);
        let result = async {
            let permit = self.admit()?;
            let batch = request.into_inner();
            let items = batch.items().len();
            if items > self.limits.max_batch_items {
                return Err(Status::invalid_argument(format!(
                    "items: {} items is over the limit of {} per batch",
                    items, self.limits.max_batch_items
                )));
            }
            let budget = call.budget(deadline);
            let bytes: usize = batch.items().iter().map(|item| item.len()).sum();
            if items <= INLINE_ITEMS && bytes <= INLINE_BYTES {
                budget.check()?;
                let answers = classify_items(&self.state, &self.answerer, &batch, &budget);
                drop(permit);
                return answers.map(Response::new);
            }
            let (state, answerer) = (Arc::clone(&self.state), self.answerer.clone());
            Box::pin(self.run_heavy(budget, permit, move |budget| {
                classify_items(&state, &answerer, &batch, budget)
            }))
            .await
            .map(Response::new)
        }
        .await;
        call.finish(result)
    }

    type ClassifyStreamStream = AnswerStream;

    async fn classify_stream(
        &self,
        request: Request<Streaming<ClassifyItem>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        let permit = match self.admit_stream() {
            Ok(p) => p,
            Err(status) => return finish("ClassifyStream", Instant::now(), Err(status)),
        };
        let (deadline, bounds) = self.stream_terms(&request);
        let state = Arc::clone(&self.state);
        let answerer = self.answerer.clone();
        // Each item reads the rules current when it arrives; its answer is ready at once.
        let answer = move |item| std::future::ready(answerer.answer_item(&state.current(), item));
        let answers = stream::spawn(
            "ClassifyStream",
            request.into_inner(),
            answer,
            bounds,
            deadline,
            self.draining.clone(),
            permit,
        );
        Ok(Response::new(Box::pin(answers)))
    }

    async fn classify_message(
        &self,
        request: Request<MessageItem>,
    ) -> Result<Response<pb::ClassifyMessageResponse>, Status> {
        let deadline = self.deadline(&request);
        let mut call = CallGuard::new("ClassifyMessage", deadline.0);
        let result = async {
            let permit = self.admit()?;
            let item = match request.into_inner() {
                MessageItem::Request(item) => item,
                MessageItem::Malformed(bad) => return Err(MessageFault::malformed(bad).1.status()),
            };
            let limits = self.messages;
            if item.message.len() <= INLINE_BYTES {
                if Instant::now() >= deadline.0 {
                    return Err(deadline_exceeded(deadline.1));
                }
                let answer = messages::answer(&self.state, &item, &limits).map_err(|fault| fault.status());
                drop(permit);
                return answer.map(Response::new);
            }
            // Reading an email costs in proportion to its size: off the async workers.
            let budget = call.budget(deadline);
            let state = Arc::clone(&self.state);
            Box::pin(self.run_heavy(budget, permit, move |_| {
                messages::answer(&state, &item, &limits).map_err(|fault| fault.status())
            }))
            .await
            .map(Response::new)
        }
        .await;
        call.finish(result)
    }

    type ClassifyMessageStreamStream = MessageAnswerStream;

    async fn classify_message_stream(
        &self,
        request: Request<Streaming<MessageItem>>,
    ) -> Result<Response<Self::ClassifyMessageStreamStream>, Status> {
        let permit = match self.admit_stream() {
            Ok(p) => p,
            Err(status) => return finish("ClassifyMessageStream", Instant::now(), Err(status)),
        };
        let (deadline, bounds) = self.stream_terms(&request);
        let service = self.clone();
        // Each email reads the rules current when it arrives.
        let answer = move |item| {
            let service = service.clone();
            async move { service.answer_stream_message(item).await }
        };
        let answers = stream::spawn(
            "ClassifyMessageStream",
            request.into_inner(),
            answer,
            bounds,
            deadline,
            self.draining.clone(),
            permit,
        );
        Ok(Response::new(Box::pin(answers)))
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
            max_answer_bytes: 1 << 20,
            max_batch_explanations: 10,
            baseline: None,
            unmatched: Arc::clone(state.unmatched()),
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
        let (budget, _cancel) = CallBudget::new(None);
        let answer = classify_items(&state, &answerer, &request, &budget).unwrap();
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

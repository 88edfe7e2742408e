//! The loop of `ClassifyStream` and `ClassifyMessageStream`: one answer per request, in order, a bad item answered in place; the
//! answers the client has not read bounded in count and in bytes (past either the loop stops
//! reading: backpressure); and an end that always reaches the client: OK only when the client
//! closed its side and every request was answered, a status naming the cause otherwise (idle,
//! past the call's deadline, the server draining, broken framing).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_stream::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Code, Status, Streaming};

use super::metrics;

/// What one stream may hold and how long it may wait.
#[derive(Debug, Clone, Copy)]
pub struct StreamBounds {
    /// A stream that neither sends a request nor takes an answer for this long ends.
    pub idle_timeout: Duration,
    /// Answers held unread before the loop stops reading.
    pub buffer_answers: usize,
    /// Bytes of answers held unread before the loop stops reading: explain answers are large.
    pub buffer_bytes: usize,
}

/// Starts the loop that answers `inbound` with `answer`, holding `permit` (the stream's place
/// in the pool of streams) until it ends; the call is counted in the metrics as `method`.
/// `deadline` is the client's, from the call's start. An answer is a future so that work too long
/// for an async worker (reading an email) can be waited for off it; a reply's answer is ready at
/// once.
pub fn spawn<I, A, F, Fut>(
    method: &'static str,
    mut inbound: Streaming<I>,
    mut answer: F,
    bounds: StreamBounds,
    deadline: Option<Duration>,
    draining: CancellationToken,
    permit: OwnedSemaphorePermit,
) -> Answers<A>
where
    I: Send + 'static,
    A: prost::Message + Send + 'static,
    F: FnMut(I) -> Fut + Send + 'static,
    Fut: Future<Output = A> + Send,
{
    let (queue, queued) = mpsc::channel(bounds.buffer_answers.max(1));
    let (end_tx, end) = oneshot::channel();
    // A semaphore's permits are counted in u32; a buffer of 4 GiB is no bound anyway.
    let room_bytes = u32::try_from(bounds.buffer_bytes.max(1)).unwrap_or(u32::MAX);
    let room = Arc::new(Semaphore::new(room_bytes as usize));
    tokio::spawn(async move {
        let _permit = permit;
        let started = std::time::Instant::now();
        metrics::open_streams(1.0);
        let mut stops = Stops::new(draining, deadline, bounds.idle_timeout);
        let result = serve(&mut inbound, &mut answer, &mut stops, &queue, &room, room_bytes).await;
        let code = result.as_ref().map_or_else(Status::code, |()| Code::Ok);
        metrics::open_streams(-1.0);
        metrics::request(method, code, started.elapsed());
        // Before the queue closes, so the end follows the last answer.
        let _ = end_tx.send(result);
    });
    Answers { queued, end: Some(end) }
}

/// Reads, answers and queues until the stream ends; `Ok` when the client closed its side.
async fn serve<I, A: prost::Message, Fut: Future<Output = A>>(
    inbound: &mut Streaming<I>,
    answer: &mut impl FnMut(I) -> Fut,
    stops: &mut Stops,
    queue: &mpsc::Sender<Queued<A>>,
    room: &Arc<Semaphore>,
    room_bytes: u32,
) -> Result<(), Status> {
    loop {
        let next = stops
            .race(async {
                tokio::select! {
                    biased;
                    next = inbound.message() => Some(next),
                    () = queue.closed() => None,
                }
            })
            .await?;
        let item = match next {
            Some(Ok(Some(item))) => item,
            Some(Ok(None)) => return Ok(()),
            Some(Err(status)) => return Err(framing(&status)),
            None => return Err(gone()),
        };
        stops.progress();
        // A reply's answer is ready at the first poll, and costs no race; an email's may wait for
        // the blocking pool, and the stream's stops (draining, its deadline) end that wait.
        let mut pending = std::pin::pin!(answer(item));
        let answer = match std::future::poll_fn(|cx| Poll::Ready(pending.as_mut().poll(cx))).await {
            Poll::Ready(answer) => answer,
            Poll::Pending => stops.race(pending).await?,
        };
        // An answer larger than the whole buffer takes all of it: it waits for an empty one.
        let bytes = u32::try_from(prost::Message::encoded_len(&answer))
            .unwrap_or(u32::MAX)
            .clamp(1, room_bytes);
        // Room at once in the buffer, the usual case, or wait for the client to read.
        let held = match Arc::clone(room).try_acquire_many_owned(bytes) {
            Ok(held) => held,
            Err(_) => stops
                .race(Arc::clone(room).acquire_many_owned(bytes))
                .await?
                .map_err(|_| gone())?,
        };
        let slot = match queue.try_reserve() {
            Ok(slot) => slot,
            Err(mpsc::error::TrySendError::Full(())) => stops.race(queue.reserve()).await?.map_err(|_| gone())?,
            Err(mpsc::error::TrySendError::Closed(())) => return Err(gone()),
        };
        slot.send(Queued { answer, _held: held });
        stops.progress();
    }
}

/// What ends a stream other than its client: the server draining, the call's deadline, idleness.
struct Stops {
    draining_token: CancellationToken,
    draining: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Races run; the draining token (behind a lock shared by every stream) is asked about every
    /// [`DRAINING_CHECK_EVERY`] of them when the work is ready at once, and waited on otherwise.
    races: u32,
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// When a request was last read or an answer last queued. The idle timer is moved on to
    /// match only when it fires, not at every item.
    last_progress: Instant,
}

impl Stops {
    fn new(draining: CancellationToken, deadline: Option<Duration>, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        Stops {
            draining: Box::pin(draining.clone().cancelled_owned()),
            draining_token: draining,
            races: 0,
            deadline: deadline.map(|d| (Box::pin(sleep_until(now + d)), d)),
            idle: Box::pin(sleep_until(now + idle_timeout)),
            idle_timeout,
            last_progress: now,
        }
    }

    fn progress(&mut self) {
        self.last_progress = Instant::now();
    }

    /// `work`'s output, unless the stream must end first.
    ///
    /// Work that is ready at once is taken first (a stream's requests usually are), so the
    /// draining and the deadline are checked before it: a client sending without pause must not
    /// keep its stream past either.
    async fn race<T>(&mut self, work: impl Future<Output = T>) -> Result<T, Status> {
        let mut work = std::pin::pin!(work);
        self.races = self.races.wrapping_add(1);
        if self.races.is_multiple_of(DRAINING_CHECK_EVERY) && self.draining_token.is_cancelled() {
            return Err(shutting_down());
        }
        // By the clock: a timer that was never waited on is not known to have fired.
        if let Some((sleep, timeout)) = &self.deadline
            && sleep.deadline() <= Instant::now()
        {
            return Err(late(*timeout));
        }
        let Stops {
            draining,
            deadline,
            idle,
            idle_timeout,
            last_progress,
            ..
        } = self;
        loop {
            let passed = async {
                match deadline {
                    Some((sleep, timeout)) => {
                        sleep.as_mut().await;
                        *timeout
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                out = &mut work => return Ok(out),
                () = draining.as_mut() => return Err(shutting_down()),
                timeout = passed => return Err(late(timeout)),
                () = idle.as_mut() => {
                    let due = *last_progress + *idle_timeout;
                    if due <= Instant::now() {
                        return Err(Status::deadline_exceeded(format!(
                            "stream idle: no request sent and no answer read for {idle_timeout:?} \
                             (--stream-idle-timeout); open a new stream"
                        )));
                    }
                    idle.as_mut().reset(due);
                }
            }
        }
    }
}

/// Between two checks of the draining token while a stream's work is always ready.
const DRAINING_CHECK_EVERY: u32 = 32;

fn shutting_down() -> Status {
    Status::unavailable("server is shutting down; reconnect")
}

fn late(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!("the call's deadline of {timeout:?} passed"))
}

/// The client went away: nothing will read this status; it is counted in the metrics.
fn gone() -> Status {
    Status::cancelled("the client went away")
}

/// The request stream's framing is broken (a message cut short, a compressed flag with no
/// encoding, a message over the size limit): it cannot be read on, and must not end OK.
fn framing(status: &Status) -> Status {
    let code = if status.code() == Code::Ok {
        Code::Internal
    } else {
        status.code()
    };
    Status::new(code, format!("reading the request stream: {}", status.message()))
}

/// An answer with the room it takes in the stream's buffer, given back when it is taken.
struct Queued<A> {
    answer: A,
    _held: OwnedSemaphorePermit,
}

/// A stream's answers, in order, then its end: nothing after the last answer when the client
/// closed its side, else the status that ended it.
pub struct Answers<A> {
    queued: mpsc::Receiver<Queued<A>>,
    end: Option<oneshot::Receiver<Result<(), Status>>>,
}

impl<A> Stream for Answers<A> {
    type Item = Result<A, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(queued) = ready!(self.queued.poll_recv(cx)) {
            // The room it held is given back here, and the loop may read on.
            return Poll::Ready(Some(Ok(queued.answer)));
        }
        let Some(end) = self.end.as_mut() else {
            return Poll::Ready(None);
        };
        let end = ready!(Pin::new(end).poll(cx));
        self.end = None;
        Poll::Ready(match end {
            Ok(Ok(())) => None,
            Ok(Err(status)) => Some(Err(status)),
            // The loop stopped without saying why (it panicked): never an OK end.
            Err(_) => Some(Err(Status::internal("the stream stopped unexpectedly"))),
        })
    }
}

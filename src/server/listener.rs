//! Accepting connections for every listener (Classifier, RuleAdmin, metrics): backing off while
//! accepting fails (file descriptors exhausted) with a log line at most every few seconds, and
//! closing connections whose first bytes (HTTP/2's preface) do not arrive in time.
//!
//! An accept that fails for want of descriptors leaves the connection queued and the listener
//! ready, so retrying at once fails again at once: the metrics exporter's own listener wrote a
//! million warnings in six seconds that way, and tonic's loop spun a core. And HTTP/2 starts its
//! timers (keepalive pings, connection age) only after the handshake, so a connection that sends
//! nothing was kept, with its buffers, for as long as its peer liked.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, sleep, sleep_until};
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// The client's HTTP/2 connection preface (RFC 9113 §3.4): `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
pub const HTTP2_PREFACE_BYTES: usize = 24;

/// The shortest HTTP/1 request line, `GET / HTTP/1.1\r\n`.
pub const HTTP1_REQUEST_LINE_BYTES: usize = 16;

/// The first retry after a failed accept; each failure in a row doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// At most one warning per listener this often while accepting fails; the count of failures
/// in between is in the next one.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// A listener's accepted connections, each within [`HandshakeDeadline`]. Never yields an error:
/// a failed accept is retried after a backoff.
pub struct Incoming {
    listener: TcpIncoming,
    /// Names the listener in the logs: `grpc`, `admin`, `metrics`.
    name: &'static str,
    handshake_timeout: Duration,
    /// Bytes a connection must send within `handshake_timeout`.
    first_bytes: usize,
    /// Set while waiting to retry a failed accept.
    backoff: Option<Pin<Box<Sleep>>>,
    failures: AcceptFailures,
}

impl Incoming {
    /// Takes over `listener`; each connection must send `first_bytes` within `handshake_timeout`.
    pub fn new(listener: TcpIncoming, name: &'static str, handshake_timeout: Duration, first_bytes: usize) -> Self {
        Incoming {
            listener,
            name,
            handshake_timeout,
            first_bytes,
            backoff: None,
            failures: AcceptFailures::default(),
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<HandshakeDeadline<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(backoff) = &mut this.backoff {
                ready!(backoff.as_mut().poll(cx));
                this.backoff = None;
            }
            match ready!(Pin::new(&mut this.listener).poll_next(cx)) {
                Some(Ok(stream)) => {
                    this.failures.accepted(this.name);
                    let deadline = Instant::now() + this.handshake_timeout;
                    return Poll::Ready(Some(Ok(HandshakeDeadline::new(stream, deadline, this.first_bytes))));
                }
                // Only this connection failed (it was reset before it was accepted): go on.
                Some(Err(e)) if is_connection_error(&e) => {
                    tracing::debug!(listener = this.name, error = %e, "a connection failed before it was accepted");
                }
                Some(Err(e)) => {
                    let delay = this.failures.failed(this.name, &e);
                    this.backoff = Some(Box::pin(sleep(delay)));
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// Failed accepts in a row, the backoff they call for, and when they were last logged.
#[derive(Debug, Default)]
struct AcceptFailures {
    in_a_row: u64,
    /// Failures since the last warning.
    unlogged: u64,
    last_logged: Option<Instant>,
    backoff: Duration,
}

impl AcceptFailures {
    /// Counts a failure; returns how long to wait before the next accept.
    fn failed(&mut self, listener: &'static str, error: &io::Error) -> Duration {
        self.in_a_row += 1;
        self.unlogged += 1;
        self.backoff = if self.in_a_row == 1 {
            FIRST_BACKOFF
        } else {
            (self.backoff * 2).min(MAX_BACKOFF)
        };
        let now = Instant::now();
        if self.last_logged.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            tracing::warn!(
                listener,
                %error,
                failures = self.unlogged,
                retry_in = ?self.backoff,
                "cannot accept connections; backing off (at most one such line every 5s)"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        }
        self.backoff
    }

    fn accepted(&mut self, listener: &'static str) {
        if self.in_a_row > 0 {
            tracing::info!(listener, failures = self.in_a_row, "accepting connections again");
            *self = AcceptFailures::default();
        }
    }
}

/// A connection that fails its reads (so the server closes it) when its first `first_bytes`
/// bytes have not arrived by a deadline; after them, it is the connection itself.
///
/// It lies under TLS, when TLS is on: there the bytes are the TLS handshake's, whose own
/// timeout (set to the same limit) covers the rest of it.
pub struct HandshakeDeadline<IO> {
    io: IO,
    /// Cleared once the bytes have arrived.
    deadline: Option<Pin<Box<Sleep>>>,
    bytes_due: usize,
}

impl<IO> HandshakeDeadline<IO> {
    pub fn new(io: IO, deadline: Instant, first_bytes: usize) -> Self {
        HandshakeDeadline {
            io,
            deadline: (first_bytes > 0).then(|| Box::pin(sleep_until(deadline))),
            bytes_due: first_bytes,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for HandshakeDeadline<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // Checked before reading too: a peer trickling a byte at a time is always ready.
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection did not start its handshake in time (--handshake-timeout)",
            )));
        }
        let filled = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if this.deadline.is_some() {
            this.bytes_due = this.bytes_due.saturating_sub(buf.filled().len() - filled);
            if this.bytes_due == 0 {
                this.deadline = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for HandshakeDeadline<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// As a plain TCP connection's: requests see the peer's address.
impl Connected for HandshakeDeadline<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// Binds `addr` for [`Incoming`], with the socket options every listener uses.
pub fn bind(addr: SocketAddr) -> io::Result<TcpIncoming> {
    Ok(TcpIncoming::bind(addr)?
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn failures_back_off_to_a_ceiling_and_start_over_after_an_accept() {
        let mut failures = AcceptFailures::default();
        let error = io::Error::from_raw_os_error(24); // EMFILE
        let delays: Vec<Duration> = (0..10).map(|_| failures.failed("test", &error)).collect();
        assert_eq!(delays[0], FIRST_BACKOFF);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]), "{delays:?}");
        assert_eq!(delays[9], MAX_BACKOFF);
        failures.accepted("test");
        assert_eq!(failures.failed("test", &error), FIRST_BACKOFF);
    }
}

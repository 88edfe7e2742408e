//! `rebound serve` and `rebound health`: flags (each also an environment variable) to config.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use rebound::health::{HealthTarget, check};
use rebound::server::{
    BoundServer, Limits, ReloadOptions, RuleOrigin, RuleState, ServerConfig, TlsFiles, UnmatchedOptions,
    termination_signal,
};

#[derive(Args)]
pub struct ServeArgs {
    /// Rule directory, followed live; the embedded rules when absent.
    #[arg(long, env = "REBOUND_RULES")]
    rules: Option<PathBuf>,
    /// Watch the rule directory for changes (file events; SIGHUP and the periodic check work either way).
    #[arg(long, env = "REBOUND_WATCH", default_value_t = true, action = clap::ArgAction::Set)]
    watch: bool,
    /// Check the rule directory's digest this often as a safety net; 0s disables it.
    #[arg(long, env = "REBOUND_POLL_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Longest a rule reload may take (reading and verifying the rules) before it is reported as
    /// failed in GetStatus and answered so by Reload; the active rules keep serving.
    #[arg(long, env = "REBOUND_RELOAD_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    reload_timeout: Duration,
    /// Address of the Classifier API (with health and reflection).
    #[arg(long, env = "REBOUND_LISTEN", default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
    /// Address of the RuleAdmin API; keep it on loopback unless protected otherwise.
    #[arg(long, env = "REBOUND_ADMIN_LISTEN", default_value = "127.0.0.1:50052")]
    admin_listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (`/metrics`); "off" to disable.
    #[arg(long, env = "REBOUND_METRICS_LISTEN", default_value = "0.0.0.0:9464")]
    metrics_listen: String,
    /// Label `rebound_classifications_total` with the deciding rule as well as the category. A
    /// series exists per rule that has fired; turn it off for rule sets of many thousands of rules.
    #[arg(long, env = "REBOUND_METRICS_RULE_LABEL", default_value_t = true, action = clap::ArgAction::Set)]
    metrics_rule_label: bool,
    /// Server certificate (PEM); with --tls-key turns TLS on.
    #[arg(long, env = "REBOUND_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, env = "REBOUND_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to: turns mutual TLS on.
    #[arg(long, env = "REBOUND_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Longest `text` of one reply, in bytes.
    #[arg(long, env = "REBOUND_MAX_TEXT_BYTES", default_value_t = 64 * 1024)]
    max_text_bytes: usize,
    /// Longest `id` of one request, in bytes.
    #[arg(long, env = "REBOUND_MAX_ID_BYTES", default_value_t = 1024)]
    max_id_bytes: usize,
    /// Longest `recipient`, in bytes (an address is at most 254 by RFC 5321).
    #[arg(long, env = "REBOUND_MAX_RECIPIENT_BYTES", default_value_t = 254)]
    max_recipient_bytes: usize,
    /// Longest `remote_host`, in bytes (a host name is at most 255).
    #[arg(long, env = "REBOUND_MAX_REMOTE_HOST_BYTES", default_value_t = 255)]
    max_remote_host_bytes: usize,
    /// Most items in one ClassifyBatch.
    #[arg(long, env = "REBOUND_MAX_BATCH_ITEMS", default_value_t = 10_000)]
    max_batch_items: usize,
    /// Most items of one ClassifyBatch that may ask for `explain`.
    #[arg(long, env = "REBOUND_MAX_BATCH_EXPLANATIONS", default_value_t = 100)]
    max_batch_explanations: usize,
    /// Longest email of ClassifyMessage(Stream), in bytes (a gRPC message must hold it too: see
    /// --max-message-bytes); a longer one is refused with OUT_OF_RANGE.
    #[arg(long, env = "REBOUND_MAX_EMAIL_BYTES", default_value_t = rebound_message::Limits::default().max_email_bytes)]
    max_email_bytes: usize,
    /// Deepest nesting of MIME parts (multiparts, attached messages) in an email.
    #[arg(long, env = "REBOUND_MAX_MIME_DEPTH", default_value_t = rebound_message::Limits::default().max_mime_depth)]
    max_mime_depth: usize,
    /// Most MIME parts in an email, nested ones included.
    #[arg(long, env = "REBOUND_MAX_MIME_PARTS", default_value_t = rebound_message::Limits::default().max_mime_parts)]
    max_mime_parts: usize,
    /// Most header names one ClassifyMessageRequest may ask to have returned (`headers`).
    #[arg(long, env = "REBOUND_MAX_RETURNED_HEADERS", default_value_t = 32)]
    max_returned_headers: usize,
    /// Longest header name a ClassifyMessageRequest may ask for, in bytes.
    #[arg(long, env = "REBOUND_MAX_HEADER_NAME_BYTES", default_value_t = 128)]
    max_header_name_bytes: usize,
    /// Longest VERP pattern of a ClassifyMessageRequest, in bytes.
    #[arg(long, env = "REBOUND_MAX_VERP_BYTES", default_value_t = 512)]
    max_verp_bytes: usize,
    /// Largest gRPC message, in bytes, decompressed: larger requests, and calls whose answer
    /// would be larger, fail with OUT_OF_RANGE.
    #[arg(long, env = "REBOUND_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Deadline of a Classify, ClassifyBatch or ClassifyMessage call (a shorter client deadline
    /// wins), and of each email of a ClassifyMessageStream; its work stops there.
    #[arg(long, env = "REBOUND_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Unary and batch calls in progress across the process; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "REBOUND_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    max_concurrent_requests: usize,
    /// ClassifyStream calls open at once, apart from unary and batch calls; more are refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "REBOUND_MAX_CONCURRENT_STREAMS", default_value_t = 256)]
    max_concurrent_streams: usize,
    /// A stream that neither sends a request nor reads an answer for this long ends with
    /// DEADLINE_EXCEEDED.
    #[arg(long, env = "REBOUND_STREAM_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    stream_idle_timeout: Duration,
    /// Most templates of weakly decided replies (evidence reply_code, enhanced_code or none) kept
    /// for RuleAdmin.ListUnmatched; 0 turns the tally off.
    #[arg(long, env = "REBOUND_UNMATCHED_CAPACITY", default_value_t = 10_000)]
    unmatched_capacity: usize,
    /// Keep the latest reply (at most 1 KiB, its addresses masked) of each unmatched template,
    /// listed as its example. Off by default: a reply may still hold personal data in its wording.
    #[arg(long, env = "REBOUND_UNMATCHED_EXAMPLES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    unmatched_examples: bool,
    /// Answers buffered per stream before the server waits for the client to read.
    #[arg(long, env = "REBOUND_STREAM_BUFFER", default_value_t = 64)]
    stream_buffer: usize,
    /// Bytes of answers buffered per stream before the server waits for the client to read.
    #[arg(long, env = "REBOUND_STREAM_BUFFER_BYTES", default_value_t = 64 * 1024)]
    stream_buffer_bytes: usize,
    /// HTTP/2 keepalive ping interval.
    #[arg(long, env = "REBOUND_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered.
    #[arg(long, env = "REBOUND_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    keepalive_timeout: Duration,
    /// Connections are closed after this long so that load balancers can rebalance.
    #[arg(long, env = "REBOUND_MAX_CONNECTION_AGE", default_value = "30m", value_parser = parse_duration)]
    max_connection_age: Duration,
    /// A connection that has not sent its handshake (HTTP/2 preface, TLS handshake, a metrics
    /// request's first line) within this long is closed.
    #[arg(long, env = "REBOUND_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Grace for calls in flight when a connection reaches its age.
    #[arg(long, env = "REBOUND_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = parse_duration)]
    max_connection_age_grace: Duration,
    /// After SIGTERM: report NOT_SERVING and keep serving for this long.
    #[arg(long, env = "REBOUND_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    shutdown_delay: Duration,
    /// Then: end open streams (UNAVAILABLE) and give calls this long to finish.
    #[arg(long, env = "REBOUND_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,
}

/// How long the process waits, once the server has drained, for work still running on the
/// blocking pool.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// `250ms`, `10s`, `30m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 250ms, 10s, 30m, 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?}: unit must be ms, s, m or h")),
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // rustls panics at the first handshake if two crypto providers are linked and none is chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let origin = args.rules.clone().map_or(RuleOrigin::Embedded, RuleOrigin::Dir);
    let unmatched = UnmatchedOptions {
        capacity: args.unmatched_capacity,
        examples: args.unmatched_examples,
    };
    let state = match RuleState::load_with(origin.clone(), unmatched) {
        Ok(state) => Arc::new(state),
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            anyhow::bail!("the rules in {} are invalid; not starting", origin.describe());
        }
    };
    let config = ServerConfig {
        listen: args.listen,
        admin_listen: args.admin_listen,
        tls: args.tls_cert.zip(args.tls_key).map(|(cert, key)| TlsFiles {
            cert,
            key,
            client_ca: args.tls_client_ca,
        }),
        limits: Limits {
            max_text_bytes: args.max_text_bytes,
            max_id_bytes: args.max_id_bytes,
            max_recipient_bytes: args.max_recipient_bytes,
            max_remote_host_bytes: args.max_remote_host_bytes,
            max_batch_items: args.max_batch_items,
            max_batch_explanations: args.max_batch_explanations,
            request_timeout: args.request_timeout,
            max_concurrent_requests: args.max_concurrent_requests,
            max_concurrent_streams: args.max_concurrent_streams,
            stream_idle_timeout: args.stream_idle_timeout,
            stream_buffer: args.stream_buffer,
            stream_buffer_bytes: args.stream_buffer_bytes,
            max_email_bytes: args.max_email_bytes,
            max_mime_depth: args.max_mime_depth,
            max_mime_parts: args.max_mime_parts,
            max_returned_headers: args.max_returned_headers,
            max_header_name_bytes: args.max_header_name_bytes,
            max_verp_bytes: args.max_verp_bytes,
        },
        max_message_bytes: args.max_message_bytes,
        http2_keepalive_interval: args.keepalive_interval,
        http2_keepalive_timeout: args.keepalive_timeout,
        max_connection_age: args.max_connection_age,
        handshake_timeout: args.handshake_timeout,
        max_connection_age_grace: args.max_connection_age_grace,
        shutdown_delay: args.shutdown_delay,
        drain_timeout: args.drain_timeout,
        reload: ReloadOptions {
            watch: args.watch,
            poll_interval: args.poll_interval,
            timeout: args.reload_timeout,
            ..ReloadOptions::default()
        },
        baseline: false,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let served = runtime.block_on(async {
        if !args.metrics_listen.eq_ignore_ascii_case("off") {
            let addr: SocketAddr = args
                .metrics_listen
                .parse()
                .with_context(|| format!("--metrics-listen {:?}", args.metrics_listen))?;
            let addr = rebound::server::metrics::install(addr, args.metrics_rule_label, args.handshake_timeout)?;
            tracing::info!(%addr, "metrics on /metrics");
        }
        let server = BoundServer::bind(config, state)?;
        server.serve(termination_signal()).await
    });
    // Dropping the runtime would wait for every thread of its blocking pool, a stuck rule reload
    // included; work there stops at its next check once its call is dropped, but one
    // classification in progress is not interrupted. The drain has had its time: give that a
    // moment, then exit regardless.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct HealthArgs {
    /// The server: host:port or a URL.
    #[arg(long, env = "REBOUND_HEALTH_ADDR", default_value = "127.0.0.1:50051")]
    addr: String,
    /// The service to ask about (the server as a whole when empty).
    #[arg(long, env = "REBOUND_HEALTH_SERVICE", default_value = "")]
    service: String,
    /// CA certificate (PEM) to trust; turns TLS on.
    #[arg(long, env = "REBOUND_HEALTH_CA")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require mTLS.
    #[arg(long, env = "REBOUND_HEALTH_CERT", requires = "key")]
    cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, env = "REBOUND_HEALTH_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// Name to verify in the server's certificate.
    #[arg(long, env = "REBOUND_HEALTH_DOMAIN")]
    domain: Option<String>,
    /// Give up after this long.
    #[arg(long, env = "REBOUND_HEALTH_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

pub fn health(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let target = HealthTarget {
        addr: args.addr,
        service: args.service,
        ca: args.ca,
        client_cert: args.cert.zip(args.key),
        domain: args.domain,
        timeout: args.timeout,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let status = runtime.block_on(check(&target))?;
    writeln!(out, "{}", status.as_str_name())?;
    Ok(
        if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

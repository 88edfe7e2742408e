//! Prometheus metrics: names, buckets, and `/metrics` on its own port.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use prost::bytes::Bytes;
use rebound_engine::{Evidence, Outcome, RuleSet};
use tokio_stream::StreamExt as _;

use super::listener::{self, HTTP1_REQUEST_LINE_BYTES, Incoming};
use super::state::ReloadResult;

/// Latency buckets in seconds: from a few µs (one classification) to a second (a large batch).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Whether `rebound_classifications_total` carries a `rule` label; set by [`install`].
static RULE_LABEL: AtomicBool = AtomicBool::new(true);

/// How often histograms are drained and idle series dropped: what the exporter's own listener did.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Serves `/metrics` (Prometheus text) on `addr`, and `/health` (`OK`); returns the address
/// bound. Call once per process, inside the runtime. Without `rule_label`, classifications are
/// counted by category alone: one series per category instead of one per rule that fired, for
/// rule sets of many thousands of rules. A connection must send its request line within
/// `handshake_timeout` and its headers within it too.
///
/// Served here rather than by the exporter's listener, which retried a failed accept at once,
/// with a warning each time: a million lines in six seconds when descriptors ran out.
pub fn install(addr: SocketAddr, rule_label: bool, handshake_timeout: Duration) -> anyhow::Result<SocketAddr> {
    RULE_LABEL.store(rule_label, Ordering::Relaxed);
    let incoming = listener::bind(addr).map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    let bound = incoming.local_addr()?;
    let handle = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)?
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("cannot record metrics: {e}"))?;
    describe();
    // Published from the start, at 0, rather than from the first template.
    unmatched_templates_changed(0.0);
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            upkeep.run_upkeep();
        }
    });
    let incoming = Incoming::new(incoming, "metrics", handshake_timeout, HTTP1_REQUEST_LINE_BYTES);
    tokio::spawn(serve(incoming, handle, handshake_timeout));
    Ok(bound)
}

/// One request per connection (no keep-alive): a scrape every few seconds gains nothing from
/// reuse, and an idle connection is not kept for whoever opened it.
async fn serve(mut incoming: Incoming, handle: PrometheusHandle, handshake_timeout: Duration) {
    while let Some(Ok(connection)) = incoming.next().await {
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| respond(handle.clone(), request));
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(connection), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "metrics connection failed");
            }
        });
    }
}

async fn respond<B>(handle: PrometheusHandle, request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (body, content_type) = if request.uri().path() == "/health" {
        (Ok("OK".to_string()), "text/plain")
    } else {
        // Rendering walks every series: off the async workers.
        (
            tokio::task::spawn_blocking(move || handle.render()).await,
            "text/plain; version=0.0.4",
        )
    };
    let mut response = match body {
        Ok(body) => Response::new(Full::new(Bytes::from(body))),
        Err(_) => {
            let mut failed = Response::new(Full::new(Bytes::from_static(b"cannot render the metrics")));
            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            failed
        }
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn describe() {
    metrics::describe_counter!("rebound_requests_total", "gRPC requests by method and status code");
    metrics::describe_histogram!(
        "rebound_request_duration_seconds",
        metrics::Unit::Seconds,
        "gRPC request latency by method"
    );
    metrics::describe_counter!(
        "rebound_classifications_total",
        "Classified replies by category, rule and evidence (text, provider, enhanced_code, reply_code, none)"
    );
    metrics::describe_gauge!(
        "rebound_unmatched_templates",
        "Templates of weakly decided replies held by the unmatched-reply tally (RuleAdmin.ListUnmatched)"
    );
    metrics::describe_counter!(
        "rebound_messages_total",
        "Bounce emails read (ClassifyMessage, ClassifyMessageStream) by kind: bounce, auto_reply, feedback, challenge, not_bounce; their recipients are counted in rebound_classifications_total"
    );
    metrics::describe_counter!(
        "rebound_message_errors_total",
        "Bounce emails not answered, by reason: too_large, too_deep, too_many_parts, empty, not_a_message, invalid_request, malformed_request, answer_too_large, deadline_exceeded, ..."
    );
    metrics::describe_counter!(
        "rebound_script_errors_total",
        "rhai hook calls that failed at run time (counted as no match)"
    );
    metrics::describe_gauge!("rebound_rules", "Rules in the active rule set");
    metrics::describe_gauge!("rebound_categories", "Categories in the active rule set");
    metrics::describe_gauge!("rebound_rules_generation", "Generation of the active rule set");
    metrics::describe_gauge!("rebound_open_streams", "ClassifyStream calls in progress");
    metrics::describe_gauge!(
        "rebound_rules_last_reload_successful",
        "1 if the last rule load attempt succeeded (or found nothing to change)"
    );
    metrics::describe_gauge!(
        "rebound_rules_last_reload_success_timestamp_seconds",
        metrics::Unit::Seconds,
        "When the rules were last loaded or confirmed unchanged, Unix time"
    );
    metrics::describe_counter!(
        "rebound_rules_reloads_total",
        "Rule load attempts by result: success, unchanged, failure"
    );
}

/// One finished request.
pub fn request(method: &'static str, code: tonic::Code, elapsed: Duration) {
    let code = format!("{code:?}");
    metrics::counter!("rebound_requests_total", "method" => method, "code" => code).increment(1);
    metrics::histogram!("rebound_request_duration_seconds", "method" => method).record(elapsed.as_secs_f64());
}

/// Counter handles by rule id (by category without the rule label), each with the category it
/// was made for. Hashed with foldhash: the keys are the rule set's own ids, and std's SipHash
/// took 235 instructions per classification.
type ClassificationHandles = HashMap<Box<str>, (Box<str>, metrics::Counter), foldhash::fast::RandomState>;

thread_local! {
    /// `rebound_classifications_total` handles by evidence, then by rule id (with the category
    /// they were made for): a classification then neither builds label strings nor looks them
    /// up in the registry. Per thread, so the hot path takes no lock; a handle is a reference to
    /// the shared counter. By evidence first: one category (and, across reloads, one rule id) is
    /// decided on several kinds of evidence.
    static CLASSIFICATIONS: RefCell<[ClassificationHandles; Evidence::ALL.len()]> =
        RefCell::new(Default::default());
}

/// Where `evidence`'s handles are kept.
fn evidence_slot(evidence: Evidence) -> usize {
    Evidence::ALL.iter().position(|&e| e == evidence).unwrap_or(0)
}

/// One classified reply.
pub fn classification(outcome: &Outcome<'_>) {
    let (rule, category) = (outcome.rule_id(), outcome.category.id.as_str());
    let evidence = outcome.evidence;
    let by_rule = RULE_LABEL.load(Ordering::Relaxed);
    let key = if by_rule { rule } else { category };
    CLASSIFICATIONS.with_borrow_mut(|slots| {
        let handles = &mut slots[evidence_slot(evidence)];
        match handles.get(key) {
            // A reload may move a rule id to another category: then it needs its own series.
            Some((made_for, counter)) if **made_for == *category => counter.increment(1),
            _ => {
                let counter = if by_rule {
                    metrics::counter!(
                        "rebound_classifications_total",
                        "category" => category.to_string(),
                        "rule" => rule.to_string(),
                        "evidence" => evidence.as_str()
                    )
                } else {
                    metrics::counter!(
                        "rebound_classifications_total",
                        "category" => category.to_string(),
                        "evidence" => evidence.as_str()
                    )
                };
                counter.increment(1);
                handles.insert(key.into(), (category.into(), counter));
            }
        }
    });
    if outcome.script_errors > 0 {
        metrics::counter!("rebound_script_errors_total").increment(u64::from(outcome.script_errors));
    }
}

/// One bounce email read, of `kind`.
pub fn message(kind: &'static str) {
    metrics::counter!("rebound_messages_total", "kind" => kind).increment(1);
}

/// One bounce email not answered, for `reason`.
pub fn message_error(reason: &'static str) {
    metrics::counter!("rebound_message_errors_total", "reason" => reason).increment(1);
}

/// The active rule set's size and version.
pub fn rule_set(rules: &RuleSet) {
    metrics::gauge!("rebound_rules").set(rules.rules().len() as f64);
    metrics::gauge!("rebound_categories").set(rules.categories().len() as f64);
    metrics::gauge!("rebound_rules_generation").set(rules.generation() as f64);
}

/// Templates held by the unmatched-reply tally went up or down by `delta`. Changed by the
/// difference, not set: shards change it without a common lock, and additions commute.
pub fn unmatched_templates_changed(delta: f64) {
    metrics::gauge!("rebound_unmatched_templates").increment(delta);
}

/// A stream opened (+1) or closed (-1).
pub fn open_streams(delta: f64) {
    metrics::gauge!("rebound_open_streams").increment(delta);
}

/// One rule load attempt (the start-up load included).
pub fn reload(result: ReloadResult, at_unix_ms: i64) {
    let label = match result {
        ReloadResult::Changed => "success",
        ReloadResult::Unchanged => "unchanged",
        ReloadResult::Failed => "failure",
    };
    metrics::counter!("rebound_rules_reloads_total", "result" => label).increment(1);
    let ok = result != ReloadResult::Failed;
    metrics::gauge!("rebound_rules_last_reload_successful").set(if ok { 1.0 } else { 0.0 });
    if ok {
        metrics::gauge!("rebound_rules_last_reload_success_timestamp_seconds").set(at_unix_ms as f64 / 1000.0);
    }
}

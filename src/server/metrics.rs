//! Prometheus metrics: names, buckets, and the exporter on its own port.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use rebound_engine::{Outcome, RuleSet};

use super::state::ReloadResult;

/// Latency buckets in seconds: from a few µs (one classification) to a second (a large batch).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Whether `rebound_classifications_total` carries a `rule` label; set by [`install`].
static RULE_LABEL: AtomicBool = AtomicBool::new(true);

/// Serves `/metrics` (Prometheus text) on `addr`. Call once per process, inside the runtime.
/// Without `rule_label`, classifications are counted by category alone: one series per category
/// instead of one per rule that fired, for rule sets of many thousands of rules.
pub fn install(addr: SocketAddr, rule_label: bool) -> anyhow::Result<()> {
    RULE_LABEL.store(rule_label, Ordering::Relaxed);
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(LATENCY_BUCKETS)?
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    describe();
    Ok(())
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
        "Classified replies by category and rule"
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
    /// `rebound_classifications_total` handles by rule id (with the category they were made for):
    /// a classification then neither builds label strings nor looks them up in the registry.
    /// Per thread, so the hot path takes no lock; a handle is a reference to the shared counter.
    static CLASSIFICATIONS: RefCell<ClassificationHandles> = RefCell::new(HashMap::default());
}

/// One classified reply.
pub fn classification(outcome: &Outcome<'_>) {
    let (rule, category) = (outcome.rule_id(), outcome.category.id.as_str());
    let by_rule = RULE_LABEL.load(Ordering::Relaxed);
    let key = if by_rule { rule } else { category };
    CLASSIFICATIONS.with_borrow_mut(|handles| match handles.get(key) {
        // A reload may move a rule id to another category: then it needs its own series.
        Some((made_for, counter)) if **made_for == *category => counter.increment(1),
        _ => {
            let counter = if by_rule {
                metrics::counter!(
                    "rebound_classifications_total",
                    "category" => category.to_string(),
                    "rule" => rule.to_string()
                )
            } else {
                metrics::counter!("rebound_classifications_total", "category" => category.to_string())
            };
            counter.increment(1);
            handles.insert(key.into(), (category.into(), counter));
        }
    });
    if outcome.script_errors > 0 {
        metrics::counter!("rebound_script_errors_total").increment(u64::from(outcome.script_errors));
    }
}

/// The active rule set's size and version.
pub fn rule_set(rules: &RuleSet) {
    metrics::gauge!("rebound_rules").set(rules.rules().len() as f64);
    metrics::gauge!("rebound_categories").set(rules.categories().len() as f64);
    metrics::gauge!("rebound_rules_generation").set(rules.generation() as f64);
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

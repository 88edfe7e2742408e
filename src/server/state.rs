//! The active rule set behind one atomic pointer, and the record of load attempts.
//!
//! Readers take a snapshot (`current`) once per request, batch or stream item and keep it for
//! that work, so a reload never changes the rules under a request. A reload builds and verifies
//! the new set off the request path and swaps it in with one store.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rebound_engine::{RuleErrors, RuleSet, RuleSource};

/// Where the rules come from.
#[derive(Debug, Clone)]
pub enum RuleOrigin {
    /// Compiled into the binary.
    Embedded,
    /// A directory, reloaded on request.
    Dir(PathBuf),
}

impl RuleOrigin {
    /// `embedded` or the directory.
    pub fn describe(&self) -> String {
        match self {
            RuleOrigin::Embedded => "embedded".to_string(),
            RuleOrigin::Dir(dir) => dir.display().to_string(),
        }
    }

    fn read(&self) -> Result<RuleSource, RuleErrors> {
        match self {
            RuleOrigin::Embedded => Ok(crate::rules::embedded()),
            RuleOrigin::Dir(dir) => RuleSource::from_dir(dir),
        }
    }
}

/// One attempt to load rules.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When, Unix milliseconds.
    pub at_unix_ms: i64,
    /// Loaded (or unchanged).
    pub success: bool,
    /// What asked for it.
    pub trigger: String,
    /// The errors, one per line.
    pub error: String,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// A new version is active.
    Changed,
    /// Same digest as the active set: nothing to do.
    Unchanged,
    /// The new rules are invalid; the active set keeps serving.
    Failed,
}

struct Record {
    loaded_at_unix_ms: i64,
    last_attempt: Attempt,
    /// The digest of the last source that failed, so the periodic check does not retry and
    /// re-log the same broken files every interval.
    last_failed_digest: Option<String>,
}

/// The rule set every request reads.
pub struct RuleState {
    current: ArcSwap<RuleSet>,
    origin: RuleOrigin,
    record: Mutex<Record>,
    /// One reload at a time; readers never wait on it.
    reloading: Mutex<()>,
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl RuleState {
    /// Loads and verifies the rules; at start-up an invalid rule set is an error, not a fallback.
    pub fn load(origin: RuleOrigin) -> Result<RuleState, RuleErrors> {
        let rules = RuleSet::load(&origin.read()?)?;
        let now = now_unix_ms();
        let attempt = Attempt {
            at_unix_ms: now,
            success: true,
            trigger: "startup".into(),
            error: String::new(),
        };
        Ok(RuleState {
            current: ArcSwap::from_pointee(rules),
            origin,
            record: Mutex::new(Record {
                loaded_at_unix_ms: now,
                last_attempt: attempt,
                last_failed_digest: None,
            }),
            reloading: Mutex::new(()),
        })
    }

    /// The active rule set; keep it for the whole request.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// Where the rules come from.
    pub fn origin(&self) -> &RuleOrigin {
        &self.origin
    }

    /// When the active set was loaded (Unix ms) and the last attempt.
    pub fn record(&self) -> (i64, Attempt) {
        let r = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        (r.loaded_at_unix_ms, r.last_attempt.clone())
    }

    /// Reads, verifies and swaps in the rules. Blocking: call it off the async workers.
    pub fn reload(&self, trigger: &str) -> ReloadResult {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(PoisonError::into_inner);
        let started = std::time::Instant::now();
        let active = self.current();
        let source = match self.origin.read() {
            Ok(source) => source,
            Err(errors) => return self.record_failure(trigger, &active, None, &errors),
        };
        let digest = source.digest();
        if digest == active.digest() {
            self.record_attempt(trigger, ReloadResult::Unchanged, String::new(), None);
            return ReloadResult::Unchanged;
        }
        let same_failure = self
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_failed_digest
            .as_deref()
            == Some(&digest);
        if same_failure && trigger == "poll" {
            return ReloadResult::Failed;
        }
        match RuleSet::load(&source) {
            Ok(rules) => {
                let rules = rules.with_generation(active.generation() + 1);
                tracing::info!(
                    trigger,
                    generation = rules.generation(),
                    digest = rules.digest(),
                    rules = rules.rules().len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "rule set loaded"
                );
                super::metrics::rule_set(&rules);
                self.current.store(Arc::new(rules));
                self.record_attempt(trigger, ReloadResult::Changed, String::new(), None);
                ReloadResult::Changed
            }
            Err(errors) => self.record_failure(trigger, &active, Some(digest), &errors),
        }
    }

    fn record_failure(
        &self,
        trigger: &str,
        active: &RuleSet,
        digest: Option<String>,
        errors: &RuleErrors,
    ) -> ReloadResult {
        tracing::error!(trigger, keeping = active.generation(), errors = %errors, "rule reload failed; the active rules keep serving");
        self.record_attempt(trigger, ReloadResult::Failed, errors.to_string(), digest);
        ReloadResult::Failed
    }

    fn record_attempt(&self, trigger: &str, result: ReloadResult, error: String, failed_digest: Option<String>) {
        let now = now_unix_ms();
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        if result == ReloadResult::Changed {
            record.loaded_at_unix_ms = now;
        }
        record.last_failed_digest = failed_digest;
        let success = result != ReloadResult::Failed;
        record.last_attempt = Attempt {
            at_unix_ms: now,
            success,
            trigger: trigger.into(),
            error,
        };
        super::metrics::reload(result, now);
    }
}

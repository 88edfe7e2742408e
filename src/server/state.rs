//! The active rule set behind one atomic pointer, and the record of load attempts.
//!
//! Readers take a snapshot (`current`) once per request, batch or stream item and keep it for
//! that work, so a reload never changes the rules under a request. A reload builds and verifies
//! the new set off the request path and swaps it in with one store.
//!
//! A reload runs on a blocking thread and its waiter gives up after a time limit: a read that
//! hangs (a network file system, say) cannot be cancelled, but it must not hang the caller,
//! later reloads or shutdown. Such a reload goes on alone and records its own result when it ends.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rebound_engine::{RuleErrors, RuleSet, RuleSource};

use super::unmatched::{UnmatchedOptions, UnmatchedTally};

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
    /// The reload running now: what asked for it, and when it started (Unix ms).
    running: Option<(String, i64)>,
}

impl Record {
    fn attempt(&mut self, trigger: &str, result: ReloadResult, error: String, failed_digest: Option<String>) {
        let now = now_unix_ms();
        if result == ReloadResult::Changed {
            self.loaded_at_unix_ms = now;
        }
        self.last_failed_digest = failed_digest;
        self.last_attempt = Attempt {
            at_unix_ms: now,
            success: result != ReloadResult::Failed,
            trigger: trigger.into(),
            error,
        };
        super::metrics::reload(result, now);
    }
}

/// The rule set every request reads.
pub struct RuleState {
    current: ArcSwap<RuleSet>,
    origin: RuleOrigin,
    record: Mutex<Record>,
    /// One reload at a time; readers never wait on it. Async, so that a trigger waits for a
    /// running reload with a time limit instead of parking a blocking thread behind it.
    reload_slot: Arc<tokio::sync::Mutex<()>>,
    /// Weakly decided replies by template; it outlives reloads (see [`UnmatchedTally::retain_weak`]).
    unmatched: Arc<UnmatchedTally>,
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl RuleState {
    /// Loads and verifies the rules, with the default unmatched-reply tally.
    pub fn load(origin: RuleOrigin) -> Result<RuleState, RuleErrors> {
        RuleState::load_with(origin, UnmatchedOptions::default())
    }

    /// Loads and verifies the rules; at start-up an invalid rule set is an error, not a fallback.
    pub fn load_with(origin: RuleOrigin, unmatched: UnmatchedOptions) -> Result<RuleState, RuleErrors> {
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
                running: None,
            }),
            reload_slot: Arc::new(tokio::sync::Mutex::new(())),
            unmatched: Arc::new(UnmatchedTally::new(unmatched)),
        })
    }

    /// The tally of weakly decided replies.
    pub fn unmatched(&self) -> &Arc<UnmatchedTally> {
        &self.unmatched
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
        let r = self.lock_record();
        (r.loaded_at_unix_ms, r.last_attempt.clone())
    }

    fn lock_record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads, verifies and swaps in the rules on a blocking thread, waiting at most `limit` in
    /// all: for an earlier reload to end, then for this one. Past it, the attempt is recorded as
    /// failed (not started, or still running) and the active rules keep serving.
    pub async fn reload(self: &Arc<Self>, trigger: &'static str, limit: Duration) -> ReloadResult {
        let state = Arc::clone(self);
        self.reload_with(trigger, limit, move || state.reload_blocking(trigger))
            .await
    }

    /// [`RuleState::reload`] with the blocking work given, so that tests can hold it.
    async fn reload_with(
        self: &Arc<Self>,
        trigger: &'static str,
        limit: Duration,
        work: impl FnOnce() -> ReloadResult + Send + 'static,
    ) -> ReloadResult {
        let deadline = tokio::time::Instant::now() + limit;
        let Ok(slot) = tokio::time::timeout_at(deadline, Arc::clone(&self.reload_slot).lock_owned()).await else {
            let running = match &self.lock_record().running {
                Some((by, at)) => format!("the reload asked for by {by} {} s ago", (now_unix_ms() - at) / 1000),
                None => "an earlier reload".to_string(),
            };
            return self.record_unfinished(
                trigger,
                format!("not started: {running} is still running after {limit:?}"),
            );
        };
        let started = now_unix_ms();
        self.lock_record().running = Some((trigger.to_string(), started));
        let mut worker = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = slot;
            work()
        });
        match tokio::time::timeout_at(deadline, &mut worker).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => {
                self.lock_record().running = None;
                self.record_unfinished(trigger, format!("the reload failed: {e}"))
            }
            Err(_) => {
                let still_running = self
                    .lock_record()
                    .running
                    .as_ref()
                    .is_some_and(|(_, at)| *at == started);
                if !still_running {
                    // It ended as the time ran out and recorded its result.
                    return worker.await.unwrap_or(ReloadResult::Failed);
                }
                self.record_unfinished(
                    trigger,
                    format!(
                        "did not finish within {limit:?} and is still running (reading or verifying the rules); \
                         it records its own result when it ends"
                    ),
                )
            }
        }
    }

    /// Records a reload that could not start or finish in time; the reload running, if any,
    /// stays marked as running.
    fn record_unfinished(&self, trigger: &str, error: String) -> ReloadResult {
        tracing::error!(
            trigger,
            error,
            keeping = self.current().generation(),
            "rule reload failed; the active rules keep serving"
        );
        self.lock_record().attempt(trigger, ReloadResult::Failed, error, None);
        ReloadResult::Failed
    }

    /// Reads, verifies and swaps in the rules; blocking. Call only while holding the reload slot.
    fn reload_blocking(&self, trigger: &str) -> ReloadResult {
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
        let mut record = self.lock_record();
        if record.last_failed_digest.as_deref() == Some(&digest) && trigger == "poll" {
            record.running = None;
            return ReloadResult::Failed;
        }
        drop(record);
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
                let rules = Arc::new(rules);
                self.current.store(Arc::clone(&rules));
                // Replies seen from now on are decided by the new rules; those already tallied
                // that the new rules decide on their wording are answered now.
                self.unmatched.retain_weak(&rules);
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

    /// Records the end of the running reload: its result, and that none runs now (one lock, so a
    /// waiter whose time ran out sees either both or neither).
    fn record_attempt(&self, trigger: &str, result: ReloadResult, error: String, failed_digest: Option<String>) {
        let mut record = self.lock_record();
        record.attempt(trigger, result, error, failed_digest);
        record.running = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_reload_past_its_time_is_reported_and_later_ones_wait_their_turn() {
        let state = Arc::new(RuleState::load(RuleOrigin::Embedded).unwrap());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let worker = Arc::clone(&state);
        let stuck = move || {
            let _ = released.recv();
            worker.reload_blocking("admin")
        };
        let limit = Duration::from_millis(50);

        assert_eq!(state.reload_with("admin", limit, stuck).await, ReloadResult::Failed);
        let (_, attempt) = state.record();
        assert!(!attempt.success);
        assert!(
            attempt.error.starts_with("did not finish within 50ms"),
            "{}",
            attempt.error
        );

        // While it runs, another reload does not start and says why.
        assert_eq!(state.reload("poll", limit).await, ReloadResult::Failed);
        let (_, attempt) = state.record();
        assert_eq!(attempt.trigger, "poll");
        assert!(
            attempt.error.starts_with("not started: the reload asked for by admin ")
                && attempt.error.contains(" s ago is still running after 50ms"),
            "{}",
            attempt.error
        );

        // Once it ends, it records its own result and frees the slot.
        release.send(()).unwrap();
        let generous = Duration::from_secs(10);
        assert_eq!(state.reload("admin", generous).await, ReloadResult::Unchanged);
        let (_, attempt) = state.record();
        assert!(attempt.success && attempt.error.is_empty(), "{attempt:?}");
        assert!(state.lock_record().running.is_none());
    }
}

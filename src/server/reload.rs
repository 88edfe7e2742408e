//! The one reload task: file-system events (debounced), SIGHUP and a periodic digest check all
//! send triggers to it; bursts coalesce into one reload, built and verified off the request path.
//!
//! The directory itself is watched, recursively, never single files: a Kubernetes ConfigMap
//! update swaps a `..data` symlink and an editor renames a temporary file over the original, and
//! a watch on the file goes silent after either. No event is filtered by name, because a
//! ConfigMap swap never names the rule files. The periodic check re-establishes the watch (the
//! directory may have been replaced) and reloads whatever events were missed.
//!
//! Each reload is bounded by [`ReloadOptions::timeout`], and shutdown never waits for one. With
//! embedded rules there is nothing to follow, but SIGHUP is still caught (and ignored): its
//! default action would end the server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::state::{RuleOrigin, RuleState};

/// How the rule directory is followed.
#[derive(Debug, Clone, Copy)]
pub struct ReloadOptions {
    /// Watch the directory for changes.
    pub watch: bool,
    /// How long a burst of events is gathered before one reload.
    pub debounce: Duration,
    /// Digest check as a safety net; zero disables it.
    pub poll_interval: Duration,
    /// How long a reload (the wait for an earlier one included) may take before it is reported
    /// as failed; it goes on alone and the active rules keep serving.
    pub timeout: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            watch: true,
            debounce: Duration::from_millis(200),
            poll_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

type Watcher = Debouncer<RecommendedWatcher, RecommendedCache>;

/// Starts the reload task for a rule directory (nothing to follow for embedded rules, where
/// SIGHUP is only logged).
pub fn spawn(state: Arc<RuleState>, options: ReloadOptions, stop: CancellationToken) -> Option<JoinHandle<()>> {
    let RuleOrigin::Dir(dir) = state.origin().clone() else {
        spawn_signal_trigger(None, stop);
        return None;
    };
    let (tx, rx) = mpsc::channel::<&'static str>(16);
    let watcher = if options.watch {
        watch(&dir, options.debounce, tx.clone())
    } else {
        None
    };
    spawn_signal_trigger(Some(tx.clone()), stop.clone());
    Some(tokio::spawn(run(state, dir, options, watcher, tx, rx, stop)))
}

fn watch(dir: &Path, debounce: Duration, tx: mpsc::Sender<&'static str>) -> Option<Watcher> {
    let callback = move |result: DebounceEventResult| match result {
        // Reading the rules ourselves makes access events; they change nothing.
        Ok(events) if events.iter().any(|e| !e.kind.is_access()) => {
            let _ = tx.try_send("watch");
        }
        Ok(_) => {}
        Err(errors) => tracing::warn!(?errors, "file watch errors; the periodic check still reloads"),
    };
    let mut debouncer = match new_debouncer(debounce, None, callback) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the rule directory; relying on the periodic check and SIGHUP");
            return None;
        }
    };
    rewatch(&mut debouncer, dir);
    Some(debouncer)
}

/// (Re-)adds the watch; the directory may be new since the last time.
fn rewatch(debouncer: &mut Watcher, dir: &Path) {
    let _ = debouncer.unwatch(dir);
    if let Err(e) = debouncer.watch(dir, RecursiveMode::Recursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the rule directory; will retry");
    }
}

/// SIGHUP asks for a reload; without a rule directory (`tx` is `None`) it is logged and ignored.
#[cfg(unix)]
fn spawn_signal_trigger(tx: Option<mpsc::Sender<&'static str>>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                got = hangup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    match &tx {
                        Some(tx) => {
                            tracing::info!("SIGHUP received: reloading the rules");
                            let _ = tx.try_send("signal");
                        }
                        None => tracing::info!("SIGHUP received: the rules are the embedded set, nothing to reload"),
                    }
                }
            }
        }
    });
}

#[cfg(not(unix))]
fn spawn_signal_trigger(_: Option<mpsc::Sender<&'static str>>, _: CancellationToken) {}

async fn run(
    state: Arc<RuleState>,
    dir: PathBuf,
    options: ReloadOptions,
    mut watcher: Option<Watcher>,
    tx: mpsc::Sender<&'static str>,
    mut rx: mpsc::Receiver<&'static str>,
    stop: CancellationToken,
) {
    let poll = (!options.poll_interval.is_zero()).then(|| {
        let tx = tx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(options.poll_interval);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => { let _ = tx.try_send("poll"); }
                }
            }
        })
    });
    drop(tx);
    loop {
        let trigger = tokio::select! {
            _ = stop.cancelled() => break,
            trigger = rx.recv() => match trigger { Some(t) => t, None => break },
        };
        // Whatever else arrived meanwhile is served by this one reload.
        while rx.try_recv().is_ok() {}
        if trigger == "poll"
            && let Some(w) = watcher.as_mut()
        {
            rewatch(w, &dir);
        }
        tokio::select! {
            // Shutdown does not wait for a reload; one on its blocking thread ends with the process.
            _ = stop.cancelled() => break,
            _ = state.reload(trigger, options.timeout) => {}
        }
    }
    if let Some(p) = poll {
        p.abort();
    }
}

//! The server's tally of weakly decided replies by template (`RuleAdmin.ListUnmatched`): what
//! operators should write rules for, in memory bounded by `--unmatched-capacity`.
//!
//! Sharded by template hash: each shard is a Space-Saving [`Unmatched`] behind its own mutex, so
//! concurrent calls rarely wait on one another, and templating happens before any lock is taken.
//! A template lives in exactly one shard, so the shards' summaries merge by concatenation: each
//! entry keeps its own count and error bound.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rebound_engine::{
    Outcome, Reply, RuleSet, Sighting, Unmatched, UnmatchedEntry, mask_addresses, prefix_within, reply_template,
};

/// How the tally is set up; both are flags of `rebound serve`.
#[derive(Debug, Clone, Copy)]
pub struct UnmatchedOptions {
    /// Most templates held in all; 0 turns the tally off.
    pub capacity: usize,
    /// Keep the latest reply of each template as its example, with its addresses masked and cut
    /// at [`EXAMPLE_BYTES`]. Off by default: a reply may hold other personal data (names in its
    /// wording, recipients' domains). With it, a reload re-classifies that example
    /// instead of the template, which is exact.
    pub examples: bool,
}

impl Default for UnmatchedOptions {
    fn default() -> Self {
        UnmatchedOptions {
            capacity: 10_000,
            examples: false,
        }
    }
}

/// Longest example kept, in bytes (cut on a character boundary).
pub const EXAMPLE_BYTES: usize = 1024;

/// Most shards: enough that the request workers seldom meet on one lock.
const SHARDS: usize = 16;

/// Fewest templates a shard holds. Each shard is a tally of its own, so a small capacity split
/// many ways would push templates out of a full shard while others stand empty.
const MIN_SHARD_CAPACITY: usize = 64;

/// The tally shared by every call.
pub struct UnmatchedTally {
    shards: Box<[Mutex<Unmatched>]>,
    /// Picks a template's shard. foldhash, not SipHash: this hash only spreads templates over
    /// the shards (each shard's map keeps std's SipHash against chosen collisions), and the
    /// tally hashes every weakly decided reply.
    hasher: foldhash::fast::RandomState,
    capacity: usize,
    examples: bool,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// At most [`EXAMPLE_BYTES`] of `text`, never splitting a character.
fn example_of(text: &str) -> &str {
    prefix_within(text, EXAMPLE_BYTES)
}

impl UnmatchedTally {
    /// A tally of at most `options.capacity` templates, split over up to [`SHARDS`] shards of at
    /// least [`MIN_SHARD_CAPACITY`] (one shard below that) whose capacities add up to it exactly.
    pub fn new(options: UnmatchedOptions) -> UnmatchedTally {
        let capacity = options.capacity;
        let shards = (capacity / MIN_SHARD_CAPACITY).clamp(1, SHARDS).min(capacity);
        let shards = (0..shards)
            .map(|at| Mutex::new(Unmatched::new(capacity / shards + usize::from(at < capacity % shards))))
            .collect();
        UnmatchedTally {
            shards,
            hasher: foldhash::fast::RandomState::default(),
            capacity,
            examples: options.examples,
        }
    }

    /// Whether anything is recorded (capacity above 0).
    pub fn is_on(&self) -> bool {
        !self.shards.is_empty()
    }

    /// Most templates held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Templates held now, across the shards.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|shard| Self::lock(shard).len()).sum()
    }

    fn shard(&self, template: &str) -> Option<&Mutex<Unmatched>> {
        let at = usize::try_from(self.hasher.hash_one(template)).unwrap_or(0) % self.shards.len().max(1);
        self.shards.get(at)
    }

    fn lock(shard: &Mutex<Unmatched>) -> MutexGuard<'_, Unmatched> {
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `text`, answered `outcome`, when the answer was weakly decided.
    pub fn record(&self, text: &str, outcome: &Outcome<'_>) {
        if !self.is_on() || !outcome.evidence.is_weak() {
            return;
        }
        let template = reply_template(text);
        let example = self.examples.then(|| mask_addresses(text));
        let sighting = Sighting {
            provider: outcome.provider.map_or("", |p| p.id.as_str()),
            evidence: outcome.evidence,
            category: outcome.category.id.as_str(),
            rule_id: outcome.rule_id(),
            unix_ms: now_unix_ms(),
            example: example.as_deref().map(example_of),
        };
        let Some(shard) = self.shard(&template) else { return };
        let mut tally = Self::lock(shard);
        let before = tally.len();
        tally.record(&template, &sighting);
        let after = tally.len();
        Self::count_change(before, after);
    }

    /// Moves the gauge by one shard's change of size: by the difference, so shards that change
    /// at once add up in any order.
    fn count_change(before: usize, after: usize) {
        if after != before {
            super::metrics::unmatched_templates_changed(after as f64 - before as f64);
        }
    }

    /// The `limit` most seen templates that `keep` accepts, most first.
    pub fn top(&self, limit: usize, mut keep: impl FnMut(&UnmatchedEntry) -> bool) -> Vec<UnmatchedEntry> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(Self::lock(shard).top(limit, &mut keep));
        }
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.template.cmp(&b.template)));
        all.truncate(limit);
        all
    }

    /// Forgets every template; returns how many there were.
    pub fn reset(&self) -> usize {
        let mut forgotten = 0;
        for shard in &self.shards {
            let mut tally = Self::lock(shard);
            let held = tally.reset();
            Self::count_change(held, 0);
            drop(tally);
            forgotten += held;
        }
        forgotten
    }

    /// After a reload: drops the templates that `rules` now decide on their wording or provider.
    /// Each kept entry's example (or, without examples, its template) is classified again, with
    /// no shard lock held, so requests are not kept waiting by the re-classification.
    pub fn retain_weak(&self, rules: &RuleSet) {
        for shard in &self.shards {
            let held = Self::lock(shard).top(usize::MAX, |_| true);
            let strong: std::collections::HashSet<String> = held
                .into_iter()
                .filter(|entry| {
                    let text = entry.example.as_deref().unwrap_or(&entry.template);
                    !rules.classify(&Reply::from_text(text)).evidence.is_weak()
                })
                .map(|entry| entry.template)
                .collect();
            if strong.is_empty() {
                continue;
            }
            let mut tally = Self::lock(shard);
            let before = tally.len();
            tally.retain(|entry| !strong.contains(&entry.template));
            let after = tally.len();
            Self::count_change(before, after);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn shard_capacities_add_up_to_the_capacity() {
        for capacity in [0, 1, 5, 16, 17, 63, 64, 127, 128, 1000, 1023, 10_000] {
            let tally = UnmatchedTally::new(UnmatchedOptions {
                capacity,
                examples: false,
            });
            let sizes: Vec<usize> = tally
                .shards
                .iter()
                .map(|s| UnmatchedTally::lock(s).capacity())
                .collect();
            assert_eq!(sizes.iter().sum::<usize>(), capacity);
            assert!(
                sizes.iter().all(|&size| size >= MIN_SHARD_CAPACITY.min(capacity)),
                "{sizes:?}"
            );
            assert_eq!(tally.is_on(), capacity > 0);
        }
    }

    #[test]
    fn examples_are_cut_on_a_character_boundary() {
        let long = "é".repeat(EXAMPLE_BYTES);
        let cut = example_of(&long);
        assert!(cut.len() <= EXAMPLE_BYTES && cut.len() >= EXAMPLE_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(example_of("short"), "short");
    }
}

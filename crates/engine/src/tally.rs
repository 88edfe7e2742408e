//! A bounded tally of weakly decided replies by template (Space-Saving heavy hitters): the
//! server's and the CLI's report of what to write rules for, in memory fixed by its capacity.
//!
//! Space-Saving (Metwally, Agrawal and El Abbadi, 2005) keeps at most `capacity` templates. A
//! template already held is counted; a new one takes a free slot, or when the tally is full it
//! replaces the template with the smallest count, inheriting that count plus one, the inherited
//! part being its `error_bound`. The guarantee, for a stream of `N` sightings:
//! - while fewer than `capacity` templates were ever seen, every count is exact (`error_bound` 0);
//! - a held template's true count lies in `[count - error_bound, count]`;
//! - every template seen more than `N / capacity` times is held, so the true heavy hitters are
//!   listed; the smallest held count is at most `N / capacity`.
//!
//! Each sighting costs O(log capacity): a hash table of slot numbers finds the template's slot
//! (each template is stored once, in its entry) and a min-heap over the slots (with each slot's
//! heap position) finds the smallest count. Templates and examples are cut at [`TEMPLATE_LIMIT`]
//! bytes, so memory is bounded by the capacity whatever the traffic.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::Evidence;
use crate::pattern::prefix_within;

/// The most bytes of a template or an example kept; longer ones are cut at a character boundary.
pub const TEMPLATE_LIMIT: usize = 2048;

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
    /// The reply as its example (the server masks its addresses), kept only when examples are on.
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
    /// The latest reply of this template, when examples are on.
    pub example: Option<String>,
}

/// The tally: at most `capacity` templates.
#[derive(Debug, Clone)]
pub struct Unmatched {
    capacity: usize,
    /// The held templates, in no order.
    entries: Vec<UnmatchedEntry>,
    /// Template to its index in `entries`.
    slots: HashTable<usize>,
    /// Hashes templates for `slots`: SipHash with a random key, as the templates are strangers'.
    hasher: RandomState,
    /// Indexes into `entries`, a binary min-heap on `count`.
    heap: Vec<usize>,
    /// For each index into `entries`, its position in `heap`.
    heap_pos: Vec<usize>,
    /// The largest count a template gave up its slot with. A template that takes a free slot
    /// (free again after `retain`) may be one of those, so it starts from here, with that much
    /// as its error bound; 0 until the tally has been full.
    evicted_max: u64,
}

impl Unmatched {
    /// An empty tally holding at most `capacity` templates.
    pub fn new(capacity: usize) -> Unmatched {
        Unmatched {
            capacity,
            entries: Vec::new(),
            slots: HashTable::new(),
            hasher: RandomState::new(),
            heap: Vec::new(),
            heap_pos: Vec::new(),
            evicted_max: 0,
        }
    }

    /// Counts one sighting of `template`.
    pub fn record(&mut self, template: &str, sighting: &Sighting<'_>) {
        if self.capacity == 0 {
            return;
        }
        let template = cut(template);
        let hash = self.hasher.hash_one(template);
        if let Some(&slot) = self.slot_of(hash, template) {
            let entry = &mut self.entries[slot];
            entry.count = entry.count.saturating_add(1);
            update(entry, sighting);
            self.sift_down(self.heap_pos[slot]);
            return;
        }
        if self.entries.len() < self.capacity {
            let slot = self.entries.len();
            let floor = self.evicted_max;
            self.entries
                .push(new_entry(template, floor.saturating_add(1), floor, sighting));
            self.index(hash, slot);
            self.heap.push(slot);
            self.heap_pos.push(self.heap.len() - 1);
            self.sift_up(self.heap.len() - 1);
            return;
        }
        // Full: the template with the smallest count gives up its slot, and its count.
        let Some(&slot) = self.heap.first() else {
            return;
        };
        let replaced = &self.entries[slot];
        let inherited = replaced.count;
        self.evicted_max = self.evicted_max.max(inherited);
        let replaced_hash = self.hasher.hash_one(replaced.template.as_str());
        if let Ok(found) = self.slots.find_entry(replaced_hash, |&s| s == slot) {
            found.remove();
        }
        self.entries[slot] = new_entry(template, inherited.saturating_add(1), inherited, sighting);
        self.index(hash, slot);
        self.sift_down(0);
    }

    /// The `n` most seen templates, most first (ties by template), that `keep` accepts.
    pub fn top(&self, n: usize, mut keep: impl FnMut(&UnmatchedEntry) -> bool) -> Vec<UnmatchedEntry> {
        let mut kept: Vec<&UnmatchedEntry> = self.entries.iter().filter(|e| keep(e)).collect();
        kept.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.template.cmp(&b.template)));
        kept.into_iter().take(n).cloned().collect()
    }

    /// Keeps only the templates `keep` accepts (after a reload: those still weakly decided).
    pub fn retain(&mut self, keep: impl FnMut(&UnmatchedEntry) -> bool) {
        self.entries.retain(keep);
        self.rebuild();
    }

    /// Forgets everything; returns how many templates it held.
    pub fn reset(&mut self) -> usize {
        let held = self.entries.len();
        self.entries.clear();
        self.evicted_max = 0;
        self.rebuild();
        held
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

    /// The slot holding `template`, whose hash is `hash`.
    fn slot_of(&self, hash: u64, template: &str) -> Option<&usize> {
        let entries = &self.entries;
        self.slots
            .find(hash, |&slot| entries.get(slot).is_some_and(|e| e.template == template))
    }

    /// Indexes `slot`, whose template's hash is `hash`.
    fn index(&mut self, hash: u64, slot: usize) {
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.slots.insert_unique(hash, slot, |&s| {
            hasher.hash_one(entries.get(s).map_or("", |e| e.template.as_str()))
        });
    }

    /// Rebuilds the index and the heap from `entries`, in linear time.
    fn rebuild(&mut self) {
        self.slots = HashTable::with_capacity(self.entries.len());
        for slot in 0..self.entries.len() {
            let hash = self.hasher.hash_one(self.entries[slot].template.as_str());
            self.index(hash, slot);
        }
        self.heap = (0..self.entries.len()).collect();
        self.heap_pos = (0..self.entries.len()).collect();
        for at in (0..self.heap.len() / 2).rev() {
            self.sift_down(at);
        }
    }

    fn count_at(&self, heap_at: usize) -> u64 {
        self.entries[self.heap[heap_at]].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.heap_pos[self.heap[a]] = a;
        self.heap_pos[self.heap[b]] = b;
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.count_at(parent) <= self.count_at(at) {
                break;
            }
            self.swap(parent, at);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let left = 2 * at + 1;
            let right = left + 1;
            let mut smallest = at;
            if left < self.heap.len() && self.count_at(left) < self.count_at(smallest) {
                smallest = left;
            }
            if right < self.heap.len() && self.count_at(right) < self.count_at(smallest) {
                smallest = right;
            }
            if smallest == at {
                break;
            }
            self.swap(at, smallest);
            at = smallest;
        }
    }
}

/// `text` cut to at most [`TEMPLATE_LIMIT`] bytes at a character boundary.
fn cut(text: &str) -> &str {
    prefix_within(text, TEMPLATE_LIMIT)
}

fn new_entry(template: &str, count: u64, error_bound: u64, sighting: &Sighting<'_>) -> UnmatchedEntry {
    UnmatchedEntry {
        template: template.to_string(),
        count,
        error_bound,
        first_seen_unix_ms: sighting.unix_ms,
        last_seen_unix_ms: sighting.unix_ms,
        provider: sighting.provider.to_string(),
        evidence: sighting.evidence,
        category: sighting.category.to_string(),
        rule_id: sighting.rule_id.to_string(),
        example: sighting.example.map(|e| cut(e).to_string()),
    }
}

/// Takes the latest sighting's answer; the example only when one is given.
fn update(entry: &mut UnmatchedEntry, sighting: &Sighting<'_>) {
    entry.first_seen_unix_ms = entry.first_seen_unix_ms.min(sighting.unix_ms);
    entry.last_seen_unix_ms = entry.last_seen_unix_ms.max(sighting.unix_ms);
    entry.evidence = sighting.evidence;
    set(&mut entry.provider, sighting.provider);
    set(&mut entry.category, sighting.category);
    set(&mut entry.rule_id, sighting.rule_id);
    if let Some(example) = sighting.example {
        match &mut entry.example {
            Some(kept) => set(kept, cut(example)),
            None => entry.example = Some(cut(example).to_string()),
        }
    }
}

/// Overwrites `field` without allocating when it already holds `value`.
fn set(field: &mut String, value: &str) {
    if field != value {
        field.clear();
        field.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use proptest::prelude::*;

    fn sighting(unix_ms: u64) -> Sighting<'static> {
        Sighting {
            provider: "",
            evidence: Evidence::ReplyCode,
            category: "unclassified",
            rule_id: "",
            unix_ms,
            example: None,
        }
    }

    /// splitmix64: a fixed, dependency-free stream of pseudo-random numbers.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Checks the heap and the index agree with the entries.
    fn assert_consistent(tally: &Unmatched) {
        assert_eq!(tally.slots.len(), tally.entries.len());
        assert_eq!(tally.heap.len(), tally.entries.len());
        for (slot, entry) in tally.entries.iter().enumerate() {
            let hash = tally.hasher.hash_one(entry.template.as_str());
            assert_eq!(tally.slot_of(hash, &entry.template), Some(&slot));
            assert_eq!(tally.heap[tally.heap_pos[slot]], slot);
        }
        for at in 1..tally.heap.len() {
            assert!(tally.count_at((at - 1) / 2) <= tally.count_at(at));
        }
    }

    #[test]
    fn exact_under_capacity_and_latest_answer_kept() {
        let mut tally = Unmatched::new(10);
        for i in 0..5u64 {
            for _ in 0..=i {
                tally.record(&format!("t{i}"), &sighting(100 + i));
            }
        }
        let later = Sighting {
            provider: "gmail",
            evidence: Evidence::EnhancedCode,
            category: "user_unknown",
            rule_id: "r1",
            unix_ms: 50,
            example: Some("550 5.1.1 <*>"),
        };
        tally.record("t0", &later);
        tally.record("t0", &sighting(500));
        let top = tally.top(10, |_| true);
        let counts: Vec<(&str, u64, u64)> = top
            .iter()
            .map(|e| (e.template.as_str(), e.count, e.error_bound))
            .collect();
        assert_eq!(
            counts,
            [("t4", 5, 0), ("t3", 4, 0), ("t0", 3, 0), ("t2", 3, 0), ("t1", 2, 0)]
        );
        let t0 = &top[2];
        assert_eq!((t0.first_seen_unix_ms, t0.last_seen_unix_ms), (50, 500));
        assert_eq!(t0.evidence, Evidence::ReplyCode);
        assert_eq!(t0.provider, "");
        assert_eq!(t0.example.as_deref(), Some("550 5.1.1 <*>"));
        assert_eq!(tally.top(2, |_| true).len(), 2);
        assert_eq!(tally.top(10, |e| e.count >= 4).len(), 2);
        assert_consistent(&tally);
    }

    #[test]
    fn full_tally_replaces_the_smallest_and_bounds_its_error() {
        let mut tally = Unmatched::new(2);
        tally.record("a", &sighting(1));
        tally.record("a", &sighting(2));
        tally.record("b", &sighting(3));
        tally.record("c", &sighting(4));
        let top = tally.top(5, |_| true);
        assert_eq!(tally.len(), 2);
        assert_eq!(
            (top[0].template.as_str(), top[0].count, top[0].error_bound),
            ("a", 2, 0)
        );
        assert_eq!(
            (top[1].template.as_str(), top[1].count, top[1].error_bound),
            ("c", 2, 1)
        );
        assert_eq!(top[1].first_seen_unix_ms, 4);
        assert_consistent(&tally);
    }

    #[test]
    fn zipf_stream_lists_the_true_top_and_bounds_every_count() {
        const TEMPLATES: usize = 5_000;
        const SIGHTINGS: usize = 100_000;
        const CAPACITY: usize = 1_000;
        let mut cumulative = Vec::with_capacity(TEMPLATES);
        let mut total = 0.0;
        for rank in 1..=TEMPLATES {
            total += 1.0 / (rank as f64).powf(1.1);
            cumulative.push(total);
        }
        let mut rng = Rng(20);
        let mut truth = vec![0u64; TEMPLATES];
        let mut tally = Unmatched::new(CAPACITY);
        for i in 0..SIGHTINGS {
            let u = rng.unit() * total;
            let rank = cumulative.partition_point(|&c| c < u).min(TEMPLATES - 1);
            truth[rank] += 1;
            tally.record(&format!("550 5.1.1 wording {rank} <*>"), &sighting(i as u64));
            assert!(tally.len() <= CAPACITY);
        }
        assert_eq!(tally.len(), CAPACITY);
        assert_consistent(&tally);
        let listed = tally.top(CAPACITY, |_| true);
        for entry in &listed {
            let rank: usize = entry.template["550 5.1.1 wording ".len()..]
                .split(' ')
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap_or_else(|| panic!("rank in {}", entry.template));
            let true_count = truth[rank];
            assert!(
                entry.count - entry.error_bound <= true_count && true_count <= entry.count,
                "{}: true {true_count}, count {} - {}",
                entry.template,
                entry.count,
                entry.error_bound
            );
        }
        let mut true_order: Vec<usize> = (0..TEMPLATES).collect();
        true_order.sort_by(|&a, &b| truth[b].cmp(&truth[a]).then(a.cmp(&b)));
        let top10: Vec<String> = tally.top(10, |_| true).into_iter().map(|e| e.template).collect();
        for rank in &true_order[..10] {
            assert!(
                top10.contains(&format!("550 5.1.1 wording {rank} <*>")),
                "rank {rank} in {top10:?}"
            );
        }
        let total_count: u64 = listed.iter().map(|e| e.count).sum();
        assert_eq!(
            total_count, SIGHTINGS as u64,
            "Space-Saving's counts sum to the stream length"
        );
    }

    #[test]
    fn retain_and_reset() {
        let mut tally = Unmatched::new(3);
        for (t, n) in [("a", 3), ("b", 2), ("c", 1), ("d", 1)] {
            for i in 0..n {
                tally.record(t, &sighting(i));
            }
        }
        tally.retain(|e| e.template != "a");
        assert_eq!(tally.len(), 2);
        assert!(tally.top(5, |e| e.template == "a").is_empty());
        assert_consistent(&tally);
        // After retain the freed slot takes a new template without displacing any. It starts
        // from the largest count given up (c's 1): for all the tally knows, that was its own.
        tally.record("e", &sighting(9));
        assert_eq!(tally.len(), 3);
        let e = &tally.top(5, |e| e.template == "e")[0];
        assert_eq!((e.count, e.error_bound), (2, 1));
        tally.record("f", &sighting(10));
        assert_eq!(tally.len(), 3);
        assert_consistent(&tally);
        tally.reset();
        assert!(tally.is_empty());
        assert!(tally.top(5, |_| true).is_empty());
        tally.record("a", &sighting(11));
        assert_eq!(tally.top(5, |_| true)[0].count, 1);
        assert_consistent(&tally);
    }

    #[test]
    fn a_template_pushed_out_and_back_in_a_freed_slot_is_not_undercounted() {
        let mut tally = Unmatched::new(2);
        for t in ["a", "a", "a", "b", "b", "c"] {
            tally.record(t, &sighting(1));
        }
        // c pushed b (2) out; a's slot is freed; b comes back to the free slot.
        tally.retain(|e| e.template != "a");
        tally.record("b", &sighting(2));
        let b = &tally.top(5, |e| e.template == "b")[0];
        let truth = 3;
        assert!(b.count - b.error_bound <= truth && truth <= b.count, "{b:?}");
        assert_consistent(&tally);
    }

    #[test]
    fn zero_capacity_holds_nothing_and_long_templates_are_cut() {
        let mut none = Unmatched::new(0);
        none.record("a", &sighting(1));
        assert!(none.is_empty());
        let mut tally = Unmatched::new(2);
        let long = "é".repeat(TEMPLATE_LIMIT);
        tally.record(&long, &sighting(1));
        tally.record(&format!("{long}x"), &sighting(2));
        let top = tally.top(5, |_| true);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].count, 2);
        assert!(top[0].template.len() <= TEMPLATE_LIMIT);
    }

    proptest! {
        // Space-Saving's guarantees on any stream: bounded size, counts summing to the stream,
        // every true count within its bound, every template above N / capacity held.
        #[test]
        fn space_saving_guarantees(stream in proptest::collection::vec(0u8..40, 0..400), capacity in 1usize..12) {
            let mut tally = Unmatched::new(capacity);
            let mut truth: HashMap<String, u64> = HashMap::new();
            for (i, t) in stream.iter().enumerate() {
                let template = format!("t{t}");
                *truth.entry(template.clone()).or_default() += 1;
                tally.record(&template, &sighting(i as u64));
                prop_assert!(tally.len() <= capacity);
            }
            assert_consistent(&tally);
            let listed = tally.top(usize::MAX, |_| true);
            prop_assert_eq!(listed.iter().map(|e| e.count).sum::<u64>(), stream.len() as u64);
            for entry in &listed {
                let true_count = truth.get(&entry.template).copied().unwrap_or(0);
                prop_assert!(entry.count - entry.error_bound <= true_count && true_count <= entry.count);
            }
            for (template, &count) in &truth {
                if count as usize * capacity > stream.len() {
                    prop_assert!(listed.iter().any(|e| &e.template == template), "{} seen {} times", template, count);
                }
            }
            if truth.len() <= capacity {
                prop_assert!(listed.iter().all(|e| e.error_bound == 0 && truth[&e.template] == e.count));
            }
        }
    }
}

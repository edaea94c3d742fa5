//! The reading of CDS prefetches, by their text. (Patients' results read from the store are
//! cached by the application layer: `smr_app::pgx::ResultsCache`.)
//!
//! [`PrefetchMemo`]: a genotypes prefetch *sent by the client*, read
//! into results, keyed by its exact text. Reading it is a pure function of the text, so an
//! entry never goes stale, and an EHR sends the same prefetch with every order-select while a
//! prescriber browses medicines for one patient. The key is the whole text (compared in full on
//! a hit), not a digest of it, so two different prefetches can never share an entry.
//!
//! The memo is bounded in bytes, not only in entries: prefetch texts are chosen by clients, and
//! an entry limit alone let distinct 7 MB prefetches grow the process by gigabytes. A text
//! larger than the entry limit is read for its call and not kept (an ordinary prefetch is
//! ≈ 14 KB); past the total limit the least recently used entries go first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use smr_cds::PatientResults;

/// Total bytes the memo may hold by default (keys plus an estimate of the readings).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Largest entry kept by default; a bigger prefetch is read once and not memoised.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// Prefetches kept at most, whatever their size (≈ 14 KB of text each for a dozen
/// Observations).
const MAX_ENTRIES: usize = 1024;

/// Readings of genotype prefetches by their exact text, least recently used evicted first.
/// foldhash because the key is ≈ 14 KB and the default SipHash would cost a good part of the
/// reading it saves.
#[derive(Debug)]
pub struct PrefetchMemo {
    max_bytes: usize,
    max_entry_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The key is shared with `by_use`, so a 14 KB text is held once.
    entries: HashMap<Arc<str>, Entry, foldhash::fast::RandomState>,
    /// Last use (a counter) → key: the first is the least recently used.
    by_use: BTreeMap<u64, Arc<str>>,
    bytes: usize,
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    results: Arc<PatientResults>,
    last_use: u64,
    bytes: usize,
}

impl Default for PrefetchMemo {
    fn default() -> Self {
        PrefetchMemo::new(DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRY_BYTES)
    }
}

impl PrefetchMemo {
    pub fn new(max_bytes: usize, max_entry_bytes: usize) -> Self {
        PrefetchMemo {
            max_bytes,
            max_entry_bytes: max_entry_bytes.min(max_bytes),
            inner: Mutex::default(),
        }
    }

    pub fn get(&self, prefetch: &str) -> Option<Arc<PatientResults>> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *inner;
        let entry = inner.entries.get_mut(prefetch)?;
        inner.clock += 1;
        if let Some(key) = inner.by_use.remove(&entry.last_use) {
            inner.by_use.insert(inner.clock, key);
        }
        entry.last_use = inner.clock;
        Some(Arc::clone(&entry.results))
    }

    pub fn put(&self, prefetch: &str, results: Arc<PatientResults>) {
        let bytes = entry_bytes(prefetch, &results);
        if bytes > self.max_entry_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.remove(prefetch);
        while inner.bytes + bytes > self.max_bytes || inner.entries.len() >= MAX_ENTRIES {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            inner.remove(&oldest);
        }
        inner.clock += 1;
        let key: Arc<str> = Arc::from(prefetch);
        let last_use = inner.clock;
        inner.by_use.insert(last_use, Arc::clone(&key));
        inner.entries.insert(
            key,
            Entry {
                results,
                last_use,
                bytes,
            },
        );
        inner.bytes += bytes;
    }

    /// Bytes held now (as [`entry_bytes`] counts them).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }
}

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.by_use.remove(&old.last_use);
            self.bytes -= old.bytes;
        }
    }
}

/// What one entry costs: its key (the prefetch text, by far the largest part) plus an
/// allowance for the reading (one result per gene, each a few short strings) and the maps'
/// own bookkeeping.
fn entry_bytes(prefetch: &str, results: &PatientResults) -> usize {
    const PER_ENTRY: usize = 256;
    const PER_RESULT: usize = 512;
    prefetch.len() + PER_ENTRY + PER_RESULT * results.results.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Arc<PatientResults> {
        Arc::new(PatientResults::default())
    }

    /// A distinct prefetch text of exactly `len` bytes.
    fn text(n: usize, len: usize) -> String {
        let mut t = format!("{{\"n\":{n}}}");
        t.extend(std::iter::repeat_n(' ', len.saturating_sub(t.len())));
        t
    }

    #[test]
    fn a_prefetch_is_found_only_by_its_exact_text() {
        let memo = PrefetchMemo::default();
        memo.put(r#"{"resourceType":"Bundle"}"#, results());
        assert!(memo.get(r#"{"resourceType":"Bundle"}"#).is_some());
        assert!(memo.get(r#"{"resourceType": "Bundle"}"#).is_none());
    }

    #[test]
    fn total_bytes_never_exceed_the_bound() {
        // The issue's reproduction, scaled down: many distinct large prefetches.
        let max = 1_000_000;
        let memo = PrefetchMemo::new(max, 300_000);
        for n in 0..120 {
            memo.put(&text(n, 70_000 + n * 1000), results());
            assert!(memo.bytes() <= max, "{} bytes after {n}", memo.bytes());
        }
        assert!(memo.bytes() > max / 2, "the memo is still used");
        assert!(memo.get(&text(119, 70_000 + 119 * 1000)).is_some());
    }

    #[test]
    fn oversized_entries_are_not_kept() {
        let memo = PrefetchMemo::new(1_000_000, 10_000);
        memo.put(&text(1, 20_000), results());
        assert!(memo.get(&text(1, 20_000)).is_none());
        assert_eq!(memo.bytes(), 0);
        memo.put(&text(2, 5_000), results());
        assert!(memo.get(&text(2, 5_000)).is_some());
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted_first() {
        let size = 10_000;
        let cost = entry_bytes(&text(0, size), &PatientResults::default());
        let memo = PrefetchMemo::new(3 * cost, cost);
        for n in 0..3 {
            memo.put(&text(n, size), results());
        }
        // Using 0 makes 1 the least recently used.
        assert!(memo.get(&text(0, size)).is_some());
        memo.put(&text(3, size), results());
        assert!(memo.get(&text(1, size)).is_none(), "1 was evicted");
        for n in [0, 2, 3] {
            assert!(memo.get(&text(n, size)).is_some(), "{n} kept");
        }
        assert_eq!(memo.bytes(), 3 * cost);
        // Putting the same text again replaces, never double-counts.
        memo.put(&text(2, size), results());
        assert_eq!(memo.bytes(), 3 * cost);
    }
}

//! Patients' pharmacogenomic results as last read from the store, for CDS calls that come
//! without a prefetch.
//!
//! Why: such a call otherwise searches the store for the patient's genotype Observations and
//! reads them, on every order a prescriber selects — most of its cost (docs/benchmarks.md) —
//! while genotypes change rarely. Why it cannot serve a stale genotype: an entry is kept with
//! the store's Observation change count taken *before* the read that filled it, and is used
//! only while that count is unchanged (see `smr_store::Store::change_count`). Any committed
//! Observation write, for any patient, retires every entry. On stores where this process does
//! not see every write (PostgreSQL) there is no count, and nothing is cached.
//!
//! [`PrefetchMemo`] is the other way round: a genotypes prefetch *sent by the client*, read
//! into results, keyed by its exact text. Reading it is a pure function of the text, so an
//! entry never goes stale, and an EHR sends the same prefetch with every order-select while a
//! prescriber browses medicines for one patient. The key is the whole text (compared in full on
//! a hit), not a digest of it, so two different prefetches can never share an entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use smr_cds::PatientResults;

/// Entries kept at most; when full, the cache starts again empty (simple, bounded, and the
/// next calls refill it with the patients being prescribed for now).
const CAPACITY: usize = 100_000;

/// What was read for one patient, and the change count it is valid for.
type Entry = (u64, Arc<PatientResults>);

#[derive(Debug, Default)]
pub struct ResultsCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ResultsCache {
    /// The results read for `patient` when the change count was `count`, if any.
    pub fn get(&self, patient: &str, count: u64) -> Option<Arc<PatientResults>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(patient)
            .filter(|(c, _)| *c == count)
            .map(|(_, r)| Arc::clone(r))
    }

    /// Keeps `results`, read after the change count was `count`.
    pub fn put(&self, patient: &str, count: u64, results: Arc<PatientResults>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(patient) {
            entries.clear();
        }
        entries.insert(patient.to_owned(), (count, results));
    }
}

/// Prefetches kept at most (≈ 14 KB of text each for a dozen Observations).
const PREFETCH_CAPACITY: usize = 1024;

/// Readings of genotype prefetches by their exact text. foldhash because the key is ≈ 14 KB
/// and the default SipHash would cost a good part of the reading it saves.
#[derive(Debug, Default)]
pub struct PrefetchMemo {
    entries: Mutex<HashMap<Box<str>, Arc<PatientResults>, foldhash::fast::RandomState>>,
}

impl PrefetchMemo {
    pub fn get(&self, prefetch: &str) -> Option<Arc<PatientResults>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(prefetch).map(Arc::clone)
    }

    pub fn put(&self, prefetch: &str, results: Arc<PatientResults>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= PREFETCH_CAPACITY && !entries.contains_key(prefetch) {
            entries.clear();
        }
        entries.insert(prefetch.into(), results);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_only_at_the_count_it_was_read_at() {
        let cache = ResultsCache::default();
        cache.put("p1", 7, Arc::new(PatientResults::default()));
        assert!(cache.get("p1", 7).is_some());
        assert!(
            cache.get("p1", 8).is_none(),
            "a later write retires the entry"
        );
        assert!(cache.get("p2", 7).is_none());
    }

    #[test]
    fn a_prefetch_is_found_only_by_its_exact_text() {
        let memo = PrefetchMemo::default();
        memo.put(
            r#"{"resourceType":"Bundle"}"#,
            Arc::new(PatientResults::default()),
        );
        assert!(memo.get(r#"{"resourceType":"Bundle"}"#).is_some());
        assert!(memo.get(r#"{"resourceType": "Bundle"}"#).is_none());
    }
}

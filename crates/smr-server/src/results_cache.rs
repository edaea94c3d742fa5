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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use smr_cds::GeneResult;

/// Entries kept at most; when full, the cache starts again empty (simple, bounded, and the
/// next calls refill it with the patients being prescribed for now).
const CAPACITY: usize = 100_000;

/// What was read for one patient, and the change count it is valid for.
type Entry = (u64, Arc<Vec<GeneResult>>);

#[derive(Debug, Default)]
pub struct ResultsCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ResultsCache {
    /// The results read for `patient` when the change count was `count`, if any.
    pub fn get(&self, patient: &str, count: u64) -> Option<Arc<Vec<GeneResult>>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(patient)
            .filter(|(c, _)| *c == count)
            .map(|(_, r)| Arc::clone(r))
    }

    /// Keeps `results`, read after the change count was `count`.
    pub fn put(&self, patient: &str, count: u64, results: Arc<Vec<GeneResult>>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(patient) {
            entries.clear();
        }
        entries.insert(patient.to_owned(), (count, results));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_only_at_the_count_it_was_read_at() {
        let cache = ResultsCache::default();
        cache.put("p1", 7, Arc::new(Vec::new()));
        assert!(cache.get("p1", 7).is_some());
        assert!(
            cache.get("p1", 8).is_none(),
            "a later write retires the entry"
        );
        assert!(cache.get("p2", 7).is_none());
    }
}

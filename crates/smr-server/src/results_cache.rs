//! The reading of CDS prefetches, by their text. (Patients' results read from the store are
//! cached by the application layer: `smr_app::pgx::ResultsCache`.)
//!
//! [`PrefetchMemo`]: a genotypes prefetch *sent by the client*, read
//! into results, keyed by its exact text. Reading it is a pure function of the text, so an
//! entry never goes stale, and an EHR sends the same prefetch with every order-select while a
//! prescriber browses medicines for one patient. The key is the whole text (compared in full on
//! a hit), not a digest of it, so two different prefetches can never share an entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use smr_cds::PatientResults;

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

//! A cache of single patients' views (`Store::patient_view`) and of whether a Patient is on
//! record, on the embedded store.
//!
//! Why: every call about one patient (a CDS hook, a record read) first asks whether the caller
//! may open the record and what the patient's consent withholds: two queries, each a hand-off
//! to sqlx's SQLite worker thread and back, for an answer that changes only when a resource
//! that grants care relationships or a Consent is written. Under load those hand-offs, not the
//! checks, were most of a CDS call's cost (`docs/benchmarks.md`).
//!
//! Invariants:
//! - An entry is trusted only while the change counts it was read under are unchanged: the
//!   counts of every type that writes care relationships (`smr_access::care::LINK_TYPES`) and
//!   of `Consent` for a view, of `Patient` for existence. The counts are taken *before* the
//!   read (see `Store::change_count`), so a write racing the read leaves the entry stale, never
//!   wrong.
//! - Time is honoured exactly: a view that allows the caller in is kept only until the last of
//!   the care relationships that allow it ends (`valid_until`); a view that refuses cannot
//!   become allowing with time alone (relationships are only added by writes). Consent
//!   restrictions are fixed when the Consent is written.
//! - Only on SQLite, where this process sees every write (`change_count` is `None` on
//!   PostgreSQL, and there nothing is cached).
//! - Bounded: past `CAPACITY` entries the map is cleared, not grown.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::access::PatientView;
use crate::model::PatientAccess;

/// Entries kept before the cache starts again empty (views are small; a busy server sees a
/// few thousand patients a minute).
const CAPACITY: usize = 20_000;

/// Who is asking about which patient: everything a view depends on besides the store and
/// the time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ViewKey {
    pub patient: String,
    pub patients: PatientAccess,
    pub consent_actors: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct CachedView {
    stamp: u64,
    view: PatientView,
    /// Microseconds since the epoch: an allowing view holds while `at < until`.
    until: i64,
}

#[derive(Debug, Default)]
pub(crate) struct ViewCache {
    views: Mutex<HashMap<ViewKey, CachedView>>,
    patients: Mutex<HashMap<String, (u64, bool)>>,
}

impl ViewCache {
    /// The cached view for `key` at instant `at`, read under change count `stamp`.
    pub fn view(&self, key: &ViewKey, stamp: u64, at: i64) -> Option<PatientView> {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        let hit = views.get(key)?;
        (hit.stamp == stamp && (!hit.view.allowed || at < hit.until)).then(|| hit.view.clone())
    }

    pub fn put_view(&self, key: ViewKey, stamp: u64, view: PatientView, until: i64) {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if views.len() >= CAPACITY {
            views.clear();
        }
        views.insert(key, CachedView { stamp, view, until });
    }

    /// Whether Patient `id` was on record under change count `stamp`, if known.
    pub fn patient_exists(&self, id: &str, stamp: u64) -> Option<bool> {
        let patients = self.patients.lock().unwrap_or_else(|e| e.into_inner());
        patients
            .get(id)
            .and_then(|&(at, exists)| (at == stamp).then_some(exists))
    }

    pub fn put_patient_exists(&self, id: &str, stamp: u64, exists: bool) {
        let mut patients = self.patients.lock().unwrap_or_else(|e| e.into_inner());
        if patients.len() >= CAPACITY {
            patients.clear();
        }
        patients.insert(id.to_owned(), (stamp, exists));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ViewKey {
        ViewKey {
            patient: "p1".into(),
            patients: PatientAccess::CaredFor(vec!["ods:A81001".into()]),
            consent_actors: Some(vec!["ods:A81001".into()]),
        }
    }

    fn view(allowed: bool) -> PatientView {
        PatientView {
            allowed,
            withheld_labels: Vec::new(),
        }
    }

    #[test]
    fn a_view_holds_while_the_counts_are_unchanged() {
        let cache = ViewCache::default();
        cache.put_view(key(), 7, view(true), i64::MAX);
        assert_eq!(cache.view(&key(), 7, 100), Some(view(true)));
        assert_eq!(cache.view(&key(), 8, 100), None);
    }

    #[test]
    fn an_allowing_view_ends_with_its_last_relationship() {
        let cache = ViewCache::default();
        cache.put_view(key(), 1, view(true), 1_000);
        assert!(cache.view(&key(), 1, 999).is_some());
        assert_eq!(cache.view(&key(), 1, 1_000), None);
    }

    #[test]
    fn a_refusal_does_not_expire_with_time() {
        let cache = ViewCache::default();
        cache.put_view(key(), 1, view(false), 0);
        assert_eq!(cache.view(&key(), 1, i64::MAX - 1), Some(view(false)));
    }

    #[test]
    fn another_caller_or_patient_is_another_entry() {
        let cache = ViewCache::default();
        cache.put_view(key(), 1, view(true), i64::MAX);
        let mut other = key();
        other.consent_actors = None;
        assert_eq!(cache.view(&other, 1, 0), None);
        other = key();
        other.patient = "p2".into();
        assert_eq!(cache.view(&other, 1, 0), None);
    }

    #[test]
    fn patient_existence_follows_the_patient_count() {
        let cache = ViewCache::default();
        cache.put_patient_exists("p1", 3, true);
        assert_eq!(cache.patient_exists("p1", 3), Some(true));
        assert_eq!(cache.patient_exists("p1", 4), None);
        assert_eq!(cache.patient_exists("p2", 3), None);
    }
}

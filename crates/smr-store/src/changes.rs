//! Per-resource-type change counters, so that a cache in this process can tell whether what
//! it read from the store is still current without asking the database.
//!
//! Every committed write bumps the counter of each resource type it created, updated or
//! deleted, *after* the commit and *before* the writer is answered. A reader takes the counter
//! before it queries and keeps its result with that value; the result is current while the
//! counter is unchanged. A write racing with the query only makes the cached value look older
//! than it is (a wasted entry), never newer; and a write whose caller has had its answer is
//! always visible to the next lookup.
//!
//! Counters are per type, not per patient, on purpose: an update can move a resource from one
//! patient to another, and a per-type counter needs no knowledge of the previous owner to stay
//! correct. The price is that any write of a type invalidates every cached read of it.

use std::sync::atomic::{AtomicU64, Ordering};

use smr_fhir::resource_types::SERVED_TYPES;

use crate::model::WriteOutcome;

#[derive(Debug)]
pub(crate) struct ChangeCounters {
    /// One per served type, in `SERVED_TYPES` order; the last for any other type.
    counts: Box<[AtomicU64]>,
    /// Bumped after every commit that wrote something: wakes the change feed's consumers.
    commits: tokio::sync::watch::Sender<u64>,
}

impl ChangeCounters {
    pub(crate) fn new() -> Self {
        ChangeCounters {
            counts: (0..=SERVED_TYPES.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            commits: tokio::sync::watch::Sender::new(0),
        }
    }

    fn slot(&self, res_type: &str) -> &AtomicU64 {
        let i = SERVED_TYPES
            .iter()
            .position(|t| t.name == res_type)
            .unwrap_or(SERVED_TYPES.len());
        &self.counts[i]
    }

    /// Records committed outcomes (a conditional create that found a match wrote nothing).
    pub(crate) fn record(&self, outcomes: &[WriteOutcome]) {
        let mut wrote = false;
        for o in outcomes {
            if let WriteOutcome::Created(r)
            | WriteOutcome::Updated(r)
            | WriteOutcome::Deleted(Some(r)) = o
            {
                self.slot(&r.res_type).fetch_add(1, Ordering::AcqRel);
                wrote = true;
            }
        }
        if wrote {
            self.commits.send_modify(|n| *n += 1);
        }
    }

    pub(crate) fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    pub(crate) fn get(&self, res_type: &str) -> u64 {
        self.slot(res_type).load(Ordering::Acquire)
    }
}

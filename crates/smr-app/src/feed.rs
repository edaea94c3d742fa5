//! What happens after a commit, driven by the store's change feed (never by the handler that
//! wrote, so writes by every path — HTTP, CLI import, a loader, another node — are seen):
//!
//! - `pgx-recheck` (durable: its position is kept in the store): a new or changed genotype or
//!   phenotype Observation re-checks that patient's current medicines and writes the
//!   DetectedIssues found. Re-running it is harmless (each DetectedIssue is a conditional
//!   create on its identifier), which is what at-least-once processing needs.
//! - (not a feed consumer, but run beside them) the dm+d release: when another process
//!   replaces it in the store, this process reloads its dictionary within a few seconds.
//! - the DetectedIssue event stream (live: it starts at the feed's end when the process
//!   starts): every DetectedIssue created, by this node or another, goes to the subscribers
//!   of [`App::issue_events`] (the CDS events endpoint filters it per caller).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use smr_cds::genotype;
use smr_store::{Change, FeedPosition};

use crate::pgx::{IssueEvent, parse_body, patient_of_subject};
use crate::{App, AppError};

/// The durable consumer that re-checks medicines when pharmacogenomic results arrive.
pub const PGX_RECHECK: &str = "pgx-recheck";
/// Changes read per batch.
const BATCH: u32 = 500;
/// How often consumers look for other nodes' commits (this node's wake them at once).
const POLL: Duration = Duration::from_millis(500);
/// How often the dm+d release identifier in the store is compared with the loaded one.
const DMD_CHECK: Duration = Duration::from_secs(5);

/// The consumers' task; stops when dropped.
#[derive(Debug)]
pub struct FeedConsumers {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FeedConsumers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    /// Starts the change feed's consumers on the current tokio runtime.
    pub fn start_feed_consumers(&self) -> Arc<FeedConsumers> {
        let app = self.clone();
        let task = tokio::spawn(async move {
            let mut commits = app.store.commits();
            let mut events_at = match app.store.feed_head().await {
                Ok(head) => head,
                Err(e) => {
                    tracing::error!(error = %e, "change feed unreadable: consumers not started");
                    return;
                }
            };
            // Another process (`smr terminology import-dmd`, another node) may replace the
            // dm+d release in the store; its identifier is checked now and then (one small
            // query) and the dictionary reloaded when it changed.
            let mut dmd_seen = app.store.dmd_release_id().await.ok().flatten();
            let mut dmd_checked = std::time::Instant::now();
            loop {
                if dmd_checked.elapsed() >= DMD_CHECK {
                    dmd_checked = std::time::Instant::now();
                    if let Ok(now) = app.store.dmd_release_id().await
                        && now != dmd_seen
                    {
                        match app.load_terminology().await {
                            Ok(release) => {
                                tracing::info!(release = ?release, "dm+d release changed in the store: dictionary reloaded");
                                dmd_seen = now;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "dm+d release changed but could not be loaded")
                            }
                        }
                    }
                }
                let mut busy = false;
                match app.process_pgx_changes().await {
                    Ok(n) => busy |= n > 0,
                    Err(e) => tracing::warn!(error = %e, "pgx re-check consumer: will retry"),
                }
                match app.publish_issue_events(&mut events_at).await {
                    Ok(n) => busy |= n > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "DetectedIssue events consumer: will retry")
                    }
                }
                if !busy {
                    tokio::select! {
                        changed = commits.changed() => if changed.is_err() { return },
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        });
        Arc::new(FeedConsumers { task })
    }

    /// Runs the durable consumers until they have processed every committed change (for the
    /// CLI after a load, and for tests that need the effects of a write before they look).
    pub async fn drain_feed(&self) -> Result<(), AppError> {
        while self.process_pgx_changes().await? > 0 {}
        Ok(())
    }

    /// One batch of `pgx-recheck`: the changes after its saved position; the patients whose
    /// genotype or phenotype Observations were created or updated are re-checked; then the
    /// position is saved. An error leaves the position where it was, so the batch is retried.
    pub async fn process_pgx_changes(&self) -> Result<usize, AppError> {
        let position = self.store.consumer_position(PGX_RECHECK).await?;
        let changes = self.store.changes_after(position, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.position) else {
            return Ok(0);
        };
        let mut patients = BTreeSet::new();
        for change in changes.iter().filter(|c| is_result_write(c)) {
            // The current version: a later change in this batch may have moved it on.
            let stored = match self.store.read(&change.res_type, &change.id).await {
                Ok(stored) => stored,
                Err(
                    smr_store::StoreError::NotFound { .. } | smr_store::StoreError::Gone { .. },
                ) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(body) = parse_body(&stored)
                && genotype::is_pgx_observation(&body)
                && let Some(patient) = patient_of_subject(&body)
            {
                patients.insert(patient);
            }
        }
        for patient in &patients {
            self.recheck(patient).await?;
        }
        self.store.save_consumer_position(PGX_RECHECK, last).await?;
        Ok(changes.len())
    }

    /// Sends an event for each DetectedIssue created after `at`, and moves `at` on.
    async fn publish_issue_events(&self, at: &mut FeedPosition) -> Result<usize, AppError> {
        let changes = self.store.changes_after(*at, BATCH).await?;
        for change in &changes {
            if change.res_type == "DetectedIssue" && change.action == "create" {
                self.events.send(IssueEvent {
                    issue: format!("DetectedIssue/{}", change.id),
                    patient: change.patient_key.clone(),
                });
            }
        }
        if let Some(last) = changes.last() {
            *at = last.position;
        }
        Ok(changes.len())
    }
}

fn is_result_write(change: &Change) -> bool {
    change.res_type == "Observation" && change.action != "delete"
}

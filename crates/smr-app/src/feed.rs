//! What happens after a commit, driven by the store's change feed (never by the handler that
//! wrote, so writes by every path — HTTP, CLI import, a loader, another node — are seen):
//!
//! - `pgx-recheck` (durable: its position is kept in the store): a new or changed genotype or
//!   phenotype Observation re-checks that patient's current medicines and writes the
//!   DetectedIssues found. Re-running it is harmless (each DetectedIssue is a conditional
//!   create on its identifier), which is what at-least-once processing needs.
//! - `safety-recheck` (durable): a changed medication entry, allergy or renal result
//!   re-reviews that patient's record and keeps their safety DetectedIssues current
//!   (`safety_recheck`). Beside it, once per release of the rules, the rules sweep reviews
//!   every record with medicines (`App::safety_rules_sweep_step`), resumable from the store.
//! - (not a feed consumer, but run beside them) the dm+d release: when another process
//!   replaces it in the store, this process reloads its dictionary within a few seconds.
//! - `subscriptions` (durable): changes matched against the active Subscriptions, notified
//!   by websocket and rest-hook (`subscriptions`).
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

/// The longest a running durable consumer keeps an unsaved position.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The durable consumers run by [`App::durable_step`].
#[derive(Debug, Clone, Copy)]
enum Durable {
    PgxRecheck,
    SafetyRecheck,
}

impl Durable {
    fn name(self) -> &'static str {
        match self {
            Durable::PgxRecheck => PGX_RECHECK,
            Durable::SafetyRecheck => crate::safety_recheck::SAFETY_RECHECK,
        }
    }
}

/// Where a running durable consumer is (see [`App::durable_step`]).
#[derive(Debug)]
struct DurableCursor {
    consumer: Durable,
    /// Processed up to here (`None`: read the saved position first).
    position: Option<FeedPosition>,
    /// Processed but not yet saved.
    unsaved: Option<FeedPosition>,
    saved_at: std::time::Instant,
}

impl DurableCursor {
    fn new(consumer: Durable) -> Self {
        DurableCursor {
            consumer,
            position: None,
            unsaved: None,
            saved_at: std::time::Instant::now(),
        }
    }
}

/// What one batch of `pgx-recheck` did.
#[derive(Debug)]
struct PgxBatch {
    last: FeedPosition,
    changes: usize,
    rechecked: usize,
}

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
            let mut durable = [
                DurableCursor::new(Durable::PgxRecheck),
                DurableCursor::new(Durable::SafetyRecheck),
            ];
            let mut subscription_cursor = crate::subscriptions::SubscriptionCursor::default();
            // The rules cannot change while the process runs: once the sweep has nothing to
            // do, it is not asked again.
            let mut rules_sweep_done = false;
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
                for cursor in &mut durable {
                    match app.durable_step(cursor).await {
                        Ok(n) => busy |= n > 0,
                        Err(e) => {
                            tracing::warn!(error = %e, consumer = cursor.consumer.name(), "feed consumer: will retry")
                        }
                    }
                }
                if !rules_sweep_done {
                    match app.safety_rules_sweep_step().await {
                        Ok(0) => rules_sweep_done = true,
                        Ok(_) => busy = true,
                        Err(e) => tracing::warn!(error = %e, "safety rules sweep: will retry"),
                    }
                }
                if !app.subscriptions_from_bus() {
                    match app.subscriptions_step(&mut subscription_cursor).await {
                        Ok(n) => busy |= n > 0,
                        Err(e) => tracing::warn!(error = %e, "subscriptions consumer: will retry"),
                    }
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
        while self.process_safety_changes().await? > 0 {}
        Ok(())
    }

    /// One batch of `pgx-recheck`: the changes after its saved position; the patients whose
    /// genotype or phenotype Observations were created or updated are re-checked; then the
    /// position is saved. An error leaves the position where it was, so the batch is retried.
    pub async fn process_pgx_changes(&self) -> Result<usize, AppError> {
        let position = self.store.consumer_position(PGX_RECHECK).await?;
        let Some(batch) = self.pgx_batch(position).await? else {
            return Ok(0);
        };
        self.store
            .save_consumer_position(PGX_RECHECK, batch.last)
            .await?;
        Ok(batch.changes)
    }

    /// A running durable consumer's step: like [`App::process_pgx_changes`], but the
    /// position is kept in memory and saved only when the batch re-checked someone, or at
    /// most once per [`SAVE_EVERY`]. Saving after every batch was a second commit for every
    /// commit of a write load (`docs/benchmarks.md`); processing stays at-least-once, since
    /// after a crash the consumer replays at most that much of the feed, and replaying is
    /// harmless.
    async fn durable_step(&self, cursor: &mut DurableCursor) -> Result<usize, AppError> {
        let name = cursor.consumer.name();
        let position = match cursor.position {
            Some(p) => p,
            None => self.store.consumer_position(name).await?,
        };
        let batch = match cursor.consumer {
            Durable::PgxRecheck => self
                .pgx_batch(position)
                .await?
                .map(|b| (b.last, b.changes, b.rechecked)),
            Durable::SafetyRecheck => self
                .safety_batch(position)
                .await?
                .map(|b| (b.last, b.changes, b.reviewed)),
        };
        let (changes, worked) = match batch {
            Some((last, changes, worked)) => {
                cursor.position = Some(last);
                cursor.unsaved = Some(last);
                (changes, worked > 0)
            }
            None => {
                cursor.position = Some(position);
                (0, false)
            }
        };
        if let Some(last) = cursor.unsaved
            && (worked || cursor.saved_at.elapsed() >= SAVE_EVERY)
        {
            self.store.save_consumer_position(name, last).await?;
            cursor.unsaved = None;
            cursor.saved_at = std::time::Instant::now();
        }
        Ok(changes)
    }

    /// Processes the changes after `position`; `None` when there are none.
    async fn pgx_batch(&self, position: FeedPosition) -> Result<Option<PgxBatch>, AppError> {
        let changes = self.store.changes_after(position, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.position) else {
            return Ok(None);
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
        Ok(Some(PgxBatch {
            last,
            changes: changes.len(),
            rechecked: patients.len(),
        }))
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

impl App {
    /// The committed changes after `after` (for consumers outside this crate: `smr-bus`).
    pub async fn feed_after(
        &self,
        after: FeedPosition,
        limit: u32,
    ) -> Result<Vec<Change>, AppError> {
        Ok(self.store.changes_after(after, limit).await?)
    }

    /// Where the durable consumer `name` starts: its saved position, or, the first time it
    /// ever runs, the feed's end (a consumer added to a running deployment does not replay
    /// the past).
    pub async fn feed_start(&self, name: &str) -> Result<FeedPosition, AppError> {
        let saved = self.store.consumer_position(name).await?;
        if saved != FeedPosition::default() {
            return Ok(saved);
        }
        let head = self.store.feed_head().await?;
        self.store.save_consumer_position(name, head).await?;
        Ok(head)
    }

    pub async fn save_feed_position(
        &self,
        name: &str,
        position: FeedPosition,
    ) -> Result<(), AppError> {
        Ok(self.store.save_consumer_position(name, position).await?)
    }

    /// Ticks after every commit of this process (wakes consumers at once).
    pub fn feed_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.store.commits()
    }
}

fn is_result_write(change: &Change) -> bool {
    change.res_type == "Observation" && change.action != "delete"
}

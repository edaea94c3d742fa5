//! Group commit: one writer task runs the write transactions of many callers inside one
//! database transaction, each in its own savepoint, and commits them together. SQLite's
//! writes all go through it; on PostgreSQL it batches audit records only.
//!
//! Why: SQLite has one writer, and a commit costs far more than the rows it carries (WAL frames
//! for every page touched, checkpoints). Callers waiting in the queue are folded into the next
//! commit, so under load the cost per write falls while each caller keeps its own all-or-nothing
//! transaction: a failing caller rolls back to its savepoint and the others are unaffected.
//! Nobody is acknowledged before the shared commit succeeds; if it fails, every caller in the
//! batch gets the error and nothing of theirs is stored.
//!
//! Audit records ride in the same commits: a write's record is built after its savepoint
//! (whether the write succeeded or failed), a read's records come as a job of their own, and
//! all of a batch's records are appended together before the commit (two multi-row INSERTs),
//! the chain head read and written back once.

use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, ChainHead};
use crate::model::{AuditFn, AuditRecord, ProvenanceTemplate, WriteOp, WriteOutcome};
use crate::write::{EntryError, is_single_plain_create};
use crate::{Store, StoreError};

/// The most callers folded into one commit: bounds how long the first of them waits.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Vec<WriteOutcome>, EntryError>>;

enum Work {
    Write {
        ops: Vec<WriteOp>,
        audit: Option<AuditFn>,
        provenance: Option<ProvenanceTemplate>,
    },
    Audit(Vec<AuditRecord>),
}

struct Job {
    work: Work,
    reply: Reply,
}

/// The handle callers submit to; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct WriteQueue {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.work {
            Work::Write { ops, .. } => f.debug_struct("Write").field("ops", &ops.len()).finish(),
            Work::Audit(records) => f
                .debug_struct("Audit")
                .field("records", &records.len())
                .finish(),
        }
    }
}

fn gone() -> EntryError {
    EntryError {
        entry: 0,
        error: StoreError::Internal("the store's writer has stopped".into()),
    }
}

impl WriteQueue {
    /// Starts the writer task for `store` (which must not itself have a queue).
    pub(crate) fn start(store: Store) -> WriteQueue {
        let (jobs, rx) = mpsc::channel(1024);
        tokio::spawn(run(store, rx));
        WriteQueue { jobs }
    }

    async fn submit_work(&self, work: Work) -> Result<Vec<WriteOutcome>, EntryError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { work, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    pub(crate) async fn submit(
        &self,
        ops: Vec<WriteOp>,
        audit: Option<AuditFn>,
        provenance: Option<ProvenanceTemplate>,
    ) -> Result<Vec<WriteOutcome>, EntryError> {
        self.submit_work(Work::Write {
            ops,
            audit,
            provenance,
        })
        .await
    }

    pub(crate) async fn submit_audit(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        self.submit_work(Work::Audit(records))
            .await
            .map(|_| ())
            .map_err(|e| e.error)
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // The audit appender writes the same file from its own connection: one at a time.
        let turn = store.write_turn().await;
        commit_batch(&store, batch).await;
        drop(turn);
    }
}

async fn commit_batch(store: &Store, batch: Vec<Job>) {
    let mut replies: Vec<(Reply, Result<Vec<WriteOutcome>, EntryError>)> =
        Vec::with_capacity(batch.len());
    let committed: Result<(), StoreError> = async {
        let mut tx = store.writer.begin().await?;
        // Every audit record of the batch, in order; appended together before the commit
        // (in the same transaction as the writes they describe).
        let mut audits: Vec<AuditRecord> = Vec::new();
        for (n, job) in batch.into_iter().enumerate() {
            let (ops, audit, provenance) = match job.work {
                Work::Audit(records) => {
                    audits.extend(records);
                    replies.push((job.reply, Ok(Vec::new())));
                    continue;
                }
                Work::Write {
                    ops,
                    audit,
                    provenance,
                } => (ops, audit, provenance),
            };
            let result = if is_single_plain_create(&ops) {
                // The common case: the create's one script opens and releases its savepoint
                // itself, so it costs one round trip instead of three.
                let name = format!("smr_write_{n}");
                let result = store
                    .execute_in_savepoint(&mut tx, ops, &name, provenance.as_ref())
                    .await;
                if result.is_err() {
                    // The script may have stopped part-way with its savepoint open, or may
                    // never have run (an error before any SQL): undo what ran, if anything.
                    let undo = format!("ROLLBACK TO {name}; RELEASE {name}");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(undo))
                        .execute(&mut *tx)
                        .await;
                }
                result
            } else {
                let mut savepoint = tx.begin().await?;
                let result = store
                    .execute(&mut savepoint, ops, provenance.as_ref())
                    .await;
                if result.is_ok() {
                    savepoint.commit().await?;
                } else {
                    savepoint.rollback().await?;
                }
                result
            };
            if let Some(audit) = audit {
                audits.push(audit(result.as_deref()));
            }
            replies.push((job.reply, result));
        }
        if !audits.is_empty() {
            let mut head: ChainHead = audit::read_head(store.engine, &mut tx).await?;
            audit::append(&mut tx, &mut head, &audits).await?;
            audit::write_head(&mut tx, &head).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match committed {
        Ok(()) => {
            // Counted before anyone is answered: see `changes`.
            for (_, result) in &replies {
                if let Ok(outcomes) = result {
                    store.changes.record(outcomes);
                }
            }
            for (reply, result) in replies {
                // A caller that gave up waiting is not an error of the batch.
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; every write in the batch is rolled back");
            let message = format!("the write could not be committed: {e}");
            for (reply, _) in replies {
                let _ = reply.send(Err(EntryError {
                    entry: 0,
                    error: StoreError::Internal(message.clone()),
                }));
            }
        }
    }
}

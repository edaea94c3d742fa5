//! Group commit for SQLite: one writer task runs the write transactions of many callers inside
//! one database transaction, each in its own savepoint, and commits them together.
//!
//! Why: SQLite has one writer, and a commit costs far more than the rows it carries (WAL frames
//! for every page touched, checkpoints). Callers waiting in the queue are folded into the next
//! commit, so under load the cost per write falls while each caller keeps its own all-or-nothing
//! transaction: a failing caller rolls back to its savepoint and the others are unaffected.
//! Nobody is acknowledged before the shared commit succeeds; if it fails, every caller in the
//! batch gets the error and nothing of theirs is stored.

use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::model::{WriteOp, WriteOutcome};
use crate::write::{EntryError, is_single_plain_create};
use crate::{Store, StoreError};

/// The most callers folded into one commit: bounds how long the first of them waits.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Vec<WriteOutcome>, EntryError>>;

struct Job {
    ops: Vec<WriteOp>,
    reply: Reply,
}

/// The handle callers submit to; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct WriteQueue {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("ops", &self.ops.len()).finish()
    }
}

impl WriteQueue {
    /// Starts the writer task for `store` (which must not itself have a queue).
    pub(crate) fn start(store: Store) -> WriteQueue {
        let (jobs, rx) = mpsc::channel(1024);
        tokio::spawn(run(store, rx));
        WriteQueue { jobs }
    }

    pub(crate) async fn submit(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, EntryError> {
        let (reply, answer) = oneshot::channel();
        let gone = || EntryError {
            entry: 0,
            error: StoreError::Internal("the store's writer has stopped".into()),
        };
        self.jobs
            .send(Job { ops, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
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
        commit_batch(&store, batch).await;
    }
}

async fn commit_batch(store: &Store, batch: Vec<Job>) {
    let mut replies: Vec<(Reply, Result<Vec<WriteOutcome>, EntryError>)> =
        Vec::with_capacity(batch.len());
    let committed: Result<(), sqlx::Error> = async {
        let mut tx = store.writer.begin().await?;
        for (n, job) in batch.into_iter().enumerate() {
            if is_single_plain_create(&job.ops) {
                // The common case: the create's one script opens and releases its savepoint
                // itself, so it costs one round trip instead of three.
                let name = format!("smr_write_{n}");
                match store.execute_in_savepoint(&mut tx, job.ops, &name).await {
                    Ok(outcomes) => replies.push((job.reply, Ok(outcomes))),
                    Err(e) => {
                        // The script may have stopped part-way with its savepoint open, or may
                        // never have run (an error before any SQL): undo what ran, if anything.
                        let undo = format!("ROLLBACK TO {name}; RELEASE {name}");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(undo))
                            .execute(&mut *tx)
                            .await;
                        replies.push((job.reply, Err(e)));
                    }
                }
                continue;
            }
            let mut savepoint = tx.begin().await?;
            match store.execute(&mut savepoint, job.ops).await {
                Ok(outcomes) => {
                    savepoint.commit().await?;
                    replies.push((job.reply, Ok(outcomes)));
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    replies.push((job.reply, Err(e)));
                }
            }
        }
        tx.commit().await
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

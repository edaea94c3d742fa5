//! SQLite: the audit records of reads, appended by a thread of their own.
//!
//! Why: every read is answered only after its AuditEvent is committed. Through the group-commit
//! task each such commit cost six statements, each handed from a tokio worker to sqlx's SQLite
//! worker thread and back, so under read load the writer spent its time waking threads rather
//! than writing rows (`docs/benchmarks.md`, "Trust"). Here one OS thread owns a synchronous
//! rusqlite connection to the same file and runs a whole batch — every record queued while the
//! previous batch committed — in one transaction with cached statements, no hand-off between
//! statements.
//!
//! One writer at a time: SQLite allows one, and two connections racing for it would meet
//! SQLITE_BUSY and sleep. The appender and the group-commit task therefore share a
//! [`WritePermit`]; each holds it for a whole transaction, so the chain head each reads is the
//! one the other last wrote, and the chain stays a line.
//!
//! Writes' own audit records are not sent here: they ride in the write's transaction (group
//! commit), so a write is never committed without its record.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::audit::chain_hash;
use crate::model::AuditRecord;

/// The right to write to the SQLite file, held for one transaction at a time.
pub(crate) type WritePermit = Arc<tokio::sync::Mutex<()>>;

/// Records taken into one transaction at most: bounds the first caller's wait.
const MAX_BATCH_RECORDS: usize = 1024;

/// Under load (the last batch held more than one caller's records), how long the thread waits
/// for more records before committing. A commit's cost is mostly its fixed part (the head
/// read, the WAL frames of the same few pages, the syscalls), so at thousands of reads a second
/// a slightly later, larger batch costs each record far less CPU, and every waiting read less
/// time in the queue than it adds. A lone read (the last batch was one caller) never waits.
const LINGER: Duration = Duration::from_micros(500);

/// How often the thread wakes without work to see whether the store is gone.
const IDLE_POLL: Duration = Duration::from_secs(1);

type Reply = oneshot::Sender<Result<(), StoreError>>;

struct Job {
    records: Vec<AuditRecord>,
    reply: Reply,
}

/// The handle callers submit to; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AuditAppender {
    jobs: SyncSender<Job>,
}

impl AuditAppender {
    /// Opens a connection of its own to the SQLite database at `path` (which must exist, its
    /// schema migrated) and starts the appender thread.
    pub(crate) fn start(path: &str, permit: WritePermit) -> Result<AuditAppender, StoreError> {
        let conn = open(path).map_err(internal)?;
        let (jobs, rx) = mpsc::sync_channel(4096);
        std::thread::Builder::new()
            .name("smr-audit-appender".into())
            .spawn(move || run(conn, rx, permit))
            .map_err(|e| StoreError::Internal(format!("starting the audit appender: {e}")))?;
        Ok(AuditAppender { jobs })
    }

    /// Appends `records` to the chain; returns once they are committed.
    pub(crate) async fn append(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { records, reply };
        // The channel is bounded so a stalled disk pushes back on readers instead of growing
        // memory; a full channel is waited for off the async workers.
        let job = match self.jobs.try_send(job) {
            Ok(()) => None,
            Err(mpsc::TrySendError::Full(job)) => Some(job),
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(gone()),
        };
        if let Some(job) = job {
            let jobs = self.jobs.clone();
            tokio::task::spawn_blocking(move || jobs.send(job))
                .await
                .map_err(|_| gone())?
                .map_err(|_| gone())?;
        }
        answer.await.map_err(|_| gone())?
    }
}

fn gone() -> StoreError {
    StoreError::Internal("the audit appender has stopped".into())
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(format!("audit append: {e}"))
}

/// The same durability as the store's writer (WAL, synchronous=NORMAL); a small page cache,
/// since the appender only ever touches the tails of the audit tables and a few index pages.
fn open(path: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -8192)?;
    // The checkpointer thread copies the WAL back, never a commit (see `checkpointer`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.set_prepared_statement_cache_capacity(8);
    Ok(conn)
}

fn run(mut conn: Connection, rx: Receiver<Job>, permit: WritePermit) {
    let mut busy = false;
    loop {
        let first = match rx.recv_timeout(IDLE_POLL) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            // Every handle is gone: the store was dropped.
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut records = first.records.len();
        let mut batch = vec![first];
        let linger_until = busy.then(|| Instant::now() + LINGER);
        while records < MAX_BATCH_RECORDS {
            let next = match linger_until {
                Some(until) => rx.recv_timeout(until.saturating_duration_since(Instant::now())),
                None => rx.try_recv().map_err(|_| RecvTimeoutError::Timeout),
            };
            match next {
                Ok(job) => {
                    records += job.records.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        busy = batch.len() > 1;
        let committed = {
            let _permit = permit.blocking_lock();
            append_batch(&mut conn, &batch)
        };
        if let Err(e) = &committed {
            tracing::error!(error = %e, "audit append failed; the batch's reads are refused");
        }
        for job in batch {
            let result = match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Internal(format!("audit append: {e}"))),
            };
            // A caller that gave up waiting is not an error of the batch.
            let _ = job.reply.send(result);
        }
    }
}

/// One transaction: read the head, chain and insert every record, write the head back.
fn append_batch(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (mut seq, mut hash): (i64, String) = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    {
        let mut log = tx.prepare_cached(
            "INSERT INTO audit_log (seq, id, recorded, agent_user, agent_org, purpose, outcome, \
             prev_hash, hash, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut patient =
            tx.prepare_cached("INSERT INTO audit_patient (patient_key, seq) VALUES (?1, ?2)")?;
        for record in batch.iter().flat_map(|job| &job.records) {
            seq += 1;
            let next = chain_hash(&hash, &record.body);
            log.execute(params![
                seq,
                record.id,
                record.recorded,
                record.agent_user,
                record.agent_org,
                record.purpose,
                record.outcome,
                hash,
                next,
                record.body,
            ])?;
            hash = next;
            let mut patients: Vec<&String> = record.patients.iter().collect();
            patients.sort();
            patients.dedup();
            for p in patients {
                patient.execute(params![p, seq])?;
            }
        }
    }
    tx.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![seq, hash])?;
    tx.commit()
}

//! SQLite: WAL checkpoints on a thread of their own, off every commit's path.
//!
//! Why: with automatic checkpoints, the connection whose commit takes the WAL past its limit
//! runs the checkpoint, fsyncs included, before its callers hear back. Under a steady stream of
//! reads a checkpoint can never finish (some reader always holds an older snapshot), so the WAL
//! stays past the limit and *every* commit retried it: reads, each waiting for its audit
//! record's commit, queued behind checkpoint I/O (`docs/benchmarks.md`, "Trust"). Here the
//! writers never checkpoint (`wal_autocheckpoint = 0`); this thread runs a PASSIVE checkpoint
//! (it never blocks readers or writers) every [`INTERVAL`], copying back whatever no reader
//! still needs. The WAL is restarted from its beginning by the next writer once every frame is
//! copied back, as SQLite does by itself.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// How often the WAL is copied back into the database file.
const INTERVAL: Duration = Duration::from_millis(250);

/// Dropping the last handle stops the thread.
#[derive(Debug, Clone)]
pub(crate) struct Checkpointer {
    _stop: SyncSender<()>,
}

impl Checkpointer {
    pub(crate) fn start(path: &str) -> Result<Checkpointer, StoreError> {
        let conn = open(path)
            .map_err(|e| StoreError::Internal(format!("opening the checkpointer: {e}")))?;
        let (stop, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("smr-checkpointer".into())
            .spawn(move || run(&conn, &rx))
            .map_err(|e| StoreError::Internal(format!("starting the checkpointer: {e}")))?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn open(path: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(1))?;
    Ok(conn)
}

fn run(conn: &Connection, stop: &Receiver<()>) {
    loop {
        match stop.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            // Every handle is gone: the store was dropped.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match done {
            Ok((frames, copied)) => {
                tracing::trace!(frames, copied, "WAL checkpoint");
            }
            // Busy (another checkpoint, or a writer restarting the WAL): next time.
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint skipped"),
        }
    }
}

//! Connecting to a database engine and preparing it: pools, per-engine settings, migrations.
//!
//! SQLite gets two pools over one file in WAL mode: a single-connection writer (SQLite allows
//! one writer at a time; queueing in the pool is cheaper and fairer than SQLITE_BUSY retries)
//! and a reader pool whose connections see every committed write (read-your-writes).
//! PostgreSQL gets one pool for both.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::StoreError;
use crate::audit_appender::{AuditAppender, WritePermit};
use crate::changes::ChangeCounters;
use crate::checkpointer::Checkpointer;
use crate::group_commit::WriteQueue;
use crate::view_cache::ViewCache;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The store: cheap to clone (pools are reference-counted).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) engine: Engine,
    pub(crate) writer: AnyPool,
    pub(crate) reader: AnyPool,
    /// SQLite only: the group-commit writer every write goes through.
    pub(crate) queue: Option<WriteQueue>,
    /// PostgreSQL only: batches audit records of reads into shared transactions.
    pub(crate) audit_queue: Option<WriteQueue>,
    /// SQLite on a file: appends the audit records of reads on a connection of its own.
    pub(crate) audit_appender: Option<AuditAppender>,
    /// SQLite on a file: runs the WAL checkpoints (commits do not).
    pub(crate) checkpointer: Option<Checkpointer>,
    /// SQLite only: whoever writes to the file holds it for the whole transaction (the
    /// group-commit writer, the audit appender, the dm+d import, consumer positions).
    pub(crate) write_permit: Option<WritePermit>,
    /// Bumped by every committed write (see `changes`).
    pub(crate) changes: Arc<ChangeCounters>,
    /// Single patients' views and existence, on SQLite (see `view_cache`).
    pub(crate) views: Arc<ViewCache>,
}

impl Store {
    /// How many committed writes have touched resources of `res_type`, when this process
    /// sees every write to the store: on the embedded SQLite store, which one `smr serve`
    /// owns. `None` on PostgreSQL, where other SMR processes may write, so a cache keyed on
    /// this counter would go stale unseen. For caches: take the count *before* reading, keep
    /// the result with it, and trust the result only while the count is unchanged.
    pub fn change_count(&self, res_type: &str) -> Option<u64> {
        match self.engine {
            Engine::Sqlite => Some(self.changes.get(res_type)),
            Engine::Postgres => None,
        }
    }

    /// Opens (creating if needed) the database at `url` — `sqlite://path/to/file.db` or
    /// `postgres://…` — and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let store = if url.starts_with("sqlite:") {
            open_sqlite(url).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            open_postgres(url).await?
        } else {
            return Err(StoreError::BadRequest(format!(
                "unsupported database URL '{url}': use sqlite://FILE or postgres://…"
            )));
        };
        let migrator = match store.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        // Migrations run before the writer task takes the single SQLite writer connection for
        // its batches; both use the pool, so they simply queue behind each other.
        migrator.run(&store.writer).await?;
        let mut store = store;
        if let (Some(path), Some(permit)) = (sqlite_file(url), &store.write_permit) {
            store.audit_appender = Some(AuditAppender::start(path, permit.clone())?);
            store.checkpointer = Some(Checkpointer::start(path)?);
            // The checkpointer copies the WAL back; commits no longer do (see `checkpointer`).
            let mut writer = store.writer.acquire().await?;
            writer.execute(SQLITE_CHECKPOINTER_PRAGMA).await?;
        }
        Ok(store)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Whether the database answers a query within `within`: a connection from the reader
    /// pool (the one every read waits on) and `SELECT 1`. An exhausted pool or an unreachable
    /// server fails it, so a health check reports what clients would meet.
    pub async fn ping(&self, within: Duration) -> Result<(), StoreError> {
        let check = async {
            let mut conn = self.reader.acquire().await?;
            conn.execute("SELECT 1").await?;
            Ok::<(), sqlx::Error>(())
        };
        match tokio::time::timeout(within, check).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Internal(format!(
                "the database did not answer within {} ms",
                within.as_millis()
            ))),
        }
    }

    /// Waits for the right to write (SQLite: the one writer at a time); `None` on PostgreSQL,
    /// whose writers need no such turn.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.write_permit {
            Some(permit) => Some(permit.clone().lock_owned().await),
            None => None,
        }
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// The SQLite writer connection's settings, public so the raw-insert ceiling benchmark
/// (`smr-bench --scenario raw-insert`) measures with exactly these.
pub const SQLITE_WRITER_PRAGMAS: &[&str] = &[
    // WAL lets readers run beside the writer; synchronous=NORMAL is durable across
    // application crashes (a power cut may lose the last commits, never corrupt).
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA cache_size = -131072",
    // Checkpoint in larger, rarer steps (64 MiB of WAL rather than 4 MiB): the checkpoint's
    // random writes, not the WAL appends, dominate a create's I/O. On a file store the
    // checkpointer thread then takes over ([`SQLITE_CHECKPOINTER_PRAGMA`]).
    "PRAGMA wal_autocheckpoint = 16384",
    "PRAGMA temp_store = MEMORY",
];

/// Set on the writer once the checkpointer thread runs (see `checkpointer`): commits never
/// checkpoint.
pub const SQLITE_CHECKPOINTER_PRAGMA: &str = "PRAGMA wal_autocheckpoint = 0";

async fn open_sqlite(url: &str) -> Result<Store, StoreError> {
    // `mode=rwc` creates the file on first start: the embedded store needs no setup.
    let url = if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    };
    let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
    let writer = AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                for pragma in SQLITE_WRITER_PRAGMAS {
                    conn.execute(*pragma).await?;
                }
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await?;
    let readers = std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .max(4) as u32;
    let reader = AnyPoolOptions::new()
        .max_connections(readers)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA cache_size = -32768").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    let mut store = Store {
        engine: Engine::Sqlite,
        writer,
        reader,
        queue: None,
        audit_queue: None,
        audit_appender: None,
        checkpointer: None,
        write_permit: Some(WritePermit::default()),
        changes: Arc::new(ChangeCounters::new()),
        views: Arc::default(),
    };
    store.queue = Some(WriteQueue::start(store.clone()));
    Ok(store)
}

/// The file a `sqlite:` URL names, when the audit appender can open it too: not an in-memory
/// database (a second connection would see another one), and not a percent-encoded path
/// (left to sqlx alone rather than decoded twice). Otherwise reads' audit records go through
/// the group-commit writer like everything else.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    };
    let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (!in_memory && !path.contains('%')).then_some(path)
}

/// The longest a statement may run on PostgreSQL unless the database URL sets its own
/// `statement_timeout` (e.g. `?options=-c%20statement_timeout%3D5s`). It bounds what one
/// request can take from the pool: shorter than the HTTP time limit (30 s by default), so the
/// client hears 503 from the database's cancellation rather than a bare time-out.
///
/// It is also what ends the query of a client that went away. When a client disconnects,
/// axum drops the handler's future, and with it the sqlx query future; sqlx does not send
/// PostgreSQL a cancel request for a dropped query: the statement runs on, and the connection
/// goes back to the pool only once it has drained the results (sqlx waits for
/// `ReadyForQuery` before reusing it). So a dropped client's query lasts at most this long.
const SET_STATEMENT_TIMEOUT: &str = "SET statement_timeout = '15s'";

/// Whether the PostgreSQL URL already chooses a statement timeout (`options=-c
/// statement_timeout=…`; the name itself is never percent-encoded).
fn url_sets_statement_timeout(url: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, query)| query.to_ascii_lowercase().contains("statement_timeout"))
}

async fn open_postgres(url: &str) -> Result<Store, StoreError> {
    let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
    let set_timeout = !url_sets_statement_timeout(url);
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if set_timeout {
                    conn.execute(SET_STATEMENT_TIMEOUT).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    let mut store = Store {
        engine: Engine::Postgres,
        writer: pool.clone(),
        reader: pool,
        queue: None,
        audit_queue: None,
        audit_appender: None,
        checkpointer: None,
        write_permit: None,
        changes: Arc::new(ChangeCounters::new()),
        views: Arc::default(),
    };
    store.audit_queue = Some(WriteQueue::start(store.clone()));
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_of_urls() {
        assert_eq!(
            sqlite_file("sqlite://data/smr.db?mode=rwc"),
            Some("data/smr.db")
        );
        assert_eq!(sqlite_file("sqlite:/tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("sqlite://a%20b.db"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }

    #[test]
    fn a_url_may_choose_its_own_statement_timeout() {
        assert!(!url_sets_statement_timeout("postgres://h/db"));
        assert!(url_sets_statement_timeout(
            "postgres://h/db?options=-c%20statement_timeout%3D5s"
        ));
        assert!(url_sets_statement_timeout(
            "postgres://h/db?options=-c statement_timeout=5s"
        ));
    }

    /// Every pooled PostgreSQL connection carries the statement timeout, and a statement it
    /// cancels is reported as `Unavailable` (a 503), not as an internal error.
    #[tokio::test]
    async fn postgres_statements_are_bounded_and_cancellation_is_unavailable() {
        let Some(url) = std::env::var("SMR_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
            return;
        };
        sqlx::any::install_default_drivers();
        // No migrations: only the pool's settings are under test.
        let store = open_postgres(&url).await.expect("connect");
        let mut conn = store.reader.acquire().await.expect("connection");
        let row = sqlx::query("SELECT current_setting('statement_timeout')")
            .fetch_one(&mut *conn)
            .await
            .expect("show");
        assert_eq!(sqlx::Row::get::<String, _>(&row, 0), "15s");
        conn.execute("SET statement_timeout = '50ms'")
            .await
            .expect("set");
        let error = sqlx::query("SELECT pg_sleep(2)")
            .execute(&mut *conn)
            .await
            .expect_err("cancelled by the timeout");
        assert!(
            matches!(StoreError::from(error), StoreError::Unavailable(_)),
            "57014 is unavailability"
        );
        drop(conn);
        store.close().await;
    }
}

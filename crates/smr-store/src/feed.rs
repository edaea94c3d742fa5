//! The change feed: every version the store writes appends a row to `change_log` in the same
//! transaction (see `write::push_version`), and consumers read the rows in order from a
//! position they keep in `change_consumer`. A consumer processes a batch, then saves the
//! position after it: a crash between the two replays the batch, so processing must be
//! idempotent, and nothing committed is ever skipped.
//!
//! Order and completeness differ per engine. SQLite has one writer, so rows become visible in
//! `seq` order and a position is a `seq`. PostgreSQL transactions take `seq` values in one
//! order and commit in another; a reader therefore takes only rows of transactions older than
//! the oldest of this database still running (see `PG_SETTLED`), which can gain no more
//! rows, in `(tx, seq)` order, and a position is that pair.

use sqlx::Row;
use tokio::sync::watch;

use crate::sql::Sql;
use crate::{Engine, Store, StoreError};

/// Where a consumer has got to: every change at or before it has been processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedPosition {
    pub tx: i64,
    pub seq: i64,
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub position: FeedPosition,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    /// The owning patient's id, or `Type/id` for a resource outside any patient's record.
    pub patient_key: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// Microseconds since the epoch.
    pub changed_at: i64,
}

/// Rows of transactions that can gain no more rows: below the oldest transaction still in
/// progress when the statement's snapshot was taken, ignoring those that `pg_stat_activity`
/// shows belong to another database (xids are cluster-wide, and another database's long
/// transaction must not hold this feed back). A transaction that ends between the snapshot
/// and the read of `pg_stat_activity` is not ignored: the bound is only ever too low, which
/// delays a change to the next read and never skips it. (`backend_xid` is a 32-bit xid; the
/// snapshot's are 64-bit, so they are compared on their low 32 bits.)
const PG_SETTLED: &str = " AND tx < COALESCE(\
    (SELECT MIN(v::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) v \
     WHERE (v::text::bigint & 4294967295) NOT IN (\
       SELECT a.backend_xid::text::bigint FROM pg_stat_activity a \
       WHERE a.datname IS DISTINCT FROM current_database() AND a.backend_xid IS NOT NULL)), \
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint)";

impl Store {
    /// Up to `limit` committed changes after `after`, in feed order.
    pub async fn changes_after(
        &self,
        after: FeedPosition,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        // Two index ranges, not `tx > X OR (tx = X AND seq > Y)`: neither engine turns that OR
        // (nor the row value `(tx, seq) > (X, Y)`) into one range of `change_log_order`, and
        // SQLite then walked the whole feed on every call — on SQLite `tx` is always 0, so
        // the cost grew with the feed's length (9 ms at 50,000 changes; 42 µs this way).
        const COLUMNS: &str = "tx, seq, res_type, id, version, patient_key, action, changed_at";
        let settled = if self.engine() == Engine::Postgres {
            PG_SETTLED
        } else {
            ""
        };
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM (SELECT * FROM (SELECT {COLUMNS} FROM change_log WHERE tx = "
        ));
        // Literals where SQLite would re-prepare on every binding (SMR's own numbers, never
        // client text): a bound LIMIT is read while preparing; and a bound `tx = ?` that the
        // chosen index does not use is planned with a guess that depends on whether the value
        // is 0 or 1 — on SQLite `tx` is always 0, so each poll, run by every consumer,
        // re-parsed its three SELECTs (found with gdb on `sqlite3VdbeReprepareOnBind`).
        // PostgreSQL keeps `tx` bound: there it changes with every transaction.
        let sqlite = self.engine() == Engine::Sqlite;
        let push_tx = |sql: &mut Sql, tx: i64| {
            if sqlite {
                sql.push(&tx.to_string());
            } else {
                sql.int(tx);
            }
        };
        push_tx(&mut sql, after.tx);
        sql.push(" AND seq > ")
            .int(after.seq)
            .push(settled)
            .push(&format!(" ORDER BY seq LIMIT {limit}"))
            .push(&format!(
                ") AS same_tx UNION ALL SELECT * FROM (SELECT {COLUMNS} FROM change_log WHERE tx > "
            ));
        push_tx(&mut sql, after.tx);
        sql.push(settled)
            .push(&format!(" ORDER BY tx, seq LIMIT {limit}"))
            .push(&format!(
                ") AS later_tx) AS feed ORDER BY tx, seq LIMIT {limit}"
            ));
        let mut conn = self.reader.acquire().await?;
        let rows = sql.into_query().fetch_all(&mut *conn).await?;
        Ok(rows
            .iter()
            .map(|row| Change {
                position: FeedPosition {
                    tx: row.get(0),
                    seq: row.get(1),
                },
                res_type: row.get(2),
                id: row.get(3),
                version: row.get(4),
                patient_key: row.get(5),
                action: row.get(6),
                changed_at: row.get(7),
            })
            .collect())
    }

    /// The feed's current end: a consumer that starts here sees only later changes. One
    /// indexed read of the last settled row, however long the feed.
    pub async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        let mut sql = Sql::new("SELECT tx, seq FROM change_log WHERE 1 = 1");
        if self.engine() == Engine::Postgres {
            sql.push(PG_SETTLED);
        }
        sql.push(" ORDER BY tx DESC, seq DESC LIMIT 1");
        let mut conn = self.reader.acquire().await?;
        let row = sql.into_query().fetch_optional(&mut *conn).await?;
        Ok(row.map_or_else(FeedPosition::default, |row| FeedPosition {
            tx: row.get(0),
            seq: row.get(1),
        }))
    }

    /// Where consumer `name` has got to (the feed's start when it has never saved one).
    pub async fn consumer_position(&self, name: &str) -> Result<FeedPosition, StoreError> {
        let mut sql = Sql::new("SELECT tx, seq FROM change_consumer WHERE name = ");
        sql.text(name);
        let mut conn = self.reader.acquire().await?;
        let row = sql.into_query().fetch_optional(&mut *conn).await?;
        Ok(row.map_or_else(FeedPosition::default, |row| FeedPosition {
            tx: row.get(0),
            seq: row.get(1),
        }))
    }

    /// Saves consumer `name`'s position. Positions only move forward: an older one (another
    /// node's slower copy of the consumer) does not overwrite a newer one.
    pub async fn save_consumer_position(
        &self,
        name: &str,
        position: FeedPosition,
    ) -> Result<(), StoreError> {
        let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
        let mut sql = Sql::new("INSERT INTO change_consumer (name, tx, seq, updated_at) VALUES (");
        sql.text(name)
            .push(", ")
            .int(position.tx)
            .push(", ")
            .int(position.seq)
            .push(", ")
            .int(now)
            .push(
                ") ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, seq = excluded.seq, \
                 updated_at = excluded.updated_at \
                 WHERE change_consumer.tx < excluded.tx \
                 OR (change_consumer.tx = excluded.tx AND change_consumer.seq < excluded.seq)",
            );
        let _turn = self.write_turn().await;
        let mut conn = self.writer.acquire().await?;
        sql.into_query().execute(&mut *conn).await?;
        Ok(())
    }

    /// Wakes when a write commits in this process (the value counts commits). Other nodes'
    /// commits are not signalled: consumers also poll.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.changes.commits()
    }
}

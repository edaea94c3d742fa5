//! The imported dm+d release: replaced whole, in one transaction, and read back whole.
//!
//! The store keeps rows, not a dictionary: `smr-dmd` turns a release into rows and back, so
//! storage stays ignorant of what a VMP is.

use sqlx::{Connection, Row};

use crate::audit::{append, read_head, write_head};
use crate::model::AuditRecord;
use crate::sql::Sql;
use crate::{Store, StoreError};

/// One row of `dmd_concept`: a concept (with its JSON body), or a previous code (no body)
/// pointing at the concept that now carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmdRow {
    pub code: String,
    /// `vtm`, `vmp`, `amp`, `vmpp` or `ampp`.
    pub level: String,
    pub name: String,
    /// The concept's JSON; `None` for a previous code.
    pub body: Option<String>,
    /// The code itself for a concept, the current code for a previous code.
    pub current_code: String,
}

/// A release as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmdRelease {
    /// The NHSBSA release identifier (e.g. `3010419`).
    pub release: String,
    /// RFC 3339 time of the import (set by the store on write).
    pub imported_at: String,
    /// JSON counts per level, for reports.
    pub counts: String,
    pub rows: Vec<DmdRow>,
}

/// Rows per multi-row INSERT: 5 binds each, well under SQLite's 32,766 and PostgreSQL's
/// 65,535 bind limits, and few enough round trips that a full release (~1.5 M rows) loads in
/// seconds.
const ROWS_PER_INSERT: usize = 1_000;

impl Store {
    /// Replaces the imported dm+d release with `release` (its `imported_at` is set to now),
    /// and appends `audit` in the same transaction: all of it, or — on any error — none, the
    /// previous release intact. On SQLite the transaction takes the single writer connection
    /// (waiting for the group-commit writer's batch in hand), so other writes queue behind
    /// the import rather than interleave with it.
    pub async fn replace_dmd_release(
        &self,
        release: &DmdRelease,
        audit: Option<AuditRecord>,
    ) -> Result<(), StoreError> {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let _turn = self.write_turn().await;
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM dmd_concept")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM dmd_release")
            .execute(&mut *tx)
            .await?;
        for chunk in release.rows.chunks(ROWS_PER_INSERT) {
            let mut sql =
                Sql::new("INSERT INTO dmd_concept (code, level, name, body, current_code) VALUES ");
            for (n, row) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.push("(")
                    .text(row.code.clone())
                    .push(", ")
                    .text(row.level.clone())
                    .push(", ")
                    .text(row.name.clone())
                    .push(", ")
                    .opt_text(row.body.clone())
                    .push(", ")
                    .text(row.current_code.clone())
                    .push(")");
            }
            sql.into_query().execute(&mut *tx).await?;
        }
        let mut sql =
            Sql::new("INSERT INTO dmd_release (id, release, imported_at, counts) VALUES (1, ");
        sql.text(release.release.clone())
            .push(", ")
            .text(now)
            .push(", ")
            .text(release.counts.clone())
            .push(")");
        sql.into_query().execute(&mut *tx).await?;
        if let Some(record) = audit {
            let mut head = read_head(self.engine, &mut tx).await?;
            append(&mut tx, &mut head, &[record]).await?;
            write_head(&mut tx, &head).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The imported release, or `None` when none has been imported.
    pub async fn load_dmd(&self) -> Result<Option<DmdRelease>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let Some(head) =
            sqlx::query("SELECT release, imported_at, counts FROM dmd_release WHERE id = 1")
                .fetch_optional(&mut *conn)
                .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query("SELECT code, level, name, body, current_code FROM dmd_concept")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| DmdRow {
                code: r.get(0),
                level: r.get(1),
                name: r.get(2),
                body: r.get(3),
                current_code: r.get(4),
            })
            .collect();
        Ok(Some(DmdRelease {
            release: head.get(0),
            imported_at: head.get(1),
            counts: head.get(2),
            rows,
        }))
    }

    /// The release identifier and import time of the imported release, if any (cheap: for
    /// status lines and deciding whether a cached dictionary is current).
    pub async fn dmd_release_id(&self) -> Result<Option<(String, String)>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let row = sqlx::query("SELECT release, imported_at FROM dmd_release WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }
}

//! PostgreSQL layouts: the plain schema, or every patient-keyed table hash-partitioned by
//! `patient_key` (issue 13).
//!
//! Why partitioning: a national deployment distributes SMR on Citus by patient, and Citus
//! refuses what a patient-keyed table cannot do once split (a primary key or unique
//! constraint without the distribution column; a foreign key across shards). Citus is not in
//! every machine's package sources, so the same layout is built with PostgreSQL's own hash
//! partitioning, which has the same rules for keys and constraints: a store that runs
//! (and a test suite that passes) on the partitioned layout keeps the schema distributable.
//! `docs/scale.md` gives the Citus commands for the same tables.
//!
//! Invariants:
//! - Every table with a `patient_key` column is either in [`PATIENT_TABLES`] (partitioned,
//!   and distributed on Citus, colocated) or in [`NOT_BY_PATIENT`] with the reason; the
//!   catalog check [`Store::unclassified_patient_tables`] keeps a new migration honest.
//! - Partitioning moves the rows it finds, in one transaction: a failure leaves the plain
//!   layout as it was. A table already partitioned is left alone, so it can be run twice.

use sqlx::Row;

use crate::engine::Engine;
use crate::{Store, StoreError};

/// The tables of patients' records: distributed by `patient_key`, colocated, so every read
/// and write of one patient's record stays on one shard.
pub const PATIENT_TABLES: &[&str] = &[
    "resources",
    "resource_versions",
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_reference",
    "idx_number",
    "idx_quantity",
    "idx_uri",
    "care_relationship",
    "consent_restriction",
    "audit_patient",
];

/// Tables that carry a `patient_key` but are not split by it, and why.
pub const NOT_BY_PATIENT: &[(&str, &str)] = &[
    (
        "resource_locator",
        "the lookup from (type, id) to the owning patient: keyed by id so a read by id finds \
         its shard in one step (Citus: distributed by id)",
    ),
    (
        "change_log",
        "the change feed is read in commit order across all patients (Citus: one log per \
         node, see docs/scale.md)",
    ),
];

/// How many partitions [`Store::partition_by_patient`] makes unless told otherwise.
pub const DEFAULT_PARTITIONS: u32 = 16;

impl Store {
    /// Turns every table of [`PATIENT_TABLES`] into a table hash-partitioned by `patient_key`
    /// into `partitions` parts (2 to 1024), keeping its columns, keys, indexes and rows.
    /// PostgreSQL only; tables already partitioned are left as they are.
    pub async fn partition_by_patient(&self, partitions: u32) -> Result<(), StoreError> {
        if self.engine != Engine::Postgres {
            return Err(StoreError::BadRequest(
                "partitioning by patient is a PostgreSQL layout; the embedded store is one file"
                    .into(),
            ));
        }
        if !(2..=1024).contains(&partitions) {
            return Err(StoreError::BadRequest(format!(
                "{partitions} partitions: choose 2 to 1024"
            )));
        }
        let mut tx = self.writer.begin().await?;
        for table in PATIENT_TABLES {
            let partitioned = sqlx::query(
                "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid \
                 WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace",
            )
            .bind(*table)
            .fetch_one(&mut *tx)
            .await?
            .get::<i64, _>(0)
                > 0;
            if partitioned {
                continue;
            }
            // Its keys and indexes, to be made again under the same names (so a later
            // migration that names one finds it); made after the rows are copied, too.
            let constraints: Vec<(String, String)> = sqlx::query(
                "SELECT k.conname::text, pg_get_constraintdef(k.oid) FROM pg_constraint k \
                 JOIN pg_class c ON c.oid = k.conrelid WHERE c.relname = $1 \
                 AND c.relnamespace = current_schema()::regnamespace AND k.contype IN ('p', 'u') \
                 ORDER BY k.contype, k.conname",
            )
            .bind(*table)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
            let indexes: Vec<String> = sqlx::query(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname = $1 \
                 AND c.relnamespace = current_schema()::regnamespace \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) \
                 ORDER BY i.indexrelid",
            )
            .bind(*table)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
            // Table names come from the constant above, never from input; the definitions
            // from PostgreSQL's own catalog.
            let plain = format!("{table}_unpartitioned");
            let mut statements = vec![
                format!("ALTER TABLE {table} RENAME TO {plain}"),
                format!(
                    "CREATE TABLE {table} (LIKE {plain} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY \
                     INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS) \
                     PARTITION BY HASH (patient_key)"
                ),
            ];
            statements.extend((0..partitions).map(|r| {
                format!(
                    "CREATE TABLE {table}_p{r} PARTITION OF {table} \
                     FOR VALUES WITH (MODULUS {partitions}, REMAINDER {r})"
                )
            }));
            statements.push(format!("INSERT INTO {table} SELECT * FROM {plain}"));
            statements.push(format!("DROP TABLE {plain}"));
            statements.extend(
                constraints
                    .iter()
                    .map(|(name, def)| format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}")),
            );
            statements.extend(indexes);
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The patient-keyed tables as PostgreSQL holds them: each of [`PATIENT_TABLES`] with its
    /// number of partitions (0: not partitioned).
    pub async fn patient_table_partitions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in PATIENT_TABLES {
            let parts = sqlx::query(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent \
                 WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace",
            )
            .bind(*table)
            .fetch_one(&self.reader)
            .await?
            .get::<i64, _>(0);
            out.push(((*table).to_owned(), parts));
        }
        Ok(out)
    }

    /// Tables of the schema with a `patient_key` column that are in neither
    /// [`PATIENT_TABLES`] nor [`NOT_BY_PATIENT`] (partitions themselves aside): a table a
    /// migration added without deciding how it distributes. PostgreSQL only.
    pub async fn unclassified_patient_tables(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.relname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE a.attname = 'patient_key' AND NOT a.attisdropped AND c.relkind IN ('r', 'p') \
             AND NOT c.relispartition AND c.relnamespace = current_schema()::regnamespace \
             ORDER BY 1",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<String, _>(0))
            .filter(|t| {
                !PATIENT_TABLES.contains(&t.as_str())
                    && !NOT_BY_PATIENT.iter().any(|(name, _)| name == t)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CITUS_SCRIPT: &str = include_str!("../../../scripts/citus/distribute.sql");

    /// The Citus script distributes exactly the patient tables, colocated, and keeps the
    /// tables that are not split by patient off that list.
    #[test]
    fn the_citus_script_follows_the_layout() {
        let distributed: Vec<&str> = CITUS_SCRIPT
            .lines()
            .filter_map(|l| l.strip_prefix("SELECT create_distributed_table('"))
            .filter(|l| l.contains("'patient_key'"))
            .filter_map(|l| l.split('\'').next())
            .collect();
        assert_eq!(distributed, PATIENT_TABLES, "scripts/citus/distribute.sql");
        for (table, _) in NOT_BY_PATIENT {
            assert!(
                CITUS_SCRIPT.contains(&format!("'{table}'")),
                "the Citus script says where {table} goes"
            );
        }
    }
}

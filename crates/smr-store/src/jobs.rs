//! Long-running jobs that are not change-feed consumers: their saved state (`job_state`), and
//! the keyset walk over patients they need (e.g. the safety review of every record after the
//! bundled rules change, which must reach every patient with medicines, not only those whose
//! entries change).

use sqlx::Row;

use crate::sql::Sql;
use crate::{Store, StoreError};

impl Store {
    /// Job `name`'s saved state, as the job wrote it (`None` when it has never saved one).
    pub async fn job_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut sql = Sql::new("SELECT state FROM job_state WHERE name = ");
        sql.text(name);
        let mut conn = self.reader.acquire().await?;
        let row = sql.into_query().fetch_optional(&mut *conn).await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Saves job `name`'s state, replacing what it saved before.
    pub async fn save_job_state(&self, name: &str, state: &str) -> Result<(), StoreError> {
        let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
        let mut sql = Sql::new("INSERT INTO job_state (name, state, updated_at) VALUES (");
        sql.text(name)
            .push(", ")
            .text(state)
            .push(", ")
            .int(now)
            .push(
                ") ON CONFLICT (name) DO UPDATE SET state = excluded.state, \
                 updated_at = excluded.updated_at",
            );
        let _turn = self.write_turn().await;
        let mut conn = self.writer.acquire().await?;
        sql.into_query().execute(&mut *conn).await?;
        Ok(())
    }

    /// Up to `limit` patients, in key order after `after`, with at least one current
    /// (non-deleted) resource of one of `types` in their record. One walk of the primary key
    /// `(patient_key, res_type, id)`, so a job can page through millions of patients and
    /// resume from the last key it finished. Shared resources (keys `Type/id`) are not patients.
    pub async fn patients_with_types(
        &self,
        types: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        if types.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT DISTINCT patient_key FROM resources WHERE deleted = 0");
        if let Some(after) = after {
            sql.push(" AND patient_key > ").text(after);
        }
        sql.push(" AND res_type IN (");
        for (i, ty) in types.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.text(*ty);
        }
        // A literal LIMIT (SMR's own number): a bound one makes SQLite re-prepare (see feed).
        sql.push(&format!(
            ") AND patient_key NOT LIKE '%/%' ORDER BY patient_key LIMIT {limit}"
        ));
        let mut conn = self.reader.acquire().await?;
        let rows = sql.into_query().fetch_all(&mut *conn).await?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }
}

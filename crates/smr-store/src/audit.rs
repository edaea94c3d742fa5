//! The audit trail: append-only, hash-chained AuditEvents.
//!
//! Each record stores the hash of its predecessor (`prev_hash`) and its own hash,
//! `SHA-256(prev_hash ‖ "\n" ‖ body)`; `audit_head` holds the last record's sequence number
//! and hash, so removing records from the end is detected as well as altering, removing or
//! reordering any before it. Records are appended by one writer at a time — on SQLite whoever
//! holds the write permit (the group-commit task, or the audit appender for reads' records), on
//! PostgreSQL whoever holds the head row's lock (`SELECT … FOR UPDATE`) — so the chain is a
//! line, never a tree. Reads are audited in batches: many callers' records
//! go into one transaction (see `group_commit`), and nobody's response is sent before their
//! record is committed.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::model::{AuditPage, AuditProblem, AuditQuery, AuditRecord, AuditVerification};
use crate::sql::Sql;
use crate::{Engine, Store, StoreError};

/// The hash a chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain's last record, as the writer holding it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainHead {
    seq: i64,
    hash: String,
    /// Whether records were appended since it was read (and the head row must be updated).
    moved: bool,
}

pub(crate) fn chain_hash(prev_hash: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the head, locking it on PostgreSQL until the transaction ends.
pub(crate) async fn read_head(
    engine: Engine,
    conn: &mut AnyConnection,
) -> Result<ChainHead, StoreError> {
    let text = match engine {
        Engine::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
        Engine::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
    };
    let row = sqlx::query(text).fetch_one(&mut *conn).await?;
    Ok(ChainHead {
        seq: row.get(0),
        hash: row.get(1),
        moved: false,
    })
}

/// Rows per multi-row INSERT: a batch of audit records costs two statements per chunk.
const ROWS_PER_INSERT: usize = 64;

/// Appends `records`, in order, after `head` (inside the caller's transaction): the hashes
/// are chained here, then the rows go in as multi-row INSERTs (two statements per 64
/// records, whatever the batch size: the writer's round trips, not the rows, are the cost).
pub(crate) async fn append(
    conn: &mut AnyConnection,
    head: &mut ChainHead,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    let mut chained = Vec::with_capacity(records.len());
    for record in records {
        let seq = head.seq + 1;
        let hash = chain_hash(&head.hash, &record.body);
        chained.push((
            seq,
            std::mem::replace(&mut head.hash, hash.clone()),
            hash,
            record,
        ));
        head.seq = seq;
    }
    for chunk in chained.chunks(ROWS_PER_INSERT) {
        let mut sql = Sql::new(
            "INSERT INTO audit_log (seq, id, recorded, agent_user, agent_org, purpose, outcome, \
             prev_hash, hash, body) VALUES ",
        );
        for (n, (seq, prev, hash, record)) in chunk.iter().enumerate() {
            if n > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .int(*seq)
                .push(", ")
                .text(record.id.clone())
                .push(", ")
                .int(record.recorded);
            sql.push(", ")
                .opt_text(record.agent_user.clone())
                .push(", ")
                .opt_text(record.agent_org.clone());
            sql.push(", ")
                .opt_text(record.purpose.clone())
                .push(", ")
                .text(record.outcome.clone());
            sql.push(", ")
                .text(prev.clone())
                .push(", ")
                .text(hash.clone())
                .push(", ")
                .text(record.body.clone())
                .push(")");
        }
        sql.into_query().execute(&mut *conn).await?;
        let mut rows: Vec<(&String, i64)> = Vec::new();
        for (seq, _, _, record) in chunk {
            let mut patients: Vec<&String> = record.patients.iter().collect();
            patients.sort();
            patients.dedup();
            rows.extend(patients.into_iter().map(|p| (p, *seq)));
        }
        for rows in rows.chunks(ROWS_PER_INSERT * 4) {
            let mut sql = Sql::new("INSERT INTO audit_patient (patient_key, seq) VALUES ");
            for (n, (p, seq)) in rows.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.push("(")
                    .text((*p).clone())
                    .push(", ")
                    .int(*seq)
                    .push(")");
            }
            sql.into_query().execute(&mut *conn).await?;
        }
    }
    if !records.is_empty() {
        head.moved = true;
    }
    Ok(())
}

/// Writes the head row back if records were appended.
pub(crate) async fn write_head(
    conn: &mut AnyConnection,
    head: &ChainHead,
) -> Result<(), StoreError> {
    if head.moved {
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(head.seq)
            .bind(head.hash.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Rows read per round trip by [`Store::verify_audit`]: memory stays flat however long the
/// chain is.
const VERIFY_PAGE: i64 = 2_000;

impl Store {
    /// Appends records to the chain; returns once they are committed. Concurrent callers'
    /// records share a transaction.
    pub async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(appender) = &self.audit_appender {
            return appender.append(records).await;
        }
        match (&self.queue, &self.audit_queue) {
            (Some(queue), _) | (None, Some(queue)) => queue.submit_audit(records).await,
            (None, None) => {
                let mut tx = self.writer.begin().await?;
                let mut head = read_head(self.engine, &mut tx).await?;
                append(&mut tx, &mut head, &records).await?;
                write_head(&mut tx, &head).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// One page of audit records, newest first.
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut sql = Sql::new("SELECT a.seq, a.body FROM audit_log a");
        if let Some(patient) = &q.patient {
            sql.push(" JOIN audit_patient p ON p.seq = a.seq AND p.patient_key = ")
                .text(patient.clone());
        }
        sql.push(" WHERE 1 = 1");
        if let Some(org) = &q.agent_org {
            sql.push(" AND a.agent_org = ").text(org.clone());
        }
        if q.break_glass_only {
            sql.push(" AND a.purpose = 'BTG'");
        }
        if let Some(t) = q.since {
            sql.push(" AND a.recorded >= ").int(t);
        }
        if let Some(t) = q.before {
            sql.push(" AND a.recorded < ").int(t);
        }
        if let Some(c) = q.cursor {
            sql.push(" AND a.seq < ").int(c);
        }
        sql.push(&format!(" ORDER BY a.seq DESC LIMIT {}", q.count + 1));
        let rows = sql.into_query().fetch_all(&mut *conn).await?;
        let mut records: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let next_cursor = if records.len() > q.count {
            records.truncate(q.count);
            records.last().map(|(seq, _)| *seq)
        } else {
            None
        };
        Ok(AuditPage {
            records,
            next_cursor,
        })
    }

    /// One audit record by id: its body and the patients it touched.
    pub async fn audit_event(&self, id: &str) -> Result<Option<(String, Vec<String>)>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let Some(row) = sqlx::query("SELECT seq, body FROM audit_log WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let seq: i64 = row.get(0);
        let patients = sqlx::query("SELECT patient_key FROM audit_patient WHERE seq = $1")
            .bind(seq)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        Ok(Some((row.get(1), patients)))
    }

    /// Checks the whole chain, in order, and names the first record that was altered,
    /// removed or reordered.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        let (head_seq, head_hash): (i64, String) = (head.get(0), head.get(1));
        let mut expected_prev = GENESIS_HASH.to_owned();
        let mut last_seq = 0i64;
        let mut count = 0i64;
        loop {
            // A literal LIMIT: a bound one makes SQLite re-prepare at every page (see feed).
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT seq, prev_hash, hash, body FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT {VERIFY_PAGE}"
            )))
            .bind(last_seq)
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq: i64 = row.get(0);
                let prev: String = row.get(1);
                let hash: String = row.get(2);
                let body: String = row.get(3);
                let broken = |problem| AuditVerification::Broken { seq, problem };
                if chain_hash(&prev, &body) != hash {
                    return Ok(broken(AuditProblem::Altered));
                }
                if prev != expected_prev {
                    return Ok(if seq != last_seq + 1 {
                        // Named by the first missing record.
                        AuditVerification::Broken {
                            seq: last_seq + 1,
                            problem: AuditProblem::Removed,
                        }
                    } else {
                        broken(AuditProblem::Reordered)
                    });
                }
                if seq != last_seq + 1 {
                    // Links check but the numbering skips: a record was renumbered.
                    return Ok(broken(AuditProblem::Reordered));
                }
                expected_prev = hash;
                last_seq = seq;
                count += 1;
            }
        }
        if last_seq != head_seq || expected_prev != head_hash {
            return Ok(if last_seq < head_seq {
                AuditVerification::Broken {
                    seq: last_seq + 1,
                    problem: AuditProblem::Truncated,
                }
            } else {
                AuditVerification::Broken {
                    seq: last_seq,
                    problem: AuditProblem::Altered,
                }
            });
        }
        Ok(AuditVerification::Intact { records: count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_predecessor_and_body() {
        let a = chain_hash(GENESIS_HASH, "{}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, chain_hash(GENESIS_HASH, "{ }"));
        assert_ne!(a, chain_hash(&a, "{}"));
        assert_eq!(a, chain_hash(GENESIS_HASH, "{}"));
    }
}

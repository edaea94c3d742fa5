//! The ceiling: the rows SMR stores for a MedicationRequest create, inserted raw with sqlx `Any`
//! over a pool set up exactly as `smr_store::engine` sets up its writer (SQLite: one connection
//! with `SQLITE_WRITER_PRAGMAS`, the store's checkpointer running beside it; PostgreSQL: a
//! pool of 16), one resource per transaction. The rows: the locator, current pointer, version
//! with body, index rows, the change-feed row and the write's audit record (chain head read,
//! record, patient link, head update), as the store's create writes them. Not included: the
//! Provenance an API create adds (its own resource rows). No HTTP, no JSON parsing, validation,
//! hashing or index extraction inside the timed region.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use smr_fhir::index::{IndexEntry, IndexValue};
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, ConnectOptions, Executor};

use crate::target::EngineArg;

/// Opens a pool on `url` with the store's writer settings.
pub async fn open_pool(engine: EngineArg, url: &str) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    match engine {
        EngineArg::Sqlite => {
            let url = if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            };
            let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
            Ok(AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // Exactly the store writer's settings; the store stays open beside
                        // this pool (its checkpointer thread copies the WAL back), so commits
                        // here never checkpoint either, as the store's do not.
                        for pragma in smr_store::engine::SQLITE_WRITER_PRAGMAS {
                            conn.execute(*pragma).await?;
                        }
                        conn.execute(smr_store::engine::SQLITE_CHECKPOINTER_PRAGMA)
                            .await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await?)
        }
        EngineArg::Postgres => {
            let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
            Ok(AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?)
        }
    }
}

/// Everything SMR writes for one create, computed ahead of the timed loop.
pub struct Rows {
    pub id: String,
    pub patient_key: String,
    pub last_updated: i64,
    /// The stored body: the JSON as received plus `id` and `meta`.
    pub body: String,
    pub entries: Vec<IndexEntry>,
}

impl Rows {
    pub fn of(mut resource: Value, patient_id: &str) -> Rows {
        let id = uuid::Uuid::new_v4().to_string();
        let last_updated = 1_800_000_000_000_000;
        resource["id"] = json!(id);
        resource["meta"] = json!({"versionId": "1", "lastUpdated": smr_fhir::datetime::format_instant(last_updated)});
        let entries = smr_fhir::extract::extract(&resource);
        let body = resource.to_string();
        Rows {
            id,
            patient_key: patient_id.to_owned(),
            last_updated,
            body,
            entries,
        }
    }
}

pub async fn create_body_table(pool: &AnyPool) -> anyhow::Result<()> {
    pool.execute("CREATE TABLE bench_raw (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .await?;
    Ok(())
}

/// One row, one transaction: the floor every store write sits on.
pub async fn insert_body(pool: &AnyPool, rows: &Rows) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO bench_raw (id, body) VALUES ($1, $2)")
        .bind(rows.id.clone())
        .bind(rows.body.clone())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The same rows and statements as `smr_store` for a create (locator, current pointer, version
/// with body, one multi-row INSERT per index table), in one transaction.
pub async fn insert_same_rows(
    engine: EngineArg,
    pool: &AnyPool,
    rows: Arc<Rows>,
) -> anyhow::Result<()> {
    let ty = "MedicationRequest".to_owned();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO resource_locator (res_type, id, patient_key) VALUES ($1, $2, $3)")
        .bind(ty.clone())
        .bind(rows.id.clone())
        .bind(rows.patient_key.clone())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO resources (patient_key, res_type, id, version, last_updated, deleted) \
         VALUES ($1, $2, $3, 1, $4, 0)",
    )
    .bind(rows.patient_key.clone())
    .bind(ty.clone())
    .bind(rows.id.clone())
    .bind(rows.last_updated)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO resource_versions \
         (patient_key, res_type, id, version, last_updated, deleted, method, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(rows.patient_key.clone())
    .bind(ty.clone())
    .bind(rows.id.clone())
    .bind(1_i64)
    .bind(rows.last_updated)
    .bind(0_i64)
    .bind("POST".to_owned())
    .bind(rows.body.clone())
    .execute(&mut *tx)
    .await?;
    for (table, columns) in [
        ("idx_token", "system, code, text"),
        ("idx_string", "normalized, exact"),
        ("idx_date", "low, high"),
        ("idx_reference", "target_type, target_id, url"),
        ("idx_number", "value"),
        ("idx_quantity", "value, system, code, unit"),
        ("idx_uri", "value"),
    ] {
        let chunk: Vec<&IndexEntry> = rows
            .entries
            .iter()
            .filter(|e| table_of(&e.value) == table)
            .collect();
        if chunk.is_empty() {
            continue;
        }
        let mut sql =
            format!("INSERT INTO {table} (patient_key, res_type, id, param, {columns}) VALUES ");
        let mut args: Vec<Arg> = Vec::new();
        for (n, entry) in chunk.iter().enumerate() {
            if n > 0 {
                sql.push_str(", ");
            }
            let mut values = vec![
                Arg::Text(Some(rows.patient_key.clone())),
                Arg::Text(Some(ty.clone())),
                Arg::Text(Some(rows.id.clone())),
                Arg::Text(Some(entry.param.clone())),
            ];
            values.extend(columns_of(&entry.value));
            sql.push('(');
            for (k, v) in values.into_iter().enumerate() {
                if k > 0 {
                    sql.push_str(", ");
                }
                args.push(v);
                sql.push_str(&format!("${}", args.len()));
            }
            sql.push(')');
        }
        bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO change_log (res_type, id, version, patient_key, action, changed_at) \
         VALUES ($1, $2, 1, $3, 'create', $4)",
    )
    .bind(ty.clone())
    .bind(rows.id.clone())
    .bind(rows.patient_key.clone())
    .bind(rows.last_updated)
    .execute(&mut *tx)
    .await?;
    // The write's audit record, chained after the head (the hash itself is computed ahead:
    // the ceiling measures the database, not SHA-256).
    let head = match engine {
        // SQLite has one writer; PostgreSQL's writers queue on the head row, as the store's do.
        EngineArg::Sqlite => "SELECT seq FROM audit_head WHERE id = 1",
        EngineArg::Postgres => "SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE",
    };
    let seq: i64 = sqlx::query_scalar(head).fetch_one(&mut *tx).await?;
    let next = seq + 1;
    sqlx::query(
        "INSERT INTO audit_log (seq, id, recorded, agent_user, agent_org, purpose, outcome, \
         prev_hash, hash, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(next)
    .bind(format!("audit-{}", rows.id))
    .bind(rows.last_updated)
    .bind("bench-user".to_owned())
    .bind("X26".to_owned())
    .bind("TREAT".to_owned())
    .bind("0".to_owned())
    .bind(AUDIT_HASH.to_owned())
    .bind(AUDIT_HASH.to_owned())
    .bind(audit_body(&rows.id))
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO audit_patient (patient_key, seq) VALUES ($1, $2)")
        .bind(rows.patient_key.clone())
        .bind(next)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(next)
        .bind(AUDIT_HASH.to_owned())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A SHA-256 hex digest's length.
const AUDIT_HASH: &str = "5f0c8e2b7a9d4c3e1f6a8b0d2c4e6f8a1b3d5c7e9f0a2b4c6d8e0f1a3b5c7d9e";

/// An AuditEvent of the size SMR writes for a create (≈ 700 bytes).
fn audit_body(id: &str) -> String {
    json!({"resourceType": "AuditEvent", "id": format!("audit-{id}"),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "create"}],
        "action": "C", "recorded": "2027-01-15T08:00:00Z", "outcome": "0",
        "agent": [{"who": {"identifier": {"value": "bench-user"}}, "requestor": true,
            "role": [{"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/NHSDigital-SDSJobRoleName", "code": "R8000"}]}]}],
        "source": {"observer": {"display": "SMR"}},
        "entity": [{"what": {"reference": format!("MedicationRequest/{id}")}}]})
    .to_string()
}

enum Arg {
    Text(Option<String>),
    Int(i64),
    Real(f64),
}

fn bind_all(
    mut q: Query<'static, Any, AnyArguments>,
    args: Vec<Arg>,
) -> Query<'static, Any, AnyArguments> {
    for arg in args {
        q = match arg {
            Arg::Text(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
            Arg::Real(f) => q.bind(f),
        };
    }
    q
}

fn table_of(value: &IndexValue) -> &'static str {
    match value {
        IndexValue::Token { .. } => "idx_token",
        IndexValue::String { .. } => "idx_string",
        IndexValue::Date { .. } => "idx_date",
        IndexValue::Reference { .. } => "idx_reference",
        IndexValue::Number { .. } => "idx_number",
        IndexValue::Quantity { .. } => "idx_quantity",
        IndexValue::Uri { .. } => "idx_uri",
    }
}

fn columns_of(value: &IndexValue) -> Vec<Arg> {
    match value {
        IndexValue::Token { system, code, text } => vec![
            Arg::Text(system.clone()),
            Arg::Text(code.clone()),
            Arg::Text(text.as_deref().map(smr_fhir::text::normalize)),
        ],
        IndexValue::String { normalized, exact } => {
            vec![
                Arg::Text(Some(normalized.clone())),
                Arg::Text(Some(exact.clone())),
            ]
        }
        IndexValue::Date { low, high } => vec![Arg::Int(*low), Arg::Int(*high)],
        IndexValue::Reference {
            target_type,
            target_id,
            url,
        } => {
            vec![
                Arg::Text(target_type.clone()),
                Arg::Text(target_id.clone()),
                Arg::Text(Some(url.clone())),
            ]
        }
        IndexValue::Number { value } => vec![Arg::Real(*value)],
        IndexValue::Quantity {
            value,
            system,
            code,
            unit,
        } => {
            vec![
                Arg::Real(*value),
                Arg::Text(system.clone()),
                Arg::Text(code.clone()),
                Arg::Text(unit.clone()),
            ]
        }
        IndexValue::Uri { value } => vec![Arg::Text(Some(value.clone()))],
    }
}

/// How many index rows of each kind a create writes: part of the report, so the ceiling's
/// "same rows" claim can be checked.
pub fn index_summary(entries: &[IndexEntry]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for e in entries {
        let t = table_of(&e.value);
        match counts.iter_mut().find(|(name, _)| *name == t) {
            Some((_, n)) => *n += 1,
            None => counts.push((t, 1)),
        }
    }
    counts
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
